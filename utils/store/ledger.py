"""Money (tables apify_runs, spend_ledger): every Apify run a batch may have started, and what
each one cost. The only module that writes a run's status and the ledger.

    from              to        transition  trigger                                          fenced by
    -                 starting  intend      a batch is claimed to start a run                (job, batch, attempt) unique
    starting          running   register    the start is recorded, or found at Apify after   status = starting
                                            its worker died (the run's tag names the attempt)
    starting          void      void        no run came of it (refused, budget, not found)   status = starting
    void              running   register    a start given up for lost made a run after all   no run id yet
    -                 running   register    a run we did not expect (a late start; one the   run_id unique
                                            clock's sweep or a webhook found unrecorded)
    running           ended     end         Apify's webhook or the poller say it ended       status = running
    running | ended   charged   charge      its usage read after it ended (the store, or     status not charged yet
                                            the clock for runs no batch stores)
    charged           settled   settle      its usage read again APIFY_COST_SETTLE_SECONDS   status = charged
                                            later (the first figure can be preliminary)
    settled | void    (gone)    purge       older than RESULTS_TTL_DAYS (what it cost stays  -
                                            in spend_ledger for good)

Every start attempt is written down before Apify is asked, so a run is never lost: the clock
looks for an unrecorded one by its tag in the account's run list, and a run no batch holds any
more (its job stopped or went, a start that lost its lease) is aborted and still charged.

spend_ledger is append-only (a trigger refuses UPDATE and DELETE): a run's first figure is one
entry, its correction when settled another; deleting a job deletes none of them. The monthly cap
reads it, with what active jobs may still spend (`store.jobs.reserved`) and what runs not yet
charged may (their charge caps).
"""
from datetime import timedelta

import sqlalchemy as sa

from utils.store import jobs
from utils.store.schema import (IN_FLIGHT, UNCHARGED, BatchStatus as B, RunStatus as R, apify_runs, batches,
                                spend_ledger, utcnow)

r, s, b = apify_runs.c, spend_ledger.c, batches.c


# -- transitions -----------------------------------------------------------------------------------

def intend(conn, claim, api_key_id, expires_at):
    """A batch was claimed to start a run: note the attempt before Apify is asked."""
    conn.execute(apify_runs.insert().values(
        job_id=claim.job_id, batch_index=claim.batch_index, attempt=claim.attempt, api_key_id=api_key_id,
        status=R.STARTING, created_at=utcnow(), expires_at=expires_at))


def register(conn, run_id, job_id, batch_index, attempt, *, charge_cap=None, max_items=None, api_key_id=None):
    """The attempt's run is `run_id` (starting -> running; void -> running for a start given up
    for lost that made a run after all); a run of no attempt written down is registered as it is
    found. Idempotent."""
    now = utcnow()
    started = conn.execute(apify_runs.update().where(
        r.job_id == job_id, r.batch_index == batch_index, r.attempt == attempt, r.run_id.is_(None),
        r.status.in_((R.STARTING, R.VOID)),
    ).values(run_id=run_id, status=R.RUNNING, charge_cap=charge_cap, max_items=max_items, checked_at=now,
             ended_at=None)).rowcount
    if not started and not _known(conn, run_id):
        conn.execute(apify_runs.insert().values(
            run_id=run_id, job_id=job_id, batch_index=batch_index, attempt=attempt, api_key_id=api_key_id,
            status=R.RUNNING, charge_cap=charge_cap, max_items=max_items, created_at=now, checked_at=now))


def _known(conn, run_id):
    return conn.execute(sa.select(sa.exists().where(r.run_id == run_id))).scalar()


def void(conn, job_id, batch_index, attempt):
    """The attempt started no run."""
    conn.execute(apify_runs.update().where(r.job_id == job_id, r.batch_index == batch_index, r.attempt == attempt,
                                           r.status == R.STARTING).values(status=R.VOID, ended_at=utcnow()))


def end(conn, run_id, run_status):
    """Apify says the run ended (running -> ended); False when it was not known to be running."""
    return bool(conn.execute(apify_runs.update().where(r.run_id == run_id, r.status == R.RUNNING)
                             .values(status=R.ENDED, run_status=run_status, ended_at=utcnow())).rowcount)


def charge(conn, run_id, usd, run_status, final):
    """What the ended run cost goes into the ledger, once (-> charged, or settled when `final`).
    Returns its job's id, or None when it was charged already."""
    now = utcnow()
    run = conn.execute(apify_runs.update().where(r.run_id == run_id, r.status.in_((R.RUNNING, R.ENDED))).values(
        status=R.SETTLED if final else R.CHARGED, cost_usd=usd, run_status=sa.func.coalesce(r.run_status, run_status),
        ended_at=sa.func.coalesce(r.ended_at, now),
    ).returning(r.job_id, r.api_key_id)).first()
    if run is None:
        return None
    _append(conn, run, run_id, "run", usd, now)
    return run.job_id


def settle(conn, run_id, final_usd):
    """The run's final usage replaces its first figure (a settlement entry for the difference).
    `final_usd` None: Apify no longer knows the run, and the first figure stands. Returns (its
    job's id, the difference) when there was one."""
    now = utcnow()
    run = conn.execute(apify_runs.update().where(r.run_id == run_id, r.status == R.CHARGED).values(
        status=R.SETTLED, cost_usd=sa.func.coalesce(final_usd, r.cost_usd),
    ).returning(r.job_id, r.api_key_id, r.cost_usd)).first()
    if run is None or final_usd is None:
        return None
    recorded = float(conn.execute(sa.select(sa.func.sum(s.usd)).where(s.run_id == run_id)).scalar() or 0)
    if abs(final_usd - recorded) <= 1e-9:
        return None
    _append(conn, run, run_id, "settlement", final_usd - recorded, now)
    return run.job_id, final_usd - recorded


def purge(conn, older_than):
    """Forget the runs whose story ended before `older_than` (their cost is in the ledger for good)."""
    return conn.execute(apify_runs.delete().where(r.status.in_((R.SETTLED, R.VOID)),
                                                  r.created_at < older_than)).rowcount


def _append(conn, run, run_id, kind, usd, now):
    conn.execute(spend_ledger.insert().values(api_key_id=run.api_key_id, job_id=run.job_id, run_id=run_id,
                                              kind=kind, usd=usd, recorded_at=now))


# -- reading ---------------------------------------------------------------------------------------

def run(conn, run_id):
    """The run's row (job_id, batch_index, attempt, api_key_id, status, charge_cap, max_items), or None."""
    return conn.execute(sa.select(r.job_id, r.batch_index, r.attempt, r.api_key_id, r.status, r.charge_cap,
                                  r.max_items).where(r.run_id == run_id)).first()


def stopped_by_its_caps(run, items, usage_usd, price_per_item, start_fee):
    """Whether a run (its row) that delivered `items` and charged `usage_usd` stopped because of
    its own caps: its items reached maxItems, or one more item would have passed maxTotalChargeUsd.
    The charge is computed from the items too: a usage read just after the run ended can be
    preliminary, the dataset's count is not."""
    if run is None:
        return False
    if run.max_items is not None and items >= run.max_items:
        return True
    if run.charge_cap is None:
        return False
    price = max(price_per_item, (usage_usd - start_fee) / items if items else 0.0)
    charged = max(usage_usd, start_fee + items * price)
    return charged + price > float(run.charge_cap) + 1e-9


def starting(conn, job_id, batch_index, attempt):
    """Whether the start attempt is still under way (no run recorded, not given up)."""
    return conn.execute(sa.select(sa.exists().where(r.job_id == job_id, r.batch_index == batch_index,
                                                    r.attempt == attempt, r.status == R.STARTING))).scalar()


def unknown(engine, run_ids):
    """Those of `run_ids` the ledger has never heard of."""
    if not run_ids:
        return []
    with engine.connect() as conn:
        known = set(conn.execute(sa.select(r.run_id).where(r.run_id.in_(run_ids))).scalars())
    return [run_id for run_id in run_ids if run_id not in known]


def in_flight(conn):
    """Runs holding room at Apify: being started, or running (whether a batch still wants them)."""
    return conn.execute(sa.select(sa.func.count()).where(r.status.in_(IN_FLIGHT))).scalar()


def uncharged(conn, job_id, except_batch=None):
    """How many of the job's runs may still charge it (starting, running, ended unread)."""
    where = [r.job_id == job_id, r.status.in_(UNCHARGED)]
    if except_batch is not None:
        where.append(r.batch_index != except_batch)
    return conn.execute(sa.select(sa.func.count()).where(*where)).scalar()


def month_spend(conn, api_key_id, since):
    """What the key is committed to since `since`: its ledger entries, what its active jobs may
    still spend, and the charge caps of its runs not charged yet whose job is no longer active."""
    spent = conn.execute(sa.select(sa.func.coalesce(sa.func.sum(s.usd), 0))
                         .where(s.api_key_id == api_key_id, s.recorded_at >= since)).scalar()
    unread = conn.execute(sa.select(sa.func.coalesce(sa.func.sum(r.charge_cap), 0)).where(
        r.api_key_id == api_key_id, r.status.in_(UNCHARGED), ~jobs.active(r.job_id))).scalar()
    return float(spent) + float(unread) + jobs.reserved(conn, api_key_id)


def lost_starts(engine, grace_seconds):
    """Start attempts whose lease ran out `grace_seconds` ago with no run recorded:
    [(job_id, batch_index, attempt, created_at)], to be looked for at Apify."""
    with engine.connect() as conn:
        return conn.execute(sa.select(r.job_id, r.batch_index, r.attempt, r.created_at).where(
            r.status == R.STARTING, r.expires_at < utcnow() - timedelta(seconds=grace_seconds))
            .order_by(r.created_at).limit(100)).all()


def mark_checked(engine, run_ids):
    """Apify was asked about these runs just now (the poller, an abort)."""
    if run_ids:
        with engine.begin() as conn:
            conn.execute(apify_runs.update().where(r.run_id.in_(run_ids), r.status == R.RUNNING)
                         .values(checked_at=utcnow()))


def to_poll(engine, checked_before, limit):
    """Running runs not asked about since `checked_before`, least recently asked first: [run_id]."""
    with engine.connect() as conn:
        return conn.execute(sa.select(r.run_id).where(r.status == R.RUNNING, r.checked_at < checked_before)
                            .order_by(r.checked_at).limit(limit)).scalars().all()


def unwanted(engine, checked_before, limit):
    """Running runs no batch holds any more (their job stopped or went, or a start lost its
    lease) not asked about since `checked_before`: [run_id], to abort."""
    held = sa.exists().where(b.job_id == r.job_id, b.batch_index == r.batch_index, b.apify_run_id == r.run_id,
                             b.status.in_((B.RUNNING, B.FINISHED, B.STORING)))
    with engine.connect() as conn:
        return conn.execute(sa.select(r.run_id).where(r.status == R.RUNNING, ~held, r.checked_at < checked_before)
                            .order_by(r.checked_at).limit(limit)).scalars().all()


def to_charge(engine, ended_before, limit):
    """Runs that ended before `ended_before` and are not charged yet (no store read them): [run_id]."""
    with engine.connect() as conn:
        return conn.execute(sa.select(r.run_id).where(r.status == R.ENDED, r.ended_at < ended_before)
                            .order_by(r.ended_at).limit(limit)).scalars().all()


def to_settle(engine, ended_before, limit):
    """Charged runs that ended before `ended_before`, to read their usage again: [run_id]."""
    with engine.connect() as conn:
        return conn.execute(sa.select(r.run_id).where(r.status == R.CHARGED, r.ended_at < ended_before)
                            .order_by(r.ended_at).limit(limit)).scalars().all()


def running(conn, job_id):
    """The job's runs still going (to abort when it stops or goes)."""
    return conn.execute(sa.select(r.run_id).where(r.job_id == job_id, r.status == R.RUNNING)).scalars().all()
