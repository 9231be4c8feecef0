"""Celery tasks: start Apify runs, store the ones that ended, keep the clock.

Run them with `celery -A tasks worker`. Tasks orchestrate; the work lives in `utils/`. No
task waits for Apify: `start_runs` starts as many runs as the account has room for and
returns; Apify's webhook or the clock's poller notices a run ended; `store_batch` streams its
dataset into Postgres. Every task is short (TASK_SLICE_SECONDS, then it hands the rest on) and
idempotent, since Redis delivers at least once: a batch is claimed in Postgres, fenced by its
attempt number, before anything is done with it, and the clock (`tick`) publishes again
whatever Redis lost, from Postgres.
"""
import logging
import random
import time
from functools import cache

import sqlalchemy.exc
from celery import Celery, signals

from celery_config import (ABORT_RUNS, NOTIFY_JOB_END, PURGE, SERVE_LISTS, START_RUNS, STORE_BATCH, TICK, Publisher,
                           configure)
from utils import actors, jobs, maintenance, metrics, runs, store, webhooks
from utils.batch_processor import classify_items, classify_listed
from utils.config import Settings
from utils.observability import init_sentry, redact_secrets, setup_worker_logging
from utils.scraper import TERMINAL_RUN_STATUSES, CapacityRefused, FatalApifyError, Scraper, TransientApifyError
from utils.store.batches import LeaseLost
from utils.store.jobs import ALL_KEYS
from utils.store.schema import ACTIVE_JOB_STATUSES, ENDED_JOB_STATUSES, AccountStatus

celery = Celery("followsift")  # configured from the environment when Celery first reads its settings
log = logging.getLogger("followsift.tasks")
# What a restarting or unreachable database raises: worth a retry, like a flaky Apify.
DATABASE_AWAY = (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError)
FAULTS = (TransientApifyError, *DATABASE_AWAY)


@cache
def settings():
    return Settings.from_env()


@celery.on_configure.connect
def _configure(sender, **_):
    configure(sender, settings())


@signals.celeryd_init.connect
@signals.beat_init.connect
def _start_process(**_):
    """A worker or beat starts: secrets out of the logs, errors to Sentry, job ids on log lines."""
    redact_secrets(settings())
    init_sentry(settings())
    setup_worker_logging()


@cache
def engine():
    # Built on first use, so each prefork child opens its own connections.
    return store.make_engine(settings())


@cache
def scraper():
    return Scraper(settings())


@cache
def adapter():
    return actors.adapter_for(settings())


# -- starting runs ---------------------------------------------------------------------------------

@celery.task(name=START_RUNS)
def start_runs():
    """Start queued batches' runs while the Apify account has room (the governor decides which,
    fairly between jobs); hand on after TASK_SLICE_SECONDS."""
    deadline = time.monotonic() + settings().task_slice_seconds
    while time.monotonic() < deadline:
        claim, room = store.batches.claim_start(engine(), settings())
        if claim is None or not _start(claim, room):
            return
    start_runs.delay()


def _start(claim, room):
    """Start the claimed batch's run; False when Apify says the account is full."""
    where = f"job {claim.job_id} batch {claim.batch_index} attempt {claim.attempt}"
    budget = store.batches.run_budget(engine(), claim, settings().apify_run_start_usd)
    if budget == 0:
        log.warning("%s: the job's budget (maxCostUsd) is spent; not starting a run", where)
        store.jobs.mark_budget_exhausted(engine(), claim.job_id)
        _ended(claim.job_id, store.batches.end_batch(engine(), claim, "the job's budget (maxCostUsd) is spent"))
        return True
    token = runs.new_token()
    try:
        run_input = adapter().build_input(claim.accounts, claim.per_account_limit, claim.continuation)
        run_id = scraper().start_run(run_input, claim.per_account_limit * len(claim.accounts), budget,
                                     runs.webhook(settings(), claim.job_id, claim.batch_index, token))
    except CapacityRefused as exc:
        log.info("%s: %s; waiting for room (%d runs in flight)", where, exc, room.in_flight)
        store.capacity.lower(engine(), settings(), room.in_flight)
        store.batches.requeue(engine(), claim, delay_seconds=0)
        metrics.start_refused()
        return False
    except FatalApifyError as exc:
        _fail_job(claim, exc, where)
        return True
    except FAULTS as exc:
        _fault(claim, exc, where)
        return True
    if not store.batches.record_run(engine(), claim, run_id, token):
        log.warning("%s: the batch was stopped while its run started; aborting run %s", where, run_id)
        abort_runs([run_id])
        _let_go(claim)
    return True


# -- storing what a run scraped ----------------------------------------------------------------------

@celery.task(name=STORE_BATCH)
def store_batch(job_id, batch_index):
    """Stream an ended run's dataset into Postgres from where the batch got to, chunk by chunk;
    hand on after TASK_SLICE_SECONDS; end the batch when the dataset is done."""
    claim, run_status = store.batches.claim_store(engine(), job_id, batch_index, settings().batch_lease_seconds)
    if claim is None:
        _check_back_later(job_id, batch_index)
        return
    where = f"job {job_id} batch {batch_index} attempt {claim.attempt}"
    try:
        state = None if run_status == runs.MISSING else scraper().run_state(claim.apify_run_id)
        if state is not None and state.status not in TERMINAL_RUN_STATUSES:
            log.warning("%s: told run %s ended, Apify says %s; waiting on", where, claim.apify_run_id, state.status)
            store.batches.unfinish(engine(), claim)
            return
        if state is None or state.status != "SUCCEEDED":
            ended = state.status if state else "unknown to Apify"
            _fault(claim, TransientApifyError(f"Apify run {claim.apify_run_id} ended {ended}"), where,
                   run_cost_usd=state.usage_usd if state else 0.0)
            return
        if not _store_pages(claim, state.dataset_id):
            store.batches.release_store(engine(), claim)
            store_batch.delay(job_id, batch_index)
        elif _close_run(claim, state):
            log.info("%s: stored; a list goes on in another run", where)
            store.batches.requeue(engine(), claim, delay_seconds=0, run_cost_usd=state.usage_usd)
            start_runs.delay()
        else:
            status = _ended(job_id, store.batches.end_batch(engine(), claim, run_cost_usd=state.usage_usd))
            log.info("%s: stored; job %s", where, status)
    except LeaseLost:
        _let_go(claim)
    except FatalApifyError as exc:
        _fail_job(claim, exc, where)
    except FAULTS as exc:
        _fault(claim, exc, where, keep_run=True)


def _store_pages(claim, dataset_id):
    """Store dataset pages until the last or the slice is used up; True when the last was stored."""
    deadline = time.monotonic() + settings().task_slice_seconds
    offset = claim.items_read
    while True:
        page = scraper().read_page(dataset_id, offset, settings().write_chunk_size)
        chunk = classify_items(adapter(), page.items, claim.accounts, claim.target_gender, claim.min_confidence)
        store.batches.store_chunk(engine(), claim, chunk, page.next_offset, settings().batch_lease_seconds)
        offset = page.next_offset
        if page.last:
            return True
        if time.monotonic() > deadline:
            return False


def _close_run(claim, state):
    """Say how the run's accounts ended, from what it stored and its OUTPUT record; True when a
    list goes on in another run (the token is in Postgres, so a retry goes on from it too)."""
    tokens, quota = actors.continuations(scraper().run_output(state.store_id), claim.accounts)
    items = store.batches.items_read(engine(), claim)
    return store.batches.close_run(engine(), claim, tokens=tokens, quota=quota, items=items,
                                   run_cap=adapter().run_cap)


# -- serving stored follower lists ----------------------------------------------------------------------

@celery.task(name=SERVE_LISTS)
def serve_lists():
    """Serve batches of stored follower lists into their jobs' results while one has an account
    whose list ended; hand on after TASK_SLICE_SECONDS. No Apify call, no room needed.

    Each execution asks for one helper when more batches are due than the one it took, so
    the batches of a large job are served by as many worker processes as are free (a helper
    that finds none due asks for nothing)."""
    deadline = time.monotonic() + settings().task_slice_seconds
    helped = False
    while time.monotonic() < deadline:
        claim = store.batches.claim_serve(engine(), settings().batch_lease_seconds)
        if claim is None:
            return
        if not helped and store.batches.serve_due(engine()):
            serve_lists.delay()
            helped = True
        _serve(claim, deadline)
    serve_lists.delay()


def _serve(claim, deadline):
    """Serve the claimed batch's accounts whose list ended; end the batch when none is left.
    An account whose list failed or was deleted is scraped by the job itself after all."""
    where = f"job {claim.job_id} batch {claim.batch_index} attempt {claim.attempt}"
    waiting, rescrape = False, []
    try:
        for account in store.batches.accounts_to_serve(engine(), claim):
            if account.list_status == AccountStatus.PENDING:
                waiting = True
            elif account.list_status not in store.lists.SERVABLE:
                rescrape.append(account.account)
            elif not _serve_account(claim, account, deadline):
                store.batches.requeue(engine(), claim, delay_seconds=0)  # still due: the next slice goes on
                return
        if rescrape:
            store.batches.rescrape(engine(), claim, rescrape, jobs.batch_size(settings()), settings().apify_actor_id)
            log.info("%s: %d lists it waited for failed; scraping them in this job", where, len(rescrape))
            start_runs.delay()
        if waiting:
            store.batches.requeue(engine(), claim, delay_seconds=0)  # due again when one of its lists ends
        else:
            log.info("%s: served from stored lists; job %s", where,
                     _ended(claim.job_id, store.batches.end_batch(engine(), claim)))
    except LeaseLost:
        _let_go(claim)
    except DATABASE_AWAY as exc:
        log.warning("%s: %s; the clock hands the batch back when its lease runs out", where, exc)


def _serve_account(claim, account, deadline):
    """Serve one account from its list, chunk by chunk, from where it got to; False when the
    slice ran out first."""
    served = account.scraped
    while served < account.requested:
        if time.monotonic() > deadline:
            return False
        rows = store.lists.read(engine(), account.list_id, served,
                                min(settings().write_chunk_size, account.requested - served))
        if not rows:
            break
        chunk = classify_listed(rows, account.account, claim.target_gender, claim.min_confidence)
        store.batches.store_chunk(engine(), claim, chunk, claim.items_read, settings().batch_lease_seconds)
        served += len(rows)
    store.batches.close_served(engine(), claim, account.account, account.list_status, account.list_reason)
    return True


# -- what happens to a batch when something goes wrong -------------------------------------------------

def _fault(claim, exc, where, run_cost_usd=0.0, keep_run=False):
    """A fault a retry may cure (Apify 429/5xx, the network, a failed run, the database): try
    again with backoff, or fail the batch after BATCH_MAX_RETRIES. A run that succeeded is kept
    (`keep_run`: its store is retried from where it got to); otherwise the batch is queued
    for a new run."""
    failures = claim.failures + 1
    if failures > settings().batch_max_retries:
        log.error("%s: failed after %d retries: %s", where, claim.failures, exc)
        _ended(claim.job_id, store.batches.end_batch(engine(), claim, str(exc), run_cost_usd=run_cost_usd))
        return
    delay = backoff(claim.failures)
    log.warning("%s: %s; retry %d/%d in %.1fs", where, exc, failures, settings().batch_max_retries, delay)
    try:
        if keep_run:
            store.batches.release_store(engine(), claim, error=str(exc), failure=True)
        else:
            store.batches.requeue(engine(), claim, delay_seconds=delay, error=str(exc), failure=True,
                                  run_cost_usd=run_cost_usd)
    except DATABASE_AWAY:
        pass  # the lease runs out and the clock hands the batch back
    if keep_run:
        store_batch.apply_async((claim.job_id, claim.batch_index), countdown=delay)
    else:
        start_runs.apply_async(countdown=delay)


def _fail_job(claim, exc, where):
    """Apify refused for good (bad token, no credit, no such actor): the job fails."""
    log.error("%s: %s; failing the job", where, exc)
    running = store.jobs.fail_job(engine(), claim.job_id, exc.public)
    _ended(claim.job_id, store.batches.end_batch(engine(), claim, exc.public))
    if running:
        abort_runs.delay(running)


def _let_go(claim):
    """The batch is no longer ours: another execution holds it, or its job stopped (close it)."""
    job = store.jobs.get_job(engine(), claim.job_id, ALL_KEYS)
    if job is not None and job["status"] in ACTIVE_JOB_STATUSES:
        return
    store.batches.cancel_held(engine(), claim)


def _ended(job_id, status):
    """After a batch ended: when its job has ended, have its callback sent (if it has one).

    Sending twice is harmless: the callback task sends only while none was delivered.
    """
    if status in ENDED_JOB_STATUSES:
        notify_job_end.delay(job_id)
    return status


def backoff(retries, base=None):
    """Seconds before retry number `retries + 1`: doubling from `base`, capped, with half of it jittered."""
    first = settings().retry_backoff_seconds if base is None else base
    ceiling = min(settings().retry_backoff_max_seconds, first * 2 ** retries)
    return ceiling / 2 + random.uniform(0, ceiling / 2)


def _check_back_later(job_id, batch_index):
    """Another execution holds the batch: look again when its lease would run out (so a batch
    whose worker was killed is picked up as soon as it may be)."""
    seconds = store.batches.lease_left(engine(), job_id, batch_index)
    if seconds is not None:
        store_batch.apply_async((job_id, batch_index), countdown=seconds + 1)


# -- callbacks, aborts and the clock ------------------------------------------------------------------

@celery.task(name=NOTIFY_JOB_END, bind=True, max_retries=None)
def notify_job_end(self, job_id):
    """POST the ended job's status to its callbackUrl, signed; retried with backoff, sent once.

    Attempts are counted in Postgres, so a callback found again by the clock after its
    message was lost does not start counting afresh."""
    with store.callbacks.callback_to_send(engine(), job_id, settings().webhook_max_retries + 1) as (job, attempt):
        if job is None:
            return
        try:
            webhooks.deliver(job["callback_url"], jobs.statuses(engine(), settings(), [job])[0],
                             jobs.signing_secret(engine(), settings(), job["api_key_id"]),
                             settings().webhook_timeout_seconds,
                             allow_private=bool(settings().webhook_allow_private_addresses))
        except webhooks.DeliveryError as exc:
            attempt.failed(str(exc))
            error = exc
        else:
            attempt.delivered()
            log.info("job %s: callback delivered", job_id)
            return
    if attempt.last:
        log.error("job %s: callback failed after %d attempts: %s", job_id, attempt.number, error)
        return
    countdown = backoff(attempt.number - 1, base=settings().webhook_retry_backoff_seconds)
    log.warning("job %s: callback: %s; attempt %d again in %.1fs", job_id, error, attempt.number + 1, countdown)
    raise self.retry(countdown=countdown)


@celery.task(name=ABORT_RUNS)
def abort_runs(run_ids):
    """Abort Apify runs of a job that was cancelled or deleted (best effort: a run that
    cannot be aborted ends on its own, capped by the batch's item limit)."""
    for run_id in run_ids:
        try:
            scraper().abort_run(run_id)
        except (TransientApifyError, FatalApifyError) as exc:
            log.warning("could not abort Apify run %s: %s", run_id, exc)


@celery.task(name=TICK)
def tick():
    """The clock: see `utils.maintenance.tick`."""
    maintenance.tick(engine(), settings(), scraper(), Publisher(celery))


@celery.task(name=PURGE)
def purge():
    jobs_gone, lists_gone = maintenance.purge(engine(), settings(), abort_runs.delay)
    if jobs_gone or lists_gone:
        log.info("purge: deleted %d jobs and %d follower lists older than %s days", jobs_gone, lists_gone,
                 settings().results_ttl_days)
