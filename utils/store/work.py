"""A job's work as it moves through its lifecycles: every step here is one transaction that
moves more than one of them (a batch and its job's counters, its accounts, its lists, the runs
it paid for), calling the lifecycles' own transitions and taking locks in `store.locks` order.

The web side creates, stops and deletes jobs here; the worker's tasks claim batches, record
runs, store chunks, end batches and apply the fault policy (`store.batches.decide`) here; the
clock recovers what dead workers and lost messages left. A task learns from each step what to
do next (an `Outcome`), and decides nothing itself.
"""
import enum
import json
import secrets
from dataclasses import dataclass, field
from datetime import timedelta

from utils import metrics
from utils.store import accounts, batches, capacity, jobs, keys, ledger, lists, results
from utils.store.batches import Action, Claim, LeaseLost
from utils.store.locks import atomic
from utils.store.schema import BatchSource, BatchStatus as B, CutBy, JobStatus, ListStatus, utcnow


class CapReached(Exception):
    """The key's month would go over its cap; `committed` is what it is committed to already."""

    def __init__(self, committed):
        super().__init__(f"{committed:.2f} USD committed")
        self.committed = committed


@dataclass
class Outcome:
    """What a task does after a step: publish a start or a store (after a delay), have the job's
    callback sent (it ended), abort runs."""

    job_status: str | None = None
    start_after: float | None = None
    store_after: float | None = None
    abort: list = field(default_factory=list)


# -- a job as a whole --------------------------------------------------------------------------------

@atomic
def create_job(conn, *, api_key_id, usernames, target_gender, min_confidence, total_scrape_count, per_account_limit,
               batch_size, actor_id, max_age_days=0, max_cost_usd=None, callback_url=None, monthly_cap=None):
    """The job, its accounts, their lists and its batches of `batch_size` accounts. With a
    `monthly_cap`, the key's row is locked first and the job is refused (CapReached) when what
    the key is committed to this month and its budget would pass the cap: two jobs posted at
    once cannot both pass. Returns (job_id, total batches, the `store.lists.Plan`)."""
    if monthly_cap and api_key_id is not None:
        keys.lock(conn, api_key_id)
        month = utcnow().replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        committed = ledger.month_spend(conn, api_key_id, month)
        if committed + (max_cost_usd or 0) > monthly_cap + 1e-9:
            raise CapReached(committed)
    if max_age_days > 0:
        lists.lock_planning(conn)
    found = lists.plan(conn, usernames, per_account_limit, actor_id, max_age_days)
    scraped = batches.group(found.scrape, batch_size)
    served = batches.group(list(found.reused), batch_size)
    job_id = jobs.insert(conn, api_key_id=api_key_id, target_gender=target_gender, min_confidence=min_confidence,
                         accounts_count=len(usernames), per_account_limit=per_account_limit,
                         total_scrape_count=total_scrape_count, total_batches=len(scraped) + len(served),
                         max_cost_usd=max_cost_usd, callback_url=callback_url)
    batches.insert(conn, job_id, 0, BatchSource.APIFY, scraped)
    batches.insert(conn, job_id, len(scraped), BatchSource.LISTS, served)
    own = lists.create(conn, job_id, api_key_id, found.scrape, per_account_limit, actor_id)
    accounts.insert(conn, job_id, scraped + served, per_account_limit, {**own, **found.reused}, found.reused)
    return job_id, len(scraped) + len(served), found


@atomic
def stop_job(conn, job_id, status, message):
    """End an active job as cancelled (or failed): its batches that no task is starting close at
    once (queued ones never start), its accounts and the lists it was scraping are cut where
    they got to. Returns the Apify runs still going, to abort, or None when it was not active."""
    batches.lock_all(conn, job_id)
    if not jobs.stop(conn, job_id, status, message):
        return None
    cut_by = CutBy.CANCEL if status == JobStatus.CANCELLED else CutBy.FAILURE
    batches.close(conn, job_id)
    accounts.cut(conn, job_id, cut_by, message)
    lists.cut(conn, job_id, cut_by, message)
    return ledger.running(conn, job_id)


@atomic
def delete_job(conn, job_id):
    """Delete the job, its batches, results and accounts; the lists it was still scraping are cut
    by the deletion, and its runs stay in the ledger (the clock aborts any still going and
    charges them). Returns the runs still going, to abort now; None when it was gone already."""
    batches.lock_all(conn, job_id)
    results.remove(conn, job_id)
    if jobs.lock(conn, job_id) is None:
        return None
    accounts.lock(conn, job_id)
    lists.cut(conn, job_id, CutBy.DELETION, "the job scraping it was deleted")
    accounts.remove(conn, job_id)
    batches.remove(conn, job_id)
    jobs.remove(conn, job_id)
    return ledger.running(conn, job_id)


forget_lists = atomic(lists.delete_caused_by)


# -- starting a run ----------------------------------------------------------------------------------

@atomic
def claim_start(conn, settings):
    """Lease the next batch to start, if the account has room: (Claim or None, Capacity). The
    start attempt is written down (`store.ledger.intend`) before Apify is asked."""
    room = capacity.lock(conn, settings)
    if room.free == 0:
        return None, room
    now, token = utcnow(), secrets.token_urlsafe(24)
    for job_id, first in batches.next_start(conn, now):
        row = batches.claim(conn, batches.due_start(job_id, first, now), B.STARTING, settings.batch_lease_seconds,
                            batches.hash_token(token))
        if row is not None:
            run_accounts, continuation, wanted = accounts.next_run(conn, job_id, row.batch_index)
            claim = _claim(conn, row, B.STARTING, run_accounts, continuation=continuation, max_items=wanted,
                           token=token)
            ledger.intend(conn, claim, claim.api_key_id, now + timedelta(seconds=settings.batch_lease_seconds))
            return claim, room
    return None, room


def _claim(conn, row, status, run_accounts, **extra):
    job = jobs.begin(conn, row.job_id)
    return Claim(row.job_id, row.batch_index, row.attempts, status, row.source, run_accounts, row.apify_run_id,
                 row.items_read, row.failures, job.target_gender, job.min_confidence, job.per_account_limit,
                 job.api_key_id, None if job.max_cost_usd is None else float(job.max_cost_usd), **extra)


@dataclass(frozen=True)
class RunBudget:
    """What the claimed batch's run may charge: `usd` (None: the job has no budget), or, when
    nothing is left, whether that is for good (`spent`) or until the job's other runs are charged."""

    usd: float | None
    spent: bool = False

    @property
    def wait(self):
        return self.usd == 0 and not self.spent


def run_budget(engine, claim, min_run_usd):
    """How much the claimed batch's run may charge (a `RunBudget`).

    A run gets its share of the budget (maxCostUsd / batches of runs), never more than what is
    left: the budget less what the job was charged less a share for each other run of the job
    not charged yet (starting, running, or ended and not read), which may yet charge that much.
    When less than `min_run_usd` (a run's start fee) is left, the budget is spent if no other
    run may still charge less than its share; else the batch waits for them.
    """
    if claim.max_cost_usd is None:
        return RunBudget(None)
    with engine.connect() as conn:
        job = jobs.get_job(engine, claim.job_id, jobs.ALL_KEYS)
        share = claim.max_cost_usd / max(1, batches.apify_batches(conn, claim.job_id))
        others = ledger.uncharged(conn, claim.job_id, except_batch=claim.batch_index)
    left = claim.max_cost_usd - float(job["cost_usd"]) - others * share
    if left < min_run_usd or left <= 0:
        return RunBudget(0.0, spent=others == 0)
    return RunBudget(min(share, left))


@atomic
def record_run(conn, claim, run_id, charge_cap):
    """The claimed start's run is `run_id` (starting -> running). The run is registered in the
    ledger whatever happens: when the batch is no longer the claim's, or its job stopped
    meanwhile, the run is nobody's, is aborted by the caller (and the clock) and still charged.
    Returns whether the batch took it."""
    taken = batches.hold(conn, claim) and jobs.is_active(conn, claim.job_id)
    if taken:
        batches.record_run(conn, claim, run_id)
    else:
        batches.hand_back(conn, claim, B.CANCELLED)
    ledger.register(conn, run_id, claim.job_id, claim.batch_index, claim.attempt, charge_cap=charge_cap,
                    max_items=claim.max_items, api_key_id=claim.api_key_id)
    return taken


@atomic
def refused(conn, claim):
    """Apify refused the start for want of room: back to the queue at once, not a fault."""
    ledger.void(conn, claim.job_id, claim.batch_index, claim.attempt)
    batches.hand_back(conn, claim, B.QUEUED, **batches.requeue_values(0))


@atomic
def budget_wait(conn, claim, delay_seconds):
    """Nothing is left of the budget until the job's runs still going are charged: the batch
    waits `delay_seconds`, not a fault."""
    ledger.void(conn, claim.job_id, claim.batch_index, claim.attempt)
    batches.hand_back(conn, claim, B.QUEUED, **batches.requeue_values(delay_seconds))


@atomic
def budget_spent(conn, claim):
    """The job's budget leaves nothing for this batch's run: no run starts, its accounts are cut
    by the budget and the batch ends. Returns the job's status afterwards."""
    ledger.void(conn, claim.job_id, claim.batch_index, claim.attempt)
    if not batches.hold(conn, claim):
        return None
    jobs.flag_budget(conn, claim.job_id)
    message = "the job's budget (maxCostUsd) is spent"
    accounts.cut(conn, claim.job_id, CutBy.BUDGET, message, batch_index=claim.batch_index)
    return _end(conn, claim, message)


# -- a run ended -------------------------------------------------------------------------------------

@atomic
def run_ended(conn, run_id, run_status):
    """Apify says the run ended (webhook or poller): the batch running it, if one does, is
    finished, to be stored. Returns its (job_id, batch_index), or None."""
    holder = batches.holder_of(conn, run_id)
    finished = holder is not None and batches.finish(conn, holder.job_id, holder.batch_index, run_id)
    ledger.end(conn, run_id, run_status)
    return (holder.job_id, holder.batch_index) if finished else None


@atomic
def charge_run(conn, run_id, usd, run_status, final):
    """What the ended run cost goes into the ledger once, and into its job's cost."""
    run = ledger.run(conn, run_id)
    if run is None:
        return
    jobs.lock(conn, run.job_id)
    if ledger.charge(conn, run_id, usd, run_status, final) is not None:
        jobs.add_cost(conn, run.job_id, usd)


@atomic
def settle_run(conn, run_id, final_usd):
    """The run's final usage: the ledger's correction, and its job's cost with it."""
    run = ledger.run(conn, run_id)
    if run is None:
        return
    jobs.lock(conn, run.job_id)
    settled = ledger.settle(conn, run_id, final_usd)
    if settled is not None:
        jobs.add_cost(conn, run.job_id, settled[1])


# -- storing -----------------------------------------------------------------------------------------

@atomic
def claim_store(conn, job_id, batch_index, lease_seconds):
    """Lease a finished batch (or one whose storer's lease ran out) to store its run's dataset."""
    row = batches.claim(conn, batches.to_store(job_id, batch_index), B.STORING, lease_seconds)
    if row is None:
        return None
    return _claim(conn, row, B.STORING, json.loads(row.run_accounts or "[]"))


@atomic
def store_chunk(conn, claim, chunk, items_read, lease_seconds):
    """Store one classified chunk (`batch_processor.Chunk`) with the dataset offset reached,
    renewing the lease: the batch's tally, the job's new results, the accounts' counts (and
    what error and cursor rows say), the followers into the lists the job's runs fill. Returns
    the number of new profiles; LeaseLost (nothing written) when the batch is not ours any more.
    A batch of lists stores what it serves the same way."""
    if not batches.add_tally(conn, claim, chunk.tally, items_read, lease_seconds):
        raise LeaseLost(f"batch {claim.batch_index} of job {claim.job_id} is no longer held")
    new, kept = results.write_rows(conn, claim.job_id, chunk.rows)
    jobs.add_chunk(conn, claim.job_id, chunk.tally, new)
    positions = accounts.add_chunk(conn, claim.job_id, chunk.by_account, kept, chunk.errors, chunk.cursors)
    lists.add_pages(conn, chunk.listed, positions)
    metrics.profiles_kept(new)
    return new


@atomic
def close_run(conn, claim, *, tokens, quota, usage_usd, run_cap, price_per_item, start_fee):
    """All of the run's pages are stored: say how its accounts ended, from what it stored, its
    OUTPUT record, and whether it stopped at its own charge or item cap; their lists end with
    them. True when a list goes on (the batch needs another run); LeaseLost when the batch is
    not ours any more."""
    _hold(conn, claim)
    items = batches.items_read(conn, claim)
    run = ledger.run(conn, claim.apify_run_id)
    budget_cut = ledger.stopped_by_its_caps(run, items, usage_usd, price_per_item, start_fee)
    if budget_cut:
        jobs.flag_budget(conn, claim.job_id)
    goes_on = accounts.close_run(conn, claim.job_id, claim.batch_index, claim.accounts, tokens=tokens,
                                 quota=quota, items=items, run_cap=run_cap, budget_cut=budget_cut)
    lists.end(conn, claim.job_id, claim.batch_index)
    return goes_on


@atomic
def go_on(conn, claim):
    """A list of the batch goes on in another run: back to the queue, due at once."""
    batches.hand_back(conn, claim, B.QUEUED, **batches.requeue_values(0))


@atomic
def release(conn, claim):
    """The slice ran out before the dataset did: storing -> finished, resumed from its offset."""
    batches.hand_back(conn, claim, B.FINISHED, run_checked_at=utcnow())


@atomic
def unfinish(conn, claim):
    """The run had not ended after all (an early or forged notice): back to running."""
    batches.hand_back(conn, claim, B.RUNNING, run_checked_at=utcnow())


@atomic
def end_batch(conn, claim):
    """All stored (or served): the batch succeeds and rolls into its job, exactly once. Returns
    the job's status afterwards, or None when this execution no longer held the batch."""
    return _end(conn, claim, None)


def _end(conn, claim, error_message):
    tally = batches.end(conn, claim, error_message)
    if tally is None:
        return None
    failed = error_message is not None
    if failed:
        accounts.cut(conn, claim.job_id, CutBy.FAILURE, error_message, batch_index=claim.batch_index)
    lists.end(conn, claim.job_id, claim.batch_index)
    metrics.batch_ended(failed, tally.scraped)
    return jobs.roll(conn, claim.job_id, failed, error_message, why_empty=lambda: accounts.summary(conn, claim.job_id))


def _hold(conn, claim):
    """Lock the claimed batch, or LeaseLost: another execution holds it, or its job stopped."""
    if not (batches.hold(conn, claim) and jobs.is_active(conn, claim.job_id)):
        raise LeaseLost(f"batch {claim.batch_index} of job {claim.job_id} is no longer held")


# -- what goes wrong ---------------------------------------------------------------------------------

def fault(engine, settings, claim, what, error):
    """Apply the fault policy (`store.batches.decide`) to a held batch; returns the `Outcome`.
    A start that failed made no run as far as we know: its attempt is given up (were there a run
    after all, the clock's sweep of the account's runs finds it by its tag)."""
    decision = batches.decide(claim, what, settings)
    if decision.action is Action.FAIL_JOB:
        abort = stop_job(engine, claim.job_id, JobStatus.FAILED, error)
        _fail(engine, claim, error)
        return Outcome(job_status=JobStatus.FAILED if abort is not None else None, abort=abort or [])
    if decision.action is Action.FAIL_BATCH:
        return Outcome(job_status=_fail(engine, claim, error))
    _retry(engine, claim, decision, error)
    if decision.action is Action.RETRY_STORE:
        return Outcome(store_after=decision.delay)
    return Outcome(start_after=decision.delay)


@atomic
def _fail(conn, claim, error):
    _give_up_start(conn, claim)
    return _end(conn, claim, error)


@atomic
def _retry(conn, claim, decision, error):
    _give_up_start(conn, claim)
    if decision.action is Action.RETRY_STORE:
        batches.hand_back(conn, claim, B.FINISHED, **batches.restore_values(error))
    else:
        batches.hand_back(conn, claim, B.QUEUED, **batches.requeue_values(decision.delay, error, failure=True))


def _give_up_start(conn, claim):
    if claim.status == B.STARTING:
        ledger.void(conn, claim.job_id, claim.batch_index, claim.attempt)


@atomic
def let_go(conn, claim):
    """The claim lost its batch: when that is because the job stopped, close the batch (if
    another execution holds it, it is theirs)."""
    if batches.hold(conn, claim) and not jobs.is_active(conn, claim.job_id):
        batches.hand_back(conn, claim, B.CANCELLED)


# -- serving stored lists ----------------------------------------------------------------------------

@atomic
def claim_serve(conn, settings):
    """Lease a batch of lists with an account to serve, oldest job first, unless
    LISTS_SERVE_PARALLEL are being served already; the Claim, or None."""
    if batches.serving(conn) >= settings.lists_serve_parallel:
        return None
    for job_id, index in batches.serve_order(conn, settings.reuse_wait_seconds):
        row = batches.claim(conn, batches.to_serve(job_id, index), B.STORING, settings.batch_lease_seconds)
        if row is not None:
            return _claim(conn, row, B.STORING, [])
    return None


class Serve(enum.Enum):
    """What to do with an account of a batch of lists."""

    SERVE = "serve"  # its list ended and serves what it wants (or all there is)
    WAIT = "wait"  # its list is still being scraped for another job
    SCRAPE = "scrape"  # its list was cut short of what it wants, went, or took longer than the wait


@atomic
def serve_wanted(conn, settings):
    """Whether a batch of lists is due and fewer than LISTS_SERVE_PARALLEL are being served."""
    return batches.serving(conn) < settings.lists_serve_parallel and batches.serve_due(conn, settings.reuse_wait_seconds)


@atomic
def accounts_to_serve(conn, claim, wait_seconds):
    """[(account row, Serve)] of the held batch's accounts still to serve; LeaseLost when it is
    not held. A job waits at most `wait_seconds` (from its creation) for another job's scrape."""
    _hold(conn, claim)
    waited_enough = jobs.age(conn, claim.job_id) >= wait_seconds
    found = []
    for row in accounts.to_serve(conn, claim.job_id, claim.batch_index):
        if row.list_status == ListStatus.PENDING and not waited_enough:
            found.append((row, Serve.WAIT))
        elif row.list_status is not None and lists.serves(row, row.requested):
            found.append((row, Serve.SERVE))
        else:
            found.append((row, Serve.SCRAPE))
    return found


@atomic
def close_served(conn, claim, account, listed):
    """An account was served from its list as far as it goes: say how it ended."""
    _hold(conn, claim)
    accounts.close_served(conn, claim.job_id, account, listed)


@atomic
def serve_later(conn, claim):
    """The batch waits for a list still being scraped, or its slice ran out: back to the queue."""
    batches.hand_back(conn, claim, B.QUEUED)


@atomic
def rescrape(conn, claim, names, batch_size, actor_id):
    """The lists these accounts waited for were cut short of what they want, went, or took too
    long: the job scrapes them itself, in new batches of runs (its batch count grows with them).
    LeaseLost when the batch is not ours."""
    _hold(conn, claim)
    groups = batches.group(names, batch_size)
    total, api_key_id = jobs.grow(conn, claim.job_id, len(groups))
    first = total - len(groups)
    lists.lock_planning(conn)
    created = lists.create(conn, claim.job_id, api_key_id, names, claim.per_account_limit, actor_id)
    batches.insert(conn, claim.job_id, first, BatchSource.APIFY, groups)
    forgotten = accounts.reassign(conn, claim.job_id, [(name, first + i, created[name])
                                                       for i, group in enumerate(groups) for name in group])
    batches.forget(conn, claim, forgotten)
    jobs.take_back(conn, claim.job_id, forgotten)


# -- what the clock looks after ----------------------------------------------------------------------

@atomic
def resolve_start(conn, job_id, batch_index, attempt, found):
    """A start attempt whose lease ran out with no run recorded: `found` is its run's id at Apify,
    or None. A run found is registered, and the batch adopts it when it still waits for it (else
    the run is nobody's: aborted and charged). A batch with no run goes back to the queue, or
    closes when its job stopped. Returns whether it adopted the run."""
    adopted = found is not None and batches.adopt(conn, job_id, batch_index, attempt, found,
                                                   accounts.next_run(conn, job_id, batch_index)[0])
    if not adopted:
        batches.reclaim_start(conn, job_id, batch_index, attempt)
    if found is not None:
        ledger.register(conn, found, job_id, batch_index, attempt)
    else:
        ledger.void(conn, job_id, batch_index, attempt)
    return adopted


@atomic
def found_run(conn, run_id, job_id, batch_index, attempt):
    """The clock's sweep found a run of ours that nobody recorded: registered, nobody's (aborted
    and charged). A run of a start still under way is its start's (or, lost, the clock's to adopt)."""
    if ledger.starting(conn, job_id, batch_index, attempt):
        return False
    ledger.register(conn, run_id, job_id, batch_index, attempt)
    return True


purge_lists = atomic(lists.purge)
purge_runs = atomic(ledger.purge)
reclaim_stores = atomic(batches.reclaim_stores)
close_left_over = atomic(batches.close_left_over)
