"""Periodic upkeep, from Postgres state alone: the clock's tick, and the retention purge.

Both run from Celery beat (`clock:` in the Procfile) and once from the CLI (`flask --app app
tick`, `flask --app app purge`). Every step is bounded and safe to repeat: a batch moves only
by a conditional UPDATE, and publishing a message twice costs nothing but the message.
"""
import logging
from datetime import timedelta

from utils import runs, store
from utils.scraper import FatalApifyError, TransientApifyError

log = logging.getLogger("followsift.maintenance")
SETTLE_PER_TICK = 20


def tick(engine, settings, scraper, publish):
    """One tick of the clock; `publish` has `store(job_id, batch_index)`, `start()`, `serve()`,
    `callback(job_id)` and `abort(run_ids)`.

    1. hand back the batches whose holder died (a start to the queue, a store to be stored),
       and close those a stopped job left waiting (aborting their runs);
    2. ask Apify about running runs due a look (the poller; the only way without webhooks);
    3. publish again the stores, starts, serves and callbacks whose messages Redis lost;
    4. read the account's limits when due, and settle costs that were read too early.
    """
    stores = store.batches.reclaim_expired(engine)
    left_running = store.batches.close_stopped(engine)
    if left_running:
        publish.abort(left_running)
    stores += store.batches.finished_unstored(engine, waiting_seconds=max(10.0, 5 * settings.tick_seconds))
    try:
        stores += runs.poll(engine, settings, scraper)
        _learn_limits(engine, settings, scraper)
        _settle_costs(engine, settings, scraper)
    except (TransientApifyError, FatalApifyError) as exc:
        log.warning("tick: Apify: %s", exc)
    for job_id, batch_index in stores:
        publish.store(job_id, batch_index)
    if store.batches.start_due(engine):
        publish.start()
    if store.batches.serve_due(engine):
        publish.serve()
    for job_id in store.callbacks.lost_callbacks(engine, quiet_seconds=60):
        publish.callback(job_id)
    return len(stores)


def _learn_limits(engine, settings, scraper):
    """Refresh the account's cap from its limits, unless the operator set the cap."""
    if settings.apify_max_concurrent_runs or not store.capacity.limits_due(engine, settings):
        return
    room = store.capacity.snapshot(engine, settings)
    try:
        limits = scraper.account_limits()
    except (TransientApifyError, FatalApifyError) as exc:
        log.info("tick: the account's limits could not be read (%s); the cap comes from Apify's refusals", exc)
        limits = None
    store.capacity.learn(engine, settings, limits, room.in_flight)


def _settle_costs(engine, settings, scraper):
    """Read again the usage of runs that ended more than APIFY_COST_SETTLE_SECONDS ago."""
    ended_before = store.utcnow() - timedelta(seconds=settings.apify_cost_settle_seconds)
    for job_id, batch_index, run_id in store.batches.costs_to_settle(engine, ended_before, SETTLE_PER_TICK):
        state = scraper.run_state(run_id)
        store.batches.settle_cost(engine, job_id, batch_index, state and state.usage_usd)


def purge(engine, settings, abort_runs):
    """Delete jobs created more than `RESULTS_TTL_DAYS` ago, with their batches and results,
    then the follower lists that ended as long ago and no job reads any more."""
    older_than = store.utcnow() - timedelta(days=settings.results_ttl_days)
    job_ids = store.jobs.expired_job_ids(engine, older_than)
    for job_id in job_ids:
        running = store.jobs.delete_job(engine, job_id)
        if running:
            abort_runs(running)
    with engine.begin() as conn:
        lists = store.lists.purge(conn, older_than)
    return len(job_ids), lists
