"""The clock's tick from Postgres state alone (against the emulator for its Apify calls), and
the retention purge."""
from datetime import timedelta

import pytest
import sqlalchemy as sa

from utils import maintenance, store
from utils.config import Settings
from utils.scraper import Scraper

from stack import APIFY_TOKEN

B, J = store.schema.batches, store.schema.jobs


class Recorder:
    """A publisher that writes down what the tick would have sent."""

    def __init__(self):
        self.stores, self.starts, self.serves, self.callbacks, self.aborted = [], 0, 0, [], []

    def store(self, job_id, batch_index):
        self.stores.append((job_id, batch_index))

    def start(self):
        self.starts += 1

    def serve(self):
        self.serves += 1

    def callback(self, job_id):
        self.callbacks.append(job_id)

    def abort(self, run_ids):
        self.aborted.extend(run_ids)


@pytest.fixture
def idle(db):
    with db.begin() as conn:
        conn.execute(B.update().where(B.c.status.in_(store.schema.MOVING)).values(status="cancelled"))
        conn.execute(J.update().where(J.c.status.in_(store.schema.ACTIVE_JOB_STATUSES)).values(status="cancelled"))
    return db


@pytest.fixture
def settings(emulator):
    return Settings(apify_token=APIFY_TOKEN, apify_api_url=emulator.url, apify_http_retries=0,
                    apify_max_concurrent_runs=100, results_ttl_days=30)


def _job(engine, accounts=("a", "b", "c")):
    job_id, *_ = store.jobs.create_job(
        engine, api_key_id=None, accounts=list(accounts), target_gender="any", min_confidence=0.0,
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
    _set(engine, B, job_id, lease_expires_at=store.utcnow() - timedelta(seconds=1),
         run_checked_at=store.utcnow() - timedelta(minutes=5))


def test_batches_whose_holder_died_are_handed_back(idle, settings):
    job_id = _job(idle)
    starting, _ = store.batches.claim_start(idle, settings)
    assert starting.job_id == job_id
    assert _tick(idle, settings).stores == []  # the lease still runs
    _long_ago(idle, job_id)
    published = _tick(idle, settings)
    assert published.starts == 1 and published.stores == []
    taken_over, _ = store.batches.claim_start(idle, settings)
    assert (taken_over.batch_index, taken_over.attempt) == (starting.batch_index, starting.attempt + 1)
    assert store.batches.record_run(idle, starting, "LATE", "t") is False


def test_batches_a_stop_missed_are_closed_and_their_runs_aborted(idle, settings):
    """A hand-back can commit between a stop's sweep of its batches and its job UPDATE."""
    job_id = _job(idle)
    running, _ = store.batches.claim_start(idle, settings)
    store.batches.record_run(idle, running, "RUN-LEFT", "t")
    store.jobs.cancel_job(idle, job_id)
    with idle.begin() as conn:  # as hand-backs racing the stop leave them
        conn.execute(B.update().where(B.c.job_id == job_id).values(status=sa.case(
            (B.c.batch_index == running.batch_index, "running"), else_="queued")))
    published = _tick(idle, settings)
    assert published.aborted == ["RUN-LEFT"] and published.starts == 0
    with idle.connect() as conn:
        statuses = conn.execute(sa.select(B.c.status).where(B.c.job_id == job_id)).scalars().all()
    assert statuses == ["cancelled"] * 3
    assert _tick(idle, settings).aborted == []


def test_the_poller_finds_ended_runs_with_bounded_calls(idle, settings, emulator):
    emulator.configure(run_duration_s=30)
    job_id = _job(idle, accounts=[f"poll{i}" for i in range(4)])
    scraper = Scraper(settings)
    runs = []
    for _ in range(4):
        claim, _ = store.batches.claim_start(idle, settings)
        run_id = scraper.start_run({"usernames": claim.accounts, "max_count": 10}, 10)
        store.batches.record_run(idle, claim, run_id, "t")
        runs.append((claim.batch_index, run_id))
    for _, run_id in runs[:2]:  # two runs end
        scraper.abort_run(run_id)
    _set(idle, B, job_id, run_checked_at=store.utcnow() - timedelta(minutes=5))
    few = _tick(idle, settings.with_overrides({"apify_poll_reads": 10}))
    assert sorted(few.stores) == [(job_id, index) for index, _ in runs[:2]]
    assert emulator.stats()["requests"].get("list_runs") is None, "four runs: read one by one"
    scraper.abort_run(runs[2][1])
    _set(idle, B, job_id, run_checked_at=store.utcnow() - timedelta(minutes=5))
    many = _tick(idle, settings.with_overrides({"apify_poll_reads": 1}))
    assert (job_id, runs[2][0]) in many.stores and (job_id, runs[3][0]) not in many.stores
    assert emulator.stats()["requests"]["list_runs"] == {"200": 1}, "more than a few: one list"
    assert _tick(idle, settings).stores == [], "the one still running was asked about just now"


def test_a_finished_batch_nobody_stored_is_published_again_after_a_quiet_while(idle, settings):
    job_id = _job(idle, accounts=["a"])
    claim, _ = store.batches.claim_start(idle, settings)
    store.batches.record_run(idle, claim, "R", "t")
    store.batches.mark_finished(idle, job_id, 0, "R", "SUCCEEDED")
    assert (job_id, 0) not in _tick(idle, settings).stores
    _long_ago(idle, job_id)
    assert (job_id, 0) in _tick(idle, settings).stores
    assert (job_id, 0) not in _tick(idle, settings).stores, "not again right away"


def test_batches_of_ended_jobs_are_left_alone(idle, settings):
    job_id = _job(idle)
    store.batches.claim_start(idle, settings)
    store.jobs.cancel_job(idle, job_id)
    _long_ago(idle, job_id)
    published = _tick(idle, settings)
    assert published.starts == 0 and not [s for s in published.stores if s[0] == job_id]


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


def test_purge_deletes_only_jobs_past_their_retention(idle, settings):
    old, fresh = _job(idle), _job(idle)
    claim, _ = store.batches.claim_start(idle, settings)
    store.batches.record_run(idle, claim, "RUN-OLD", "t")
    _set(idle, J, old, created_at=store.utcnow() - timedelta(days=31))
    aborted = []
    assert maintenance.purge(idle, settings, aborted.extend)[0] >= 1
    assert store.jobs.get_job(idle, old, store.jobs.ALL_KEYS) is None
    assert store.jobs.get_job(idle, fresh, store.jobs.ALL_KEYS) is not None
    assert aborted == ["RUN-OLD"]
    with idle.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(B).where(B.c.job_id == old)).scalar() == 0
