"""Faults injected into real processes with real signals: a worker killed mid-batch, Redis
flushed mid-job, Postgres restarted mid-job, a flaky Apify, no Apify at all, and two
workers on one job. Each job must end with every expected profile stored once and its
counters exact. Each test prints what it observed (for the record, not asserted on time).

These tests run their own workers on a redis-server of their own (flushed at will), so the
session worker never competes with them; the Postgres they restart is a cluster of their own
too. The shared servers must come out untouched, which the module checks at its end.
"""
import os
import re
import signal
import time
import uuid
from urllib.parse import urlsplit

import psycopg
import pytest
import redis
import sqlalchemy as sa

from app import create_app
from celery_config import publish_batch
from utils import store

from conftest import authorised_client, check_job, eventually, runs_of, submit, wait_for_job
from stack import ADMIN_URL, APIFY_TOKEN, QUEUE, REDIS_URL, Beat, ThrowawayPostgres, ThrowawayRedis, Worker


def _postmaster_start_time():
    with psycopg.connect(ADMIN_URL) as conn:
        return conn.execute("select pg_postmaster_start_time()").fetchone()[0]


@pytest.fixture(scope="module", autouse=True)
def shared_servers_survive():
    """A sentinel key in database 0 of the shared Redis and the shared Postgres's start time,
    checked after the last fault: this module may break only servers it started."""
    shared_redis = redis.Redis.from_url(urlsplit(REDIS_URL)._replace(path="/0").geturl())
    sentinel = f"followsift-test-sentinel-{uuid.uuid4().hex}"
    shared_redis.set(sentinel, "must survive the fault tests", ex=3600)
    started = _postmaster_start_time()
    yield
    harmed = []
    if not shared_redis.delete(sentinel):
        harmed.append("flushed the shared Redis")
    if _postmaster_start_time() != started:
        harmed.append("restarted the shared Postgres")
    assert not harmed, f"while the fault tests ran, something {' and '.join(harmed)}"


@pytest.fixture(scope="module")
def fault_redis():
    with ThrowawayRedis() as server:
        yield server


def _fault_app(database_url, redis_url):
    return create_app({"database_url": database_url, "redis_url": redis_url,
                       "rate_limit_create": "10000/minute", "rate_limit_read": "100000/minute"})


@pytest.fixture(scope="module")
def fault_app(app, postgres_url, fault_redis):
    return _fault_app(postgres_url, fault_redis.url)


@pytest.fixture
def client(fault_app, api_key, engine):
    # Jobs other tests left active would be published again by the reconciler here.
    with engine.connect() as conn:
        active = conn.execute(sa.select(store.schema.jobs.c.job_id)
                              .where(store.schema.jobs.c.status.in_(store.schema.ACTIVE_JOB_STATUSES))).scalars().all()
    for job_id in active:
        store.jobs.cancel_job(engine, job_id)
    return authorised_client(fault_app, api_key)


@pytest.fixture
def start(service_settings, tmp_path, fault_redis):
    """Start workers (or a beat) on the fault tests' own Redis; all stopped afterwards."""
    fault_redis.flushall()
    started = []

    def start_process(kind=Worker, concurrency=1, **settings):
        env = {**service_settings, "REDIS_URL": fault_redis.url, **{k: str(v) for k, v in settings.items()}}
        log = tmp_path / f"{kind.__name__.lower()}-{len(started)}.log"
        process = Worker(env, log, concurrency) if kind is Worker else kind(env, log)
        started.append(process)
        return process

    yield start_process
    for process in started:
        process.stop()
    fault_redis.flushall()


def _batch(engine, job_id, index):
    with engine.connect() as conn:
        return conn.execute(sa.select(store.schema.batches).where(
            store.schema.batches.c.job_id == job_id, store.schema.batches.c.batch_index == index)).mappings().first()


def _wait_for_run(engine, job_id, index):
    """Block until the batch has started its Apify run (it then waits for the run to end)."""
    eventually(lambda: _batch(engine, job_id, index), lambda batch: batch["apify_run_id"] is not None)


def test_a_worker_killed_mid_batch_loses_and_duplicates_nothing(client, start, emulator, engine):
    emulator.configure(run_duration_s=3)
    worker = start(BATCH_LEASE_SECONDS=3, APIFY_POLL_SECONDS=1)
    accounts = [f"killed{i}" for i in range(60)]
    job_id = submit(client, accounts, total=60 * 20)["job_id"]
    _wait_for_run(engine, job_id, 0)
    (pool_process,) = worker.children()
    os.kill(pool_process, signal.SIGKILL)
    killed = time.monotonic()

    status = wait_for_job(client, job_id, timeout=60)
    recovered = time.monotonic() - killed
    assert (status["status"], status["batches_failed"]) == ("completed", 0), status
    _, profiles = check_job(client, job_id, accounts, 20, "any")
    assert _batch(engine, job_id, 0)["attempts"] == 2
    assert len(runs_of(emulator, accounts)) == 2, "the redelivered batch resumed its paid run"
    assert "WorkerLostError" in worker.log() or "SIGKILL" in worker.log()
    print(f"\nkilled worker: {len(profiles)} profiles expected and stored once, job done {recovered:.1f}s after the kill")


def test_redis_flushed_mid_job_is_recovered_by_the_reconciler(client, start, emulator, engine, fault_redis):
    emulator.configure(run_duration_s=1)
    settings = {"REQUEUE_STALLED_SECONDS": 2, "RECONCILE_INTERVAL_SECONDS": 1, "APIFY_POLL_SECONDS": 1}
    worker = start(**settings)
    start(Beat, **settings)
    accounts = [f"flushed{i}" for i in range(200)]
    job_id = submit(client, accounts, total=200 * 10)["job_id"]
    _wait_for_run(engine, job_id, 0)
    fault_redis.flushall()
    flushed = time.monotonic()

    status = wait_for_job(client, job_id, timeout=60)
    recovered = time.monotonic() - flushed
    assert (status["status"], status["batches_done"], status["batches_failed"]) == ("completed", 4, 0), status
    _, profiles = check_job(client, job_id, accounts, 10, "any")
    assert re.search(r"reconcile: re-enqueued \d+ batches", worker.log())
    assert len(runs_of(emulator, accounts)) == 4
    print(f"\nflushed Redis: {len(profiles)} profiles expected and stored once, job done {recovered:.1f}s after FLUSHALL")


@pytest.fixture
def own_postgres():
    """A Postgres cluster of this test's own, to restart; skipped only where none can start."""
    try:
        cluster = ThrowawayPostgres()
    except ThrowawayPostgres.Unavailable as exc:
        pytest.skip(f"cannot start a Postgres of our own to restart: {exc}")
    with cluster:
        yield cluster


def test_postgres_restarted_mid_job(own_postgres, fault_redis, start, emulator):
    own_app = _fault_app(own_postgres.url, fault_redis.url)
    engine = own_app.extensions["engine"]
    storage.migrate(engine)
    client = authorised_client(own_app, storage.create_api_key(engine, "faults"))
    emulator.configure(run_duration_s=2)
    worker = start(DATABASE_URL=own_postgres.url, APIFY_POLL_SECONDS=1, BATCH_LEASE_SECONDS=20,
                   RETRY_BACKOFF_SECONDS=1)
    accounts = [f"restart{i}" for i in range(150)]
    job_id = submit(client, accounts, total=150 * 10)["job_id"]
    _wait_for_run(engine, job_id, 0)
    own_postgres.restart()
    restarted = time.monotonic()

    status = wait_for_job(client, job_id, timeout=90)
    recovered = time.monotonic() - restarted
    assert (status["status"], status["batches_failed"]) == ("completed", 0), status
    _, profiles = check_job(client, job_id, accounts, 10, "any")
    retries = len(re.findall(r"retry \d/3", worker.log()))
    print(f"\nrestarted Postgres: {len(profiles)} profiles expected and stored once, {retries} retries, "
          f"job done {recovered:.1f}s after the restart")


def test_a_flaky_apify_costs_retries_not_profiles(client, start, emulator):
    emulator.configure(seed=7)
    emulator.fault(route="any", status=429, probability=0.15)
    emulator.fault(route="any", status=503, probability=0.18)  # of the rest: 30% of all calls fail
    worker = start(APIFY_HTTP_RETRIES=2, APIFY_HTTP_RETRY_DELAY_MS=5, RETRY_BACKOFF_SECONDS=0.2,
                   RETRY_BACKOFF_MAX_SECONDS=1)
    accounts = [f"flaky{i}" for i in range(1000)]
    job_id = submit(client, accounts, total=1000 * 15)["job_id"]

    status = wait_for_job(client, job_id, timeout=120)
    assert (status["status"], status["batches_failed"]) == ("completed", 0), status
    _, profiles = check_job(client, job_id, accounts, 15, "any")
    requests = emulator.stats()["requests"]
    calls = sum(sum(codes.values()) for codes in requests.values())
    failed = sum(n for codes in requests.values() for code, n in codes.items() if code in ("429", "503"))
    backoffs = re.findall(r"retry \d/3 in [\d.]+s", worker.log())
    assert failed / calls > 0.2
    assert backoffs, "batch retries and their backoff show in the worker's log"
    print(f"\nflaky Apify: {failed}/{calls} calls failed; {len(backoffs)} batch retries (e.g. {backoffs[0]!r}); "
          f"{len(profiles)} profiles expected and stored once")


def test_an_apify_outage_fails_the_job_after_the_retries(client, start, postgres_url):
    password = "s3cret-db-pw"  # local Postgres trusts, so any password connects
    worker = start(APIFY_API_URL="http://127.0.0.1:9", RETRY_BACKOFF_SECONDS=0.1, RETRY_BACKOFF_MAX_SECONDS=0.4,
                   DATABASE_URL=postgres_url.replace("postgres@", f"postgres:{password}@"))
    job_id = submit(client, [f"outage{i}" for i in range(60)], total=600)["job_id"]

    status = wait_for_job(client, job_id, timeout=60)
    assert status["status"] == "failed"
    assert (status["batches_done"], status["batches_failed"]) == (2, 2)
    assert "network error talking to Apify" in status["error_message"]
    assert len(re.findall(r"retry \d/3", worker.log())) == 6  # three per batch
    assert client.get(f"/api/job-results/{job_id}").get_json()["profiles"] == []
    for secret in (password, APIFY_TOKEN):
        assert secret not in worker.log() and secret not in str(status)


def test_two_workers_share_a_job_and_redeliveries_change_nothing(client, start, emulator, engine, fault_app,
                                                                 fault_redis):
    first, second = start(concurrency=2), start(concurrency=2)
    accounts = [f"pair{i}" for i in range(500)]
    job_id = submit(client, accounts, total=500 * 10)["job_id"]
    status = wait_for_job(client, job_id, timeout=60)
    assert (status["status"], status["batches_failed"]) == ("completed", 0), status
    check_job(client, job_id, accounts, 10, "any")
    assert [_batch(engine, job_id, i)["attempts"] for i in range(10)] == [1] * 10
    assert len(runs_of(emulator, accounts)) == 10

    for index in range(10):  # every message delivered once more, as after a broker hiccup
        publish_batch(fault_app.extensions["celery"], job_id, index)
    queue = fault_redis.client
    eventually(lambda: queue.llen(QUEUE) + queue.hlen("unacked"), lambda waiting: waiting == 0, 20)
    assert client.get(f"/api/job-status/{job_id}").get_json() == status
    assert len(runs_of(emulator, accounts)) == 10
    done = [log.count(f"job {job_id} batch") for log in (first.log(), second.log())]
    print(f"\ntwo workers: batches finished per worker {done}; 10 redeliveries changed nothing")


def test_a_batch_past_its_time_limit_fails_and_stops_its_run(client, start, emulator):
    emulator.configure(run_duration_s=60)
    worker = start(TASK_TIME_LIMIT_SECONDS=10, APIFY_POLL_SECONDS=1, BATCH_LEASE_SECONDS=5)  # soft limit: 5 s
    accounts = [f"slow{i}" for i in range(3)]
    job_id = submit(client, accounts, total=30)["job_id"]

    status = wait_for_job(client, job_id, timeout=60)
    assert (status["status"], status["batches_failed"]) == ("failed", 1)
    assert "ran past its time limit" in status["error_message"]
    (run,) = runs_of(emulator, accounts)
    assert run["status"] == "ABORTED"
    assert "SoftTimeLimitExceeded" in worker.log()
