"""The job lifecycle (table scrape_jobs): the only module that writes a job's status and counters.

    from               to                     transition   trigger                               fenced by
    -                  queued                 insert       POST /api/scrape-followers            the key's row (`store.work`)
    queued             processing             begin        its first batch is claimed            status = queued
    queued|processing  (counters)             add_chunk    a chunk stored: followers scraped,    the batch's lease
                                                           their genders, new profiles kept
                                              take_back    served accounts scraped after all     the batch's lease
                                              roll         a batch ended                         the batch's end (once)
                                              grow         accounts to scrape after all          the batch's lease
                                              add_cost     a run of the job was charged          the run's charge (once)
                                              flag_budget  the budget stopped a run              -
    queued|processing  completed | failed     roll         its last batch ended                  batches_done = total
    queued|processing  cancelled | failed     stop         cancel, or Apify refused for good     status is active
    any                (gone)                 remove       DELETE, or past RESULTS_TTL_DAYS      -

Every transition takes a connection: it is one step of a transaction in `store.work`, which
takes the locks in `store.locks` order. Every lookup takes its tenant: an API key id, or
`ALL_KEYS` said out loud by operator commands and the worker, which act on any job.
"""
import uuid
from datetime import datetime

import sqlalchemy as sa

from utils.store import cursors
from utils.store.schema import ACTIVE_JOB_STATUSES, JobStatus, jobs, utcnow

j = jobs.c


class _AllKeys:
    def __repr__(self):
        return "ALL_KEYS"


ALL_KEYS = _AllKeys()


def _scoped(query, api_key_id):
    if api_key_id is ALL_KEYS:
        return query
    if not isinstance(api_key_id, int):
        raise TypeError(f"a tenant is an API key id or ALL_KEYS, not {api_key_id!r}")
    return query.where(j.api_key_id == api_key_id)


# -- transitions ---------------------------------------------------------------------------------

def insert(conn, *, api_key_id, target_gender, min_confidence, accounts_count, per_account_limit,
           total_scrape_count, total_batches, max_cost_usd=None, callback_url=None):
    """A new job, queued; returns its id."""
    job_id, now = str(uuid.uuid4()), utcnow()
    conn.execute(jobs.insert().values(
        job_id=job_id, api_key_id=api_key_id, status=JobStatus.QUEUED, target_gender=target_gender,
        min_confidence=min_confidence, accounts_count=accounts_count, per_account_limit=per_account_limit,
        total_scrape_count=total_scrape_count, total_batches=total_batches, max_cost_usd=max_cost_usd,
        callback_url=callback_url, created_at=now, updated_at=now))
    return job_id


def begin(conn, job_id):
    """queued -> processing; returns what a task needs of the job to work on one of its batches
    (target_gender, min_confidence, per_account_limit, max_cost_usd, api_key_id)."""
    status = sa.case((j.status == JobStatus.QUEUED, JobStatus.PROCESSING), else_=j.status)
    return conn.execute(jobs.update().where(j.job_id == job_id).values(status=status, updated_at=utcnow())
                        .returning(j.target_gender, j.min_confidence, j.per_account_limit, j.max_cost_usd,
                                   j.api_key_id)).first()


def add_chunk(conn, job_id, tally, kept):
    """A chunk of the job's followers was stored: `tally` (scraped, male, female, unknown) and
    `kept` new result rows. The counters move with every chunk, in its transaction, so they equal
    what is stored at every moment, whatever stops the job later."""
    conn.execute(jobs.update().where(j.job_id == job_id).values(
        profiles_scraped=j.profiles_scraped + tally.scraped, male_count=j.male_count + tally.male,
        female_count=j.female_count + tally.female, unknown_count=j.unknown_count + tally.unknown,
        profiles_kept=j.profiles_kept + kept, updated_at=utcnow()))


def take_back(conn, job_id, tally):
    """What lists served accounts that the job scrapes after all (their scrape counts it again)."""
    conn.execute(jobs.update().where(j.job_id == job_id).values(
        profiles_scraped=j.profiles_scraped - tally.scraped, male_count=j.male_count - tally.male,
        female_count=j.female_count - tally.female, unknown_count=j.unknown_count - tally.unknown))


def roll(conn, job_id, failed, error_message, why_empty):
    """A batch of the job ended: count it; the last batch ends an active job, failed when every
    batch failed. `why_empty()` says why, for a job that found nobody. Returns the job's status
    afterwards."""
    now = utcnow()
    job = conn.execute(jobs.update().where(j.job_id == job_id).values(
        batches_done=j.batches_done + 1, batches_failed=j.batches_failed + int(failed), updated_at=now,
    ).returning(j.status, j.batches_done, j.batches_failed, j.total_batches, j.profiles_scraped)).first()
    if job.batches_done < job.total_batches or job.status not in ACTIVE_JOB_STATUSES:
        return job.status
    status = JobStatus.FAILED if job.batches_failed == job.total_batches else JobStatus.COMPLETED
    message = error_message if status == JobStatus.FAILED else None
    if status == JobStatus.COMPLETED and job.profiles_scraped == 0:
        message = f"No followers came back: {why_empty() or 'every account was empty'}."
    conn.execute(jobs.update().where(j.job_id == job_id).values(status=status, completed_at=now,
                                                                error_message=message))
    return status


def grow(conn, job_id, batches):
    """The job has `batches` more batches (accounts it scrapes after all); returns
    (total_batches, api_key_id) afterwards."""
    return conn.execute(jobs.update().where(j.job_id == job_id).values(total_batches=j.total_batches + batches)
                        .returning(j.total_batches, j.api_key_id)).first()


def add_cost(conn, job_id, usd):
    """A run of the job was charged `usd` (or its charge corrected by it); nothing for a job
    that was deleted."""
    if usd:
        conn.execute(jobs.update().where(j.job_id == job_id).values(cost_usd=j.cost_usd + usd))


def flag_budget(conn, job_id):
    conn.execute(jobs.update().where(j.job_id == job_id, j.budget_exhausted.is_(False))
                 .values(budget_exhausted=True))


def stop(conn, job_id, status, message):
    """An active job ends `status` (cancelled, or failed); False when it was not active."""
    now = utcnow()
    return bool(conn.execute(jobs.update().where(j.job_id == job_id, j.status.in_(ACTIVE_JOB_STATUSES)).values(
        status=status, error_message=message, updated_at=now, completed_at=now)).rowcount)


def remove(conn, job_id):
    conn.execute(jobs.delete().where(j.job_id == job_id))


# -- reading ---------------------------------------------------------------------------------------

def lock(conn, job_id):
    """Lock the job's row for the rest of the transaction; its (status, api_key_id), or None."""
    return conn.execute(sa.select(j.status, j.api_key_id).where(j.job_id == job_id).with_for_update()).first()


def is_active(conn, job_id):
    return bool(conn.execute(sa.select(sa.exists().where(j.job_id == job_id, j.status.in_(ACTIVE_JOB_STATUSES))))
                .scalar())


def age(conn, job_id):
    """Seconds since the job was created."""
    created = conn.execute(sa.select(j.created_at).where(j.job_id == job_id)).scalar()
    return (utcnow() - created).total_seconds()


def active(job_id_column):
    """A condition: the job of `job_id_column` is active."""
    return sa.exists().where(j.job_id == job_id_column, j.status.in_(ACTIVE_JOB_STATUSES))


def get_job(engine, job_id, api_key_id):
    """The job row as a dict if it belongs to the tenant, else None (also for a non-UUID)."""
    if not cursors.is_uuid(job_id):
        return None
    with engine.connect() as conn:
        row = conn.execute(_scoped(jobs.select().where(j.job_id == job_id), api_key_id)).mappings().first()
    return dict(row) if row else None


def list_jobs(engine, api_key_id, limit, *, before=None):
    """A tenant's jobs, newest first: (jobs, next_cursor), paged by keyset on (created_at, job_id).

    `before` is a decoded job cursor; next_cursor is None on the last page.
    """
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


def job_ids_of(engine, api_key_id):
    """Every job id of the tenant."""
    with engine.connect() as conn:
        return conn.execute(_scoped(sa.select(j.job_id), api_key_id)).scalars().all()


def expired_job_ids(engine, older_than):
    with engine.connect() as conn:
        return conn.execute(sa.select(j.job_id).where(j.created_at < older_than)).scalars().all()


def reserved(conn, api_key_id):
    """What the key's active jobs may still spend: each one's budget less what it was charged."""
    left = sa.func.greatest if conn.dialect.name == "postgresql" else sa.func.max
    return float(conn.execute(sa.select(sa.func.coalesce(sa.func.sum(left(j.max_cost_usd - j.cost_usd, 0)), 0))
                              .where(j.api_key_id == api_key_id, j.status.in_(ACTIVE_JOB_STATUSES),
                                     j.max_cost_usd.is_not(None))).scalar())
