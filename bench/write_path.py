"""The write path: followers/s through `store.work.store_chunk` against a raw COPY of as many
rows into scrape_results, in the same run.

store_chunk is what every page of 1,000 scraped followers goes through: every follower into its
account's follower list (COPY), the kept ones (here the half that is female) into the job's
results (COPY of the rows new to the job, idempotently), and the batch's, accounts' and job's
counters, in one transaction. The baselines are one COPY stream of every row (the ceiling) and
one COPY per 1,000 rows, each in its own transaction (the same commit count as the write path).
Target: >= 0.5 of one COPY stream.
"""
import argparse
import time

import psycopg

from harness import engine_for, machine_limits, make_job, profile_rows, stack, storing_claim

from utils.batch_processor import Chunk
from utils.store.batches import Tally
from utils.store.work import store_chunk

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


def chunks(rows, source, per_chunk=1000):
    """Chunks as `batch_processor.classify` makes them for a female job: half the followers kept."""
    out = []
    for offset in range(0, len(rows), per_chunk):
        page = [{**row, "gender": "female" if i % 2 else "male"}
                for i, row in enumerate(rows[offset:offset + per_chunk])]
        kept = [row for row in page if row["gender"] == "female"]
        tally = Tally(scraped=len(page), male=len(page) - len(kept), female=len(kept), kept=len(kept))
        out.append(Chunk(rows=kept, tally=tally, by_account={source: tally},
                         listed=[(source, row) for row in page]))
    return out


def write_path(engine, job_id, prepared):
    """The chunks through `store_chunk`, one transaction each; returns seconds."""
    claim = storing_claim(engine, job_id)
    started = time.perf_counter()
    for offset, chunk in enumerate(prepared):
        store_chunk(engine, claim, chunk, offset + 1, 3600)
    return time.perf_counter() - started


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=200_000)
    args = parser.parse_args()
    with stack() as (env, _emulator, _workers):
        print("\n".join(machine_limits(env["DATABASE_URL"])))
        engine = engine_for(env)
        rows = profile_rows(args.rows)
        prepared = chunks(rows, "bench_source")
        # Alternate so that neither side always runs on the warmer (or larger) table.
        figures = {
            "raw COPY, one stream": copy_rows(env["DATABASE_URL"], make_job(engine), rows, len(rows)),
            "store_chunk, 1,000 per transaction": write_path(engine, make_job(engine), prepared),
            "raw COPY, 1,000 per transaction": copy_rows(env["DATABASE_URL"], make_job(engine), rows, 1000),
        }
    ceiling = args.rows / figures["raw COPY, one stream"]
    for name, seconds in figures.items():
        rate = args.rows / seconds
        print(f"{name:40s} {rate:>9,.0f} followers/s  ({rate / ceiling:.2f} of one COPY stream)")


if __name__ == "__main__":
    main()
