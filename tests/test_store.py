"""The job and batch lifecycles on both databases, through the steps of `store.work`: the
governor, fair share, claims, leases, fencing, stops, exactly-once completion."""
import time
import uuid

import pytest
import sqlalchemy as sa

from utils import store
from utils.batch_processor import Chunk
from utils.config import Settings
from utils.store.batches import Fault, Tally

B, J, R = store.schema.batches, store.schema.jobs, store.schema.apify_runs
ROOMY = Settings(apify_max_concurrent_runs=100, batch_max_retries=3)


def _job(engine, accounts=("a", "b", "c"), batch_size=2, gender="any", api_key_id=None, max_cost_usd=None):
    job_id, *_ = store.work.create_job(
        engine, api_key_id=api_key_id, usernames=list(accounts), target_gender=gender, min_confidence=0.0,
        total_scrape_count=30, per_account_limit=10, batch_size=batch_size, actor_id="test/actor",
        max_cost_usd=max_cost_usd)
    return job_id


def test_migrate_is_idempotent(db):
    assert store.migrate(db) == []


def test_create_job_writes_job_and_batches(db):
    job_id = _job(db, accounts=[f"u{i}" for i in range(5)], batch_size=2)
    job = store.jobs.get_job(db, job_id, store.jobs.ALL_KEYS)
    assert job["status"] == "queued" and job["total_batches"] == 3
    assert store.batches.batch_counts(db, [job_id]) == {job_id: {"queued": 3}}


def _start(db, settings=ROOMY):
    claim, _room = store.work.claim_start(db, settings)
    return claim


def _id(name):
    """A run id of this test's alone (Apify's are unique; the module's tests share a database)."""
    return f"{name}-{uuid.uuid4().hex[:8]}"


def _running(db, job_id, run_id):
    """Claim the next batch to start and hand it to Apify as run `run_id`."""
    claim = _start(db)
    assert claim.job_id == job_id
    assert store.work.record_run(db, claim, run_id, None)
    return claim


def _finished(db, job_id, run_id=None):
    run_id = run_id or _id("RUN")
    claim = _running(db, job_id, run_id)
    assert store.work.run_ended(db, run_id, "SUCCEEDED") == (job_id, claim.batch_index)
    return store.work.claim_store(db, job_id, claim.batch_index, 60)


def _status(db, job_id, index):
    with db.connect() as conn:
        return conn.execute(sa.select(B.c.status).where(B.c.job_id == job_id, B.c.batch_index == index)).scalar()


def _runs(db, job_id):
    with db.connect() as conn:
        return dict(conn.execute(sa.select(R.c.attempt, R.c.status).where(R.c.job_id == job_id)).all())


def test_a_start_claims_the_first_waiting_batch_once_and_writes_the_attempt_down(db):
    job_id = _job(db)
    claim = _start(db)
    assert (claim.job_id, claim.batch_index, claim.accounts, claim.attempt) == (job_id, 0, ["a", "b"], 1)
    assert claim.max_items == 20 and claim.token and claim.tag == f"followsift/{job_id}/0/1"
    assert _runs(db, job_id) == {1: "starting"}, "written down before Apify is asked"
    assert _start(db).batch_index == 1
    assert _start(db) is None, "nothing left to start"
    assert 15 < store.batches.lease_left(db, job_id, 0) <= ROOMY.batch_lease_seconds
    assert store.jobs.get_job(db, job_id, store.jobs.ALL_KEYS)["status"] == "processing"


def test_the_governor_counts_every_run_that_may_be_going(db):
    _job(db, accounts=list("abcdef"), batch_size=1)
    two = Settings(apify_max_concurrent_runs=2)
    first, second = _start(db, two), _start(db, two)
    assert first and second
    claim, room = store.work.claim_start(db, two)
    assert claim is None and (room.in_flight, room.cap) == (2, 2)
    run = _id("R1")
    assert store.work.record_run(db, first, run, None)
    store.work.refused(db, second)
    assert store.capacity.snapshot(db, two).in_flight == 1, "a refused start holds no room"
    assert store.work.run_ended(db, run, "SUCCEEDED")
    assert store.capacity.snapshot(db, two).in_flight == 0, "a run that ended frees its slot"


def test_a_refusal_lowers_the_cap_for_a_while_and_the_account_limits_raise_it(db):
    _job(db, accounts=list("abcdef"), batch_size=1)
    settings = Settings()  # nothing configured: learn
    assert store.capacity.snapshot(db, settings).cap == settings.apify_fallback_max_runs
    store.capacity.learn(db, settings, {"max_runs": 32, "max_memory_gb": 16, "active_runs": 3,
                                          "memory_used_gb": 3.0}, ours=1)
    # other software runs 2 runs of 1 GB: 14 GB and 30 runs are left for us
    assert store.capacity.snapshot(db, settings).cap == 14
    store.capacity.lower(db, settings, in_flight=5)
    assert store.capacity.snapshot(db, settings).cap == 5
    with db.begin() as conn:
        conn.execute(store.schema.apify_capacity.update().values(lowered_until=store.utcnow()))
    assert store.capacity.snapshot(db, settings).cap == 14
    assert store.capacity.snapshot(db, Settings(apify_memory_limit_mb=4096)).cap == 4


def test_the_next_start_goes_to_the_key_with_fewest_runs_then_the_job_with_fewest(db):
    one, two = (store.keys.api_key_id(db, store.keys.create_api_key(db, name)) for name in ("one", "two"))
    many = [_job(db, accounts=[f"m{i}"], batch_size=1, api_key_id=one) for i in range(3)]
    for job_id in many:
        assert _start(db).job_id == job_id, "one key alone: its jobs by runs in flight, then age"
    other = _job(db, accounts=["o1", "o2", "o3"], batch_size=1, api_key_id=two)
    more = _job(db, accounts=["x1", "x2"], batch_size=1, api_key_id=one)
    assert _start(db).job_id == other, "key two has no run in flight, key one three"
    assert _start(db).job_id == other, "one against three: key two again, however many jobs key one has"
    assert _start(db).job_id == other
    assert _start(db).job_id == more, "three each: the job with fewer runs in flight"


def test_a_start_whose_holder_died_goes_back_and_fences_the_old_holder(db):
    job_id = _job(db)
    old = _start(db)
    assert store.work.resolve_start(db, job_id, old.batch_index, old.attempt, None) is False
    assert _status(db, job_id, 0) == "queued" and _runs(db, job_id) == {1: "void"}
    new = _start(db)
    assert (new.batch_index, new.attempt) == (0, 2)
    late = _id("OLD")
    assert store.work.record_run(db, old, late, None) is False
    assert store.work.record_run(db, new, _id("NEW"), None) is True
    assert store.ledger.unwanted(db, store.utcnow(), 10) == [late], "a late run is nobody's, to abort"


def test_a_start_found_at_apify_after_its_holder_died_is_adopted(db):
    job_id = _job(db)
    claim = _start(db)
    found = _id("FOUND")
    assert store.work.resolve_start(db, job_id, claim.batch_index, claim.attempt, found) is True
    assert _status(db, job_id, 0) == "running" and _runs(db, job_id) == {1: "running"}
    assert store.work.run_ended(db, found, "SUCCEEDED") == (job_id, 0)


def test_an_ended_run_is_marked_once_and_only_for_its_own_run(db):
    job_id = _job(db)
    run = _id("R1")
    claim = _running(db, job_id, run)
    assert store.work.run_ended(db, _id("OTHER"), "SUCCEEDED") is None
    assert store.work.run_ended(db, run, "SUCCEEDED") == (job_id, claim.batch_index)
    assert store.work.run_ended(db, run, "SUCCEEDED") is None


def _row(pid, source="a"):
    return {"profile_id": pid, "username": pid, "full_name": "", "gender": "male", "gender_confidence": 0.9,
            "is_private": None, "is_verified": None, "profile_pic_url": None, "sources": [source]}


def test_a_store_tallies_each_chunk_and_the_last_batch_completes_the_job_once(db):
    job_id = _job(db)
    first = _finished(db, job_id)
    assert store.work.store_chunk(db, first, Chunk([_row("p1")], Tally(3, 1, 1, 1)), 3, 60) == 1
    assert store.work.store_chunk(db, first, Chunk([_row("p1")], Tally(1, 1, 0, 0)), 4, 60) == 0
    assert store.work.end_batch(db, first) == "processing"
    assert store.work.end_batch(db, first) is None, "a duplicate delivery"
    second = _finished(db, job_id)
    outcome = store.work.fault(db, ROOMY.with_overrides({"batch_max_retries": 0}), second, Fault.RUN_FAILED,
                               "Apify 503")
    assert outcome.job_status == "completed"
    job = store.jobs.get_job(db, job_id, store.jobs.ALL_KEYS)
    assert (job["batches_done"], job["batches_failed"], job["profiles_scraped"], job["profiles_kept"]) == (2, 1, 4, 1)
    assert (job["male_count"], job["female_count"], job["unknown_count"]) == (2, 1, 1)
    assert job["error_message"] is None
    page, _ = store.accounts.page(db, job_id, 10)
    assert [(a["account"], a["status"], a["cut_by"]) for a in page if a["account"] == "c"] == [("c", "cut", "failure")]


def test_a_fenced_store_writes_nothing(db):
    job_id = _job(db)
    old = _finished(db, job_id)
    store.work.release(db, old)
    new = store.work.claim_store(db, job_id, old.batch_index, 60)
    with pytest.raises(store.batches.LeaseLost):
        store.work.store_chunk(db, old, Chunk([], Tally(5)), 5, 60)
    assert new.items_read == 0 and store.work.end_batch(db, old) is None


def test_a_store_whose_holder_died_is_handed_back_to_be_stored(db):
    job_id = _job(db)
    claim = _finished(db, job_id)
    with db.begin() as conn:
        conn.execute(B.update().where(B.c.job_id == job_id).values(lease_expires_at=store.utcnow()))
    assert store.work.reclaim_stores(db) == [(job_id, claim.batch_index)]
    assert _status(db, job_id, claim.batch_index) == "finished"


def test_a_retried_start_waits_out_its_delay(db):
    job_id = _job(db, accounts=["a"])
    claim = _start(db)
    outcome = store.work.fault(db, ROOMY.with_overrides({"retry_backoff_seconds": 60}), claim, Fault.TRANSIENT,
                               "Apify 503")
    assert outcome.start_after > 0 and _runs(db, job_id) == {1: "void"}, "no run came of it"
    assert _start(db) is None, "not due yet"
    with db.begin() as conn:
        conn.execute(B.update().where(B.c.job_id == job_id).values(not_before=store.utcnow()))
    again = _start(db)
    assert (again.failures, again.apify_run_id) == (1, None)


def test_failing_a_job_closes_its_batches_but_the_one_being_started(db):
    job_id = _job(db, accounts=list("abcdef"))
    run = _id("R1")
    _running(db, job_id, run)
    held = _start(db)
    assert store.work.stop_job(db, job_id, "failed", "Apify API error 401") == [run]
    assert store.work.stop_job(db, job_id, "failed", "again") is None
    assert [_status(db, job_id, i) for i in range(3)] == ["cancelled", "starting", "cancelled"]
    assert store.work.record_run(db, held, _id("R2"), None) is False
    assert _status(db, job_id, 1) == "cancelled", "its holder closed it"
    job = store.jobs.get_job(db, job_id, store.jobs.ALL_KEYS)
    assert job["status"] == "failed" and job["error_message"] == "Apify API error 401"
    assert {a["status"] for a in store.accounts.page(db, job_id, 10)[0]} == {"cut"}


def test_delete_job_removes_everything_but_what_its_runs_cost(db):
    job_id = _job(db)
    claim, _ = store.work.claim_start(db, ROOMY)
    store.work.record_run(db, claim, f"RUN-{job_id}", None)
    assert store.work.delete_job(db, job_id) == [f"RUN-{job_id}"]
    assert store.work.delete_job(db, job_id) is None
    assert store.jobs.get_job(db, job_id, store.jobs.ALL_KEYS) is None
    with db.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(B).where(B.c.job_id == job_id)).scalar() == 0
    assert _runs(db, job_id) == {1: "running"}, "the run is still the ledger's: aborted and charged by the clock"


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
            "apify_capacity", "apify_runs", "spend_ledger"} <= set(tables)
    assert [name for name, secured in tables.items() if not secured] == []
