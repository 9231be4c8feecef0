"""The clock's tick from Postgres state alone (against the emulator for its Apify calls), and
the retention purge. The tick recovers every state a dead worker or a stop can leave: a start
whose worker died before or after Apify made its run, a store whose worker died, runs no batch
wants any more, runs nobody charged."""
from datetime import timedelta

import pytest
import sqlalchemy as sa

from utils import maintenance, store
from utils.config import Settings
from utils.scraper import Scraper

from conftest import cancel
from stack import APIFY_TOKEN

B, J, R = store.schema.batches, store.schema.jobs, store.schema.apify_runs


class Recorder:
    """A publisher that writes down what the tick would have sent."""

    def __init__(self):
        self.stores, self.starts, self.serves, self.callbacks = [], 0, 0, []

    def store(self, job_id, batch_index):
        self.stores.append((job_id, batch_index))

    def start(self):
        self.starts += 1

    def serve(self):
        self.serves += 1

    def callback(self, job_id):
        self.callbacks.append(job_id)


@pytest.fixture
def idle(db):
    """The test's own database, whose account's run list was swept for orphans just now."""
    with db.begin() as conn:
        conn.execute(store.schema.apify_capacity.update().values(runs_swept_at=store.utcnow()))
    return db


@pytest.fixture
def settings(emulator):
    return Settings(apify_token=APIFY_TOKEN, apify_api_url=emulator.url, apify_http_retries=0,
                    apify_max_concurrent_runs=100, results_ttl_days=30, apify_cost_settle_seconds=0,
                    apify_orphan_sweep_seconds=3600)


def _job(engine, accounts=("a", "b", "c")):
    job_id, *_ = store.work.create_job(
        engine, api_key_id=None, usernames=list(accounts), target_gender="any", min_confidence=0.0,
        total_scrape_count=30, per_account_limit=10, batch_size=1, actor_id="test/actor",
    )
    return job_id


def _set(engine, table, job_id, **values):
    with engine.begin() as conn:
        conn.execute(table.update().where(table.c.job_id == job_id).values(**values))


def _tick(engine, settings):
    published = Recorder()
    maintenance.tick(engine, settings, Scraper(settings), published)
    return published


def _long_ago(engine, job_id):
    """Every lease and start attempt of the job ran out, and nothing was heard of its runs, a while ago."""
    past = store.utcnow() - timedelta(minutes=5)
    _set(engine, B, job_id, lease_expires_at=past, run_checked_at=past)
    _set(engine, R, job_id, expires_at=past, checked_at=past, ended_at=past)


def _status(engine, job_id):
    with engine.connect() as conn:
        return conn.execute(sa.select(B.c.status).where(B.c.job_id == job_id).order_by(B.c.batch_index)).scalars().all()


def _runs(engine, job_id):
    with engine.connect() as conn:
        return conn.execute(sa.select(R.c.run_id, R.c.status).where(R.c.job_id == job_id).order_by(R.c.id)).all()


def _start_at_apify(settings, claim):
    """What a worker does between its claim and recording the run: start it, tagged."""
    return Scraper(settings).start_run({"usernames": claim.accounts, "max_count": 50}, 10, tag=claim.tag)


def test_a_start_whose_worker_died_before_apify_made_a_run_goes_back(idle, settings):
    job_id = _job(idle)
    starting, _ = store.work.claim_start(idle, settings)
    assert starting.job_id == job_id
    assert _tick(idle, settings).starts == 1 and _status(idle, job_id)[0] == "starting", "the lease still runs"
    _long_ago(idle, job_id)
    published = _tick(idle, settings)
    assert published.starts == 1 and _status(idle, job_id)[0] == "queued"
    assert _runs(idle, job_id) == [(None, "void")]
    taken_over, _ = store.work.claim_start(idle, settings)
    assert (taken_over.batch_index, taken_over.attempt) == (starting.batch_index, starting.attempt + 1)
    assert store.work.record_run(idle, starting, f"LATE-{job_id}", None) is False


def test_a_run_started_but_never_recorded_is_found_by_its_tag_and_adopted(idle, settings, emulator):
    emulator.configure(run_duration_s=30)
    job_id = _job(idle, accounts=["orphanfan"])
    claim, _ = store.work.claim_start(idle, settings)
    run_id = _start_at_apify(settings, claim)  # ... and the worker dies here
    _long_ago(idle, job_id)
    _tick(idle, settings)
    assert _status(idle, job_id) == ["running"] and _runs(idle, job_id) == [(run_id, "running")]
    assert [run["status"] for run in emulator.stats()["runs"]] == ["RUNNING"], "no second run: this one is the job's"
    Scraper(settings).abort_run(run_id)  # it ends: the poller finds it, the batch is stored
    _long_ago(idle, job_id)
    assert (job_id, 0) in _tick(idle, settings).stores


def test_a_run_of_a_stopped_job_never_recorded_is_aborted_and_charged(idle, settings, emulator):
    emulator.configure(run_duration_s=30)
    job_id = _job(idle, accounts=["orphanfan"])
    claim, _ = store.work.claim_start(idle, settings)
    run_id = _start_at_apify(settings, claim)
    cancel(idle, job_id)  # a stop leaves a start to its holder, which dies
    _long_ago(idle, job_id)
    _tick(idle, settings)  # found by its tag: nobody's
    assert _status(idle, job_id) == ["cancelled"]
    _long_ago(idle, job_id)
    _tick(idle, settings)  # aborted
    assert [run["status"] for run in emulator.stats()["runs"]] == ["ABORTED"]
    _long_ago(idle, job_id)
    _tick(idle, settings)  # and charged
    assert _runs(idle, job_id) == [(run_id, "settled")]
    assert store.jobs.get_job(idle, job_id, store.jobs.ALL_KEYS)["cost_usd"] == pytest.approx(
        emulator.stats()["runs"][0]["usage_total_usd"])
    assert store.capacity.snapshot(idle, settings).in_flight == 0


def test_a_run_of_a_start_that_failed_is_swept_up_aborted_and_charged(idle, settings, emulator):
    """The start's answer was lost (or apify-client's retry made a second run): the batch went
    on without it, and the account's run list, swept now and then, still names it by its tag."""
    emulator.configure(run_duration_s=30)
    job_id = _job(idle, accounts=["sweptfan"])
    claim, _ = store.work.claim_start(idle, settings)
    run_id = _start_at_apify(settings, claim)
    store.work.fault(idle, settings, claim, store.batches.Fault.TRANSIENT, "the answer was lost")
    assert _runs(idle, job_id) == [(None, "void")]
    with idle.begin() as conn:
        conn.execute(store.schema.apify_capacity.update().values(runs_swept_at=store.utcnow() - timedelta(hours=1)))
    _tick(idle, settings)
    assert _runs(idle, job_id) == [(run_id, "running")], "found by its tag, and nobody's"
    _long_ago(idle, job_id)
    _tick(idle, settings)
    assert [run["status"] for run in emulator.stats()["runs"]] == ["ABORTED"]
    _long_ago(idle, job_id)
    _tick(idle, settings)
    assert _runs(idle, job_id) == [(run_id, "settled")] and store.capacity.snapshot(idle, settings).in_flight == 0


def test_a_starting_batch_of_a_stopped_job_whose_worker_died_is_closed(idle, settings):
    job_id = _job(idle)
    store.work.claim_start(idle, settings)
    cancel(idle, job_id)
    assert _status(idle, job_id) == ["starting", "cancelled", "cancelled"]
    assert store.capacity.snapshot(idle, settings).in_flight == 1
    _long_ago(idle, job_id)
    published = _tick(idle, settings)
    assert _status(idle, job_id) == ["cancelled"] * 3 and published.starts == 0
    assert store.capacity.snapshot(idle, settings).in_flight == 0, "nothing runs: the governor counts nothing"


def test_runs_no_batch_wants_are_aborted(idle, settings, emulator):
    """A stop closes what no task holds; the clock aborts the runs it left at Apify."""
    emulator.configure(run_duration_s=30)
    job_id = _job(idle, accounts=["left1", "left2"])
    runs = []
    for _ in range(2):
        claim, _ = store.work.claim_start(idle, settings)
        runs.append(_start_at_apify(settings, claim))
        assert store.work.record_run(idle, claim, runs[-1], None)
    cancel(idle, job_id)
    _long_ago(idle, job_id)
    _tick(idle, settings)
    assert sorted(run["status"] for run in emulator.stats()["runs"]) == ["ABORTED", "ABORTED"]
    with idle.begin() as conn:  # as a hand-back racing the stop would leave one
        conn.execute(B.update().where(B.c.job_id == job_id, B.c.batch_index == 0).values(status="queued"))
    assert _tick(idle, settings).starts == 0 and _status(idle, job_id) == ["cancelled", "cancelled"]


def test_the_poller_finds_ended_runs_with_bounded_calls(idle, settings, emulator):
    emulator.configure(run_duration_s=30)
    job_id = _job(idle, accounts=[f"poll{i}" for i in range(4)])
    scraper = Scraper(settings)
    runs = []
    for _ in range(4):
        claim, _ = store.work.claim_start(idle, settings)
        run_id = _start_at_apify(settings, claim)
        store.work.record_run(idle, claim, run_id, None)
        runs.append((claim.batch_index, run_id))
    for _, run_id in runs[:2]:  # two runs end
        scraper.abort_run(run_id)
    _set(idle, R, job_id, checked_at=store.utcnow() - timedelta(minutes=5))
    few = _tick(idle, settings.with_overrides({"apify_poll_reads": 10}))
    assert sorted(few.stores) == [(job_id, index) for index, _ in runs[:2]]
    assert emulator.stats()["requests"].get("list_runs") is None, "four runs: read one by one"
    scraper.abort_run(runs[2][1])
    _set(idle, R, job_id, checked_at=store.utcnow() - timedelta(minutes=5))
    many = _tick(idle, settings.with_overrides({"apify_poll_reads": 1}))
    assert (job_id, runs[2][0]) in many.stores and (job_id, runs[3][0]) not in many.stores
    assert emulator.stats()["requests"]["list_runs"] == {"200": 1}, "more than a few: one list"
    assert _tick(idle, settings).stores == [], "the one still running was asked about just now"


def test_a_finished_batch_nobody_stored_is_published_again_after_a_quiet_while(idle, settings):
    job_id = _job(idle, accounts=["a"])
    claim, _ = store.work.claim_start(idle, settings)
    run_id = f"R-{job_id}"
    store.work.record_run(idle, claim, run_id, None)
    store.work.run_ended(idle, run_id, "SUCCEEDED")
    assert (job_id, 0) not in _tick(idle, settings).stores
    _set(idle, B, job_id, run_checked_at=store.utcnow() - timedelta(minutes=5))
    assert (job_id, 0) in _tick(idle, settings).stores
    assert (job_id, 0) not in _tick(idle, settings).stores, "not again right away"


def test_a_callback_whose_message_was_lost_is_found(idle, settings):
    job_id = _job(idle, accounts=["a"])
    _set(idle, J, job_id, status="completed", callback_url="https://example.com/hook",
         completed_at=store.utcnow() - timedelta(minutes=2))
    assert job_id in _tick(idle, settings).callbacks
    assert job_id not in _tick(idle, settings).callbacks, "not again right away"


def test_the_account_limits_set_the_cap_unless_the_operator_did(idle, settings, emulator):
    emulator.configure(max_memory_mb=6144, max_concurrent_runs=40)
    learning = settings.with_overrides({"apify_max_concurrent_runs": 0})
    with idle.begin() as conn:
        conn.execute(store.schema.apify_capacity.update().values(limits_checked_at=None, account_cap=None))
    _tick(idle, learning)
    assert store.capacity.snapshot(idle, learning).cap == 6
    assert store.capacity.snapshot(idle, settings).cap == 6, "100 configured: the account's 6 still bind"


def test_purge_deletes_only_jobs_past_their_retention_and_none_of_their_spend(idle, settings):
    old, fresh = _job(idle), _job(idle)
    claim, _ = store.work.claim_start(idle, settings)
    run_id = f"RUN-OLD-{old}"
    store.work.record_run(idle, claim, run_id, None)
    _set(idle, J, old, created_at=store.utcnow() - timedelta(days=31))
    aborted = []
    assert maintenance.purge(idle, settings, aborted.extend)[0] >= 1
    assert store.jobs.get_job(idle, old, store.jobs.ALL_KEYS) is None
    assert store.jobs.get_job(idle, fresh, store.jobs.ALL_KEYS) is not None
    assert aborted == [run_id]
    with idle.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(B).where(B.c.job_id == old)).scalar() == 0
    assert _runs(idle, old) == [(run_id, "running")], "the run stays the ledger's, to be aborted and charged"
