"""Batches (table scrape_batches): leasing a batch to one task execution, its Apify run, its
budget, and ending it into its job's counters exactly once."""
import json
from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa

from utils import metrics
from utils.store.schema import (ACTIVE_JOB_STATUSES, BatchStatus as B, JobStatus, batches, jobs, utcnow)

def queued_batch_indexes(engine, job_id):
    with engine.connect() as conn:
        return conn.execute(
            sa.select(batches.c.batch_index)
            .where(batches.c.job_id == job_id, batches.c.status == B.QUEUED)
            .order_by(batches.c.batch_index)
        ).scalars().all()




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
        b.status == B.QUEUED,
        sa.and_(b.status == B.RUNNING, b.lease_expires_at < now),
        sa.and_(b.status == B.RUNNING, b.attempts == (resume_attempt or -1)),
    )
    with engine.begin() as conn:
        row = conn.execute(
            batches.update()
            .where(b.job_id == job_id, b.batch_index == batch_index, claimable)
            .where(sa.exists().where(jobs.c.job_id == job_id, jobs.c.status.in_(ACTIVE_JOB_STATUSES)))
            .values(
                status=B.RUNNING, attempts=b.attempts + 1, lease_expires_at=now + timedelta(seconds=lease_seconds),
                started_at=sa.func.coalesce(b.started_at, now), error_message=None,
            )
            .returning(b.attempts, b.accounts, b.apify_run_id)
        ).first()
        if row is None:
            return None
        job = conn.execute(
            jobs.update()
            .where(jobs.c.job_id == job_id)
            .values(status=sa.case((jobs.c.status == JobStatus.QUEUED, JobStatus.PROCESSING), else_=jobs.c.status), updated_at=now)
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
                   batches.c.status == B.RUNNING, jobs.c.status.in_(ACTIVE_JOB_STATUSES))
        ).first()
    if row is None or row.lease_expires_at is None:
        return None
    return max(0.0, (row.lease_expires_at - utcnow()).total_seconds())


def _held(claim):
    b = batches.c
    return sa.and_(
        b.job_id == claim.job_id, b.batch_index == claim.batch_index,
        b.status == B.RUNNING, b.attempts == claim.attempt,
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
            .where(b.status == B.RUNNING, b.lease_expires_at < now)
            .where(sa.exists().where(jobs.c.job_id == b.job_id, jobs.c.status.in_(ACTIVE_JOB_STATUSES)))
            .values(status=B.QUEUED, lease_expires_at=None)
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
            .where(batches.c.status == B.QUEUED, jobs.c.status.in_(ACTIVE_JOB_STATUSES))
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
            status=B.CANCELLED, finished_at=utcnow(), lease_expires_at=None,
        ))


def release_batch(engine, claim, error_message, forget_run, run_cost_usd=0.0):
    """Hand the batch back to the queue before a retry.

    A run that is forgotten (it failed) was still paid for: its `run_cost_usd` stays on
    the batch and is rolled into the job when the batch ends.
    """
    values = {"status": B.QUEUED, "lease_expires_at": None, "error_message": error_message}
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
                      sa.func.count().filter(b.status == B.RUNNING, b.apify_run_id.is_not(None)))
            .where(b.job_id == job_id)
        ).one()
    share = float(job.max_cost_usd) / job.total_batches
    left = float(job.max_cost_usd) - float(spent) - running * share
    if left < min_run_usd or left <= 0:
        return 0.0
    return min(share, left)


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
                status=B.FAILED if failed else B.SUCCEEDED, finished_at=now, lease_expires_at=None,
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
        status = JobStatus.FAILED if job.batches_failed == job.total_batches else JobStatus.COMPLETED
        conn.execute(jobs.update().where(j.job_id == claim.job_id).values(
            status=status, completed_at=now,
            error_message=error_message if status == JobStatus.FAILED else None,
        ))
        return status


