"""End to end: one job from POST to `completed`, through real workers, Postgres, Redis and the
Apify emulator at zero latency. Prints wall time, profiles/s and each worker's peak RSS.

    bench/job_end_to_end.py                          # 100 accounts x 50 followers, 1 worker x 2 processes
    bench/job_end_to_end.py --accounts 10000 --workers 2 --concurrency 1
"""
import argparse
import time

from harness import peak_rss_mb, stack

from app import create_app


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", type=int, default=100)
    parser.add_argument("--per-account", type=int, default=50)
    parser.add_argument("--workers", type=int, default=1, help="worker processes (celery -A tasks worker)")
    parser.add_argument("--concurrency", type=int, default=2, help="prefork children per worker")
    parser.add_argument("--gender", default="female")
    args = parser.parse_args()

    with stack(workers=args.workers, concurrency=args.concurrency) as (env, emulator, workers):
        app = create_app({"database_url": env["DATABASE_URL"], "redis_url": env["REDIS_URL"]})
        client = app.test_client()
        body = {"accounts": [f"bench_{i}" for i in range(args.accounts)], "targetGender": args.gender,
                "totalScrapeCount": args.accounts * args.per_account}
        started = time.perf_counter()
        created = client.post("/api/scrape-followers", json=body).get_json()
        while (status := client.get(created["status_url"]).get_json())["status"] not in ("completed", "failed"):
            time.sleep(0.05)
        wall = time.perf_counter() - started
        peaks = [peak_rss_mb(worker.process.pid) for worker in workers]

    print(f"job: {args.accounts:,} accounts x {args.per_account} followers, {created['total_batches']} batches, "
          f"{args.workers} worker(s) x {args.concurrency} process(es); status {status['status']}, "
          f"{status['batches_failed']} batch(es) failed")
    print(f"wall time {wall:.2f} s; scraped {status['profiles_scraped']:,} ({status['profiles_scraped'] / wall:,.0f}/s), "
          f"kept {status['profiles_kept']:,}; breakdown {status['gender_breakdown']}")
    for index, peak in enumerate(peaks):
        listed = ", ".join(f"{mb:.0f}" for mb in sorted(peak.values(), reverse=True))
        print(f"worker {index} peak RSS per process (MB): {listed}")


if __name__ == "__main__":
    main()
