"""Job, batch and result storage on Postgres (production) or SQLite (the embedded default).

One SQLAlchemy Core schema serves both. Postgres is the source of truth for job state:
every state change is a conditional UPDATE, so a redelivered or duplicated Celery message
can never move a job or batch twice. The batch writes themselves live in
`utils/batch_processor.py`.
"""
import base64
import binascii
import hashlib
import json
import secrets
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import make_url

from utils import metrics

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
ACTIVE_JOB_STATUSES = ("queued", "processing")
ENDED_JOB_STATUSES = ("completed", "failed", "cancelled")


def utcnow():
    return datetime.now(timezone.utc)


class UTCDateTime(sa.TypeDecorator):
    """Aware UTC datetimes in and out, also on SQLite (which stores them naive)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value


# Money as numeric in the database, float in Python (SQLite has no decimal type).
USD = sa.Numeric(14, 6, asdecimal=False)

metadata = sa.MetaData()

api_keys = sa.Table(
    "api_keys", metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("key_hash", sa.Text, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("revoked_at", UTCDateTime),
)

jobs = sa.Table(
    "scrape_jobs", metadata,
    sa.Column("job_id", sa.Uuid(as_uuid=False), primary_key=True),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("target_gender", sa.Text, nullable=False),
    sa.Column("min_confidence", sa.Float, nullable=False),
    sa.Column("accounts_count", sa.Integer, nullable=False),
    sa.Column("per_account_limit", sa.Integer, nullable=False),
    sa.Column("total_scrape_count", sa.BigInteger, nullable=False),
    sa.Column("total_batches", sa.Integer, nullable=False),
    sa.Column("batches_done", sa.Integer, nullable=False, default=0),
    sa.Column("batches_failed", sa.Integer, nullable=False, default=0),
    sa.Column("profiles_scraped", sa.BigInteger, nullable=False, default=0),
    sa.Column("profiles_kept", sa.BigInteger, nullable=False, default=0),
    sa.Column("male_count", sa.BigInteger, nullable=False, default=0),
    sa.Column("female_count", sa.BigInteger, nullable=False, default=0),
    sa.Column("unknown_count", sa.BigInteger, nullable=False, default=0),
    sa.Column("error_message", sa.Text),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("completed_at", UTCDateTime),
    sa.Column("api_key_id", sa.BigInteger, sa.ForeignKey("api_keys.id")),
    sa.Column("max_cost_usd", USD),
    sa.Column("cost_usd", USD, nullable=False, default=0),
    sa.Column("budget_exhausted", sa.Boolean, nullable=False, default=False),
    sa.Column("callback_url", sa.Text),
    sa.Column("callback_delivered_at", UTCDateTime),
    sa.Column("callback_error", sa.Text),
)

batches = sa.Table(
    "scrape_batches", metadata,
    sa.Column("job_id", sa.Uuid(as_uuid=False), sa.ForeignKey("scrape_jobs.job_id"), primary_key=True),
    sa.Column("batch_index", sa.Integer, primary_key=True),
    sa.Column("accounts", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False, default="queued"),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("lease_expires_at", UTCDateTime),
    sa.Column("apify_run_id", sa.Text),
    sa.Column("profiles_scraped", sa.Integer, nullable=False, default=0),
    sa.Column("cost_usd", USD, nullable=False, default=0),
    sa.Column("error_message", sa.Text),
    sa.Column("started_at", UTCDateTime),
    sa.Column("finished_at", UTCDateTime),
)

results = sa.Table(
    "scrape_results", metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("job_id", sa.Uuid(as_uuid=False), sa.ForeignKey("scrape_jobs.job_id"), nullable=False),
    sa.Column("profile_id", sa.Text, nullable=False),
    sa.Column("username", sa.Text, nullable=False),
    sa.Column("full_name", sa.Text, nullable=False),
    sa.Column("gender", sa.Text, nullable=False),
    sa.Column("gender_confidence", sa.Float, nullable=False),
    sa.Column("is_private", sa.Boolean),
    sa.Column("is_verified", sa.Boolean),
    sa.Column("profile_pic_url", sa.Text),
    sa.Column("source_accounts", sa.Text, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
)


# -- engine and migrations ---------------------------------------------------------------

def database_url(settings):
    """The SQLAlchemy URL: psycopg 3 for Postgres, a file under the instance folder by default."""
    url = settings.database_url
    if not url:
        Path(settings.instance_path).mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{Path(settings.instance_path) / 'followsift.db'}"
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def make_engine(settings, pool_size=2):
    url = make_url(database_url(settings))
    if url.get_backend_name() == "sqlite":
        engine = sa.create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    # Supabase's transaction pooler (port 6543) cannot hold prepared statements.
    connect_args = {"prepare_threshold": None} if url.port == 6543 else {}
    return sa.create_engine(
        url, pool_size=pool_size, max_overflow=2, pool_pre_ping=True, connect_args=connect_args
    )


def _sqlite_pragmas(dbapi_connection, _record):
    # WAL lets the web process read while a worker writes; foreign keys give ON DELETE CASCADE.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def migrate(engine):
    """Apply the dialect's SQL files in `migrations/` that have not run yet; return their names."""
    folder = MIGRATIONS / ("sqlite" if engine.dialect.name == "sqlite" else "postgresql")
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "create table if not exists schema_migrations "
            "(version text primary key, applied_at text not null)"
        )
        done = set(conn.exec_driver_sql("select version from schema_migrations").scalars())
    applied = []
    for path in sorted(folder.glob("*.sql")):
        if path.name in done:
            continue
        _run_script(engine, path.read_text())
        with engine.begin() as conn:
            conn.exec_driver_sql(
                "insert into schema_migrations (version, applied_at) values (?, ?)"
                if engine.dialect.name == "sqlite"
                else "insert into schema_migrations (version, applied_at) values (%s, %s)",
                (path.name, utcnow().isoformat()),
            )
        applied.append(path.name)
    return applied


def _run_script(engine, sql):
    raw = engine.raw_connection()
    try:
        if engine.dialect.name == "sqlite":
            raw.executescript(sql)
        else:
            raw.cursor().execute(sql)
        raw.commit()
    finally:
        raw.close()


# -- API keys ------------------------------------------------------------------------------

def _hash_key(key):
    # Keys are 256-bit random strings, so a fast hash suffices: nothing to brute-force.
    return hashlib.sha256(key.encode()).hexdigest()


def create_api_key(engine, name):
    """A new key for `name`; it is returned once and only its hash is stored."""
    key = "fs_" + secrets.token_urlsafe(32)
    with engine.begin() as conn:
        conn.execute(api_keys.insert().values(name=name, key_hash=_hash_key(key), created_at=utcnow()))
    return key


def revoke_api_key(engine, name):
    """Revoke the live key called `name`; False when there is none."""
    with engine.begin() as conn:
        return bool(conn.execute(
            api_keys.update().where(api_keys.c.name == name, api_keys.c.revoked_at.is_(None))
            .values(revoked_at=utcnow())
        ).rowcount)


def api_key_id(engine, key):
    """The id of the live key `key`, or None."""
    with engine.connect() as conn:
        return conn.execute(
            sa.select(api_keys.c.id)
            .where(api_keys.c.key_hash == _hash_key(key), api_keys.c.revoked_at.is_(None))
        ).scalar()


# -- jobs ----------------------------------------------------------------------------------

def create_job(engine, *, api_key_id, accounts, target_gender, min_confidence, total_scrape_count,
               per_account_limit, batch_size, max_cost_usd=None, callback_url=None):
    """Write the job row and one row per batch of `batch_size` accounts, in one transaction."""
    job_id = str(uuid.uuid4())
    now = utcnow()
    account_batches = [accounts[i:i + batch_size] for i in range(0, len(accounts), batch_size)]
    with engine.begin() as conn:
        conn.execute(jobs.insert().values(
            job_id=job_id, api_key_id=api_key_id, status="queued", target_gender=target_gender,
            min_confidence=min_confidence,
            accounts_count=len(accounts), per_account_limit=per_account_limit,
            total_scrape_count=total_scrape_count, total_batches=len(account_batches),
            max_cost_usd=max_cost_usd, callback_url=callback_url, created_at=now, updated_at=now,
        ))
        conn.execute(batches.insert(), [
            {"job_id": job_id, "batch_index": index, "accounts": json.dumps(chunk)}
            for index, chunk in enumerate(account_batches)
        ])
    return job_id, len(account_batches)


def delete_job(engine, job_id):
    """Delete the job, its batches and its results; returns the Apify runs still going."""
    with engine.begin() as conn:
        running = conn.execute(
            sa.select(batches.c.apify_run_id)
            .where(batches.c.job_id == job_id, batches.c.status == "running", batches.c.apify_run_id.is_not(None))
        ).scalars().all()
        for table in (results, batches, jobs):
            conn.execute(table.delete().where(table.c.job_id == job_id))
    return running


def expired_job_ids(engine, older_than):
    with engine.connect() as conn:
        return conn.execute(sa.select(jobs.c.job_id).where(jobs.c.created_at < older_than)).scalars().all()


def get_job(engine, job_id, api_key_id=None):
    """The job row as a dict, or None (also for a string that is not a UUID).

    With `api_key_id`, only a job that key created is found.
    """
    if not _is_uuid(job_id):
        return None
    query = jobs.select().where(jobs.c.job_id == job_id)
    if api_key_id is not None:
        query = query.where(jobs.c.api_key_id == api_key_id)
    with engine.connect() as conn:
        row = conn.execute(query).mappings().first()
    return dict(row) if row else None


def list_jobs(engine, api_key_id, limit, *, before=None):
    """A key's jobs, newest first: (jobs, next_cursor), paged by keyset on (created_at, job_id).

    `before` is a decoded job cursor; next_cursor is None on the last page.
    """
    j = jobs.c
    query = jobs.select().order_by(j.created_at.desc(), j.job_id.desc()).limit(limit + 1)
    query = query.where(j.api_key_id == api_key_id) if api_key_id is not None else query
    if before is not None:
        created_at, job_id = before
        query = query.where(sa.or_(j.created_at < created_at,
                                   sa.and_(j.created_at == created_at, j.job_id < job_id)))
    with engine.connect() as conn:
        rows = [dict(row) for row in conn.execute(query).mappings()]
    next_cursor = encode_job_cursor(rows[limit - 1]) if len(rows) > limit else None
    return rows[:limit], next_cursor


def encode_job_cursor(job):
    return _encode_token("j", f"{job['created_at'].isoformat()}|{job['job_id']}")


def decode_job_cursor(cursor):
    """(created_at, job_id) a jobs cursor points before; ValueError for anything we did not issue."""
    created_at, _, job_id = _decode_token("j", cursor).partition("|")
    if not _is_uuid(job_id):
        raise ValueError("malformed cursor")
    try:
        return datetime.fromisoformat(created_at), job_id
    except ValueError:
        raise ValueError("malformed cursor") from None


def queued_batch_indexes(engine, job_id):
    with engine.connect() as conn:
        return conn.execute(
            sa.select(batches.c.batch_index)
            .where(batches.c.job_id == job_id, batches.c.status == "queued")
            .order_by(batches.c.batch_index)
        ).scalars().all()


def fail_job(engine, job_id, message):
    """End an active job as failed and cancel its batches that have not started."""
    return stop_job(engine, job_id, "failed", message)


def cancel_job(engine, job_id):
    return stop_job(engine, job_id, "cancelled", "Cancelled on request.")


def stop_job(engine, job_id, status, message):
    """End an active job with `status`; its queued batches are cancelled and never start.

    Running batches notice at their next heartbeat and abort their Apify runs.
    Returns False when the job was not active.
    """
    now = utcnow()
    with engine.begin() as conn:
        # Batch rows before the job row: the lock order claim_batch and end_batch use.
        conn.execute(
            batches.update()
            .where(batches.c.job_id == job_id, batches.c.status == "queued")
            .values(status="cancelled", finished_at=now)
        )
        failed = conn.execute(
            jobs.update()
            .where(jobs.c.job_id == job_id, jobs.c.status.in_(ACTIVE_JOB_STATUSES))
            .values(status=status, error_message=message, updated_at=now, completed_at=now)
        ).rowcount
    return bool(failed)


# -- batches -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Claim:
    """A batch leased to one task execution; `attempt` fences out every other execution."""

    job_id: str
    batch_index: int
    attempt: int
    accounts: list
    apify_run_id: str | None
    target_gender: str
    min_confidence: float
    per_account_limit: int


def claim_batch(engine, job_id, batch_index, lease_seconds, resume_attempt=None):
    """Lease a batch that is queued, whose lease expired, or that this task's retry held.

    Returns a `Claim`, or None when the batch is not for us (finished, held by a live
    lease elsewhere, or its job is no longer active).
    """
    now = utcnow()
    b = batches.c
    claimable = sa.or_(
        b.status == "queued",
        sa.and_(b.status == "running", b.lease_expires_at < now),
        sa.and_(b.status == "running", b.attempts == (resume_attempt or -1)),
    )
    with engine.begin() as conn:
        row = conn.execute(
            batches.update()
            .where(b.job_id == job_id, b.batch_index == batch_index, claimable)
            .where(sa.exists().where(jobs.c.job_id == job_id, jobs.c.status.in_(ACTIVE_JOB_STATUSES)))
            .values(
                status="running", attempts=b.attempts + 1, lease_expires_at=now + timedelta(seconds=lease_seconds),
                started_at=sa.func.coalesce(b.started_at, now), error_message=None,
            )
            .returning(b.attempts, b.accounts, b.apify_run_id)
        ).first()
        if row is None:
            return None
        job = conn.execute(
            jobs.update()
            .where(jobs.c.job_id == job_id)
            .values(status=sa.case((jobs.c.status == "queued", "processing"), else_=jobs.c.status), updated_at=now)
            .returning(jobs.c.target_gender, jobs.c.min_confidence, jobs.c.per_account_limit)
        ).first()
    return Claim(job_id, batch_index, row.attempts, json.loads(row.accounts), row.apify_run_id,
                 job.target_gender, job.min_confidence, job.per_account_limit)


def lease_left(engine, job_id, batch_index):
    """Seconds until a running batch of an active job may be claimed again; None otherwise."""
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(batches.c.lease_expires_at)
            .join(jobs, jobs.c.job_id == batches.c.job_id)
            .where(batches.c.job_id == job_id, batches.c.batch_index == batch_index,
                   batches.c.status == "running", jobs.c.status.in_(ACTIVE_JOB_STATUSES))
        ).first()
    if row is None or row.lease_expires_at is None:
        return None
    return max(0.0, (row.lease_expires_at - utcnow()).total_seconds())


def _held(claim):
    b = batches.c
    return sa.and_(
        b.job_id == claim.job_id, b.batch_index == claim.batch_index,
        b.status == "running", b.attempts == claim.attempt,
    )


def renew_lease(engine, claim, lease_seconds):
    """Extend the lease and mark the job as moving; False when the batch was taken over
    or its job stopped."""
    now = utcnow()
    with engine.begin() as conn:
        renewed = conn.execute(
            batches.update().where(_held(claim)).values(lease_expires_at=now + timedelta(seconds=lease_seconds))
        ).rowcount
        if not renewed:
            return False
        return bool(conn.execute(
            jobs.update()
            .where(jobs.c.job_id == claim.job_id, jobs.c.status.in_(ACTIVE_JOB_STATUSES))
            .values(updated_at=now)
        ).rowcount)


def record_run(engine, claim, run_id):
    """Remember the batch's Apify run, so a redelivered batch resumes it instead of paying again."""
    with engine.begin() as conn:
        conn.execute(batches.update().where(_held(claim)).values(apify_run_id=run_id))


def requeue_expired_batches(engine):
    """Hand back to the queue every running batch of an active job whose lease ran out.

    Its holder died or hung without renewing; the attempt number fences it out if it
    comes back. Returns the (job_id, batch_index) pairs to publish again.
    """
    now = utcnow()
    b = batches.c
    with engine.begin() as conn:
        return conn.execute(
            batches.update()
            .where(b.status == "running", b.lease_expires_at < now)
            .where(sa.exists().where(jobs.c.job_id == b.job_id, jobs.c.status.in_(ACTIVE_JOB_STATUSES)))
            .values(status="queued", lease_expires_at=None)
            .returning(b.job_id, b.batch_index)
        ).all()


def stalled_queued_batches(engine, stalled_seconds):
    """Queued batches of active jobs, if no active job has moved for `stalled_seconds`.

    Workers touch their job's `updated_at` whenever they claim, store or end a batch, so
    a long silence while batches wait means their messages are gone (Redis lost them).
    The jobs are touched here, so the same batches are published again only after
    another silence as long.
    """
    now = utcnow()
    with engine.begin() as conn:
        last_move = conn.execute(
            sa.select(sa.func.max(jobs.c.updated_at)).where(jobs.c.status.in_(ACTIVE_JOB_STATUSES))
        ).scalar()
        if last_move is None or last_move > now - timedelta(seconds=stalled_seconds):
            return []
        rows = conn.execute(
            sa.select(batches.c.job_id, batches.c.batch_index)
            .join(jobs, jobs.c.job_id == batches.c.job_id)
            .where(batches.c.status == "queued", jobs.c.status.in_(ACTIVE_JOB_STATUSES))
            .order_by(batches.c.job_id, batches.c.batch_index)
        ).all()
        conn.execute(jobs.update().where(jobs.c.status.in_(ACTIVE_JOB_STATUSES)).values(updated_at=now))
    return rows


def batch_run_id(engine, job_id, batch_index):
    with engine.connect() as conn:
        return conn.execute(
            sa.select(batches.c.apify_run_id)
            .where(batches.c.job_id == job_id, batches.c.batch_index == batch_index)
        ).scalar()


def cancel_batch(engine, claim):
    """Close a batch whose job ended while it ran."""
    with engine.begin() as conn:
        conn.execute(batches.update().where(_held(claim)).values(
            status="cancelled", finished_at=utcnow(), lease_expires_at=None,
        ))


def release_batch(engine, claim, error_message, forget_run, run_cost_usd=0.0):
    """Hand the batch back to the queue before a retry.

    A run that is forgotten (it failed) was still paid for: its `run_cost_usd` stays on
    the batch and is rolled into the job when the batch ends.
    """
    values = {"status": "queued", "lease_expires_at": None, "error_message": error_message}
    if forget_run:
        values.update(apify_run_id=None, cost_usd=batches.c.cost_usd + run_cost_usd)
    with engine.begin() as conn:
        conn.execute(batches.update().where(_held(claim)).values(**values))


def run_budget(engine, job_id, min_run_usd):
    """How much the next Apify run of a job may charge: None for a job without a budget.

    A run gets its share of the budget (maxCostUsd / total batches), never more than what
    is left: the budget minus the usage recorded on the job's batches (ended ones, and runs
    that failed and were retried) minus a share for each run still going, which may yet
    charge that much. Returns 0 when what is left is below `min_run_usd` (the start fee
    of a run), i.e. the budget is spent.
    """
    b = batches.c
    with engine.connect() as conn:
        job = conn.execute(
            sa.select(jobs.c.max_cost_usd, jobs.c.total_batches).where(jobs.c.job_id == job_id)
        ).first()
        if job is None or job.max_cost_usd is None:
            return None
        spent, running = conn.execute(
            sa.select(sa.func.coalesce(sa.func.sum(b.cost_usd), 0),
                      sa.func.count().filter(b.status == "running", b.apify_run_id.is_not(None)))
            .where(b.job_id == job_id)
        ).one()
    share = float(job.max_cost_usd) / job.total_batches
    left = float(job.max_cost_usd) - float(spent) - running * share
    if left < min_run_usd or left <= 0:
        return 0.0
    return min(share, left)


@contextmanager
def callback_to_send(engine, job_id):
    """Yield (job, record) for an ended job whose callback is still to be sent, else (None, None).

    The job row stays locked (FOR UPDATE SKIP LOCKED) until the block ends, so a duplicate
    message finds nothing to send while one sender is at it; `record()` marks the callback
    delivered, `record(error=...)` gives up on it, both committed when the block ends.
    An exception in the block (a retry) rolls back and frees the row.
    """
    j = jobs.c
    with engine.begin() as conn:
        row = conn.execute(
            jobs.select().where(
                j.job_id == job_id, j.status.in_(ENDED_JOB_STATUSES), j.callback_url.is_not(None),
                j.callback_delivered_at.is_(None), j.callback_error.is_(None),
            ).with_for_update(skip_locked=True)
        ).mappings().first()
        if row is None:
            yield None, None
            return

        def record(error=None):
            conn.execute(jobs.update().where(j.job_id == job_id).values(
                callback_delivered_at=None if error else utcnow(), callback_error=error,
            ))

        yield dict(row), record


def mark_budget_exhausted(engine, job_id):
    with engine.begin() as conn:
        conn.execute(jobs.update().where(jobs.c.job_id == job_id).values(budget_exhausted=True))


@dataclass
class BatchTally:
    """What a batch scraped, counted once when the batch ends."""

    scraped: int = 0
    male: int = 0
    female: int = 0
    unknown: int = 0
    cost_usd: float = 0.0  # the Apify usage of the batch's last run


def end_batch(engine, claim, tally, error_message=None):
    """Close the batch and roll its counts into the job, exactly once.

    The batch's conditional UPDATE and the job's counter UPDATE share one transaction:
    only the execution that still holds the batch moves the counters, and the execution
    that ends the last batch ends the job. Returns the job's status afterwards, or None
    when this execution no longer held the batch.
    """
    now = utcnow()
    failed = error_message is not None
    with engine.begin() as conn:
        ended = conn.execute(
            batches.update().where(_held(claim)).values(
                status="failed" if failed else "succeeded", finished_at=now, lease_expires_at=None,
                profiles_scraped=tally.scraped, error_message=error_message,
                cost_usd=batches.c.cost_usd + tally.cost_usd,
            ).returning(batches.c.cost_usd)
        ).scalar()
        if ended is None:
            return None
        metrics.batch_ended(failed, tally.scraped)
        j = jobs.c
        job = conn.execute(
            jobs.update().where(j.job_id == claim.job_id).values(
                cost_usd=j.cost_usd + ended,
                batches_done=j.batches_done + 1, batches_failed=j.batches_failed + int(failed),
                profiles_scraped=j.profiles_scraped + tally.scraped, male_count=j.male_count + tally.male,
                female_count=j.female_count + tally.female, unknown_count=j.unknown_count + tally.unknown,
                updated_at=now,
            ).returning(j.status, j.batches_done, j.batches_failed, j.total_batches)
        ).first()
        if job.batches_done < job.total_batches or job.status not in ACTIVE_JOB_STATUSES:
            return job.status
        status = "failed" if job.batches_failed == job.total_batches else "completed"
        conn.execute(jobs.update().where(j.job_id == claim.job_id).values(
            status=status, completed_at=now,
            error_message=error_message if status == "failed" else None,
        ))
        return status


# -- results -------------------------------------------------------------------------------

RESULT_COLUMNS = ("profile_id", "username", "full_name", "gender", "gender_confidence",
                  "is_private", "is_verified", "profile_pic_url", "source_accounts")


def encode_cursor(last_id):
    return _encode_token("r", str(last_id))


def decode_cursor(cursor):
    """The result id a cursor points after; ValueError for anything we did not issue."""
    number = _decode_token("r", cursor)
    if not number.isdigit() or len(number) > 19:
        raise ValueError("malformed cursor")
    return int(number)


def _encode_token(kind, text):
    """An opaque cursor: `kind:text`, base64url without padding."""
    return base64.urlsafe_b64encode(f"{kind}:{text}".encode()).decode().rstrip("=")


def _decode_token(kind, cursor):
    """The text of a cursor of this kind; ValueError for anything else."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise ValueError("malformed cursor") from None
    prefix, _, rest = text.partition(":")
    if prefix != kind:
        raise ValueError("malformed cursor")
    return rest


def result_page(engine, job_id, limit, *, after_id=None, offset=0):
    """One page of a job's results in insertion order, by keyset (`after_id`) or by offset.

    Returns (profiles, next_cursor); next_cursor is None on the last page.
    """
    query = (
        sa.select(results.c.id, *(results.c[name] for name in RESULT_COLUMNS))
        .where(results.c.job_id == job_id)
        .order_by(results.c.job_id, results.c.id)
        .limit(limit + 1)
    )
    if after_id is not None:
        query = query.where(results.c.id > after_id)
    elif offset:
        query = query.offset(offset)
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            # Walk the (job_id, id) index in order. Until statistics know a big job, the
            # planner guesses it is small and would rather fetch all of its rows and sort them.
            conn.exec_driver_sql("SET LOCAL enable_bitmapscan = off")
        rows = conn.execute(query).all()
    page = [_profile(row) for row in rows[:limit]]
    next_cursor = encode_cursor(rows[limit - 1].id) if len(rows) > limit else None
    return page, next_cursor


def _profile(row):
    # By position: a Row's attribute lookup costs more than the rest of a page (bench/results_pages.py).
    profile = dict(zip(RESULT_COLUMNS, row[1:]))
    profile["source_accounts"] = [s for s in profile["source_accounts"].split(",") if s]
    return profile


def _is_uuid(value):
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True
