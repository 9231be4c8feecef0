"""Results: page 1 and page 500 (limit 1000) of a 500,000-row job through gunicorn, by cursor
(keyset) and by page number (OFFSET).

The rows go in through the real write path (`write_profiles`), not through a scrape.
Targets: page 500 by cursor within 2x of page 1, p95 <= 20 ms.
"""
import argparse

import sqlalchemy as sa

from harness import Client, api_key, engine_for, fill_results, machine_limits, make_job, stack, summary, timed_ms, web

from utils import store


def cursor_before(engine, job_id, position):
    """The cursor a client holds after reading `position` rows."""
    with engine.connect() as conn:
        last_id = conn.execute(
            sa.select(store.schema.results.c.id).where(store.schema.results.c.job_id == job_id)
            .order_by(store.schema.results.c.id).offset(position - 1).limit(1)
        ).scalar_one()
    return store.results.encode_cursor(last_id)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=500_000)
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    limit, deep = 1000, args.rows // 1000
    with stack() as (env, _emulator, _workers), web(env) as port:
        print("\n".join(machine_limits(env["DATABASE_URL"])))
        key, engine = api_key(env), engine_for(env)
        job_id = make_job(engine, key=key)
        seconds = fill_results(engine, job_id, args.rows)
        print(f"filled {args.rows:,} rows through write_profiles in {seconds:.1f} s")
        with engine.connect() as conn:
            conn.execute(sa.text("analyze scrape_results"))
        client = Client(port, key)
        base = f"/api/job-results/{job_id}?limit={limit}"
        requests = {
            "page 1, no cursor": base,
            f"page {deep} by cursor": f"{base}&cursor={cursor_before(engine, job_id, (deep - 1) * limit)}",
            "page 1 by number": f"{base}&page=1",
            f"page {deep} by number": f"{base}&page={deep}",
        }
        for name, path in requests.items():
            assert len(client.request("GET", path)["profiles"]) == limit
            print(f"{name:22s} {summary(timed_ms(lambda: client.request('GET', path), args.repeats))}")


if __name__ == "__main__":
    main()
