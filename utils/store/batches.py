"""Batches (table scrape_batches): the life of one Apify run, from the queue to the job's counters.

A task holds a batch only while it talks to Apify or Postgres about it: `claim_start` leases
a queued batch (the governor and fair share decide which), `record_run` hands it to Apify;
`mark_finished` notes that Apify ended the run; `claim_store` leases it again to stream the
dataset, chunk by chunk (`store_chunk`), and `end_batch` rolls it into its job exactly once.
A batch of lists (accounts served from stored follower lists) skips Apify: `claim_serve`
leases it once one of its lists has ended, and it is stored and ended the same way.
Every change is a conditional UPDATE fenced by the attempt number, so a redelivered message,
a second worker or a dead worker's late return can never move a batch twice.

This module is longer than most: it is one aggregate's whole state machine, kept together so
each transition can be read beside the others.
"""
import hashlib
import json
from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa

from utils import metrics
from utils.store import accounts as store_accounts, capacity, lists as store_lists, results
from utils.store.schema import (ACTIVE_JOB_STATUSES, IN_FLIGHT, MOVING, UNHELD, AccountStatus, BatchSource,
                                BatchStatus as B, JobStatus, accounts, batches, follower_lists, jobs, utcnow)

b = batches.c


@dataclass(frozen=True)
class Claim:
    """A batch leased to one task execution in `status`; `attempt` fences out every other one."""

    job_id: str
    batch_index: int
    attempt: int
    status: str
    accounts: list  # of this run: a continuation run has one
    apify_run_id: str | None
    items_read: int
    failures: int
    target_gender: str
    min_confidence: float
    per_account_limit: int
    continuation: str | None = None  # the token or cursor a continuation run starts from


@dataclass
class Tally:
    """What a chunk scraped: added to the batch as it is stored, to the job when the batch ends."""

    scraped: int = 0
    male: int = 0
    female: int = 0
    unknown: int = 0
    kept: int = 0


class LeaseLost(Exception):
    """The batch is no longer this execution's: another holds it, or its job stopped."""


def hash_token(token):
    return hashlib.sha256(token.encode()).hexdigest()


def _active_job(job_id=None):
    return sa.exists().where(jobs.c.job_id == (b.job_id if job_id is None else job_id),
                             jobs.c.status.in_(ACTIVE_JOB_STATUSES))


def _held(claim):
    return sa.and_(b.job_id == claim.job_id, b.batch_index == claim.batch_index,
                   b.status == claim.status, b.attempts == claim.attempt)


def _lease(now, seconds):
    return now + timedelta(seconds=seconds)


def group(names, batch_size):
    """`names` cut into batches of `batch_size` accounts (the last one may be smaller)."""
    return [names[i:i + batch_size] for i in range(0, len(names), batch_size)]


def insert(conn, job_id, first_index, source, groups):
    """Write a batch per group of account names, numbered from `first_index`."""
    if groups:
        conn.execute(batches.insert(), [
            {"job_id": job_id, "batch_index": first_index + i, "accounts": json.dumps(names), "source": source}
            for i, names in enumerate(groups)])


def _due(now):
    """Queued batches of runs due to start."""
    return sa.and_(b.status == B.QUEUED, b.source == BatchSource.APIFY,
                   sa.or_(b.not_before.is_(None), b.not_before <= now))


def _claim(conn, where, status, lease_seconds):
    """Lease the batch matching `where` as `status`; the `Claim`, or None."""
    now = utcnow()
    row = conn.execute(
        batches.update().where(where).where(_active_job()).values(
            status=status, attempts=b.attempts + 1, lease_expires_at=_lease(now, lease_seconds),
            started_at=sa.func.coalesce(b.started_at, now),
        ).returning(b.job_id, b.batch_index, b.attempts, b.run_accounts, b.apify_run_id, b.items_read, b.failures)
    ).first()
    if row is None:
        return None
    if status == B.STARTING:
        run_accounts, continuation = store_accounts.next_run(conn, row.job_id, row.batch_index)
    else:
        run_accounts, continuation = json.loads(row.run_accounts or "[]"), None
    job = conn.execute(
        jobs.update().where(jobs.c.job_id == row.job_id)
        .values(status=sa.case((jobs.c.status == JobStatus.QUEUED, JobStatus.PROCESSING), else_=jobs.c.status),
                updated_at=now)
        .returning(jobs.c.target_gender, jobs.c.min_confidence, jobs.c.per_account_limit)
    ).first()
    return Claim(row.job_id, row.batch_index, row.attempts, status, run_accounts, row.apify_run_id,
                 row.items_read, row.failures, job.target_gender, job.min_confidence, job.per_account_limit,
                 continuation)


# -- starting a run ----------------------------------------------------------------------------

def claim_start(engine, settings):
    """Lease the next batch to start, if the account has room: (Claim or None, Capacity).

    When runs are scarce the next start goes to the active job with the fewest runs in flight,
    then to the API key with the fewest, then to the oldest job.
    """
    now = utcnow()
    with engine.begin() as conn:
        room = capacity.lock(conn, settings)
        if room.free == 0:
            return None, room
        for job_id in _fair_order(conn, now):
            first = sa.select(sa.func.min(b.batch_index)).where(b.job_id == job_id, _due(now)).scalar_subquery()
            claim = _claim(conn, sa.and_(b.job_id == job_id, b.batch_index == first, _due(now)),
                           B.STARTING, settings.batch_lease_seconds)
            if claim is not None:
                return claim, room
    return None, room


def _fair_order(conn, now):
    """Active jobs with a batch due to start, fewest runs in flight (by job, then key) first."""
    waiting = conn.execute(
        sa.select(jobs.c.job_id, jobs.c.api_key_id, jobs.c.created_at)
        .where(jobs.c.status.in_(ACTIVE_JOB_STATUSES), sa.exists().where(b.job_id == jobs.c.job_id, _due(now)))
    ).all()
    if not waiting:
        return []
    flying = conn.execute(
        sa.select(b.job_id, jobs.c.api_key_id, sa.func.count())
        .join(jobs, jobs.c.job_id == b.job_id).where(b.status.in_(IN_FLIGHT))
        .group_by(b.job_id, jobs.c.api_key_id)
    ).all()
    by_job = {job_id: count for job_id, _, count in flying}
    by_key = {}
    for _, key, count in flying:
        by_key[key] = by_key.get(key, 0) + count
    waiting.sort(key=lambda job: (by_job.get(job.job_id, 0), by_key.get(job.api_key_id, 0), job.created_at))
    return [job.job_id for job in waiting]


def record_run(engine, claim, run_id, webhook_token=None):
    """Hand the started run to Apify's care (starting -> running); False when the batch is no
    longer ours or its job stopped meanwhile (the caller aborts the run)."""
    now = utcnow()
    with engine.begin() as conn:
        _lock_job(conn, claim.job_id)
        store_accounts.start_run(conn, claim.job_id, claim.accounts)
        return bool(conn.execute(
            batches.update().where(_held(claim), _active_job(claim.job_id)).values(
                status=B.RUNNING, apify_run_id=run_id, run_status=None, run_started_at=now, run_checked_at=now,
                run_accounts=json.dumps(claim.accounts),
                lease_expires_at=None, webhook_token_hash=webhook_token and hash_token(webhook_token),
            )
        ).rowcount)


def requeue(engine, claim, *, delay_seconds, error=None, failure=False, run_cost_usd=0.0):
    """Put the batch back in the queue for `delay_seconds` (a refused start, a fault, a failed
    run). A failed run is forgotten but stays paid for: its cost stays on the batch."""
    with engine.begin() as conn:
        _back_or_cancelled(conn, claim, batches.update().where(_held(claim), _active_job(claim.job_id)).values(
            status=B.QUEUED, lease_expires_at=None, not_before=_lease(utcnow(), delay_seconds),
            failures=b.failures + int(failure), error_message=error, apify_run_id=None, run_status=None,
            webhook_token_hash=None, cost_usd=b.cost_usd + run_cost_usd, items_read=0,
        ))


def _lock_job(conn, job_id):
    """Wait for a stop of the job being committed, so that what follows sees whether it stopped
    (a stop skips batches a task holds, and would otherwise miss one handed back meanwhile)."""
    conn.execute(sa.select(jobs.c.status).where(jobs.c.job_id == job_id).with_for_update(read=True))


def _back_or_cancelled(conn, claim, hand_back):
    """Hand a held batch back with `hand_back` (an UPDATE that requires an active job); when its
    job stopped meanwhile, close the batch instead of leaving it waiting for nobody."""
    _lock_job(conn, claim.job_id)
    if not conn.execute(hand_back).rowcount:
        conn.execute(batches.update().where(_held(claim)).values(
            status=B.CANCELLED, finished_at=utcnow(), lease_expires_at=None))


def run_budget(engine, claim, min_run_usd):
    """How much the claimed batch's run may charge: None for a job without a budget.

    A run gets its share of the budget (maxCostUsd / batches of runs), never more than what
    is left: the budget minus the usage recorded on the job's batches (ended ones, and runs
    that failed and were retried) minus a share for each other run still on its way, which
    may yet charge that much. Returns 0 when what is left is below `min_run_usd` (the start
    fee of a run), i.e. the budget is spent.
    """
    with engine.connect() as conn:
        job = conn.execute(
            sa.select(jobs.c.max_cost_usd).where(jobs.c.job_id == claim.job_id)
        ).first()
        if job is None or job.max_cost_usd is None:
            return None
        spent, moving, runs = conn.execute(
            sa.select(sa.func.coalesce(sa.func.sum(b.cost_usd), 0),
                      sa.func.count().filter(b.status.in_(MOVING), b.batch_index != claim.batch_index),
                      sa.func.count())
            .where(b.job_id == claim.job_id, b.source == BatchSource.APIFY)
        ).one()
    share = float(job.max_cost_usd) / runs
    left = float(job.max_cost_usd) - float(spent) - moving * share
    if left < min_run_usd or left <= 0:
        return 0.0
    return min(share, left)


# -- serving stored lists ------------------------------------------------------------------------

def _servable():
    """Queued batches of lists with an account to serve: its list ended (or was deleted)."""
    l, ac = follower_lists.c, accounts.c
    list_ended = ~sa.exists().where(l.id == ac.list_id, l.status == AccountStatus.PENDING)
    return sa.and_(b.status == B.QUEUED, b.source == BatchSource.LISTS, sa.exists().where(
        ac.job_id == b.job_id, ac.batch_index == b.batch_index, ac.status == AccountStatus.PENDING, list_ended))


def claim_serve(engine, lease_seconds):
    """Lease a batch of lists with an account to serve, oldest job first; the Claim, or None."""
    with engine.begin() as conn:
        due = conn.execute(sa.select(b.job_id, b.batch_index).join(jobs, jobs.c.job_id == b.job_id)
                           .where(_servable(), jobs.c.status.in_(ACTIVE_JOB_STATUSES))
                           .order_by(jobs.c.created_at, b.batch_index).limit(10)).all()
        for job_id, index in due:
            claim = _claim(conn, sa.and_(b.job_id == job_id, b.batch_index == index, b.status == B.QUEUED),
                           B.STORING, lease_seconds)
            if claim is not None:
                return claim
    return None


def serve_due(engine):
    """Whether a batch of lists of an active job has an account to serve."""
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.exists().where(_servable(), _active_job()))).scalar()


def accounts_to_serve(engine, claim):
    """The held batch's accounts still to serve, with their list's state (None: deleted)."""
    l, ac = follower_lists.c, accounts.c
    with engine.connect() as conn:
        return conn.execute(
            sa.select(ac.account, ac.list_id, ac.scraped, ac.requested,
                      l.status.label("list_status"), l.reason.label("list_reason"))
            .select_from(accounts.outerjoin(follower_lists, l.id == ac.list_id))
            .where(ac.job_id == claim.job_id, ac.batch_index == claim.batch_index, ac.status == AccountStatus.PENDING)
            .order_by(ac.account)).all()


def close_served(engine, claim, account, list_status, list_reason):
    """An account's list is served as far as it goes: say how it ended. LeaseLost when the batch
    is not ours any more."""
    with engine.begin() as conn:
        _renew(conn, claim)
        store_accounts.close_served(conn, claim.job_id, account, list_status, list_reason)


def rescrape(engine, claim, names, batch_size, actor_id):
    """The lists these accounts waited for failed or went: this job scrapes them itself, in new
    batches of runs (the job's batch count grows with them). LeaseLost when the batch is not ours."""
    groups = group(names, batch_size)
    with engine.begin() as conn:
        _renew(conn, claim, _active_job(claim.job_id))
        job = conn.execute(jobs.update().where(jobs.c.job_id == claim.job_id)
                           .values(total_batches=jobs.c.total_batches + len(groups))
                           .returning(jobs.c.total_batches, jobs.c.api_key_id)).first()
        store_lists.lock_planning(conn)
        created = store_lists.create(conn, claim.job_id, job.api_key_id, names, claim.per_account_limit, actor_id)
        first = job.total_batches - len(groups)
        insert(conn, claim.job_id, first, BatchSource.APIFY, groups)
        moved = sa.and_(accounts.c.job_id == claim.job_id, accounts.c.account == sa.bindparam("n"))
        conn.execute(accounts.update().where(moved)
                     .values(batch_index=sa.bindparam("i"), list_id=sa.bindparam("lid"), reused=False),
                     [{"n": name, "i": first + i, "lid": created[name]}
                      for i, names_of_batch in enumerate(groups) for name in names_of_batch])


def _renew(conn, claim, *conditions):
    """Check that the batch is still this execution's (and that `conditions` hold), locking it."""
    if not conn.execute(batches.update().where(_held(claim), *conditions)
                        .values(lease_expires_at=b.lease_expires_at)).rowcount:
        raise LeaseLost(f"batch {claim.batch_index} of job {claim.job_id} is no longer held")


# -- the run ended at Apify ----------------------------------------------------------------------

def run_of(engine, job_id, batch_index):
    """(status, apify_run_id, webhook_token_hash) of a batch, or None."""
    with engine.connect() as conn:
        return conn.execute(
            sa.select(b.status, b.apify_run_id, b.webhook_token_hash)
            .where(b.job_id == job_id, b.batch_index == batch_index)
        ).first()


def mark_finished(engine, job_id, batch_index, run_id, run_status):
    """Apify ended the batch's run (running -> finished); False when it was not running that run."""
    with engine.begin() as conn:
        return bool(conn.execute(
            batches.update().where(b.job_id == job_id, b.batch_index == batch_index, b.status == B.RUNNING,
                                   b.apify_run_id == run_id)
            .values(status=B.FINISHED, run_status=run_status, run_checked_at=utcnow())
        ).rowcount)


def runs_to_poll(engine, checked_before, limit):
    """Running batches not asked about since `checked_before`, least recently asked first:
    [(job_id, batch_index, run_id)]."""
    with engine.connect() as conn:
        return conn.execute(
            sa.select(b.job_id, b.batch_index, b.apify_run_id)
            .where(b.status == B.RUNNING, b.run_checked_at < checked_before)
            .order_by(b.run_checked_at).limit(limit)
        ).all()


def mark_checked(engine, runs):
    """The poller asked Apify about these (job_id, batch_index) and they still run."""
    if not runs:
        return
    with engine.begin() as conn:
        conn.execute(batches.update().where(b.job_id == sa.bindparam("j"), b.batch_index == sa.bindparam("i"),
                                            b.status == B.RUNNING).values(run_checked_at=utcnow()),
                     [{"j": job_id, "i": index} for job_id, index in runs])


# -- storing the dataset -------------------------------------------------------------------------

def claim_store(engine, job_id, batch_index, lease_seconds):
    """Lease a finished batch (or one whose storer's lease ran out) to store its run's dataset."""
    now = utcnow()
    claimable = sa.or_(b.status == B.FINISHED, sa.and_(b.status == B.STORING, b.lease_expires_at < now))
    with engine.begin() as conn:
        claim = _claim(conn, sa.and_(b.job_id == job_id, b.batch_index == batch_index, claimable),
                       B.STORING, lease_seconds)
        run_status = claim and conn.execute(
            sa.select(b.run_status).where(b.job_id == job_id, b.batch_index == batch_index)).scalar()
    return claim, run_status


def store_chunk(engine, claim, chunk, items_read, lease_seconds):
    """Store one classified chunk (`batch_processor.Chunk`: kept rows, tallies by batch and by
    account, error and cursor rows, followers for the lists) with the dataset offset reached,
    renewing the lease, in one transaction; returns the number of new profiles. A batch of
    lists stores what it serves the same way (how far a list is served is its account's count).
    LeaseLost (nothing written) when the batch is not ours any more."""
    tally = chunk.tally
    with engine.begin() as conn:
        held = conn.execute(batches.update().where(_held(claim), _active_job(claim.job_id)).values(
            lease_expires_at=_lease(utcnow(), lease_seconds), items_read=items_read,
            profiles_scraped=b.profiles_scraped + tally.scraped, male_count=b.male_count + tally.male,
            female_count=b.female_count + tally.female, unknown_count=b.unknown_count + tally.unknown,
        )).rowcount
        if not held:
            raise LeaseLost(f"batch {claim.batch_index} of job {claim.job_id} is no longer held")
        new = results.write_rows(conn, claim.job_id, chunk.rows)
        store_lists.add_followers(conn, claim.job_id, chunk.listed)
        store_accounts.add_chunk(conn, claim.job_id, chunk.by_account, chunk.errors, chunk.cursors)
    metrics.profiles_kept(new)
    return new


def close_run(engine, claim, **run):
    """Say how the run's accounts ended (`store.accounts.close_run`); True when a list goes on
    and the batch needs another run. LeaseLost when the batch is not ours any more."""
    with engine.begin() as conn:
        _renew(conn, claim)
        goes_on = store_accounts.close_run(conn, claim.job_id, claim.batch_index, claim.accounts, **run)
        store_lists.end_scraped(conn, claim.job_id, claim.batch_index)
        return goes_on


def items_read(engine, claim):
    """How many dataset items the batch's current run has delivered (its offset stored)."""
    with engine.connect() as conn:
        return conn.execute(sa.select(b.items_read).where(b.job_id == claim.job_id,
                                                          b.batch_index == claim.batch_index)).scalar()


def release_store(engine, claim, error=None, failure=False):
    """Hand a half-stored batch back (storing -> finished) to be resumed from its offset; its
    run stays, already paid for. `failure` counts a fault towards the batch's retries."""
    with engine.begin() as conn:
        _back_or_cancelled(conn, claim, batches.update().where(_held(claim), _active_job(claim.job_id)).values(
            status=B.FINISHED, lease_expires_at=None, run_checked_at=utcnow(), failures=b.failures + int(failure),
            error_message=error))


def unfinish(engine, claim):
    """The run had not ended after all (an early or forged notice): back to running."""
    with engine.begin() as conn:
        _back_or_cancelled(conn, claim, batches.update().where(_held(claim), _active_job(claim.job_id)).values(
            status=B.RUNNING, lease_expires_at=None, run_status=None, run_checked_at=utcnow()))


def cancel_held(engine, claim):
    """Close a batch whose job ended while this execution held it."""
    with engine.begin() as conn:
        conn.execute(batches.update().where(_held(claim)).values(
            status=B.CANCELLED, finished_at=utcnow(), lease_expires_at=None))


def end_batch(engine, claim, error_message=None, run_cost_usd=0.0):
    """Close the batch and roll its tally into the job, exactly once.

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
                error_message=error_message, cost_usd=b.cost_usd + run_cost_usd, run_cost_usd=run_cost_usd,
            ).returning(b.cost_usd, b.profiles_scraped, b.male_count, b.female_count, b.unknown_count)
        ).first()
        if ended is None:
            return None
        if failed:
            store_accounts.fail_pending(conn, claim.job_id, claim.batch_index, error_message)
            store_lists.end_scraped(conn, claim.job_id, claim.batch_index)
        metrics.batch_ended(failed, ended.profiles_scraped)
        j = jobs.c
        job = conn.execute(
            jobs.update().where(j.job_id == claim.job_id).values(
                cost_usd=j.cost_usd + ended.cost_usd,
                batches_done=j.batches_done + 1, batches_failed=j.batches_failed + int(failed),
                profiles_scraped=j.profiles_scraped + ended.profiles_scraped,
                male_count=j.male_count + ended.male_count, female_count=j.female_count + ended.female_count,
                unknown_count=j.unknown_count + ended.unknown_count, updated_at=now,
            ).returning(j.status, j.batches_done, j.batches_failed, j.total_batches, j.profiles_scraped)
        ).first()
        if job.batches_done < job.total_batches or job.status not in ACTIVE_JOB_STATUSES:
            return job.status
        status = JobStatus.FAILED if job.batches_failed == job.total_batches else JobStatus.COMPLETED
        conn.execute(jobs.update().where(j.job_id == claim.job_id).values(
            status=status, completed_at=now, error_message=_ending_message(conn, claim.job_id, status, job,
                                                                          error_message),
        ))
        return status


def _ending_message(conn, job_id, status, job, error_message):
    """Why a job ended as it did: a failed job's last error; a job that found nobody says why."""
    if status == JobStatus.FAILED:
        return error_message
    if job.profiles_scraped == 0:
        return f"No followers came back: {store_accounts.summary(conn, job_id) or 'every account was empty'}."
    return None


def lease_left(engine, job_id, batch_index):
    """Seconds until a held batch of an active job may be claimed again; None otherwise."""
    with engine.connect() as conn:
        expires = conn.execute(
            sa.select(b.lease_expires_at).where(b.job_id == job_id, b.batch_index == batch_index,
                                                b.status.in_((B.STARTING, B.STORING)), _active_job(job_id))
        ).scalar()
    return None if expires is None else max(0.0, (expires - utcnow()).total_seconds())


# -- what the clock looks after ------------------------------------------------------------------

def reclaim_expired(engine):
    """Batches whose holder died or hung: a start (or a batch of lists) goes back to the queue,
    a store back to finished. Returns the (job_id, batch_index) of the stores, to be published again."""
    now = utcnow()
    expired = sa.and_(b.lease_expires_at < now, _active_job())
    with engine.begin() as conn:
        served = sa.and_(b.status == B.STORING, b.source == BatchSource.LISTS)
        conn.execute(batches.update().where(sa.or_(b.status == B.STARTING, served), expired)
                     .values(status=B.QUEUED, lease_expires_at=None))
        return conn.execute(batches.update().where(b.status == B.STORING, expired)
                            .values(status=B.FINISHED, lease_expires_at=None, run_checked_at=now)
                            .returning(b.job_id, b.batch_index)).all()


def close_stopped(engine):
    """Batches a stopped job left waiting (queued, running or finished): a hand-back whose
    batch UPDATE slipped in after the stop's sweep and before its job UPDATE. Closed as
    cancelled; returns the Apify runs that were still going, to abort."""
    stopped = sa.and_(~_active_job(), b.status.in_(UNHELD))
    with engine.begin() as conn:
        running = conn.execute(sa.select(b.apify_run_id).where(stopped, b.status == B.RUNNING,
                                                               b.apify_run_id.is_not(None))).scalars().all()
        conn.execute(batches.update().where(stopped).values(status=B.CANCELLED, finished_at=utcnow(),
                                                            lease_expires_at=None))
    return running


def finished_unstored(engine, waiting_seconds):
    """Finished batches of active jobs nobody has come to store for `waiting_seconds` (their
    message was lost); touched, so the same ones come back only after as long again."""
    now = utcnow()
    with engine.begin() as conn:
        return conn.execute(
            batches.update().where(b.status == B.FINISHED, b.run_checked_at < now - timedelta(seconds=waiting_seconds),
                                   _active_job())
            .values(run_checked_at=now).returning(b.job_id, b.batch_index)
        ).all()


def start_due(engine):
    """Whether any batch of an active job is due to start."""
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.exists().where(_due(utcnow()), _active_job()))).scalar()


def costs_to_settle(engine, ended_before, limit):
    """Ended batches whose run's usage was read when it may have been preliminary:
    [(job_id, batch_index, run_id)]."""
    with engine.connect() as conn:
        return conn.execute(
            sa.select(b.job_id, b.batch_index, b.apify_run_id)
            .where(b.status.in_((B.SUCCEEDED, B.FAILED)), b.cost_settled.is_(False), b.apify_run_id.is_not(None),
                   b.finished_at < ended_before).limit(limit)
        ).all()


def settle_cost(engine, job_id, batch_index, final_usd):
    """Replace the run's preliminary usage by Apify's final figure (None: keep the one recorded,
    Apify no longer knows the run), on the batch and its job."""
    where = sa.and_(b.job_id == job_id, b.batch_index == batch_index, b.cost_settled.is_(False))
    with engine.begin() as conn:
        recorded = conn.execute(sa.select(b.run_cost_usd).where(where)).scalar()
        final_usd = recorded if final_usd is None else final_usd
        if recorded is None or not conn.execute(batches.update().where(where).values(
                cost_settled=True, cost_usd=b.cost_usd - recorded + final_usd, run_cost_usd=final_usd)).rowcount:
            return
        conn.execute(jobs.update().where(jobs.c.job_id == job_id)
                     .values(cost_usd=jobs.c.cost_usd - recorded + final_usd))


def batch_counts(engine, job_ids):
    """{job_id: {status: count}} of the jobs' batches that are queued or on their way."""
    if not job_ids:
        return {}
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(b.job_id, b.status, sa.func.count())
            .where(b.job_id.in_(job_ids), b.status.in_((B.QUEUED, *MOVING))).group_by(b.job_id, b.status)
        ).all()
    counts = {}
    for job_id, status, count in rows:
        counts.setdefault(job_id, {})[status] = count
    return counts


def moving_runs(engine, job_id):
    """Apify runs of the job that are still going (to abort when it is stopped)."""
    with engine.connect() as conn:
        return conn.execute(sa.select(b.apify_run_id).where(
            b.job_id == job_id, b.status.in_(IN_FLIGHT), b.apify_run_id.is_not(None))).scalars().all()
