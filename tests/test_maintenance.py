"""Upkeep from Postgres state alone: lost batches are published again, old jobs purged."""
from datetime import timedelta

import sqlalchemy as sa

from utils import maintenance, storage
from utils.config import Settings

SETTINGS = Settings(requeue_stalled_seconds=60, results_ttl_days=30)


def _job(engine, accounts=("a", "b", "c")):
    job_id, _ = storage.create_job(
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
    dead = storage.claim_batch(db, job_id, 1, lease_seconds=60)
    assert (job_id, 1) not in _reconcile(db)  # the lease still runs
    _set(db, storage.batches, job_id, lease_expires_at=storage.utcnow() - timedelta(seconds=1))
    assert (job_id, 1) in _reconcile(db)
    taken_over = storage.claim_batch(db, job_id, 1, lease_seconds=60)
    assert taken_over.attempt == dead.attempt + 1
    assert storage.end_batch(db, dead, storage.BatchTally()) is None


def test_waiting_batches_are_published_again_only_when_every_job_is_silent(db):
    job_id = _job(db)
    assert not [p for p in _reconcile(db) if p[0] == job_id]
    with db.begin() as conn:  # nothing anywhere has moved for two minutes
        conn.execute(storage.jobs.update().where(storage.jobs.c.status.in_(storage.ACTIVE_JOB_STATUSES))
                     .values(updated_at=storage.utcnow() - timedelta(minutes=2)))
    assert [p for p in _reconcile(db) if p[0] == job_id] == [(job_id, 0), (job_id, 1), (job_id, 2)]
    assert not [p for p in _reconcile(db) if p[0] == job_id]  # not again right away


def test_batches_of_ended_jobs_are_left_alone(db):
    job_id = _job(db)
    storage.claim_batch(db, job_id, 0, lease_seconds=60)
    storage.cancel_job(db, job_id)
    _set(db, storage.batches, job_id, lease_expires_at=storage.utcnow() - timedelta(seconds=1))
    _set(db, storage.jobs, job_id, updated_at=storage.utcnow() - timedelta(minutes=2))
    assert not [p for p in _reconcile(db) if p[0] == job_id]


def test_purge_deletes_only_jobs_past_their_retention(db):
    old, fresh = _job(db), _job(db)
    claim = storage.claim_batch(db, old, 0, 60)
    storage.record_run(db, claim, "RUN-OLD")
    _set(db, storage.jobs, old, created_at=storage.utcnow() - timedelta(days=31))
    aborted = []
    assert maintenance.purge(db, SETTINGS, aborted.extend) >= 1
    assert storage.get_job(db, old) is None and storage.get_job(db, fresh) is not None
    assert aborted == ["RUN-OLD"]
    with db.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(storage.batches)
                            .where(storage.batches.c.job_id == old)).scalar() == 0
