"""Job and batch state on both databases: the governor, fair share, claims, leases, fencing,
exactly-once completion."""
import time
from datetime import timedelta

import pytest
import sqlalchemy as sa

from utils import store
from utils.batch_processor import Chunk
from utils.config import Settings
from utils.store.batches import Tally


def _job(engine, accounts=("a", "b", "c"), batch_size=2, gender="any", api_key_id=None):
    job_id, *_ = store.jobs.create_job(
        engine, api_key_id=api_key_id, accounts=list(accounts), target_gender=gender, min_confidence=0.0,
        total_scrape_count=30, per_account_limit=10, batch_size=batch_size, actor_id="test/actor",
    )
    return job_id


def test_migrate_is_idempotent(db):
    assert store.migrate(db) == []


def test_create_job_writes_job_and_batches(db):
    job_id = _job(db, accounts=[f"u{i}" for i in range(5)], batch_size=2)
    job = store.jobs.get_job(db, job_id, store.jobs.ALL_KEYS)
    assert job["status"] == "queued" and job["total_batches"] == 3
    assert store.batches.batch_counts(db, [job_id]) == {job_id: {"queued": 3}}


@pytest.fixture
def idle(db):
    """The store as if nothing else were going on: every other job stopped, the governor reset."""
    with db.begin() as conn:
        conn.execute(B.update().where(B.c.status.in_(store.schema.MOVING)).values(status="cancelled"))
        conn.execute(J.update().where(J.c.status.in_(store.schema.ACTIVE_JOB_STATUSES)).values(status="cancelled"))
        conn.execute(store.schema.apify_capacity.update().values(account_cap=None, lowered_cap=None,
                                                                 lowered_until=None, limits_checked_at=None))
    return db


B, J = store.schema.batches, store.schema.jobs
ROOMY = Settings(apify_max_concurrent_runs=100)


def _start(db, settings=ROOMY):
    claim, _room = store.batches.claim_start(db, settings)
    return claim


def _running(db, job_id, run_id="RUN"):
    """Claim the next batch to start and hand it to Apify as run `run_id`."""
    claim = _start(db)
    assert claim.job_id == job_id
    assert store.batches.record_run(db, claim, run_id, "token")
    return claim


def _finished(db, job_id, run_id="RUN"):
    claim = _running(db, job_id, run_id)
    assert store.batches.mark_finished(db, job_id, claim.batch_index, run_id, "SUCCEEDED")
    store_claim, run_status = store.batches.claim_store(db, job_id, claim.batch_index, 60)
    assert run_status == "SUCCEEDED"
    return store_claim


def _status(db, job_id, index):
    with db.connect() as conn:
        return conn.execute(sa.select(B.c.status).where(B.c.job_id == job_id, B.c.batch_index == index)).scalar()


def test_a_start_claims_the_first_waiting_batch_once(idle):
    job_id = _job(idle)
    claim = _start(idle)
    assert (claim.job_id, claim.batch_index, claim.accounts, claim.attempt) == (job_id, 0, ["a", "b"], 1)
    assert _start(idle).batch_index == 1
    assert _start(idle) is None, "nothing left to start"
    assert 15 < store.batches.lease_left(idle, job_id, 0) <= ROOMY.batch_lease_seconds
    assert store.jobs.get_job(idle, job_id, store.jobs.ALL_KEYS)["status"] == "processing"


def test_the_governor_holds_runs_in_flight_at_the_cap(idle):
    _job(idle, accounts=list("abcdef"), batch_size=1)
    two = Settings(apify_max_concurrent_runs=2)
    first, second = _start(idle, two), _start(idle, two)
    assert first and second
    claim, room = store.batches.claim_start(idle, two)
    assert claim is None and (room.in_flight, room.cap) == (2, 2)
    assert store.batches.record_run(idle, first, "R1", "t")
    assert store.batches.mark_finished(idle, first.job_id, first.batch_index, "R1", "SUCCEEDED")
    assert _start(idle, two) is not None, "a run that ended frees its slot"


def test_a_refusal_lowers_the_cap_for_a_while_and_the_account_limits_raise_it(idle):
    _job(idle, accounts=list("abcdef"), batch_size=1)
    settings = Settings()  # nothing configured: learn
    assert store.capacity.snapshot(idle, settings).cap == settings.apify_fallback_max_runs
    store.capacity.learn(idle, settings, {"max_runs": 32, "max_memory_gb": 16, "active_runs": 3,
                                          "memory_used_gb": 3.0}, ours=1)
    # other software runs 2 runs of 1 GB: 14 GB and 30 runs are left for us
    assert store.capacity.snapshot(idle, settings).cap == 14
    store.capacity.lower(idle, settings, in_flight=5)
    assert store.capacity.snapshot(idle, settings).cap == 5
    with idle.begin() as conn:
        conn.execute(store.schema.apify_capacity.update().values(lowered_until=store.utcnow()))
    assert store.capacity.snapshot(idle, settings).cap == 14
    assert store.capacity.snapshot(idle, Settings(apify_memory_limit_mb=4096)).cap == 4


def test_the_next_start_goes_to_the_job_with_fewest_runs_then_the_key_with_fewest(idle):
    one, two = (store.keys.api_key_id(idle, store.keys.create_api_key(idle, name)) for name in ("one", "two"))
    big = _job(idle, accounts=[f"b{i}" for i in range(6)], batch_size=1, api_key_id=one)
    for _ in range(3):
        assert _start(idle).job_id == big
    small = _job(idle, accounts=["s1", "s2"], batch_size=1, api_key_id=one)
    other = _job(idle, accounts=["o1", "o2"], batch_size=1, api_key_id=two)
    assert _start(idle).job_id == other, "a tie between jobs goes to the key with fewer runs"
    assert _start(idle).job_id == small, "then the job with fewer runs in flight"
    assert _start(idle).job_id == other, "a tie again, and key two has fewer"
    assert _start(idle).job_id == small, "fewer in flight than the big job"


def test_a_lease_that_ran_out_is_taken_over_and_fences_the_old_holder(idle):
    job_id = _job(idle)
    old = _start(idle)
    with idle.begin() as conn:  # the holder's process died long ago
        conn.execute(B.update().values(lease_expires_at=store.utcnow()))
    assert store.batches.reclaim_expired(idle) == []
    assert _status(idle, job_id, 0) == "queued"
    new = _start(idle)
    assert (new.batch_index, new.attempt) == (0, 2)
    assert store.batches.record_run(idle, old, "OLD", "t") is False
    assert store.batches.record_run(idle, new, "NEW", "t") is True


def test_an_ended_run_is_marked_once_and_only_for_its_own_run(idle):
    job_id = _job(idle)
    claim = _running(idle, job_id, "R1")
    assert store.batches.mark_finished(idle, job_id, claim.batch_index, "OTHER", "SUCCEEDED") is False
    assert store.batches.mark_finished(idle, job_id, claim.batch_index, "R1", "SUCCEEDED") is True
    assert store.batches.mark_finished(idle, job_id, claim.batch_index, "R1", "SUCCEEDED") is False


def test_a_store_tallies_each_chunk_and_the_last_batch_completes_the_job_once(idle):
    job_id = _job(idle)
    first = _finished(idle, job_id, "R1")
    row = {"profile_id": "p1", "username": "p1", "full_name": "", "gender": "male", "gender_confidence": 0.9,
           "is_private": None, "is_verified": None, "profile_pic_url": None, "sources": ["a"]}
    assert store.batches.store_chunk(idle, first, Chunk([row], Tally(3, 1, 1, 1)), 3, 60) == 1
    assert store.batches.store_chunk(idle, first, Chunk([row], Tally(1, 1, 0, 0)), 4, 60) == 0
    assert store.batches.end_batch(idle, first, run_cost_usd=0.5) == "processing"
    assert store.batches.end_batch(idle, first) is None, "a duplicate delivery"
    second = _finished(idle, job_id, "R2")
    assert store.batches.end_batch(idle, second, "Apify 503") == "completed"
    job = store.jobs.get_job(idle, job_id, store.jobs.ALL_KEYS)
    assert (job["batches_done"], job["batches_failed"], job["profiles_scraped"], job["profiles_kept"]) == (2, 1, 4, 1)
    assert (job["male_count"], job["female_count"], job["unknown_count"]) == (2, 1, 1)
    assert job["cost_usd"] == pytest.approx(0.5) and job["error_message"] is None


def test_a_fenced_store_writes_nothing(idle):
    job_id = _job(idle)
    old = _finished(idle, job_id)
    store.batches.release_store(idle, old)
    new, _ = store.batches.claim_store(idle, job_id, old.batch_index, 60)
    with pytest.raises(store.batches.LeaseLost):
        store.batches.store_chunk(idle, old, Chunk([], Tally(5)), 5, 60)
    assert new.items_read == 0 and store.batches.end_batch(idle, old) is None


def test_a_store_whose_holder_died_is_handed_back_to_be_stored(idle):
    job_id = _job(idle)
    claim = _finished(idle, job_id)
    with idle.begin() as conn:
        conn.execute(B.update().where(B.c.job_id == job_id).values(lease_expires_at=store.utcnow()))
    assert store.batches.reclaim_expired(idle) == [(job_id, claim.batch_index)]
    assert _status(idle, job_id, claim.batch_index) == "finished"


def test_a_requeued_batch_waits_out_its_delay_and_keeps_what_its_failed_run_cost(idle):
    job_id = _job(idle, accounts=["a"])
    claim = _start(idle)
    store.batches.requeue(idle, claim, delay_seconds=60, error="run FAILED", failure=True, run_cost_usd=0.25)
    assert _start(idle) is None, "not due yet"
    with idle.begin() as conn:
        conn.execute(B.update().where(B.c.job_id == job_id).values(not_before=store.utcnow()))
    again = _start(idle)
    assert (again.failures, again.apify_run_id) == (1, None)
    assert store.batches.end_batch(idle, again, "run FAILED") == "failed"
    job = store.jobs.get_job(idle, job_id, store.jobs.ALL_KEYS)
    assert job["error_message"] == "run FAILED" and job["cost_usd"] == pytest.approx(0.25)


def test_failing_a_job_cancels_what_no_task_holds_and_names_its_runs(idle):
    job_id = _job(idle, accounts=list("abcdef"))
    _running(idle, job_id, "R1")
    held = _start(idle)
    assert store.jobs.fail_job(idle, job_id, "Apify API error 401") == ["R1"]
    assert store.jobs.fail_job(idle, job_id, "again") is None
    assert [_status(idle, job_id, i) for i in range(3)] == ["cancelled", "starting", "cancelled"]
    assert store.batches.record_run(idle, held, "R2", "t") is False
    job = store.jobs.get_job(idle, job_id, store.jobs.ALL_KEYS)
    assert job["status"] == "failed" and job["error_message"] == "Apify API error 401"


def test_a_preliminary_cost_is_settled_once(idle):
    job_id = _job(idle, accounts=["a"])
    claim = _finished(idle, job_id)
    store.batches.end_batch(idle, claim, run_cost_usd=0.1)
    due = store.batches.costs_to_settle(idle, store.utcnow() + timedelta(seconds=1), 10)
    assert (job_id, 0, "RUN") in due
    store.batches.settle_cost(idle, job_id, 0, 0.4)
    store.batches.settle_cost(idle, job_id, 0, 9.0)
    assert store.jobs.get_job(idle, job_id, store.jobs.ALL_KEYS)["cost_usd"] == pytest.approx(0.4)


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


def test_every_table_has_row_level_security_on_postgres(quiet_engine):
    """Supabase's anon and authenticated roles reach nothing, schema_migrations included."""
    with quiet_engine.connect() as conn:
        tables = dict(conn.exec_driver_sql(
            "select relname, relrowsecurity from pg_class join pg_namespace n on n.oid = relnamespace "
            "where nspname = 'public' and relkind = 'r'").all())
    assert {"schema_migrations", "api_keys", "scrape_jobs", "scrape_batches", "scrape_results", "scrape_accounts",
            "apify_capacity"} <= set(tables)
    assert [name for name, secured in tables.items() if not secured] == []
