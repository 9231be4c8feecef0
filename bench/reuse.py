"""Reuse: a weekly re-run of 1,000 accounts with 10% new, with and without reading last week's
follower lists. Prints, for each, the Apify runs started, the emulated dollars charged and the
wall time from POST to `completed`, through gunicorn, a worker and the Apify emulator.

The emulator's runs take --run-seconds plus --seconds-per-item per follower (a real follower
actor scrapes a few hundred a second), at its default prices ($0.70 per 1,000, $0.00005 a start).
Last week's lists are dated 7 days back, and the re-run asks maxAgeDays 8 (reuse) or 0 (none).
"""
import argparse
import time
from datetime import timedelta

from harness import Client, api_key, engine_for, free_port, machine_limits, stack, wait_for_job, web
from stack import Beat, Worker

from utils import store
from utils.store.schema import follower_lists


def run(client, emulator, accounts, per_account, max_age_days):
    """(status, runs started, seconds) of one job over `accounts`."""
    runs_before = len(emulator.stats()["runs"])
    started = time.perf_counter()
    created = client.request("POST", "/api/scrape-followers", {
        "accounts": accounts, "targetGender": "female", "totalScrapeCount": len(accounts) * per_account,
        "maxAgeDays": max_age_days}, expect=202)
    status = wait_for_job(client, created["status_url"], poll=0.2)
    return status, len(emulator.stats()["runs"]) - runs_before, time.perf_counter() - started


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", type=int, default=1000)
    parser.add_argument("--new", type=float, default=0.10, help="share of the re-run's accounts not seen last week")
    parser.add_argument("--per-account", type=int, default=100)
    parser.add_argument("--run-seconds", type=float, default=5.0)
    parser.add_argument("--seconds-per-item", type=float, default=0.002)
    args = parser.parse_args()

    with stack(workers=0) as (env, emulator, _):
        port = free_port()
        env = {**env, "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}"}  # Apify's webhooks reach gunicorn
        with web(env, port=port):
            worker, clock = Worker(env, "/tmp/bench-reuse-worker.log", 2), Beat(env, "/tmp/bench-reuse-beat.log")
            try:
                weeks(env, port, emulator, args)
            finally:
                clock.stop()
                worker.stop()


def weeks(env, port, emulator, args):
    """Last week's job, then this week's with and without reuse."""
    new = round(args.accounts * args.new)
    last_week = [f"weekly_{i}" for i in range(args.accounts)]
    this_week = last_week[new:] + [f"weekly_new_{i}" for i in range(new)]
    print("\n".join(machine_limits(env["DATABASE_URL"])))
    emulator.configure(run_duration_s=args.run_seconds, run_seconds_per_item=args.seconds_per_item)
    client, engine = Client(port, api_key(env)), engine_for(env)
    first, runs, seconds = run(client, emulator, last_week, args.per_account, 0)
    print(f"last week: {args.accounts} accounts, {runs} runs, ${first['cost_usd']:.2f}, {seconds:.1f} s")
    with engine.begin() as conn:
        conn.execute(follower_lists.update().values(ended_at=store.utcnow() - timedelta(days=7)))
    print(f"this week: {args.accounts - new} accounts of last week's and {new} new, "
          f"{args.per_account} followers each")
    # Reuse first: the run without it stores fresh lists of every account.
    for label, max_age in (("with reuse (maxAgeDays 8)", 8), ("without reuse (maxAgeDays 0)", 0)):
        status, runs, seconds = run(client, emulator, this_week, args.per_account, max_age)
        reuse = status["reuse"]
        print(f"  {label:30s} {runs:3d} runs  ${status['cost_usd']:6.2f}  {seconds:6.1f} s  "
              f"({status['profiles_scraped']:,} followers, {reuse['followers']:,} reused, "
              f"{reuse['runs_saved']} runs and ${reuse['usd_saved']:.2f} saved)")


if __name__ == "__main__":
    main()
