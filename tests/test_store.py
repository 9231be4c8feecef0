"""Job and batch state on both databases: claims, leases, fencing, exactly-once completion."""
import time

import pytest
import sqlalchemy as sa

from utils import store


def _job(engine, accounts=("a", "b", "c"), batch_size=2, gender="any"):
    job_id, _ = store.jobs.create_job(
        engine, api_key_id=None, accounts=list(accounts), target_gender=gender, min_confidence=0.0,
        total_scrape_count=30, per_account_limit=10, batch_size=batch_size,
    )
    return job_id


def test_migrate_is_idempotent(db):
    assert store.migrate(db) == []


def test_create_job_writes_job_and_batches(db):
    job_id = _job(db, accounts=[f"u{i}" for i in range(5)], batch_size=2)
    job = store.jobs.get_job(db, job_id, store.jobs.ALL_KEYS)
    assert job["status"] == "queued" and job["total_batches"] == 3
    assert store.batches.queued_batch_indexes(db, job_id) == [0, 1, 2]


def test_a_batch_is_claimed_once_while_its_lease_lasts(db):
    job_id = _job(db)
    claim = store.batches.claim_batch(db, job_id, 0, lease_seconds=60)
    assert claim.accounts == ["a", "b"] and claim.attempt == 1
    assert store.batches.claim_batch(db, job_id, 0, lease_seconds=60) is None
    assert 55 < store.batches.lease_left(db, job_id, 0) <= 60
    assert store.jobs.get_job(db, job_id, store.jobs.ALL_KEYS)["status"] == "processing"


def test_an_expired_lease_can_be_taken_over_and_fences_the_old_holder(db):
    job_id = _job(db)
    old = store.batches.claim_batch(db, job_id, 0, lease_seconds=5)
    with db.begin() as conn:  # the holder's process died long ago
        conn.execute(store.schema.batches.update().values(lease_expires_at=store.utcnow()))
    new = store.batches.claim_batch(db, job_id, 0, lease_seconds=60)
    assert new.attempt == 2
    assert store.batches.renew_lease(db, old, 60) is False
    assert store.batches.end_batch(db, old, store.batches.BatchTally(scraped=5)) is None
    assert store.batches.end_batch(db, new, store.batches.BatchTally(scraped=7)) == "processing"
    assert store.jobs.get_job(db, job_id, store.jobs.ALL_KEYS)["profiles_scraped"] == 7


def test_a_retry_resumes_its_own_claim(db):
    job_id = _job(db)
    claim = store.batches.claim_batch(db, job_id, 0, lease_seconds=60)
    assert store.batches.claim_batch(db, job_id, 0, 60, resume_attempt=claim.attempt + 5) is None
    again = store.batches.claim_batch(db, job_id, 0, 60, resume_attempt=claim.attempt)
    assert again.attempt == claim.attempt + 1


def test_release_forgets_a_spent_run_only_when_told(db):
    job_id = _job(db)
    claim = store.batches.claim_batch(db, job_id, 0, 60)
    store.batches.record_run(db, claim, "RUN1")
    store.batches.release_batch(db, claim, "timeout", forget_run=False)
    claim = store.batches.claim_batch(db, job_id, 0, 60)
    assert claim.apify_run_id == "RUN1"
    store.batches.release_batch(db, claim, "run failed", forget_run=True)
    assert store.batches.claim_batch(db, job_id, 0, 60).apify_run_id is None


def test_the_last_batch_completes_the_job_exactly_once(db):
    job_id = _job(db)
    first, second = (store.batches.claim_batch(db, job_id, i, 60) for i in (0, 1))
    tally = store.batches.BatchTally(scraped=4, male=1, female=2, unknown=1)
    assert store.batches.end_batch(db, first, tally) == "processing"
    assert store.batches.end_batch(db, first, tally) is None  # a duplicate delivery
    assert store.batches.end_batch(db, second, store.batches.BatchTally(), error_message="Apify 503") == "completed"
    job = store.jobs.get_job(db, job_id, store.jobs.ALL_KEYS)
    assert (job["batches_done"], job["batches_failed"], job["profiles_scraped"]) == (2, 1, 4)
    assert (job["male_count"], job["female_count"], job["unknown_count"]) == (1, 2, 1)
    assert job["completed_at"] is not None and job["error_message"] is None


def test_a_job_whose_batches_all_fail_fails(db):
    job_id = _job(db, accounts=["a"])
    claim = store.batches.claim_batch(db, job_id, 0, 60)
    assert store.batches.end_batch(db, claim, store.batches.BatchTally(), error_message="run FAILED") == "failed"
    assert store.jobs.get_job(db, job_id, store.jobs.ALL_KEYS)["error_message"] == "run FAILED"


def test_failing_a_job_cancels_what_has_not_started(db):
    job_id = _job(db, accounts=list("abcdef"))
    running = store.batches.claim_batch(db, job_id, 0, 60)
    assert store.jobs.fail_job(db, job_id, "Apify API error 401") is True
    assert store.jobs.fail_job(db, job_id, "again") is False
    assert store.batches.queued_batch_indexes(db, job_id) == []
    assert store.batches.claim_batch(db, job_id, 1, 60) is None
    assert store.batches.lease_left(db, job_id, 1) is None
    assert store.batches.renew_lease(db, running, 60) is False
    job = store.jobs.get_job(db, job_id, store.jobs.ALL_KEYS)
    assert job["status"] == "failed" and job["error_message"] == "Apify API error 401"


def test_delete_job_removes_everything(db):
    job_id = _job(db)
    store.jobs.delete_job(db, job_id)
    assert store.jobs.get_job(db, job_id, store.jobs.ALL_KEYS) is None
    with db.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(store.schema.batches)
                            .where(store.schema.batches.c.job_id == job_id)).scalar() == 0


def test_timestamps_are_aware_utc(db):
    job = store.jobs.get_job(db, _job(db), store.jobs.ALL_KEYS)
    assert job["created_at"].utcoffset().total_seconds() == 0
    assert abs(job["created_at"].timestamp() - time.time()) < 60


@pytest.mark.parametrize("value", [0, 1, 987654321, 2**62])
def test_cursor_round_trip(value):
    assert store.results.decode_cursor(store.results.encode_cursor(value)) == value


@pytest.mark.parametrize("cursor", ["", "x", "cjo", "cjotMQ", "bm9wZQ", "😀", "cjo5OTk5OTk5OTk5OTk5OTk5OTk5OQ"])
def test_foreign_cursors_are_refused(cursor):
    with pytest.raises(ValueError):
        store.results.decode_cursor(cursor)
