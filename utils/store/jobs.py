"""Jobs (table scrape_jobs): create with their batches, find within a tenant, list, stop, delete.

Every lookup takes its tenant: an API key id, or `ALL_KEYS` said out loud by operator
commands and the worker, which act on any job.
"""
import uuid
from datetime import datetime

import sqlalchemy as sa

from utils.store import accounts as store_accounts, batches as store_batches, cursors, lists as store_lists
from utils.store.schema import (ACTIVE_JOB_STATUSES, IN_FLIGHT, UNHELD, BatchSource, BatchStatus, JobStatus, batches,
                                jobs, results, utcnow)
from utils.store.schema import accounts as account_table


class _AllKeys:
    def __repr__(self):
        return "ALL_KEYS"


ALL_KEYS = _AllKeys()


def _scoped(query, api_key_id):
    if api_key_id is ALL_KEYS:
        return query
    if not isinstance(api_key_id, int):
        raise TypeError(f"a tenant is an API key id or ALL_KEYS, not {api_key_id!r}")
    return query.where(jobs.c.api_key_id == api_key_id)


def create_job(engine, *, api_key_id, accounts, target_gender, min_confidence, total_scrape_count,
               per_account_limit, batch_size, actor_id, max_age_days=0, max_cost_usd=None, callback_url=None):
    """Write the job, its accounts and its batches of `batch_size` accounts, in one transaction.

    Each account reads one follower list (`store.lists`): one stored or being scraped for
    another job, if `store.lists.plan` finds one no older than `max_age_days` (those accounts
    go in batches of lists), else a new one the job's runs fill (in batches of runs).
    Returns (job_id, total batches, the `store.lists.Plan`).
    """
    job_id = str(uuid.uuid4())
    now = utcnow()
    with engine.begin() as conn:
        if max_age_days > 0:
            store_lists.lock_planning(conn)
        found = store_lists.plan(conn, accounts, per_account_limit, actor_id, max_age_days)
        scraped = store_batches.group(found.scrape, batch_size)
        served = store_batches.group(list(found.reused), batch_size)
        conn.execute(jobs.insert().values(
            job_id=job_id, api_key_id=api_key_id, status=JobStatus.QUEUED, target_gender=target_gender,
            min_confidence=min_confidence,
            accounts_count=len(accounts), per_account_limit=per_account_limit,
            total_scrape_count=total_scrape_count, total_batches=len(scraped) + len(served),
            max_cost_usd=max_cost_usd, callback_url=callback_url, created_at=now, updated_at=now,
        ))
        store_batches.insert(conn, job_id, 0, BatchSource.APIFY, scraped)
        store_batches.insert(conn, job_id, len(scraped), BatchSource.LISTS, served)
        lists = {**store_lists.create(conn, job_id, api_key_id, found.scrape, per_account_limit, actor_id),
                 **found.reused}
        store_accounts.insert(conn, job_id, scraped + served, per_account_limit, lists, found.reused)
    return job_id, len(scraped) + len(served), found


def get_job(engine, job_id, api_key_id):
    """The job row as a dict if it belongs to the tenant, else None (also for a non-UUID)."""
    if not cursors.is_uuid(job_id):
        return None
    with engine.connect() as conn:
        row = conn.execute(_scoped(jobs.select().where(jobs.c.job_id == job_id), api_key_id)).mappings().first()
    return dict(row) if row else None


def list_jobs(engine, api_key_id, limit, *, before=None):
    """A tenant's jobs, newest first: (jobs, next_cursor), paged by keyset on (created_at, job_id).

    `before` is a decoded job cursor; next_cursor is None on the last page.
    """
    j = jobs.c
    query = _scoped(jobs.select().order_by(j.created_at.desc(), j.job_id.desc()).limit(limit + 1), api_key_id)
    if before is not None:
        created_at, job_id = before
        query = query.where(sa.or_(j.created_at < created_at,
                                   sa.and_(j.created_at == created_at, j.job_id < job_id)))
    with engine.connect() as conn:
        rows = [dict(row) for row in conn.execute(query).mappings()]
    next_cursor = encode_job_cursor(rows[limit - 1]) if len(rows) > limit else None
    return rows[:limit], next_cursor


def encode_job_cursor(job):
    return cursors.encode("j", f"{job['created_at'].isoformat()}|{job['job_id']}")


def decode_job_cursor(cursor):
    """(created_at, job_id) a jobs cursor points before; ValueError for anything we did not issue."""
    created_at, _, job_id = cursors.decode("j", cursor).partition("|")
    if not cursors.is_uuid(job_id):
        raise ValueError("malformed cursor")
    try:
        return datetime.fromisoformat(created_at), job_id
    except ValueError:
        raise ValueError("malformed cursor") from None


def delete_job(engine, job_id):
    """Delete the job, its batches and its results; returns the Apify runs still going."""
    with engine.begin() as conn:
        store_lists.abandon(conn, job_id, "the job scraping it was deleted")
        conn.execute(results.delete().where(results.c.job_id == job_id))
        conn.execute(account_table.delete().where(account_table.c.job_id == job_id))
        # What the DELETE itself removed: a run recorded meanwhile cannot slip between a look and the delete.
        gone = conn.execute(batches.delete().where(batches.c.job_id == job_id)
                            .returning(batches.c.status, batches.c.apify_run_id)).all()
        conn.execute(jobs.delete().where(jobs.c.job_id == job_id))
    return [run_id for status, run_id in gone if status in IN_FLIGHT and run_id]


def job_ids_of(engine, api_key_id):
    """Every job id of the tenant."""
    with engine.connect() as conn:
        return conn.execute(_scoped(sa.select(jobs.c.job_id), api_key_id)).scalars().all()


def expired_job_ids(engine, older_than):
    with engine.connect() as conn:
        return conn.execute(sa.select(jobs.c.job_id).where(jobs.c.created_at < older_than)).scalars().all()


def fail_job(engine, job_id, message):
    """End an active job as failed (see `stop_job`)."""
    return stop_job(engine, job_id, JobStatus.FAILED, message)


def cancel_job(engine, job_id):
    return stop_job(engine, job_id, JobStatus.CANCELLED, "Cancelled on request.")


def stop_job(engine, job_id, status, message):
    """End an active job with `status`: batches not held by a task are cancelled (queued ones
    never start). Returns the Apify runs still going, to abort, or None when the job was not
    active. A task holding a batch notices at its next step and lets go of it.
    """
    now = utcnow()
    with engine.begin() as conn:
        # Batch rows before the job row: the lock order claims and end_batch use. The runs to
        # abort are those this UPDATE cancelled, so a run recorded meanwhile is not missed.
        unheld = sa.and_(batches.c.job_id == job_id,
                         sa.exists().where(jobs.c.job_id == job_id, jobs.c.status.in_(ACTIVE_JOB_STATUSES)))
        running = conn.execute(
            batches.update().where(unheld, batches.c.status == BatchStatus.RUNNING)
            .values(status=BatchStatus.CANCELLED, finished_at=now).returning(batches.c.apify_run_id)
        ).scalars().all()
        conn.execute(batches.update().where(unheld, batches.c.status.in_(UNHELD))
                     .values(status=BatchStatus.CANCELLED, finished_at=now))
        stopped = conn.execute(
            jobs.update()
            .where(jobs.c.job_id == job_id, jobs.c.status.in_(ACTIVE_JOB_STATUSES))
            .values(status=status, error_message=message, updated_at=now, completed_at=now)
        ).rowcount
        if stopped:
            store_lists.abandon(conn, job_id, f"the job scraping it ended {status}")
    return running if stopped else None


def mark_budget_exhausted(engine, job_id):
    with engine.begin() as conn:
        conn.execute(jobs.update().where(jobs.c.job_id == job_id).values(budget_exhausted=True))
