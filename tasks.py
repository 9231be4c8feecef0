"""Celery tasks: fan a job out into its batches, and scrape one batch.

Run them with `celery -A tasks worker`. Tasks orchestrate; the work lives in `utils/`.
Every task is idempotent, since Redis delivers at least once: a batch is claimed in
Postgres before it does anything, and only the execution holding the claim may end it.
"""
import logging
import random
from functools import cache
from itertools import islice

import sqlalchemy.exc
from celery import Celery, signals
from celery.exceptions import SoftTimeLimitExceeded

from celery_config import (ABORT_RUNS, DISPATCH_JOB, NOTIFY_JOB_END, PURGE, RECONCILE, SCRAPE_ACCOUNT_BATCH,
                           configure)
from utils import maintenance, store, webhooks
from utils.batch_processor import process_chunk
from utils.config import Settings
from utils.observability import init_sentry, redact_secrets, setup_worker_logging
from utils.schemas import status_body
from utils.scraper import BatchStopped, FatalApifyError, Scraper, TransientApifyError
from utils.store.jobs import ALL_KEYS
from utils.store.schema import ACTIVE_JOB_STATUSES, ENDED_JOB_STATUSES

celery = Celery("followsift")  # configured from the environment when Celery first reads its settings
log = logging.getLogger("followsift.tasks")
# What a restarting or unreachable database raises: worth a retry, like a flaky Apify.
DATABASE_AWAY = (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError)


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


@celery.task(name=DISPATCH_JOB)
def dispatch_job(job_id):
    """Publish one message per queued batch over a single broker connection.

    This runs here rather than in the web request because publishing thousands of
    messages takes seconds. Run twice, it publishes duplicates, which the claim absorbs.
    """
    indexes = store.batches.queued_batch_indexes(engine(), job_id)
    with celery.producer_or_acquire() as producer:
        for index in indexes:
            scrape_account_batch.apply_async((job_id, index), producer=producer)
    log.info("job %s: dispatched %d batches", job_id, len(indexes))


@celery.task(name=SCRAPE_ACCOUNT_BATCH, bind=True, max_retries=None)
def scrape_account_batch(self, job_id, batch_index, resume_attempt=None):
    """Scrape one batch of accounts through Apify and store the followers it keeps."""
    try:
        claim = store.batches.claim_batch(engine(), job_id, batch_index, settings().batch_lease_seconds, resume_attempt)
    except DATABASE_AWAY as exc:
        if self.request.retries >= settings().batch_max_retries:
            raise  # the batch stays queued; the reconciler publishes it again
        raise self.retry(countdown=backoff(self.request.retries), exc=exc) from None
    if claim is None:
        _check_back_later(job_id, batch_index)
        return
    where = f"job {job_id} batch {batch_index} attempt {claim.attempt}"
    try:
        tally = _scrape(claim)
        status = _ended(job_id, store.batches.end_batch(engine(), claim, tally))
        log.info("%s: done, %d followers scraped; job %s", where, tally.scraped, status)
    except BudgetSpent as exc:
        log.warning("%s: %s; not starting a run", where, exc)
        store.jobs.mark_budget_exhausted(engine(), job_id)
        _ended(job_id, store.batches.end_batch(engine(), claim, store.batches.BatchTally(), error_message=str(exc)))
    except FatalApifyError as exc:
        log.error("%s: %s; failing the job", where, exc)
        store.jobs.fail_job(engine(), job_id, str(exc))
        _ended(job_id, store.batches.end_batch(engine(), claim, store.batches.BatchTally(), error_message=str(exc)))
    except BatchStopped as exc:
        _stop(claim, exc, where)
    except sqlalchemy.exc.IntegrityError as exc:
        if store.jobs.get_job(engine(), job_id, ALL_KEYS) is not None:
            raise
        _stop(claim, exc, where)  # the job was deleted while the batch ran
    except (TransientApifyError, *DATABASE_AWAY) as exc:
        _retry_or_fail(self, claim, exc, where)
    except Exception as exc:
        # The time limit or a bug, not a fault a retry cures: end the batch (and its Apify
        # run) so the job does not wait for it forever, and let the error reach the log and Sentry.
        log.exception("%s: unexpected error; the batch fails", where)
        if isinstance(exc, SoftTimeLimitExceeded):
            message = f"the batch ran past its time limit ({settings().task_time_limit_seconds} s)"
        else:
            message = f"internal error in the worker ({type(exc).__name__})"
        run_id = store.batches.batch_run_id(engine(), job_id, batch_index)
        if run_id:
            abort_runs([run_id])
        _ended(job_id, store.batches.end_batch(engine(), claim, store.batches.BatchTally(), error_message=message))
        raise


def _scrape(claim):
    """Start (or resume) the batch's Apify run and store its followers chunk by chunk."""
    def heartbeat():
        return store.batches.renew_lease(engine(), claim, settings().batch_lease_seconds)

    run_id = claim.apify_run_id
    if run_id is None:
        budget = store.batches.run_budget(engine(), claim.job_id, settings().apify_run_start_usd)
        if budget == 0:
            raise BudgetSpent("the job's budget (maxCostUsd) is spent")
        run_id = scraper().start_run(claim.accounts, claim.per_account_limit, max_charge_usd=budget)
        store.batches.record_run(engine(), claim, run_id)
    dataset_id, usage_usd = scraper().wait_for_run(run_id, heartbeat)
    tally = store.batches.BatchTally(cost_usd=usage_usd)
    followers = scraper().iter_followers(dataset_id, claim.accounts)
    while chunk := list(islice(followers, settings().write_chunk_size)):
        process_chunk(engine(), claim, chunk, tally)
        if not heartbeat():
            raise BatchStopped(f"batch stopped while storing Apify run {run_id}")
    return tally


class BudgetSpent(Exception):
    """The job's maxCostUsd leaves nothing for another Apify run."""


def _ended(job_id, status):
    """After a batch ended: when its job has ended, have its callback sent (if it has one).

    Sending twice is harmless: the callback task sends only while none was delivered.
    """
    if status in ENDED_JOB_STATUSES:
        notify_job_end.delay(job_id)
    return status


def _stop(claim, exc, where):
    """The batch lost its lease (someone else runs it) or its job ended (abort the run)."""
    job = store.jobs.get_job(engine(), claim.job_id, ALL_KEYS)
    if job is not None and job["status"] in ACTIVE_JOB_STATUSES:
        log.warning("%s: %s; another execution holds the batch", where, exc)
        return
    log.info("%s: job is %s; cancelling the batch", where, job["status"] if job else "deleted")
    run_id = store.batches.batch_run_id(engine(), claim.job_id, claim.batch_index)
    if run_id:
        abort_runs([run_id])
    store.batches.cancel_batch(engine(), claim)


def _retry_or_fail(task, claim, exc, where):
    """Retry with exponential backoff and jitter; past the last retry, record the batch failed."""
    retries = task.request.retries
    if retries >= settings().batch_max_retries:
        log.error("%s: failed after %d retries: %s", where, retries, exc)
        tally = store.batches.BatchTally(cost_usd=getattr(exc, "usage_usd", 0.0))
        _ended(claim.job_id, store.batches.end_batch(engine(), claim, tally, error_message=str(exc)))
        return
    countdown = backoff(retries)
    log.warning("%s: %s; retry %d/%d in %.1fs", where, exc, retries + 1, settings().batch_max_retries, countdown)
    try:
        store.batches.release_batch(engine(), claim, str(exc), forget_run=getattr(exc, "run_failed", False),
                              run_cost_usd=getattr(exc, "usage_usd", 0.0))
    except DATABASE_AWAY:
        pass  # The retry resumes this attempt's claim instead.
    raise task.retry(countdown=countdown, kwargs={"resume_attempt": claim.attempt}, exc=exc)


def backoff(retries, base=None):
    """Seconds before retry number `retries + 1`: doubling from `base`, capped, with half of it jittered."""
    first = settings().retry_backoff_seconds if base is None else base
    ceiling = min(settings().retry_backoff_max_seconds, first * 2 ** retries)
    return ceiling / 2 + random.uniform(0, ceiling / 2)


def _check_back_later(job_id, batch_index):
    """Another execution holds the batch: look again when its lease would run out.

    This is how a batch whose worker was killed gets picked up again when its message
    is redelivered before the dead worker's lease has expired.
    """
    seconds = store.batches.lease_left(engine(), job_id, batch_index)
    if seconds is not None:
        scrape_account_batch.apply_async((job_id, batch_index), countdown=seconds + 1)


@celery.task(name=NOTIFY_JOB_END, bind=True, max_retries=None)
def notify_job_end(self, job_id):
    """POST the ended job's status to its callbackUrl, signed; retried with backoff, sent once."""
    with store.callbacks.callback_to_send(engine(), job_id) as (job, record):
        if job is None:
            return
        try:
            webhooks.deliver(job["callback_url"], status_body(job), settings().webhook_signing_secret,
                             settings().webhook_timeout_seconds)
        except webhooks.DeliveryError as exc:
            retries = self.request.retries
            if retries >= settings().webhook_max_retries:
                log.error("job %s: callback failed after %d retries: %s", job_id, retries, exc)
                record(error=str(exc))
                return
            countdown = backoff(retries, base=settings().webhook_retry_backoff_seconds)
            log.warning("job %s: callback: %s; retry %d in %.1fs", job_id, exc, retries + 1, countdown)
            raise self.retry(countdown=countdown, exc=exc) from None
        record()
        log.info("job %s: callback delivered", job_id)


@celery.task(name=ABORT_RUNS)
def abort_runs(run_ids):
    """Abort Apify runs of a job that was cancelled or deleted (best effort: a run that
    cannot be aborted ends on its own, capped by the batch's item limit)."""
    for run_id in run_ids:
        try:
            scraper().abort_run(run_id)
        except (TransientApifyError, FatalApifyError) as exc:
            log.warning("could not abort Apify run %s: %s", run_id, exc)


@celery.task(name=RECONCILE)
def reconcile():
    def publish(job_id, batch_index):
        scrape_account_batch.apply_async((job_id, batch_index))

    count = maintenance.reconcile(engine(), settings(), publish)
    if count:
        log.warning("reconcile: re-enqueued %d batches whose messages were lost", count)


@celery.task(name=PURGE)
def purge():
    count = maintenance.purge(engine(), settings(), abort_runs.delay)
    if count:
        log.info("purge: deleted %d jobs older than %s days", count, settings().results_ttl_days)
