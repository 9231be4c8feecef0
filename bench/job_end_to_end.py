"""End to end: one job from POST to `completed`, through gunicorn, real workers, Postgres, Redis
and the Apify emulator at zero latency. Prints wall time, profiles/s and each worker's peak RSS.

    bench/job_end_to_end.py                                  # 10,000 accounts x 50: 500,000 followers
    bench/job_end_to_end.py --accounts 100 --workers 1 --concurrency 2

Targets (defaults): <= 60 s end to end, each worker process's peak RSS <= 200 MB.
"""
import argparse
import time

from harness import Client, api_key, machine_limits, peak_rss_mb, stack, wait_for_job, web


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--per-account", type=int, default=50)
    parser.add_argument("--workers", type=int, default=2, help="worker processes (celery -A tasks worker)")
    parser.add_argument("--concurrency", type=int, default=1, help="prefork children per worker")
    parser.add_argument("--gender", default="female")
    args = parser.parse_args()

    with stack(workers=args.workers, concurrency=args.concurrency) as (env, _emulator, workers), web(env) as port:
        print("\n".join(machine_limits(env["DATABASE_URL"])))
        client = Client(port, api_key(env))
        body = {"accounts": [f"bench_{i}" for i in range(args.accounts)], "targetGender": args.gender,
                "totalScrapeCount": args.accounts * args.per_account}
        started = time.perf_counter()
        created = client.request("POST", "/api/scrape-followers", body, expect=202)
        status = wait_for_job(client, created["status_url"])
        wall = time.perf_counter() - started
        peaks = [(worker.process.pid, peak_rss_mb(worker.process.pid)) for worker in workers]

    print(f"job: {args.accounts:,} accounts x {args.per_account} followers, {created['total_batches']} batches, "
          f"{args.workers} worker(s) x {args.concurrency} process(es); status {status['status']}, "
          f"{status['batches_failed']} batch(es) failed")
    print(f"wall time {wall:.2f} s; scraped {status['profiles_scraped']:,} ({status['profiles_scraped'] / wall:,.0f}/s), "
          f"kept {status['profiles_kept']:,}; breakdown {status['gender_breakdown']}")
    print(f"per batch: {wall * args.workers * args.concurrency / created['total_batches'] * 1000:.0f} ms of one "
          f"worker process ({args.workers * args.concurrency} in parallel)")
    for index, (main_pid, peak) in enumerate(peaks):
        children = ", ".join(f"{mb:.0f}" for pid, mb in sorted(peak.items()) if pid != main_pid)
        print(f"worker {index} peak RSS: main process {peak[main_pid]:.0f} MB, pool process(es) {children} MB")


if __name__ == "__main__":
    main()
