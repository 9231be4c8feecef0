"""The batch lifecycle (table scrape_batches): one unit of a job's work, one Apify run of its
accounts at a time (or, for a batch of lists, accounts served from stored follower lists), and
the fault policy: what a fault does to a batch. The only module that writes a batch's status,
lease and tally.

    from                  to                   transition      trigger                              fenced by
    -                     queued               insert          the job is created; a rescrape       -
    queued                starting             claim           the governor has room; fair share    status, job active
    starting              running              record_run      Apify accepted the start             attempt
    running               finished             finish          Apify's webhook, or the poller       the run's id
    finished | storing    storing              claim           a store task (a storing batch only   status, lease
      (lease out)                                              once its holder's lease ran out)
    queued (of lists)     storing              claim           a serve task: a list it waits for    status
                                                               ended, or the wait ran out
    held                  (tally)              add_tally       a chunk stored (or served)           attempt, job active
                                               forget          served accounts scraped after all    attempt
    held                  queued               hand_back       a refused start; a fault before the  attempt
                                                               run (`decide`); a failed run; a list
                                                               that goes on; a serve's slice ended
    storing               finished | running   hand_back       a store's slice ended, or a fault    attempt
                                                               while storing; told it ended early
    held                  cancelled            hand_back       any of the above, its job stopped    attempt
    held                  succeeded | failed   end             all stored; given up (`decide`)      attempt
    queued | running |    cancelled            close           its job stopped                      the stop's locks
      finished | storing
    starting (lease out)  running              adopt           the clock found its run at Apify     attempt, job active
    starting (lease out)  queued | cancelled   reclaim_start   the clock found no run (or one the   attempt
                                                               batch cannot take)
    storing (lease out)   finished | queued |  reclaim_stores  the clock: its holder died           lease
                          cancelled
    queued | running |    cancelled            close_left_over the clock: a stopped job's batch     job stopped
      finished                                                 left waiting (none should be)
    any                   (gone)               remove          its job deleted                      the deletion's locks

A task holds a batch (under a lease it renews at every chunk) only while `starting` or
`storing`; every change is a conditional UPDATE fenced by the attempt number, so a redelivered
message, a second worker or a dead worker's late return can never move a batch twice. A task
locks its batch's row before anything else, and a stop locks every batch row of the job first,
so a task's later statements see whether the job stopped (`store.locks`).
"""
import enum
import hashlib
import json
import random
import re
from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa

from utils.store import jobs
from utils.store.schema import (ACTIVE_JOB_STATUSES, IN_FLIGHT, BatchSource, BatchStatus as B, ListStatus, accounts, apify_runs, batches,
                                follower_lists, jobs as job_table, utcnow)

b = batches.c
STOPPABLE = (B.QUEUED, B.RUNNING, B.FINISHED, B.STORING)  # what a stop closes at once: a start is its holder's


@dataclass(frozen=True)
class Claim:
    """A batch leased to one task execution in `status`; `attempt` fences out every other one."""

    job_id: str
    batch_index: int
    attempt: int
    status: str
    source: str
    accounts: list  # of this run: a continuation run has one
    apify_run_id: str | None
    items_read: int
    failures: int
    target_gender: str
    min_confidence: float
    per_account_limit: int
    api_key_id: int | None = None
    max_cost_usd: float | None = None
    continuation: str | None = None  # the token or cursor a continuation run starts from
    max_items: int = 0  # followers the run's accounts still want
    token: str | None = None  # a start's webhook token (only its hash is stored)

    @property
    def tag(self):
        return start_tag(self.job_id, self.batch_index, self.attempt)


TAG = re.compile(r"followsift/([0-9a-f-]{36})/(\d{1,9})/(\d{1,9})$")


def start_tag(job_id, batch_index, attempt):
    """What names a start attempt at the end of its run's User-Agent, so it can be found at Apify."""
    return f"followsift/{job_id}/{batch_index}/{attempt}"


def parse_tag(user_agent):
    """(job_id, batch_index, attempt) of the start attempt a run's User-Agent names, or None."""
    found = TAG.search(user_agent or "")
    return found and (found.group(1), int(found.group(2)), int(found.group(3)))


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


def held(claim):
    return sa.and_(b.job_id == claim.job_id, b.batch_index == claim.batch_index, b.status == claim.status,
                   b.attempts == claim.attempt)


def _lease(seconds):
    return utcnow() + timedelta(seconds=seconds)


# -- transitions -----------------------------------------------------------------------------------

def group(names, batch_size):
    """`names` cut into batches of `batch_size` accounts (the last one may be smaller)."""
    return [names[i:i + batch_size] for i in range(0, len(names), batch_size)]


def insert(conn, job_id, first_index, source, groups):
    """A queued batch per group of account names, numbered from `first_index`."""
    if groups:
        conn.execute(batches.insert(), [
            {"job_id": job_id, "batch_index": first_index + i, "accounts": json.dumps(names), "source": source}
            for i, names in enumerate(groups)])


def claim(conn, where, status, lease_seconds, token_hash=None):
    """Lease the batch matching `where` (of an active job) as `status`; its row, or None."""
    now = utcnow()
    values = dict(status=status, attempts=b.attempts + 1, lease_expires_at=now + timedelta(seconds=lease_seconds),
                  started_at=sa.func.coalesce(b.started_at, now))
    if token_hash is not None:
        values["webhook_token_hash"] = token_hash
    return conn.execute(batches.update().where(where, jobs.active(b.job_id)).values(**values).returning(
        b.job_id, b.batch_index, b.attempts, b.source, b.run_accounts, b.apify_run_id, b.items_read,
        b.failures)).first()


def hold(conn, claim):
    """Lock the batch's row if `claim` still holds it (waiting for a stop of its job to commit)."""
    return conn.execute(sa.select(b.status).where(held(claim)).with_for_update()).first() is not None


def record_run(conn, claim, run_id):
    """starting -> running: the run is at Apify's and no task holds the batch. False when the
    claim no longer holds it."""
    return bool(conn.execute(batches.update().where(held(claim)).values(
        status=B.RUNNING, apify_run_id=run_id, run_accounts=json.dumps(claim.accounts), lease_expires_at=None,
        run_checked_at=utcnow(), items_read=0)).rowcount)


def adopt(conn, job_id, batch_index, attempt, run_id, run_accounts):
    """starting (its holder died after Apify accepted the start) -> running with the run found."""
    return bool(conn.execute(batches.update().where(
        b.job_id == job_id, b.batch_index == batch_index, b.attempts == attempt, b.status == B.STARTING,
        jobs.active(b.job_id)).values(
        status=B.RUNNING, apify_run_id=run_id, run_accounts=json.dumps(run_accounts), lease_expires_at=None,
        run_checked_at=utcnow(), items_read=0)).rowcount)


def finish(conn, job_id, batch_index, run_id):
    """running -> finished: Apify ended the batch's run; False when it was not running that run."""
    return bool(conn.execute(batches.update().where(
        b.job_id == job_id, b.batch_index == batch_index, b.status == B.RUNNING, b.apify_run_id == run_id,
    ).values(status=B.FINISHED, run_checked_at=utcnow())).rowcount)


def hand_back(conn, claim, status, **values):
    """Hand the held batch back as `status` (queued, finished, running) with `values`; cancelled
    instead when its job stopped. Returns the status it got, or None when it was not held."""
    if not hold(conn, claim):
        return None
    if not jobs.is_active(conn, claim.job_id):  # a statement after the lock: it sees a stop
        status, values = B.CANCELLED, {"finished_at": utcnow()}
    conn.execute(batches.update().where(held(claim)).values(status=status, lease_expires_at=None, **values))
    return status


def requeue_values(delay_seconds, error=None, failure=False):
    """What a batch handed back to the queue keeps: it waits `delay_seconds`, its run forgotten."""
    return dict(not_before=utcnow() + timedelta(seconds=delay_seconds), failures=b.failures + int(failure),
                error_message=error, apify_run_id=None, items_read=0)


def restore_values(error):
    """What a batch handed back after a fault while storing keeps: its run, its offset, a failure more."""
    return dict(run_checked_at=utcnow(), failures=b.failures + 1, error_message=error)


def add_tally(conn, claim, tally, items_read, lease_seconds):
    """A chunk of the held batch was stored: its tally and dataset offset, the lease renewed.
    False (nothing written) when the claim no longer holds the batch or its job stopped."""
    return bool(conn.execute(batches.update().where(held(claim), jobs.active(b.job_id)).values(
        lease_expires_at=_lease(lease_seconds), items_read=items_read,
        profiles_scraped=b.profiles_scraped + tally.scraped, male_count=b.male_count + tally.male,
        female_count=b.female_count + tally.female, unknown_count=b.unknown_count + tally.unknown,
    )).rowcount)


def forget(conn, claim, tally):
    """Take back from the held batch's tally what it served accounts that are scraped after all."""
    conn.execute(batches.update().where(held(claim)).values(
        profiles_scraped=b.profiles_scraped - tally.scraped, male_count=b.male_count - tally.male,
        female_count=b.female_count - tally.female, unknown_count=b.unknown_count - tally.unknown))


def end(conn, claim, error_message=None):
    """held -> succeeded | failed; its tally (scraped, male, female, unknown) to roll into the
    job, or None when the claim no longer held it."""
    return conn.execute(batches.update().where(held(claim)).values(
        status=B.FAILED if error_message is not None else B.SUCCEEDED, finished_at=utcnow(), lease_expires_at=None,
        error_message=error_message,
    ).returning(b.profiles_scraped.label("scraped"), b.male_count.label("male"), b.female_count.label("female"),
                b.unknown_count.label("unknown"))).first()


def lock_all(conn, job_id):
    """Lock every batch row of the job, in batch order: a stop or a deletion waits for the step a
    task is taking, and the task's next step sees it."""
    conn.execute(sa.select(b.batch_index).where(b.job_id == job_id).order_by(b.batch_index).with_for_update())


def close(conn, job_id):
    """The job stopped: its batches that no task is starting are cancelled (a starting one is
    its holder's to close, or the clock's once the lease runs out)."""
    conn.execute(batches.update().where(b.job_id == job_id, b.status.in_(STOPPABLE))
                 .values(status=B.CANCELLED, finished_at=utcnow(), lease_expires_at=None))


def close_left_over(conn):
    """Batches of stopped jobs that are still waiting (none should be; a stop closes them): closed."""
    conn.execute(batches.update().where(b.status.in_((B.QUEUED, B.RUNNING, B.FINISHED)), ~jobs.active(b.job_id))
                 .values(status=B.CANCELLED, finished_at=utcnow(), lease_expires_at=None))


def remove(conn, job_id):
    conn.execute(batches.delete().where(b.job_id == job_id))


def reclaim_stores(conn):
    """Stores whose holder died (lease out): a run's back to finished, to be stored again; a batch
    of lists back to the queue; a stopped job's cancelled. Returns the runs' (job_id, batch_index)."""
    now = utcnow()
    expired = sa.and_(b.status == B.STORING, b.lease_expires_at < now)
    conn.execute(batches.update().where(expired, ~jobs.active(b.job_id))
                 .values(status=B.CANCELLED, finished_at=now, lease_expires_at=None))
    conn.execute(batches.update().where(expired, b.source == BatchSource.LISTS)
                 .values(status=B.QUEUED, lease_expires_at=None))
    return conn.execute(batches.update().where(expired).values(status=B.FINISHED, lease_expires_at=None,
                                                               run_checked_at=now)
                        .returning(b.job_id, b.batch_index)).all()


def reclaim_start(conn, job_id, batch_index, attempt):
    """A start whose holder died and whose run was not found (or was found and not wanted) goes
    back to the queue, or is cancelled when its job stopped."""
    where = sa.and_(b.job_id == job_id, b.batch_index == batch_index, b.attempts == attempt, b.status == B.STARTING)
    conn.execute(batches.update().where(where, ~jobs.active(b.job_id))
                 .values(status=B.CANCELLED, finished_at=utcnow(), lease_expires_at=None))
    conn.execute(batches.update().where(where).values(status=B.QUEUED, lease_expires_at=None))


# -- the fault policy ------------------------------------------------------------------------------

class Fault(enum.Enum):
    """What went wrong with a held batch."""

    TRANSIENT = "transient"  # Apify 429/5xx, the network, the database: before the run, or while storing it
    RUN_FAILED = "run_failed"  # the run ended FAILED, TIMED-OUT, ABORTED, or Apify forgot it
    FATAL = "fatal"  # Apify refused for good: a bad token, no credit, no such actor


class Action(enum.Enum):
    RETRY_START = "retry_start"  # back to the queue, a new run after the delay (from the stored token)
    RETRY_STORE = "retry_store"  # back to finished, its run stored again from its offset after the delay
    FAIL_BATCH = "fail_batch"  # the batch fails; its accounts are cut by failure
    FAIL_JOB = "fail_job"  # the job fails; every batch stops


@dataclass(frozen=True)
class Decision:
    action: Action
    delay: float = 0.0


def decide(claim, fault, settings):
    """The fault policy: a fault a retry may cure is retried with backoff up to BATCH_MAX_RETRIES
    times (a store keeps its run; anything else needs a new run), then the batch fails; Apify's
    refusal for good fails the job."""
    if fault is Fault.FATAL:
        return Decision(Action.FAIL_JOB)
    if claim.failures + 1 > settings.batch_max_retries:
        return Decision(Action.FAIL_BATCH)
    keep_run = fault is Fault.TRANSIENT and claim.status == B.STORING and claim.source == BatchSource.APIFY
    return Decision(Action.RETRY_STORE if keep_run else Action.RETRY_START,
                    backoff(claim.failures, settings.retry_backoff_seconds, settings.retry_backoff_max_seconds))


def backoff(retries, first, ceiling):
    """Seconds before retry number `retries + 1`: doubling from `first`, capped, half of it jittered."""
    top = min(ceiling, first * 2 ** retries)
    return top / 2 + random.uniform(0, top / 2)


# -- reading ---------------------------------------------------------------------------------------

def _due(now):
    """Queued batches of runs due to start."""
    return sa.and_(b.status == B.QUEUED, b.source == BatchSource.APIFY,
                   sa.or_(b.not_before.is_(None), b.not_before <= now))


def next_start(conn, now):
    """[(job_id, first batch due)] of active jobs with a batch due to start, fairest first: the
    key with the fewest runs in flight, then the job with the fewest, then the oldest job."""
    j = job_table.c
    waiting = conn.execute(
        sa.select(j.job_id, j.api_key_id, j.created_at,
                  sa.select(sa.func.min(b.batch_index)).where(b.job_id == j.job_id, _due(now))
                  .scalar_subquery().label("first"))
        .where(j.status.in_(ACTIVE_JOB_STATUSES), sa.exists().where(b.job_id == j.job_id, _due(now)))
    ).all()
    if not waiting:
        return []
    r = apify_runs.c
    flying = conn.execute(sa.select(r.job_id, r.api_key_id, sa.func.count()).where(r.status.in_(IN_FLIGHT))
                          .group_by(r.job_id, r.api_key_id)).all()
    by_job, by_key = {}, {}
    for job_id, key, count in flying:
        by_job[job_id] = count
        by_key[key] = by_key.get(key, 0) + count
    waiting.sort(key=lambda job: (by_key.get(job.api_key_id, 0), by_job.get(job.job_id, 0), job.created_at))
    return [(job.job_id, job.first) for job in waiting]


def due_start(job_id, batch_index, now):
    return sa.and_(b.job_id == job_id, b.batch_index == batch_index, _due(now))


def to_store(job_id, batch_index):
    """The batch, when it is finished (or its storer's lease ran out)."""
    lease_out = sa.and_(b.status == B.STORING, b.lease_expires_at < utcnow())
    return sa.and_(b.job_id == job_id, b.batch_index == batch_index, sa.or_(b.status == B.FINISHED, lease_out))


def to_serve(job_id, batch_index):
    return sa.and_(b.job_id == job_id, b.batch_index == batch_index, b.status == B.QUEUED)


def start_due(engine):
    """Whether any batch of an active job is due to start."""
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.exists().where(_due(utcnow()), jobs.active(b.job_id)))).scalar()


def _servable(now, wait_seconds):
    """Queued batches of lists with an account to serve: its list ended or went, or the job has
    waited `wait_seconds` for it (then it scrapes the account itself)."""
    l, ac, j = follower_lists.c, accounts.c, job_table.alias("waiting_job").c
    waiting = sa.exists().where(l.id == ac.list_id, l.status == ListStatus.PENDING)
    waited_enough = sa.exists().where(j.job_id == b.job_id, j.created_at < now - timedelta(seconds=wait_seconds))
    return sa.and_(b.status == B.QUEUED, b.source == BatchSource.LISTS, sa.exists().where(
        ac.job_id == b.job_id, ac.batch_index == b.batch_index, ac.status == ListStatus.PENDING,
        sa.or_(~waiting, waited_enough)))


def serve_order(conn, wait_seconds):
    """[(job_id, batch_index)] of batches of lists of active jobs due to be served, oldest job first."""
    j = job_table.c
    return conn.execute(sa.select(b.job_id, b.batch_index).join(job_table, j.job_id == b.job_id)
                        .where(_servable(utcnow(), wait_seconds), j.status.in_(ACTIVE_JOB_STATUSES))
                        .order_by(j.created_at, b.batch_index).limit(10)).all()


def serve_due(conn, wait_seconds):
    """Whether a batch of lists of an active job has an account to serve."""
    return conn.execute(sa.select(sa.exists().where(_servable(utcnow(), wait_seconds), jobs.active(b.job_id)))).scalar()


def serving(conn):
    """How many batches of lists are being served now (a live lease); on Postgres, the count and
    a claim after it are one step at a time across workers (until the transaction ends)."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("select pg_advisory_xact_lock(hashtext('followsift.serving'))")
    return conn.execute(sa.select(sa.func.count()).where(
        b.status == B.STORING, b.source == BatchSource.LISTS, b.lease_expires_at > utcnow())).scalar()


def apify_batches(conn, job_id):
    """How many batches of runs the job has (its budget is shared among them)."""
    return conn.execute(sa.select(sa.func.count()).where(b.job_id == job_id, b.source == BatchSource.APIFY)).scalar()


def run_of(engine, job_id, batch_index):
    """(status, attempts, apify_run_id, webhook_token_hash) of a batch, or None."""
    with engine.connect() as conn:
        return conn.execute(sa.select(b.status, b.attempts, b.apify_run_id, b.webhook_token_hash)
                            .where(b.job_id == job_id, b.batch_index == batch_index)).first()


def holder_of(conn, run_id):
    """(job_id, batch_index) of the batch whose current run `run_id` is, or None."""
    return conn.execute(sa.select(b.job_id, b.batch_index).where(b.apify_run_id == run_id)).first()


def finished_unstored(engine, waiting_seconds):
    """Finished batches of active jobs nobody has come to store for `waiting_seconds` (their
    message was lost); touched, so the same ones come back only after as long again."""
    now = utcnow()
    with engine.begin() as conn:
        return conn.execute(
            batches.update().where(b.status == B.FINISHED, b.run_checked_at < now - timedelta(seconds=waiting_seconds),
                                   jobs.active(b.job_id))
            .values(run_checked_at=now).returning(b.job_id, b.batch_index)).all()


def lease_left(engine, job_id, batch_index):
    """Seconds until a held batch of an active job may be claimed again; None otherwise."""
    with engine.connect() as conn:
        expires = conn.execute(sa.select(b.lease_expires_at).where(
            b.job_id == job_id, b.batch_index == batch_index, b.status.in_((B.STARTING, B.STORING)),
            jobs.active(b.job_id))).scalar()
    return None if expires is None else max(0.0, (expires - utcnow()).total_seconds())


def items_read(conn, claim):
    """How many dataset items the batch's current run has delivered (its offset stored)."""
    return conn.execute(sa.select(b.items_read).where(b.job_id == claim.job_id,
                                                      b.batch_index == claim.batch_index)).scalar()


def batch_counts(engine, job_ids):
    """{job_id: {status: count}} of the jobs' batches that are queued or on their way."""
    if not job_ids:
        return {}
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(b.job_id, b.status, sa.func.count())
            .where(b.job_id.in_(job_ids), b.status.in_((B.QUEUED, B.STARTING, B.RUNNING, B.FINISHED, B.STORING)))
            .group_by(b.job_id, b.status)).all()
    counts = {}
    for job_id, status, count in rows:
        counts.setdefault(job_id, {})[status] = count
    return counts
