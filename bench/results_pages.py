"""Results: page 1, page 90 and page 500 (limit 1000) of a 500,000-row job through gunicorn, by
cursor (keyset) and by page number (OFFSET).

The rows go in through the real write path (`write_profiles`), not through a scrape; with
--from-lists, they are 100 follower lists of 5,000 (stored as a scrape stores them) that a job
asking maxAgeDays reads, served by a worker, timed from POST to `completed`.
Targets: page 500 by cursor within 2x of page 1, p95 <= 20 ms.
"""
import argparse
import time

import sqlalchemy as sa

from harness import (UNLIMITED, Client, api_key, engine_for, fill_results, machine_limits, make_job, profile_rows,
                     stack, storing_claim, summary, timed_ms, wait_for_job, web)
from write_path import chunks

from utils import store
from utils.store.schema import follower_lists


def cursor_before(engine, job_id, position):
    """The cursor a client holds after reading `position` rows."""
    with engine.connect() as conn:
        last_id = conn.execute(
            sa.select(store.schema.results.c.id).where(store.schema.results.c.job_id == job_id)
            .order_by(store.schema.results.c.id).offset(position - 1).limit(1)
        ).scalar_one()
    return store.results.encode_cursor(last_id)


def stored_lists(engine, accounts, per_account):
    """Follower lists of `accounts`, `per_account` followers each, stored through `store_chunk`
    as a scrape's pages are, then ended complete."""
    job_id, *_ = store.work.create_job(
        engine, api_key_id=None, usernames=accounts, target_gender="female", min_confidence=0.75,
        total_scrape_count=len(accounts) * per_account, per_account_limit=per_account, batch_size=len(accounts),
        actor_id=UNLIMITED["APIFY_ACTOR_ID"])
    claim = storing_claim(engine, job_id)
    for index, account in enumerate(accounts):
        for offset, chunk in enumerate(chunks(profile_rows(per_account, index * per_account, account), account)):
            store.work.store_chunk(engine, claim, chunk, offset + 1, 3600)
    with engine.begin() as conn:
        conn.execute(follower_lists.update().values(status="complete", scraped=per_account, ended_at=store.utcnow()))


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=500_000)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--from-lists", action="store_true", help="the job reads stored follower lists")
    args = parser.parse_args()
    limit, deep = 1000, args.rows // 1000
    with stack(workers=int(args.from_lists)) as (env, _emulator, _workers), web(env) as port:
        print("\n".join(machine_limits(env["DATABASE_URL"])))
        key, engine = api_key(env), engine_for(env)
        client = Client(port, key)
        if args.from_lists:
            accounts = [f"listed_{i}" for i in range(100)]
            stored_lists(engine, accounts, args.rows // 100)
            started = time.perf_counter()
            created = client.request("POST", "/api/scrape-followers", {
                "accounts": accounts, "targetGender": "any", "totalScrapeCount": args.rows, "maxAgeDays": 1},
                expect=202)
            status = wait_for_job(client, created["status_url"], poll=0.2)
            job_id = created["job_id"]
            print(f"served {status['profiles_kept']:,} rows from {created['accounts_reused']} stored lists in "
                  f"{time.perf_counter() - started:.1f} s (POST to completed, one worker of 2 processes)")
        else:
            job_id = make_job(engine, key=key)
            seconds = fill_results(engine, job_id, args.rows)
            print(f"filled {args.rows:,} rows through write_profiles in {seconds:.1f} s")
        with engine.connect() as conn:
            conn.execute(sa.text("analyze scrape_results"))
        base = f"/api/job-results/{job_id}?limit={limit}"
        requests = {
            "page 1, no cursor": base,
            "page 90 by cursor": f"{base}&cursor={cursor_before(engine, job_id, 89 * limit)}",
            f"page {deep} by cursor": f"{base}&cursor={cursor_before(engine, job_id, (deep - 1) * limit)}",
            "page 1 by number": f"{base}&page=1",
            f"page {deep} by number": f"{base}&page={deep}",
        }
        for name, path in requests.items():
            assert len(client.request("GET", path)["profiles"]) == limit
            print(f"{name:22s} {summary(timed_ms(lambda: client.request('GET', path), args.repeats))}")


if __name__ == "__main__":
    main()
