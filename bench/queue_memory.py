"""Redis memory per queued message: publish store_batch messages with no worker running, as
the webhook handler and the clock do, and read Redis's own accounting of what they take.
"""
import argparse
import uuid

import redis

from harness import BENCH_REDIS_URL, QUEUE, machine_limits, stack

from celery_config import STORE_BATCH, make_celery
from utils.config import Settings


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batches", type=int, default=20_000)
    args = parser.parse_args()
    with stack() as (env, _emulator, _workers):
        print("\n".join(machine_limits()))
        connection = redis.Redis.from_url(BENCH_REDIS_URL)
        celery = make_celery(Settings(redis_url=BENCH_REDIS_URL, database_url=env["DATABASE_URL"], celery_queue=QUEUE))
        before = connection.info("memory")["used_memory"]
        job_id = str(uuid.uuid4())
        with celery.producer_or_acquire() as producer:
            for index in range(args.batches):
                celery.send_task(STORE_BATCH, args=[job_id, index], producer=producer)
        after = connection.info("memory")["used_memory"]
        queued = connection.llen(QUEUE)
        message = connection.lindex(QUEUE, 0)
        per_message = (after - before) / queued
    print(f"{queued:,} batch messages queued: {(after - before) / 1e6:.1f} MB of Redis memory, "
          f"{per_message:,.0f} bytes per batch (one message is {len(message):,} bytes of JSON)")


if __name__ == "__main__":
    main()
