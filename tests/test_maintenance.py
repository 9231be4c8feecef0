"""Upkeep from Postgres state alone: lost batches are published again, old jobs purged."""
from datetime import timedelta

import sqlalchemy as sa

from utils import maintenance, store
from utils.config import Settings

SETTINGS = Settings(requeue_stalled_seconds=60, results_ttl_days=30)


def _job(engine, accounts=("a", "b", "c")):
    job_id, _ = store.jobs.create_job(
        engine, api_key_id=None, accounts=list(accounts), target_gender="any", min_confidence=0.0,
        total_scrape_count=30, per_account_limit=10, batch_size=1,
    )
    return job_id


def _set(engine, table, job_id, **values):
    with engine.begin() as conn:
        conn.execute(table.update().where(table.c.job_id == job_id).values(**values))


def _reconcile(engine):
    published = []
    maintenance.reconcile(engine, SETTINGS, lambda job_id, index: published.append((job_id, index)))
    return published


def test_a_batch_whose_holder_died_is_published_again(db):
    job_id = _job(db)
    dead = store.batches.claim_batch(db, job_id, 1, lease_seconds=60)
    assert (job_id, 1) not in _reconcile(db)  # the lease still runs
    _set(db, store.schema.batches, job_id, lease_expires_at=store.utcnow() - timedelta(seconds=1))
    assert (job_id, 1) in _reconcile(db)
    taken_over = store.batches.claim_batch(db, job_id, 1, lease_seconds=60)
    assert taken_over.attempt == dead.attempt + 1
    assert store.batches.end_batch(db, dead, store.batches.BatchTally()) is None


def test_waiting_batches_are_published_again_only_when_every_job_is_silent(db):
    job_id = _job(db)
    assert not [p for p in _reconcile(db) if p[0] == job_id]
    with db.begin() as conn:  # nothing anywhere has moved for two minutes
        conn.execute(store.schema.jobs.update().where(store.schema.jobs.c.status.in_(store.schema.ACTIVE_JOB_STATUSES))
                     .values(updated_at=store.utcnow() - timedelta(minutes=2)))
    assert [p for p in _reconcile(db) if p[0] == job_id] == [(job_id, 0), (job_id, 1), (job_id, 2)]
    assert not [p for p in _reconcile(db) if p[0] == job_id]  # not again right away


def test_batches_of_ended_jobs_are_left_alone(db):
    job_id = _job(db)
    store.batches.claim_batch(db, job_id, 0, lease_seconds=60)
    store.jobs.cancel_job(db, job_id)
    _set(db, store.schema.batches, job_id, lease_expires_at=store.utcnow() - timedelta(seconds=1))
    _set(db, store.schema.jobs, job_id, updated_at=store.utcnow() - timedelta(minutes=2))
    assert not [p for p in _reconcile(db) if p[0] == job_id]


def test_purge_deletes_only_jobs_past_their_retention(db):
    old, fresh = _job(db), _job(db)
    claim = store.batches.claim_batch(db, old, 0, 60)
    store.batches.record_run(db, claim, "RUN-OLD")
    _set(db, store.schema.jobs, old, created_at=store.utcnow() - timedelta(days=31))
    aborted = []
    assert maintenance.purge(db, SETTINGS, aborted.extend) >= 1
    assert store.jobs.get_job(db, old, store.jobs.ALL_KEYS) is None and store.jobs.get_job(db, fresh, store.jobs.ALL_KEYS) is not None
    assert aborted == ["RUN-OLD"]
    with db.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(store.schema.batches)
                            .where(store.schema.batches.c.job_id == old)).scalar() == 0
