"""Periodic upkeep, from Postgres state alone: the clock's tick, and the retention purge.

The tick runs in the clock's own process (`tasks.Clock`, the Procfile's `clock:`), the purge
hourly on a worker; each also once from the CLI (`flask --app app tick`, `flask --app app
purge`). Every step is bounded and safe to repeat: a batch or a run moves only by a conditional
UPDATE, and publishing a message twice costs nothing but the message.
"""
import logging
from datetime import timedelta

from utils import runs, store
from utils.scraper import TERMINAL_RUN_STATUSES, FatalApifyError, TransientApifyError

log = logging.getLogger("followsift.maintenance")
PER_TICK = 20  # Apify calls a tick makes at most for each kind of run it looks after


def tick(engine, settings, scraper, publish):
    """One tick of the clock; `publish` has `store(job_id, batch_index)`, `start()`, `serve()`,
    `callback(job_id)` and `abort(run_ids)`.

    1. recover what dead holders left: a store goes back to be stored; a start attempt whose
       lease ran out is looked for at Apify by its tag, and its batch adopts the run found or
       goes back to the queue (closed when its job stopped); batches a stopped job left closed;
       now and then, the account's runs are swept for tagged runs nobody recorded;
    2. abort runs no batch wants (a stop's, a late start's, one the sweep found);
    3. ask Apify about running runs due a look (the poller; the only way without webhooks);
       charge ended runs nobody stored; settle costs read too early;
    4. publish again the stores, starts, serves and callbacks whose messages Redis lost;
    5. read the account's limits when due.
    """
    stores = store.work.reclaim_stores(engine)
    store.work.close_left_over(engine)
    stores += store.batches.finished_unstored(engine, waiting_seconds=max(10.0, 5 * settings.tick_seconds))
    for step in (_find_lost_starts, _sweep_for_orphans, _abort_unwanted, runs.poll, _charge_and_settle,
                 _learn_limits):
        try:
            stores += step(engine, settings, scraper) or []
        except (TransientApifyError, FatalApifyError) as exc:  # one step's trouble holds up no other
            log.warning("tick: %s: Apify: %s", step.__name__.strip("_").replace("_", " "), exc)
    for job_id, batch_index in stores:
        publish.store(job_id, batch_index)
    if store.batches.start_due(engine):
        publish.start()
    if store.work.serve_wanted(engine, settings):
        publish.serve()
    for job_id in store.callbacks.lost_callbacks(engine, quiet_seconds=60):
        publish.callback(job_id)
    return len(stores)


def _sweep_for_orphans(engine, settings, scraper):
    """Every APIFY_ORPHAN_SWEEP_SECONDS, the account's runs since the last sweep: any that carries
    the tag of a start attempt of ours and that the ledger never heard of (Apify made a run while
    its start failed, or apify-client's retry made a second) is registered, nobody's: the next
    ticks abort it and charge it."""
    since = store.capacity.sweep_since(engine, settings)
    if since is None:
        return
    now = store.utcnow()
    tagged = _tagged(scraper, since)
    for run_id in store.ledger.unknown(engine, list(tagged)):
        if store.work.found_run(engine, run_id, *tagged[run_id]):
            log.warning("tick: run %s of start %s was never recorded; aborting and charging it", run_id, tagged[run_id])
    store.capacity.swept(engine, now)


def _find_lost_starts(engine, settings, scraper):
    """Start attempts whose worker died (or lost its lease) before recording a run: the run, if
    Apify made one, carries the attempt's tag in its User-Agent (one list of the account's runs)."""
    lost = store.ledger.lost_starts(engine, grace_seconds=settings.tick_seconds)
    if not lost:
        return
    runs = {tag: run_id for run_id, tag in _tagged(scraper, min(start.created_at for start in lost)).items()}
    for job_id, batch_index, attempt, _ in lost:
        run_id = runs.get((str(job_id), batch_index, attempt))
        adopted = store.work.resolve_start(engine, job_id, batch_index, attempt, run_id)
        if run_id is not None:
            log.warning("tick: found run %s of start %s/%s/%s, not recorded: %s", run_id, job_id, batch_index,
                        attempt, "adopted" if adopted else "nobody's any more, to abort")


def _tagged(scraper, since):
    """{run id: (job_id, batch_index, attempt)} of the account's runs started since `since` (and a
    minute before: clocks differ) that carry a start attempt's tag."""
    found = ((run_id, store.batches.parse_tag(agent)) for run_id, agent in
             scraper.runs_since(since - timedelta(seconds=60)))
    return {run_id: tag for run_id, tag in found if tag}


def _abort_unwanted(engine, settings, scraper):
    """Runs still going that no batch wants (their job stopped or went, a late start): aborted,
    then charged once they ended like any other."""
    quiet = store.utcnow() - timedelta(seconds=settings.apify_poll_seconds)
    going = []
    for run_id in store.ledger.unwanted(engine, quiet, PER_TICK):
        status = scraper.abort_run(run_id) or runs.MISSING
        if status in TERMINAL_RUN_STATUSES or status == runs.MISSING:
            store.work.run_ended(engine, run_id, status)
        else:
            going.append(run_id)
    store.ledger.mark_checked(engine, going)


def _charge_and_settle(engine, settings, scraper):
    """Charge runs that ended a while ago and nobody stored (runs of stopped or deleted jobs), and
    read again the usage of runs charged more than APIFY_COST_SETTLE_SECONDS after they ended."""
    for run_id in store.ledger.to_charge(engine, store.utcnow() - timedelta(seconds=2 * settings.tick_seconds),
                                         PER_TICK):
        runs.charge(engine, settings, run_id, scraper.run_state(run_id))
    settled_before = store.utcnow() - timedelta(seconds=settings.apify_cost_settle_seconds)
    for run_id in store.ledger.to_settle(engine, settled_before, PER_TICK):
        state = scraper.run_state(run_id)
        store.work.settle_run(engine, run_id, state and state.usage_usd)


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


def purge(engine, settings, abort_runs):
    """Delete jobs created more than `RESULTS_TTL_DAYS` ago, with their batches and results,
    the runs as old whose cost is final, then the follower lists that ended as long ago and no
    job reads any more. What the runs cost stays in the spend ledger for good."""
    older_than = store.utcnow() - timedelta(days=settings.results_ttl_days)
    job_ids = store.jobs.expired_job_ids(engine, older_than)
    for job_id in job_ids:
        running = store.work.delete_job(engine, job_id)
        if running:
            abort_runs(running)
    store.work.purge_runs(engine, older_than)
    return len(job_ids), store.work.purge_lists(engine, older_than)
