"""The test of record for the lifecycles: a stateful property-based test (hypothesis) on the real
stack that interleaves every operation and fault, and checks at quiescence that each lifecycle
told the truth.

Operations: jobs submitted by several keys (overlapping accounts, budgets that cut lists,
maxAgeDays that reuses lists, a continuing actor whose lists take several runs), cancelled,
deleted, a key's `DELETE /api/data`. Faults: the worker SIGKILLed, Redis flushed, Apify
answering 402 (full, or out of credit), 429 and 5xx, runs that fail, time out or find a spent
quota, webhooks lost and doubled.

At quiescence (every job ended, nothing left at Apify): each follower is stored once per job;
job and account counters equal the stored rows; each list says how it ended from facts and
claims no more than it holds; a key's spend equals what Apify charged for its runs, and never
went down; nothing is in flight; no Apify run is left running; no answer was a 5xx.

Timers are short (a 3 s lease, ticks of half a second) so that a dead worker's work comes back
within seconds; the fault tests (test_faults.py) run the default timers. The run length is set
by FOLLOWSIFT_LIFECYCLE_EXAMPLES and _STEPS (CI: 12 examples of up to 25 steps, at least 200
steps in all), and a soak by FOLLOWSIFT_SOAK_MINUTES (rounds of examples until the time is up).
"""
import os
import signal
import time
import uuid
from collections import Counter, defaultdict
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, Phase, settings, strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test

import apify_emulator as emulated
from utils import store
from utils.store.schema import (ENDED_JOB_STATUSES, accounts, apify_runs, follower_lists, jobs, list_pages, results,
                                spend_ledger)

from conftest import authorised_client, eventually
from stack import Beat, Stack, ThrowawayRedis, Worker, service_env, throwaway_database

SCRAPING = "scraping_solutions/instagram-scraper-followers-following-no-cookies"  # 1,000 a run, then a token
POOL = ["natgeo", "kylie", "shop1", "bigbrand", "puma", "privatefan", "missingfan"]  # 331 to 67,219 followers
LIMITS = [40, 700, 1500, 2600]
BUDGETS = [None, 0.01, 0.3]  # USD; 0.01 cuts a list within its first run
FAULTS = [
    {"route": "start_run", "status": 429, "times": 1},
    {"route": "start_run", "status": 503, "times": 2},
    {"route": "start_run", "status": 402, "type": "concurrent-runs-limit-exceeded", "times": 2},
    {"route": "start_run", "status": 402, "type": "not-enough-usage-to-run-paid-actor", "times": 1},
    {"route": "start_run", "run_status": "FAILED", "times": 1},
    {"route": "start_run", "run_status": "TIMED-OUT", "times": 1},
    {"route": "start_run", "quota": True, "times": 1},
    {"route": "get_run", "status": 503, "times": 2},
    {"route": "dataset_items", "status": 503, "times": 1},
    {"route": "abort_run", "status": 500, "times": 1},
]
TIMERS = {"BATCH_LEASE_SECONDS": 3, "TASK_SLICE_SECONDS": 1, "TICK_SECONDS": 0.5, "RETRY_BACKOFF_SECONDS": 0.1,
          "RETRY_BACKOFF_MAX_SECONDS": 0.5, "BATCH_MAX_RETRIES": 2, "APIFY_COST_SETTLE_SECONDS": 0,
          "APIFY_POLL_SECONDS": 0.5, "APIFY_WEBHOOK_POLL_SECONDS": 2, "APIFY_CAPACITY_BACKOFF_SECONDS": 2,
          "APIFY_ORPHAN_SWEEP_SECONDS": 2, "REUSE_WAIT_SECONDS": 3, "APIFY_HTTP_RETRIES": 1,
          "APIFY_HTTP_RETRY_DELAY_MS": 20, "APIFY_MAX_CONCURRENT_RUNS": 6}
EXAMPLES = int(os.environ.get("FOLLOWSIFT_LIFECYCLE_EXAMPLES", "12"))
STEPS = int(os.environ.get("FOLLOWSIFT_LIFECYCLE_STEPS", "25"))
SOAK_MINUTES = float(os.environ.get("FOLLOWSIFT_SOAK_MINUTES", "0"))
QUIET_SECONDS = 120


class Life:
    """The stack the machine drives: a database and a redis-server of its own, the app (with its
    webhook receiver), a worker and the clock, the emulator; and what every answer was."""

    def __init__(self, database_url, redis, emulator, namespace, folder):
        self.redis, self.emulator, self.folder = redis, emulator, Path(folder)
        self.stack = Stack(database_url, redis.url, apify_actor_id=SCRAPING, batch_size=2, celery_queue=namespace,
                           **{name.lower(): value for name, value in TIMERS.items()})
        self.engine = self.stack.engine
        self.env = service_env(database_url, redis.url, emulator.url, **{
            name: str(value) for name, value in TIMERS.items()}, CELERY_QUEUE=namespace, APIFY_ACTOR_ID=SCRAPING,
            BATCH_SIZE="2", PUBLIC_BASE_URL=self.stack.url)
        self.clock = Beat(self.env, self.folder / "beat.log")
        self.worker = self._worker()
        self.answers = Counter()
        self.examples = self.checks = 0

    def _worker(self):
        return Worker(self.env, self.folder / f"worker-{uuid.uuid4().hex[:6]}.log")

    def new_client(self):
        key = store.keys.create_api_key(self.engine, f"life-{uuid.uuid4().hex[:8]}")
        return authorised_client(self.stack.app, key), store.keys.api_key_id(self.engine, key)

    def call(self, method, client, url, **kwargs):
        response = getattr(client, method)(url, **kwargs)
        self.answers[response.status_code] += 1
        assert response.status_code < 500, (method, url, response.status_code, response.get_data(as_text=True))
        return response

    def kill_worker(self):
        """SIGKILL the worker, pool and all, mid-whatever; the next dyno starts."""
        os.killpg(self.worker.process.pid, signal.SIGKILL)
        self.worker.process.wait(10)
        self.worker = self._worker()

    def close(self):
        self.clock.stop()
        self.worker.stop()
        self.stack.close()

    def ledger(self, key_id):
        with self.engine.connect() as conn:
            return float(conn.execute(sa.select(sa.func.coalesce(sa.func.sum(spend_ledger.c.usd), 0))
                                      .where(spend_ledger.c.api_key_id == key_id)).scalar())


@pytest.fixture(scope="module")
def life(emulator_process, namespace, tmp_path_factory):
    with ThrowawayRedis() as redis, throwaway_database("followsift_lifecycles") as database_url:
        harness = Life(database_url, redis, emulator_process, namespace, tmp_path_factory.mktemp("life"))
        yield harness
        harness.close()


class Lifecycles(RuleBasedStateMachine):
    """Hypothesis drives this: each example starts a fresh account at the emulator and fresh keys."""

    life: Life  # set by the test
    jobs = Bundle("jobs")

    def __init__(self):
        super().__init__()
        self.life.examples += 1
        self.life.emulator.reset()
        self.life.emulator.configure(run_duration_s=0.2, run_seconds_per_item=0.0002)
        self.keys = [self.life.new_client() for _ in range(2)]
        self.owner = {}  # job_id -> key index
        self.spent = [0.0, 0.0]
        self.killed = 0

    @rule(target=jobs, key=st.integers(0, 1), names=st.lists(st.sampled_from(POOL), min_size=1, max_size=3,
                                                             unique=True),
          limit=st.sampled_from(LIMITS), budget=st.sampled_from(BUDGETS), max_age=st.sampled_from([0, 7]),
          gender=st.sampled_from(["any", "female"]))
    def submit(self, key, names, limit, budget, max_age, gender):
        body = {"accounts": names, "targetGender": gender, "totalScrapeCount": limit * len(names),
                "maxAgeDays": max_age, **({"maxCostUsd": budget} if budget else {})}
        response = self.life.call("post", self.keys[key][0], "/api/scrape-followers", json=body)
        assert response.status_code == 202, response.get_json()
        job_id = response.get_json()["job_id"]
        self.owner[job_id] = key
        return job_id

    @rule(job_id=jobs)
    def cancel(self, job_id):
        response = self.life.call("post", self._client(job_id), f"/api/jobs/{job_id}/cancel")
        assert response.status_code in (200, 404, 409)

    @rule(job_id=jobs)
    def delete(self, job_id):
        assert self.life.call("delete", self._client(job_id), f"/api/jobs/{job_id}").status_code in (204, 404)

    @rule(key=st.integers(0, 1))
    def forget_key(self, key):
        assert self.life.call("delete", self.keys[key][0], "/api/data").status_code == 200

    @precondition(lambda self: self.killed < 1)
    @rule()
    def kill_worker(self):
        self.life.kill_worker()
        self.killed += 1

    @rule()
    def flush_redis(self):
        self.life.redis.flushall()

    @rule(fault=st.sampled_from(FAULTS))
    def apify_fault(self, fault):
        self.life.emulator.fault(**fault)

    @rule(lost=st.sampled_from([0.0, 0.5, 1.0]), doubled=st.sampled_from([0.0, 0.5, 1.0]))
    def webhooks(self, lost, doubled):
        self.life.emulator.configure(webhook_drop_probability=lost, webhook_duplicate_probability=doubled)

    @rule(seconds=st.sampled_from([0.2, 0.5, 1.5]))
    def let_it_run(self, seconds):
        time.sleep(seconds)

    @invariant()
    def spend_never_goes_down(self):
        self.life.checks += 1  # once when the example starts, then after each step
        for index, (_, key_id) in enumerate(self.keys):
            spent = self.life.ledger(key_id)
            assert spent >= self.spent[index] - 1e-9, f"key {index}'s spend went down"
            self.spent[index] = spent

    def _client(self, job_id):
        return self.keys[self.owner[job_id]][0]

    def teardown(self):
        """Quiescence, then the truth of every lifecycle."""
        if not self.owner:
            return
        self.life.emulator.configure(webhook_drop_probability=0, webhook_duplicate_probability=0)
        check_quiescent_truth(self.life, self.owner, [key_id for _, key_id in self.keys])


def check_quiescent_truth(life, owner, key_ids):
    engine, emulator = life.engine, life.emulator
    ids = list(owner)
    quiet = eventually(lambda: _quiet(engine, emulator, ids), lambda state: state is True, QUIET_SECONDS, 0.5)
    assert quiet is True
    with engine.connect() as conn:
        rows = {row.job_id: row for row in conn.execute(sa.select(jobs).where(jobs.c.job_id.in_(ids)))}
        assert all(row.status in ENDED_JOB_STATUSES for row in rows.values()), "every job ended"
        _each_follower_once_and_counters_equal_rows(conn, list(rows))
        _lists_tell_the_truth(conn)
        _ledger_equals_apify(conn, emulator, owner, key_ids, rows)
    assert store.capacity.snapshot(engine, life.stack.app.config["SETTINGS"]).in_flight == 0
    assert all(run["status"] != "RUNNING" for run in emulator.stats()["runs"]), "no Apify run left running"


def _quiet(engine, emulator, job_ids):
    """True once every job ended, no run is at Apify and every run is charged; else what is not."""
    with engine.connect() as conn:
        going = conn.execute(sa.select(sa.func.count()).where(jobs.c.job_id.in_(job_ids),
                                                               jobs.c.status.not_in(ENDED_JOB_STATUSES))).scalar()
        open_runs = conn.execute(sa.select(sa.func.count()).where(
            apify_runs.c.status.in_(store.schema.UNCHARGED))).scalar()
        moving = conn.execute(sa.select(sa.func.count()).where(
            store.schema.batches.c.status.in_(store.schema.MOVING))).scalar()
    running = sum(run["status"] == "RUNNING" for run in emulator.stats()["runs"])
    return True if not (going or open_runs or moving or running) else {
        "jobs going": going, "runs not charged": open_runs, "batches moving": moving, "runs at Apify": running}


def _each_follower_once_and_counters_equal_rows(conn, job_ids):
    if not job_ids:
        return
    r, a = results.c, accounts.c
    stored = dict(conn.execute(sa.select(r.job_id, sa.func.count()).where(r.job_id.in_(job_ids))
                               .group_by(r.job_id)).all())
    twice = conn.execute(sa.select(r.job_id, r.profile_id).where(r.job_id.in_(job_ids))
                         .group_by(r.job_id, r.profile_id).having(sa.func.count() > 1)).all()
    assert not twice, f"followers stored twice: {twice[:5]}"
    listed = defaultdict(Counter)
    for job_id, sources in conn.execute(sa.select(r.job_id, r.source_accounts).where(r.job_id.in_(job_ids))):
        listed[job_id].update(source for source in sources.split(",") if source)
    by_job = defaultdict(list)
    for row in conn.execute(sa.select(accounts).where(a.job_id.in_(job_ids))).mappings():
        by_job[row["job_id"]].append(row)
    for job in conn.execute(sa.select(jobs).where(jobs.c.job_id.in_(job_ids))).mappings():
        rows = by_job[job["job_id"]]
        assert job["profiles_kept"] == stored.get(job["job_id"], 0), "profiles_kept equals the result rows"
        for counter in ("scraped", "male_count", "female_count", "unknown_count"):
            total = job["profiles_scraped" if counter == "scraped" else counter]
            assert total == sum(row[counter] for row in rows), f"the job's {counter} equals its accounts'"
        for row in rows:
            assert row["status"] != "pending", f"{row['account']} of an ended job is still pending"
            assert row["kept"] == listed[job["job_id"]][row["account"]], f"{row['account']}: kept equals its rows"
            assert row["scraped"] == row["male_count"] + row["female_count"] + row["unknown_count"]
            _ending_is_a_fact(row, f"account {row['account']} of job {job['job_id']}")


def _lists_tell_the_truth(conn):
    l, p = follower_lists.c, list_pages.c
    held = dict(conn.execute(sa.select(p.list_id, sa.func.sum(p.followers)).group_by(p.list_id)).all())
    for row in conn.execute(sa.select(follower_lists).where(l.status != "pending")).mappings():
        assert row["scraped"] == (held.get(row["id"]) or 0), f"list {row['id']} claims {row['scraped']}"
        _ending_is_a_fact(row, f"list {row['id']} of job {row['job_id']}")
        assert (row["status"] == "cut") == (row["cut_by"] is not None)


def _ending_is_a_fact(row, what):
    """Complete: as many as asked; exhausted: all the account has, fewer than asked; cut: no more than asked."""
    status, scraped, requested = row["status"], row["scraped"], row["requested"]
    said = f"{what}: {dict(row)}"
    if status == "complete":
        assert scraped == requested, said
    elif status == "exhausted":
        assert scraped == emulated.follower_count(row["account"]) < requested, said
    elif status == "cut":
        assert scraped <= requested, said


def _ledger_equals_apify(conn, emulator, owner, key_ids, rows):
    """Each key's ledger holds what Apify charged for every run its jobs started (deleted jobs',
    cancelled jobs' and failed runs included), and each job's cost is its runs'."""
    charged = Counter()
    by_job = Counter()
    for run in emulator.stats()["runs"]:
        tag = store.batches.parse_tag(run.get("user_agent"))
        assert tag is not None, f"run {run['id']} names no start attempt"
        job_id = tag[0]
        charged[owner[job_id]] += run["usage_total_usd"]
        by_job[job_id] += run["usage_total_usd"]
    s = spend_ledger.c
    spent = dict(conn.execute(sa.select(s.api_key_id, sa.func.sum(s.usd)).where(s.api_key_id.in_(key_ids))
                              .group_by(s.api_key_id)).all())
    for index, key_id in enumerate(key_ids):
        assert float(spent.get(key_id) or 0) == pytest.approx(charged[index], abs=1e-6), f"key {index}'s spend"
    for job_id, row in rows.items():
        assert float(row.cost_usd) == pytest.approx(by_job[job_id], abs=1e-6), f"job {job_id}'s cost"


def test_every_interleaving_of_jobs_stops_deletions_and_faults_tells_the_truth(life):
    Lifecycles.life = life
    runs = settings(max_examples=EXAMPLES, stateful_step_count=STEPS, deadline=None, database=None,
                    suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate])
    soak_until = time.monotonic() + SOAK_MINUTES * 60
    rounds = 0
    while True:
        run_state_machine_as_test(Lifecycles, settings=runs)
        rounds += 1
        if time.monotonic() >= soak_until:
            break
    steps = life.checks - life.examples
    print(f"\nlifecycles: {rounds} rounds, {life.examples} examples, {steps} steps; "
          f"answers {dict(sorted(life.answers.items()))}")
    assert steps >= min(200, EXAMPLES * STEPS // 2), "too few steps to be the test of record"
