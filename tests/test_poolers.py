"""Postgres through a connection pooler, as on Supabase: Debian's pgbouncer of the test's own
(standing in for Supavisor) in front of a database of the module's own, with a Redis of its
own, a worker and the clock.

In transaction mode, on a port that is not Supabase's 6543, a job must not meet another
client's prepared statements (`DuplicatePreparedStatement: prepared statement "_pg3_0" already
exists`). In session mode with Supabase's Pool Size of 5, the web process polling job status
from several threads must not hold the pooler's server connections while a worker waits.
Both jobs must end with no failed batch and their counters exact.
"""
import os
import threading
import time
from collections import Counter, defaultdict
from contextlib import contextmanager

import pytest

from api_async import limiter
from utils import store
from utils.config import Settings

from conftest import check_job, submit, wait_for_job
from stack import (ADMIN_URL, Stack, ThrowawayPgbouncer, ThrowawayRedis, connections_by_process,
                   postgres_client_ports, throwaway_database)


@pytest.mark.parametrize("url, setting, mode", [
    ("postgresql://postgres.ref:pw@aws-0-eu-west-1.pooler.supabase.com:6543/postgres", "", "transaction"),
    ("postgresql://postgres.ref:pw@aws-0-eu-west-1.pooler.supabase.com:5432/postgres", "", "session"),
    ("postgresql://postgres:pw@db.ref.supabase.co:5432/postgres", "", "direct"),
    ("postgresql://postgres@127.0.0.1:6543/postgres", "", "direct"),  # a port alone says nothing
    ("postgresql://postgres@127.0.0.1:6432/postgres", "transaction", "transaction"),
    ("postgresql://postgres.ref:pw@aws-0-eu-west-1.pooler.supabase.com:6543/postgres", "session", "session"),
])
def test_the_pool_mode_comes_from_the_setting_or_supabases_pooler_address(url, setting, mode):
    assert store.pool_mode(Settings(database_url=url, database_pool_mode=setting)) == mode


@pytest.fixture(scope="module")
def pooler_redis():
    with ThrowawayRedis() as server:
        yield server


@pytest.fixture(scope="module")
def pooler_db():
    with throwaway_database("followsift_pooler") as url:
        yield url.rsplit("/", 1)[1]


@contextmanager
def _database(database, mode, pool_size):
    """The database's URL (through pgbouncer in `mode` unless direct) and how to list the client
    ports of its connections now."""
    if mode == "direct":
        yield ADMIN_URL.rsplit("/", 1)[0] + "/" + database, lambda: postgres_client_ports(database)
        return
    try:
        pooler = ThrowawayPgbouncer(mode, pool_size, query_wait_timeout=5)
    except ThrowawayPgbouncer.Unavailable as exc:
        pytest.skip(str(exc))
    with pooler:
        yield pooler.url(database), lambda: pooler.client_ports(database)


@pytest.fixture
def pooled(pooler_db, pooler_redis, service_settings, tmp_path, request):
    """The app, a worker (2 pool processes) and the clock on the database, through pgbouncer in
    the mode and Pool Size the test is parametrised with, DATABASE_POOL_MODE set to match.
    `client_ports()` lists the client ports of the database's (or the pooler's) connections."""
    mode, pool_size = request.param
    pooler_redis.flushall()
    with _database(pooler_db, mode, pool_size) as (url, client_ports):
        stack = Stack(url, pooler_redis.url, database_pool_mode=mode)
        limiter.init_app(stack.app)
        with stack.worker_and_clock({**service_settings, "DATABASE_POOL_MODE": mode}, tmp_path) as (worker, clock):
            stack.worker, stack.clock, stack.client_ports = worker, clock, client_ports
            yield stack
        stack.close()


def _job(stack, prefix, accounts=150, limit=40):
    names = [f"{prefix}{i}" for i in range(accounts)]
    return names, submit(stack.client, names, total=accounts * limit)["job_id"]


def _check_done(stack, names, job_id, limit=40):
    status = wait_for_job(stack.client, job_id, timeout=180)
    assert (status["status"], status["batches_failed"]) == ("completed", 0), status
    check_job(stack.client, job_id, names, limit, "any")
    assert "PreparedStatement" not in stack.worker.log()
    assert "query_wait_timeout" not in stack.worker.log()


# One server connection: every client's statements meet there, as they do on Supavisor over time.
@pytest.mark.parametrize("pooled", [("transaction", 1)], indirect=True)
def test_a_job_through_a_transaction_pooler_on_any_port(pooled, emulator):
    emulator.configure(run_duration_s=1)
    assert ":6543/" not in pooled.database_url
    names, job_id = _job(pooled, "txn")
    _check_done(pooled, names, job_id)


def _poll(stack, job_id, codes, stop):
    client = stack.app.test_client()
    client.environ_base.update(stack.client.environ_base)
    while not stop.is_set():
        codes[client.get(f"/api/job-status/{job_id}").status_code] += 1


@contextmanager
def _polled(stack, job_id, threads=5):
    """`threads` threads polling the job's status the whole time; yields their status codes."""
    codes, stop = Counter(), threading.Event()
    pollers = [threading.Thread(target=_poll, args=(stack, job_id, codes, stop)) for _ in range(threads)]
    for poller in pollers:
        poller.start()
    try:
        yield codes
    finally:
        stop.set()
        for poller in pollers:
            poller.join()


def _roles(stack):
    """Which process is which: this one serves the API (like one gunicorn process), then the
    worker's main process, its pool processes and the clock."""
    children = stack.worker.children()
    return {os.getpid(): "web", stack.worker.process.pid: "worker main", stack.clock.process.pid: "beat",
            **{pid: "worker child" for pid in children}}


def _held(stack):
    """Connections each process holds now, by role (the most any one process of the role holds).
    Ports no process holds are connections just closed (pgbouncer lists them a moment longer)."""
    roles, held = _roles(stack), defaultdict(int)
    for pid, count in connections_by_process(stack.client_ports()).items():
        if pid is not None:
            role = roles.get(pid, f"pid {pid}")
            held[role] = max(held[role], count)
    return held


@pytest.mark.parametrize("pooled", [("session", 5)], indirect=True)
def test_a_job_through_a_session_pooler_of_five_while_the_api_is_polled(pooled, emulator):
    emulator.configure(run_duration_s=1)
    names, job_id = _job(pooled, "sess")
    with _polled(pooled, job_id) as codes:
        _check_done(pooled, names, job_id)
    assert set(codes) == {200}, codes
    print(f"\nsession pooler of 5: {sum(codes.values())} status polls from 5 threads, all 200, no failed batch")


@pytest.mark.parametrize("pooled", [("direct", 0), ("session", 5), ("transaction", 2)], indirect=True,
                         ids=["direct", "session", "transaction"])
def test_connections_each_process_holds(pooled, pooler_db, emulator, request):
    """Connections held per process while a job runs under polling and once all is idle, and
    Postgres's own count, for docs/deploy.md's budget; idle, a process holds one connection at
    most behind a session pooler."""
    emulator.configure(run_duration_s=1)
    names, job_id = _job(pooled, f"held{request.node.callspec.id}")
    peak, on_postgres = defaultdict(int), 0
    with _polled(pooled, job_id):
        while pooled.client.get(f"/api/job-status/{job_id}").get_json()["status"] not in ("completed", "failed"):
            for role, count in _held(pooled).items():
                peak[role] = max(peak[role], count)
            on_postgres = max(on_postgres, len(postgres_client_ports(pooler_db)))
            time.sleep(0.05)
    time.sleep(1.5)  # past a tick: the clock's task has returned its connection
    idle = _held(pooled)
    print(f"\n{request.node.callspec.id}: held per process, peak {dict(peak)}, idle {dict(idle)}; "
          f"Postgres connections at peak {on_postgres}")
    _check_done(pooled, names, job_id)
    if request.node.callspec.id == "session":
        assert max(idle.values()) <= 1, idle
