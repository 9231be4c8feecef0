"""Faults injected into real processes with real signals, with the default timers: a worker
killed mid-store (or mid-serve of stored follower lists), Redis wiped mid-job, a worker SIGTERMed mid-job, webhooks lost or doubled,
an account full to its limit, Postgres restarted, a flaky Apify, no Apify at all, and two
workers on one job. Each job must end with every expected profile stored once and its
counters exact. Each test prints what it observed and how long recovery took (for the
record, not asserted on time, except the SIGTERM hand-back that Heroku gives 30 s to).

Postgres is the queue of record, so each of these tests runs on a database of its own, the
module on a redis-server of its own (flushed at will), each test with an HTTP server of its own
for Apify's webhooks, and, for the restart, a Postgres cluster of its own. The shared servers
must come out untouched, which the module checks at its end.
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

from celery_config import publish_store, request_starts
from utils import store

from conftest import check_job, eventually, runs_of, submit, wait_for_job
from stack import (ADMIN_URL, APIFY_TOKEN, REDIS_URL, Beat, Stack, ThrowawayPostgres, ThrowawayRedis, Worker,
                   throwaway_database)

B = store.schema.batches


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


@pytest.fixture
def stack(fault_redis, app):
    """A database of the test's own (whatever the test before left in its own stays there)."""
    with throwaway_database("followsift_faults") as url:
        own = Stack(url, fault_redis.url)
        yield own
        own.close()


@pytest.fixture
def client(stack):
    return stack.client


@pytest.fixture
def start(service_settings, tmp_path, fault_redis, stack):
    """Start workers and beats on the fault tests' own database, Redis and receiver, with the
    default timers; all stopped afterwards."""
    fault_redis.flushall()
    started = []

    def start_process(kind=Worker, concurrency=2, on=stack, **settings):
        env = {**service_settings, "DATABASE_URL": on.database_url, "REDIS_URL": on.redis_url,
               "PUBLIC_BASE_URL": on.url, **{k: str(v) for k, v in settings.items()}}
        log = tmp_path / f"{kind.__name__.lower()}-{len(started)}.log"
        process = Worker(env, log, concurrency) if kind is Worker else kind(env, log)
        started.append(process)
        return process

    def stack_of(**settings):
        """A worker and the clock, as the Procfile runs them."""
        worker = start_process(**settings)
        start_process(Beat, **settings)
        return worker

    start_process.stack = stack_of
    yield start_process
    for process in started:
        process.stop()
    fault_redis.flushall()


def _batches(engine, job_id):
    with engine.connect() as conn:
        return conn.execute(sa.select(B).where(B.c.job_id == job_id).order_by(B.c.batch_index)).mappings().all()


def _storing(engine, job_id):
    return eventually(lambda: [b for b in _batches(engine, job_id) if b["status"] == "storing"], bool, 60, 0.02)


def _killed_mid_task(client, worker, job_id):
    """SIGKILL the worker's pool processes, then wait for the job: (its last status, seconds)."""
    for child in worker.children():
        os.kill(child, signal.SIGKILL)
    killed = time.monotonic()
    status = wait_for_job(client, job_id, timeout=120)
    return status, time.monotonic() - killed


def test_a_worker_killed_mid_store_loses_and_duplicates_nothing(client, start, emulator, stack):
    emulator.configure(run_duration_s=2, latency_ms=150)
    worker = start.stack()
    accounts = [f"killed{i}" for i in range(100)]
    job_id = submit(client, accounts, total=100 * 100)["job_id"]
    held = _storing(stack.engine, job_id)
    status, recovered = _killed_mid_task(client, worker, job_id)
    assert (status["status"], status["batches_failed"]) == ("completed", 0), status
    _, profiles = check_job(client, job_id, accounts, 100, "any")
    batches = {b["batch_index"]: b for b in _batches(stack.engine, job_id)}
    assert all(batches[b["batch_index"]]["attempts"] >= 3 for b in held), "started, stored, stored again"
    assert len(runs_of(emulator, accounts)) == 2, "the store resumed the paid run"
    print(f"\nkilled worker mid-store: {len(profiles)} profiles expected and stored once; "
          f"job done {recovered:.1f}s after the kill")


def test_a_worker_killed_mid_serve_of_stored_lists_loses_and_duplicates_nothing(client, start, emulator, stack):
    worker = start.stack()
    accounts = [f"served{uuid.uuid4().hex[:6]}{i}" for i in range(40)]
    producer = wait_for_job(client, submit(client, accounts, total=40 * 2500)["job_id"], timeout=120)
    assert producer["status"] == "completed", producer
    job_id = submit(client, accounts, gender="female", total=40 * 2500, maxAgeDays=7)["job_id"]
    held = _storing(stack.engine, job_id)
    status, recovered = _killed_mid_task(client, worker, job_id)
    assert (status["status"], status["batches_failed"], status["reuse"]["accounts"]) == ("completed", 0, 40), status
    _, profiles = check_job(client, job_id, accounts, 2500, "female")
    assert _batches(stack.engine, job_id)[0]["attempts"] >= 2 and held, "served, served again"
    assert len(runs_of(emulator, accounts)) == 1, "only the producer's run"
    print(f"\nkilled worker mid-serve: {len(profiles)} profiles expected and stored once; "
          f"job done {recovered:.1f}s after the kill")


@pytest.mark.parametrize("stopped", [False, True], ids=["active", "cancelled"])
def test_a_worker_killed_while_apify_starts_its_run(client, start, emulator, stack, stopped):
    """The worker dies after asking Apify for a run and before recording it; Apify makes the run
    all the same. Once the start's lease is out, the clock finds the run by its tag: a job still
    active adopts it (no second run is paid for); a job cancelled meanwhile has it aborted and
    charged, its batch closed, and nothing left counted in flight."""
    emulator.configure(latency_ms=2000, run_duration_s=60 if stopped else 1)
    worker = start.stack()
    account = [f"dying{uuid.uuid4().hex[:6]}"]
    job_id = submit(client, account, total=10)["job_id"]
    eventually(lambda: [b["status"] for b in _batches(stack.engine, job_id)], lambda s: s == ["starting"], 30, 0.02)
    time.sleep(0.5)  # the start is at Apify, which answers after 2 s
    if stopped:
        assert client.post(f"/api/jobs/{job_id}/cancel").get_json()["status"] == "cancelled"
    for child in worker.children():
        os.kill(child, signal.SIGKILL)
    killed = time.monotonic()
    (run,) = eventually(lambda: runs_of(emulator, account), lambda runs: len(runs) == 1, 10)
    emulator.configure(latency_ms=0)
    if stopped:
        eventually(lambda: runs_of(emulator, account), lambda runs: runs[0]["status"] == "ABORTED", 60)
        status = eventually(lambda: client.get(f"/api/job-status/{job_id}").get_json(),
                            lambda status: status["cost_usd"] > 0, 30)
        assert status["batches_running"] == 0 and [b["status"] for b in _batches(stack.engine, job_id)] == ["cancelled"]
    else:
        status = wait_for_job(client, job_id, timeout=60)
        assert status["status"] == "completed", status
        check_job(client, job_id, account, 10, "any")
    (run,) = runs_of(emulator, account)
    assert status["cost_usd"] == pytest.approx(run["usage_total_usd"], abs=1e-6)
    assert store.capacity.snapshot(stack.engine, stack.app.config["SETTINGS"]).in_flight == 0
    print(f"\nkilled mid-start ({'cancelled' if stopped else 'active'}): the run {run['status'].lower()}, "
          f"found and {'aborted' if stopped else 'adopted'} {time.monotonic() - killed:.1f}s after the kill")


def test_redis_wiped_mid_job_is_recovered_from_postgres(client, start, emulator, stack, fault_redis):
    emulator.configure(run_duration_s=2, max_concurrent_runs=2)
    start.stack()
    accounts = [f"wiped{i}" for i in range(300)]
    job_id = submit(client, accounts, total=300 * 10)["job_id"]
    eventually(lambda: runs_of(emulator, accounts), lambda runs: len(runs) >= 2, 30)
    fault_redis.flushall()
    wiped = time.monotonic()

    status = wait_for_job(client, job_id, timeout=120)
    recovered = time.monotonic() - wiped
    assert (status["status"], status["batches_done"], status["batches_failed"]) == ("completed", 6, 0), status
    _, profiles = check_job(client, job_id, accounts, 10, "any")
    assert len(runs_of(emulator, accounts)) == 6
    print(f"\nRedis wiped: {len(profiles)} profiles expected and stored once, job done {recovered:.1f}s after "
          f"FLUSHALL ({len(runs_of(emulator, accounts))} runs for 6 batches)")


def test_a_sigtermed_worker_hands_its_work_back_within_seconds(client, start, emulator, stack):
    emulator.configure(run_duration_s=2, latency_ms=150)
    first = start.stack()
    accounts = [f"termed{i}" for i in range(100)]
    job_id = submit(client, accounts, total=100 * 100)["job_id"]
    _storing(stack.engine, job_id)
    first.process.send_signal(signal.SIGTERM)
    termed = time.monotonic()
    first.process.wait(30)
    exited = time.monotonic() - termed
    assert exited < 10, f"a SIGTERMed worker took {exited:.1f}s to exit"
    start()  # the next dyno

    status = wait_for_job(client, job_id, timeout=120)
    recovered = time.monotonic() - termed
    assert (status["status"], status["batches_failed"]) == ("completed", 0), status
    _, profiles = check_job(client, job_id, accounts, 100, "any")
    assert len(runs_of(emulator, accounts)) == 2
    print(f"\nSIGTERM mid-store: the worker exited after {exited:.1f}s; {len(profiles)} profiles stored once; "
          f"job done {recovered:.1f}s after the signal")


@pytest.mark.parametrize("webhooks", ["lost", "doubled"])
def test_lost_or_doubled_webhooks_change_nothing(client, start, emulator, stack, webhooks):
    emulator.configure(run_duration_s=1, webhook_drop_probability=1.0 if webhooks == "lost" else 0.0,
                       webhook_duplicate_probability=1.0 if webhooks == "doubled" else 0.0)
    worker = start.stack()
    accounts = [f"hook{webhooks}{i}" for i in range(200)]
    started = time.monotonic()
    job_id = submit(client, accounts, total=200 * 10)["job_id"]
    status = wait_for_job(client, job_id, timeout=120)
    took = time.monotonic() - started
    assert (status["status"], status["batches_failed"]) == ("completed", 0), status
    _, profiles = check_job(client, job_id, accounts, 10, "any")
    assert len(runs_of(emulator, accounts)) == 4
    deliveries = [d for d in emulator.stats()["webhook_deliveries"] if job_id in (d["url"] or "")]
    if webhooks == "lost":
        assert {d["status"] for d in deliveries} == {"dropped"} and len(deliveries) == 4
    else:
        assert sorted(d["status"] for d in deliveries) == [200] * 4 + [208] * 4, "each ended run twice, once news"
    assert all(re.search(rf"batch {i} attempt \d+: stored", worker.log()) for i in range(4))
    print(f"\nwebhooks {webhooks}: {len(profiles)} profiles stored once, job took {took:.1f}s "
          f"(runs of 1 s; the poller alone when lost)")


def test_an_account_full_to_its_limit_is_back_pressure_not_failure(client, start, emulator, stack):
    emulator.configure(run_duration_s=1, max_memory_mb=3072)  # three runs of 1 GB
    start.stack(APIFY_MAX_CONCURRENT_RUNS=10)  # more than the account admits
    accounts = [f"full{i}" for i in range(400)]
    job_id = submit(client, accounts, total=400 * 5)["job_id"]
    status = wait_for_job(client, job_id, timeout=120)
    assert (status["status"], status["batches_done"], status["batches_failed"]) == ("completed", 8, 0), status
    check_job(client, job_id, accounts, 5, "any")
    stats = emulator.stats()
    assert stats["starts_refused"] >= 1 and stats["peak_running"] == 3
    assert len(runs_of(emulator, accounts)) == 8
    print(f"\nfull account: {stats['starts_refused']} starts refused with 402, peak {stats['peak_running']} runs, "
          f"8 batches, none failed")


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
    own = Stack(own_postgres.url, fault_redis.url)
    emulator.configure(run_duration_s=2)
    start.stack(on=own, RETRY_BACKOFF_SECONDS=1)
    accounts = [f"restart{i}" for i in range(150)]
    job_id = submit(own.client, accounts, total=150 * 10)["job_id"]
    eventually(lambda: runs_of(emulator, accounts), lambda runs: len(runs) >= 1, 30)
    own_postgres.restart()
    restarted = time.monotonic()

    status = wait_for_job(own.client, job_id, timeout=120)
    recovered = time.monotonic() - restarted
    assert (status["status"], status["batches_failed"]) == ("completed", 0), status
    _, profiles = check_job(own.client, job_id, accounts, 10, "any")
    own.close()
    print(f"\nrestarted Postgres: {len(profiles)} profiles expected and stored once, "
          f"job done {recovered:.1f}s after the restart")


def test_a_flaky_apify_costs_retries_not_profiles(client, start, emulator):
    emulator.configure(seed=7)
    emulator.fault(route="any", status=429, probability=0.15)
    emulator.fault(route="any", status=503, probability=0.18)  # of the rest: 30% of all calls fail
    worker = start.stack(APIFY_HTTP_RETRIES=2, APIFY_HTTP_RETRY_DELAY_MS=5, RETRY_BACKOFF_SECONDS=0.2,
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
    print(f"\nflaky Apify: {failed}/{calls} calls failed; {len(backoffs)} batch retries; "
          f"{len(profiles)} profiles expected and stored once")


def test_an_apify_outage_fails_the_job_after_the_retries(client, start, stack):
    password = "s3cret-db-pw"  # local Postgres trusts, so any password connects
    worker = start.stack(APIFY_API_URL="http://127.0.0.1:9", RETRY_BACKOFF_SECONDS=0.1,
                         RETRY_BACKOFF_MAX_SECONDS=0.4,
                         DATABASE_URL=stack.database_url.replace("postgres@", f"postgres:{password}@"))
    job_id = submit(client, [f"outage{i}" for i in range(60)], total=600)["job_id"]

    status = wait_for_job(client, job_id, timeout=60)
    assert status["status"] == "failed"
    assert (status["batches_done"], status["batches_failed"]) == (2, 2)
    assert "network error talking to Apify" in status["error_message"]
    assert len(re.findall(r"retry \d/3", worker.log())) == 6  # three per batch
    assert client.get(f"/api/job-results/{job_id}").get_json()["profiles"] == []
    for secret in (password, APIFY_TOKEN):
        assert secret not in worker.log() and secret not in str(status)


def test_two_workers_share_a_job_and_redeliveries_change_nothing(client, start, emulator, stack, fault_redis,
                                                                 namespace):
    first = start.stack()
    second = start()
    accounts = [f"pair{i}" for i in range(500)]
    job_id = submit(client, accounts, total=500 * 10)["job_id"]
    status = wait_for_job(client, job_id, timeout=60)
    assert (status["status"], status["batches_failed"]) == ("completed", 0), status
    check_job(client, job_id, accounts, 10, "any")
    assert [b["attempts"] for b in _batches(stack.engine, job_id)] == [2] * 10, "one start and one store each"
    assert len(runs_of(emulator, accounts)) == 10

    celery = stack.app.extensions["celery"]
    for index in range(10):  # every message delivered once more, as after a broker hiccup
        publish_store(celery, job_id, index)
        request_starts(celery)
    queue = fault_redis.client
    eventually(lambda: queue.llen(namespace) + queue.hlen("unacked"), lambda waiting: waiting == 0, 20)
    after = client.get(f"/api/job-status/{job_id}").get_json()
    assert after == status
    assert len(runs_of(emulator, accounts)) == 10
    done = [log.count(f"job {job_id} batch") for log in (first.log(), second.log())]
    print(f"\ntwo workers: batch lines per worker {done}; 20 extra messages changed nothing")
