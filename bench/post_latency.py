"""POST /api/scrape-followers latency through gunicorn, for 10,000 and 100,000 accounts.

The request validates the accounts, writes the job and its batch rows in one transaction
and publishes one start_runs message: no worker runs here, so nothing else competes.
Targets: p95 <= 100 ms for 10,000 accounts, <= 1 s for 100,000.
"""
import argparse
import json

from harness import Client, api_key, machine_limits, stack, summary, timed_ms, web


def measure(client, accounts, repeats):
    body = json.dumps({"accounts": [f"account_{i}" for i in range(accounts)], "targetGender": "female",
                       "totalScrapeCount": accounts * 50})
    # Two warm-up requests, one for each gunicorn worker.
    return timed_ms(lambda: client.request("POST", "/api/scrape-followers", body, expect=202), repeats), len(body)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    with stack() as (env, _emulator, _workers), web(env) as port:
        print("\n".join(machine_limits(env["DATABASE_URL"])))
        client = Client(port, api_key(env))
        for accounts, repeats in ((10_000, args.repeats), (100_000, max(3, args.repeats // 4))):
            samples, size = measure(client, accounts, repeats)
            print(f"POST {accounts:>7,} accounts ({size / 1e6:4.1f} MB body): {summary(samples)}")


if __name__ == "__main__":
    main()
