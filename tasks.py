"""Celery tasks: start Apify runs, store the ones that ended, serve stored lists, keep the clock.

Run them with `celery -A tasks worker`, and the clock with `celery -A tasks beat`. Tasks
orchestrate: each step is a transaction in `utils.store.work`, which says what comes next, and
the fault policy is the batch lifecycle's (`utils.store.batches.decide`). No task waits for
Apify: `start_runs` starts as many runs as the account has room for and returns; Apify's webhook
or the clock's poller notices a run ended; `store_batch` streams its dataset into Postgres. Every
task is short (TASK_SLICE_SECONDS, then it hands the rest on) and idempotent, since Redis
delivers at least once: a batch is claimed in Postgres, fenced by its attempt number, before
anything is done with it, and the clock publishes again whatever Redis lost, from Postgres.
"""
import logging
import time
from functools import cache

import sqlalchemy.exc
from celery import Celery, signals
from celery.beat import PersistentScheduler

from celery_config import ABORT_RUNS, NOTIFY_JOB_END, PURGE, SERVE_LISTS, START_RUNS, STORE_BATCH, TICK, Publisher, configure
from utils import actors, jobs, maintenance, metrics, runs, store, webhooks
from utils.batch_processor import classify_items, classify_listed
from utils.config import Settings
from utils.observability import init_sentry, redact_secrets, setup_worker_logging
from utils.scraper import TERMINAL_RUN_STATUSES, CapacityRefused, FatalApifyError, Scraper, TransientApifyError
from utils.store.batches import Fault, LeaseLost, backoff
from utils.store.schema import ENDED_JOB_STATUSES
from utils.store.work import Serve

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


def _where(claim):
    return f"job {claim.job_id} batch {claim.batch_index} attempt {claim.attempt}"


# -- starting runs ---------------------------------------------------------------------------------

@celery.task(name=START_RUNS)
def start_runs():
    """Start queued batches' runs while the Apify account has room (the governor decides which,
    fairly between keys, then jobs); hand on after TASK_SLICE_SECONDS."""
    deadline = time.monotonic() + settings().task_slice_seconds
    while time.monotonic() < deadline:
        claim, room = store.work.claim_start(engine(), settings())
        if claim is None or not _start(claim, room):
            return
    start_runs.delay()


def _start(claim, room):
    """Start the claimed batch's run; False when Apify says the account is full."""
    budget = store.work.run_budget(engine(), claim, settings().apify_run_start_usd)
    if budget.spent:
        log.warning("%s: the job's budget (maxCostUsd) is spent; not starting a run", _where(claim))
        _ended(claim.job_id, store.work.budget_spent(engine(), claim))
        return True
    if budget.wait:
        log.info("%s: the job's budget waits for its runs still going to be charged", _where(claim))
        store.work.budget_wait(engine(), claim, settings().retry_backoff_seconds)
        return True
    try:
        run_input = adapter().build_input(claim.accounts, claim.per_account_limit, claim.continuation)
        run_id = scraper().start_run(run_input, claim.max_items, budget.usd,
                                     runs.webhook(settings(), claim.job_id, claim.batch_index, claim.token),
                                     tag=claim.tag)
    except CapacityRefused as exc:
        log.info("%s: %s; waiting for room (%d runs in flight)", _where(claim), exc, room.in_flight)
        store.capacity.lower(engine(), settings(), room.in_flight)
        store.work.refused(engine(), claim)
        metrics.start_refused()
        return False
    except FatalApifyError as exc:
        _fault(claim, Fault.FATAL, exc, exc.public)
        return True
    except FAULTS as exc:
        _fault(claim, Fault.TRANSIENT, exc)
        return True
    try:
        if not store.work.record_run(engine(), claim, run_id, budget.usd):
            log.warning("%s: the batch was stopped while its run started; aborting run %s", _where(claim), run_id)
            abort_runs.delay([run_id])
    except DATABASE_AWAY as exc:
        log.warning("%s: run %s started, not recorded (%s); the clock finds it by its tag", _where(claim), run_id, exc)
    return True


# -- storing what a run scraped ----------------------------------------------------------------------

@celery.task(name=STORE_BATCH)
def store_batch(job_id, batch_index):
    """Stream an ended run's dataset into Postgres from where the batch got to, chunk by chunk;
    hand on after TASK_SLICE_SECONDS; end the batch when the dataset is done."""
    claim = store.work.claim_store(engine(), job_id, batch_index, settings().batch_lease_seconds)
    if claim is None:
        _check_back_later(job_id, batch_index)
        return
    try:
        state = scraper().run_state(claim.apify_run_id)
        if state is not None and state.status not in TERMINAL_RUN_STATUSES:
            log.warning("%s: told run %s ended, Apify says %s; waiting on", _where(claim), claim.apify_run_id,
                        state.status)
            store.work.unfinish(engine(), claim)
            return
        runs.charge(engine(), settings(), claim.apify_run_id, state)
        if state is None or state.status != "SUCCEEDED":
            ended = state.status if state else "unknown to Apify"
            _fault(claim, Fault.RUN_FAILED, f"Apify run {claim.apify_run_id} ended {ended}")
            return
        if not _store_pages(claim, state.dataset_id):
            store.work.release(engine(), claim)
            store_batch.delay(job_id, batch_index)
        elif _close_run(claim, state):
            log.info("%s: stored; a list goes on in another run", _where(claim))
            store.work.go_on(engine(), claim)
            start_runs.delay()
        else:
            log.info("%s: stored; job %s", _where(claim), _ended(job_id, store.work.end_batch(engine(), claim)))
    except LeaseLost:
        store.work.let_go(engine(), claim)
    except FatalApifyError as exc:
        _fault(claim, Fault.FATAL, exc, exc.public)
    except FAULTS as exc:
        _fault(claim, Fault.TRANSIENT, exc)


def _store_pages(claim, dataset_id):
    """Store dataset pages until the last or the slice is used up; True when the last was stored."""
    deadline = time.monotonic() + settings().task_slice_seconds
    offset = claim.items_read
    while True:
        page = scraper().read_page(dataset_id, offset, settings().write_chunk_size)
        chunk = classify_items(adapter(), page.items, claim.accounts, claim.target_gender, claim.min_confidence)
        store.work.store_chunk(engine(), claim, chunk, page.next_offset, settings().batch_lease_seconds)
        offset = page.next_offset
        if page.last:
            return True
        if time.monotonic() > deadline:
            return False


def _close_run(claim, state):
    """Say how the run's accounts ended (from what it stored, its OUTPUT record and its caps);
    True when a list goes on in another run."""
    tokens, quota = actors.continuations(scraper().run_output(state.store_id), claim.accounts)
    return store.work.close_run(engine(), claim, tokens=tokens, quota=quota, usage_usd=state.usage_usd,
                                run_cap=adapter().run_cap, price_per_item=settings().apify_price_per_1000_usd / 1000,
                                start_fee=settings().apify_run_start_usd)


# -- serving stored follower lists ----------------------------------------------------------------------

@celery.task(name=SERVE_LISTS)
def serve_lists():
    """Serve batches of stored follower lists into their jobs' results; hand on after
    TASK_SLICE_SECONDS. No Apify call, no room needed.

    At most LISTS_SERVE_PARALLEL batches are served at once, on a queue of their own: a large
    job is served by several worker processes while starts and stores keep their turn. An
    execution asks for one helper while more are due and fewer are being served."""
    deadline = time.monotonic() + settings().task_slice_seconds
    helped = False
    while time.monotonic() < deadline:
        claim = store.work.claim_serve(engine(), settings())
        if claim is None:
            return
        if not helped and store.work.serve_wanted(engine(), settings()):
            serve_lists.delay()
            helped = True
        _serve(claim, deadline)
    serve_lists.delay()


def _serve(claim, deadline):
    """Serve the claimed batch's accounts; end the batch when none is left. An account whose
    list cannot serve it (cut short of what it wants, gone, or waited for too long) is scraped
    by the job itself after all."""
    try:
        found = store.work.accounts_to_serve(engine(), claim, settings().reuse_wait_seconds)
        for account, verdict in found:
            if verdict is Serve.SERVE and not _serve_account(claim, account, deadline):
                store.work.serve_later(engine(), claim)  # still due: the next slice goes on
                return
        rescrape = [account.account for account, verdict in found if verdict is Serve.SCRAPE]
        if rescrape:
            store.work.rescrape(engine(), claim, rescrape, jobs.batch_size(settings()), settings().apify_actor_id)
            log.info("%s: %d lists it wanted could not serve it; scraping them in this job", _where(claim),
                     len(rescrape))
            start_runs.delay()
        if any(verdict is Serve.WAIT for _, verdict in found):
            store.work.serve_later(engine(), claim)  # due again when one of its lists ends
        else:
            log.info("%s: served from stored lists; job %s", _where(claim),
                     _ended(claim.job_id, store.work.end_batch(engine(), claim)))
    except LeaseLost:
        store.work.let_go(engine(), claim)
    except DATABASE_AWAY as exc:
        log.warning("%s: %s; the clock hands the batch back when its lease runs out", _where(claim), exc)


def _serve_account(claim, account, deadline):
    """Serve one account from its list, chunk by chunk, from where it got to and as far as the
    list goes; False when the slice ran out first."""
    served, upto = account.scraped, min(account.requested, account.list_scraped)
    while served < upto:
        if time.monotonic() > deadline:
            return False
        rows = store.lists.read(engine(), account.list_id, served, min(settings().write_chunk_size, upto - served))
        if not rows:
            break
        chunk = classify_listed(rows, account.account, claim.target_gender, claim.min_confidence)
        store.work.store_chunk(engine(), claim, chunk, claim.items_read, settings().batch_lease_seconds)
        served += len(rows)
    store.work.close_served(engine(), claim, account.account, account)
    return True


# -- following the fault policy ------------------------------------------------------------------------

def _fault(claim, what, exc, error=None):
    """Have the batch lifecycle decide what `exc` does to the claimed batch, and do what it says."""
    error = error or str(exc)
    outcome = store.work.fault(engine(), settings(), claim, what, error)
    retry = outcome.start_after if outcome.start_after is not None else outcome.store_after
    if retry is not None:
        log.warning("%s: %s; retry %d/%d in %.1fs", _where(claim), error, claim.failures + 1,
                    settings().batch_max_retries, retry)
    else:
        log.error("%s: %s; %s", _where(claim), error,
                  "failing the job" if what is Fault.FATAL else f"failed after {claim.failures} retries")
    if outcome.abort:
        abort_runs.delay(outcome.abort)
    if outcome.store_after is not None:
        store_batch.apply_async((claim.job_id, claim.batch_index), countdown=outcome.store_after)
    if outcome.start_after is not None:
        start_runs.apply_async(countdown=outcome.start_after)
    _ended(claim.job_id, outcome.job_status)


def _ended(job_id, status):
    """After a batch ended: when its job has ended, have its callback sent (if it has one).

    Sending twice is harmless: the callback task sends only while none was delivered.
    """
    if status in ENDED_JOB_STATUSES:
        notify_job_end.delay(job_id)
    return status


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
    countdown = backoff(attempt.number - 1, settings().webhook_retry_backoff_seconds,
                        settings().retry_backoff_max_seconds)
    log.warning("job %s: callback: %s; attempt %d again in %.1fs", job_id, error, attempt.number + 1, countdown)
    raise self.retry(countdown=countdown)


@celery.task(name=ABORT_RUNS)
def abort_runs(run_ids):
    """Abort Apify runs no batch wants any more (their job was cancelled or deleted, or their
    start lost its batch). Best effort: the clock aborts again any still running, and charges
    them all."""
    for run_id in run_ids:
        try:
            scraper().abort_run(run_id)
        except (TransientApifyError, FatalApifyError) as exc:
            log.warning("could not abort Apify run %s: %s", run_id, exc)


def tick():
    """The clock: see `utils.maintenance.tick`."""
    maintenance.tick(engine(), settings(), scraper(), Publisher(celery))


class Clock(PersistentScheduler):
    """Celery beat's scheduler, except that the tick runs here, in the clock's own process,
    rather than as a message to the workers: a tick never waits behind a busy worker or
    expires in the queue, so leases are handed back and runs polled however long the backlog.
    A tick that overruns TICK_SECONDS delays the next; none is dropped unseen."""

    def apply_entry(self, entry, producer=None):
        if entry.task != TICK:
            return super().apply_entry(entry, producer)
        started = time.monotonic()
        try:
            tick()
        except Exception:  # the clock keeps ticking; the next tick retries from Postgres
            log.exception("tick failed")
        metrics.tick_took(time.monotonic() - started)
        return None


@celery.task(name=PURGE)
def purge():
    jobs_gone, lists_gone = maintenance.purge(engine(), settings(), abort_runs.delay)
    if jobs_gone or lists_gone:
        log.info("purge: deleted %d jobs and %d follower lists older than %s days", jobs_gone, lists_gone,
                 settings().results_ttl_days)
