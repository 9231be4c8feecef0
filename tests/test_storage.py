"""Job and batch state on both databases: claims, leases, fencing, exactly-once completion."""
import time

import pytest
import sqlalchemy as sa

from utils import storage


def _job(engine, accounts=("a", "b", "c"), batch_size=2, gender="any"):
    job_id, _ = storage.create_job(
        engine, api_key_id=None, accounts=list(accounts), target_gender=gender, min_confidence=0.0,
        total_scrape_count=30, per_account_limit=10, batch_size=batch_size,
    )
    return job_id


def test_migrate_is_idempotent(db):
    assert storage.migrate(db) == []


def test_create_job_writes_job_and_batches(db):
    job_id = _job(db, accounts=[f"u{i}" for i in range(5)], batch_size=2)
    job = storage.get_job(db, job_id)
    assert job["status"] == "queued" and job["total_batches"] == 3
    assert storage.queued_batch_indexes(db, job_id) == [0, 1, 2]


def test_a_batch_is_claimed_once_while_its_lease_lasts(db):
    job_id = _job(db)
    claim = storage.claim_batch(db, job_id, 0, lease_seconds=60)
    assert claim.accounts == ["a", "b"] and claim.attempt == 1
    assert storage.claim_batch(db, job_id, 0, lease_seconds=60) is None
    assert 55 < storage.lease_left(db, job_id, 0) <= 60
    assert storage.get_job(db, job_id)["status"] == "processing"


def test_an_expired_lease_can_be_taken_over_and_fences_the_old_holder(db):
    job_id = _job(db)
    old = storage.claim_batch(db, job_id, 0, lease_seconds=5)
    with db.begin() as conn:  # the holder's process died long ago
        conn.execute(storage.batches.update().values(lease_expires_at=storage.utcnow()))
    new = storage.claim_batch(db, job_id, 0, lease_seconds=60)
    assert new.attempt == 2
    assert storage.renew_lease(db, old, 60) is False
    assert storage.end_batch(db, old, storage.BatchTally(scraped=5)) is None
    assert storage.end_batch(db, new, storage.BatchTally(scraped=7)) == "processing"
    assert storage.get_job(db, job_id)["profiles_scraped"] == 7


def test_a_retry_resumes_its_own_claim(db):
    job_id = _job(db)
    claim = storage.claim_batch(db, job_id, 0, lease_seconds=60)
    assert storage.claim_batch(db, job_id, 0, 60, resume_attempt=claim.attempt + 5) is None
    again = storage.claim_batch(db, job_id, 0, 60, resume_attempt=claim.attempt)
    assert again.attempt == claim.attempt + 1


def test_release_forgets_a_spent_run_only_when_told(db):
    job_id = _job(db)
    claim = storage.claim_batch(db, job_id, 0, 60)
    storage.record_run(db, claim, "RUN1")
    storage.release_batch(db, claim, "timeout", forget_run=False)
    claim = storage.claim_batch(db, job_id, 0, 60)
    assert claim.apify_run_id == "RUN1"
    storage.release_batch(db, claim, "run failed", forget_run=True)
    assert storage.claim_batch(db, job_id, 0, 60).apify_run_id is None


def test_the_last_batch_completes_the_job_exactly_once(db):
    job_id = _job(db)
    first, second = (storage.claim_batch(db, job_id, i, 60) for i in (0, 1))
    tally = storage.BatchTally(scraped=4, male=1, female=2, unknown=1)
    assert storage.end_batch(db, first, tally) == "processing"
    assert storage.end_batch(db, first, tally) is None  # a duplicate delivery
    assert storage.end_batch(db, second, storage.BatchTally(), error_message="Apify 503") == "completed"
    job = storage.get_job(db, job_id)
    assert (job["batches_done"], job["batches_failed"], job["profiles_scraped"]) == (2, 1, 4)
    assert (job["male_count"], job["female_count"], job["unknown_count"]) == (1, 2, 1)
    assert job["completed_at"] is not None and job["error_message"] is None


def test_a_job_whose_batches_all_fail_fails(db):
    job_id = _job(db, accounts=["a"])
    claim = storage.claim_batch(db, job_id, 0, 60)
    assert storage.end_batch(db, claim, storage.BatchTally(), error_message="run FAILED") == "failed"
    assert storage.get_job(db, job_id)["error_message"] == "run FAILED"


def test_failing_a_job_cancels_what_has_not_started(db):
    job_id = _job(db, accounts=list("abcdef"))
    running = storage.claim_batch(db, job_id, 0, 60)
    assert storage.fail_job(db, job_id, "Apify API error 401") is True
    assert storage.fail_job(db, job_id, "again") is False
    assert storage.queued_batch_indexes(db, job_id) == []
    assert storage.claim_batch(db, job_id, 1, 60) is None
    assert storage.lease_left(db, job_id, 1) is None
    assert storage.renew_lease(db, running, 60) is False
    job = storage.get_job(db, job_id)
    assert job["status"] == "failed" and job["error_message"] == "Apify API error 401"


def test_delete_job_removes_everything(db):
    job_id = _job(db)
    storage.delete_job(db, job_id)
    assert storage.get_job(db, job_id) is None
    with db.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(storage.batches)
                            .where(storage.batches.c.job_id == job_id)).scalar() == 0


def test_timestamps_are_aware_utc(db):
    job = storage.get_job(db, _job(db))
    assert job["created_at"].utcoffset().total_seconds() == 0
    assert abs(job["created_at"].timestamp() - time.time()) < 60


@pytest.mark.parametrize("value", [0, 1, 987654321, 2**62])
def test_cursor_round_trip(value):
    assert storage.decode_cursor(storage.encode_cursor(value)) == value


@pytest.mark.parametrize("cursor", ["", "x", "cjo", "cjotMQ", "bm9wZQ", "😀", "cjo5OTk5OTk5OTk5OTk5OTk5OTk5OQ"])
def test_foreign_cursors_are_refused(cursor):
    with pytest.raises(ValueError):
        storage.decode_cursor(cursor)
