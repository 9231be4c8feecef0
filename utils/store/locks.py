"""The order in which transactions take their locks, and a transaction that outlives a deadlock.

Every transaction that touches a job's rows takes its locks in this order:

    1. the API key's row             (creating a job: the monthly cap is checked and the job
                                      inserted as one step per key)
    2. the capacity governor's row   (claiming a start: one slot is decided at a time)
    3. the job's batch rows          (every task's step begins by locking its batch; stopping and
                                      deleting a job lock all of them, in batch order, first)
    4. the job's results
    5. the job's row                 (its status and counters)
    6. the job's accounts
    7. follower lists and their pages
    8. apify_runs and spend_ledger

A task holding a batch locks its row first, so whatever it reads after that sees whether the
job was stopped meanwhile (a stop locks every batch row before the job's). Rows of one table
are locked in key order where a statement locks many (batch index, account name, list id).
What the order cannot rule out (two statements that lock many rows of one table, a plan the
database chose) Postgres breaks by aborting one transaction: `atomic` runs it again.
"""
import functools
import random
import time

import psycopg.errors
import sqlalchemy as sa

DEADLOCK_RETRIES = 5


def atomic(work):
    """`work(conn, ...)` called as `work(engine, ...)`, in a transaction of its own; a deadlock or
    a serialization failure (the transaction was rolled back whole) runs it again."""
    @functools.wraps(work)
    def run(engine, *args, **kwargs):
        for attempt in range(DEADLOCK_RETRIES):
            try:
                with engine.begin() as conn:
                    return work(conn, *args, **kwargs)
            except sa.exc.OperationalError as exc:
                if attempt + 1 == DEADLOCK_RETRIES or not _rolled_back(exc):
                    raise
                time.sleep(random.uniform(0, 0.02 * 2 ** attempt))
    return run


def _rolled_back(exc):
    return isinstance(exc.orig, (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure))
