"""The write path: `utils.batch_processor.write_profiles` rows/s against a raw COPY of the same
rows into the same table, in the same run.

write_profiles is what every chunk of 1,000 kept followers goes through: an idempotent
insert that reports which rows were new, plus the job's counter, in one transaction. The
baselines are one COPY stream of every row (the ceiling) and one COPY per 1,000 rows, each
in its own transaction (the same commit count as the write path). Target: >= 0.5 of COPY.
"""
import argparse
import time

import psycopg

from harness import engine_for, machine_limits, make_job, profile_rows, stack

from utils.batch_processor import write_profiles

COLUMNS = ("job_id", "profile_id", "username", "full_name", "gender", "gender_confidence", "is_private",
           "is_verified", "profile_pic_url", "source_accounts", "created_at")


def copy_rows(database_url, job_id, rows, per_transaction):
    """Raw COPY of `rows` into scrape_results, `per_transaction` rows per COPY and commit; returns seconds."""
    started = time.perf_counter()
    with psycopg.connect(database_url) as conn:
        for offset in range(0, len(rows), per_transaction):
            with conn.cursor().copy(f"copy scrape_results ({', '.join(COLUMNS)}) from stdin") as copy:
                for row in rows[offset:offset + per_transaction]:
                    copy.write_row((job_id, row["profile_id"], row["username"], row["full_name"], row["gender"],
                                    row["gender_confidence"], row["is_private"], row["is_verified"],
                                    row["profile_pic_url"], ",".join(row["sources"]), "now()"))
            conn.commit()
    return time.perf_counter() - started


def write_path(engine, job_id, rows, per_transaction=1000):
    """The same rows through `write_profiles`, `per_transaction` at a time; returns seconds."""
    started = time.perf_counter()
    for offset in range(0, len(rows), per_transaction):
        write_profiles(engine, job_id, rows[offset:offset + per_transaction])
    return time.perf_counter() - started


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=200_000)
    args = parser.parse_args()
    with stack() as (env, _emulator, _workers):
        print("\n".join(machine_limits(env["DATABASE_URL"])))
        engine = engine_for(env)
        rows = profile_rows(args.rows)
        # Alternate so that neither side always runs on the warmer (or larger) table.
        figures = {
            "raw COPY, one stream": copy_rows(env["DATABASE_URL"], make_job(engine), rows, len(rows)),
            "write_profiles, 1,000 per transaction": write_path(engine, make_job(engine), rows),
            "raw COPY, 1,000 per transaction": copy_rows(env["DATABASE_URL"], make_job(engine), rows, 1000),
        }
    ceiling = args.rows / figures["raw COPY, one stream"]
    for name, seconds in figures.items():
        rate = args.rows / seconds
        print(f"{name:40s} {rate:>9,.0f} rows/s  ({rate / ceiling:.2f} of one COPY stream)")


if __name__ == "__main__":
    main()
