"""The Apify capacity governor (table apify_capacity, one row): how many runs may be in flight.

Runs in flight are counted from apify_runs (`store.ledger.in_flight`: runs being started or
running, whether or not a batch still wants them) across every worker and dyno.
The cap they are held to is the smallest of what is known:

- `APIFY_MAX_CONCURRENT_RUNS`, and `APIFY_MEMORY_LIMIT_MB` / `APIFY_MEMORY_MBYTES`, when set;
- the account's own limits (`GET /v2/users/me/limits`, refreshed by the clock), less what other
  software on the same account uses (`account_cap`);
- `APIFY_FALLBACK_MAX_RUNS` when neither is known;
- for `APIFY_CAPACITY_BACKOFF_SECONDS` after Apify refused a start as over the account's memory
  or concurrent-runs limit, the number of runs we had in flight then (`lowered_cap`).

A refusal is back-pressure: the batch waits, it never fails. The row is also the lock that
serialises the decision to start a run (`lock`), so two workers cannot both take the last slot.
"""
import math
from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa

from utils.store import ledger
from utils.store.schema import apify_capacity, utcnow

_ROW = apify_capacity.c.id == 1


@dataclass(frozen=True)
class Capacity:
    in_flight: int
    cap: int

    @property
    def free(self):
        return max(0, self.cap - self.in_flight)


def effective_cap(row, settings, now):
    """The cap in force now, from the governor row and the settings (see the module docstring)."""
    known = [cap for cap in (settings.apify_max_concurrent_runs or None, _memory_cap(settings), row.account_cap)
             if cap is not None]
    cap = min(known) if known else settings.apify_fallback_max_runs
    if row.lowered_until is not None and row.lowered_until > now and row.lowered_cap is not None:
        cap = min(cap, row.lowered_cap)
    return max(1, cap)


def _memory_cap(settings):
    if not settings.apify_memory_limit_mb:
        return None
    return settings.apify_memory_limit_mb // settings.apify_memory_mbytes


def lock(conn, settings):
    """Take the governor's lock for this transaction; returns the `Capacity` now."""
    now = utcnow()
    row = conn.execute(
        apify_capacity.update().where(_ROW).values(updated_at=now).returning(*apify_capacity.c)
    ).first()
    return Capacity(ledger.in_flight(conn), effective_cap(row, settings, now))


def snapshot(engine, settings):
    """The `Capacity` now, without the lock (for metrics and the job status)."""
    with engine.connect() as conn:
        row = conn.execute(apify_capacity.select().where(_ROW)).first()
        return Capacity(ledger.in_flight(conn), effective_cap(row, settings, utcnow()))


def lower(engine, settings, in_flight):
    """Apify refused a start with `in_flight` of our runs going: hold the cap there for a while."""
    until = utcnow() + timedelta(seconds=settings.apify_capacity_backoff_seconds)
    with engine.begin() as conn:
        conn.execute(apify_capacity.update().where(_ROW).values(lowered_cap=max(1, in_flight), lowered_until=until))


def learn(engine, settings, limits, ours):
    """Record the account's cap from its limits (a dict, see `Scraper.account_limits`; None when
    they could not be read), less what other software on the account uses; `ours` is the number
    of our runs in flight."""
    if limits is None:
        with engine.begin() as conn:
            conn.execute(apify_capacity.update().where(_ROW).values(limits_checked_at=utcnow()))
        return
    others_runs = max(0, limits["active_runs"] - ours)
    by_runs = limits["max_runs"] - others_runs
    run_gb = settings.apify_memory_mbytes / 1024
    others_gb = max(0.0, limits["memory_used_gb"] - ours * run_gb)
    by_memory = math.floor((limits["max_memory_gb"] - others_gb) / run_gb + 1e-9)
    with engine.begin() as conn:
        conn.execute(apify_capacity.update().where(_ROW).values(
            account_cap=max(1, min(by_runs, by_memory)), limits_checked_at=utcnow()))


def limits_due(engine, settings):
    """Whether the account's limits should be read again."""
    with engine.connect() as conn:
        checked = conn.execute(sa.select(apify_capacity.c.limits_checked_at).where(_ROW)).scalar()
    return checked is None or checked < utcnow() - timedelta(seconds=settings.apify_limits_refresh_seconds)


def sweep_since(engine, settings):
    """When the account's run list was last swept for runs of ours nobody recorded, if a sweep
    is due (every APIFY_ORPHAN_SWEEP_SECONDS; a day back the first time), else None."""
    now = utcnow()
    with engine.connect() as conn:
        swept = conn.execute(sa.select(apify_capacity.c.runs_swept_at).where(_ROW)).scalar()
    if swept is not None and swept > now - timedelta(seconds=settings.apify_orphan_sweep_seconds):
        return None
    return swept or now - timedelta(days=1)


def swept(engine, at):
    with engine.begin() as conn:
        conn.execute(apify_capacity.update().where(_ROW).values(runs_swept_at=at))
