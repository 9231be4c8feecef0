"""Fixtures: a Postgres database per test session, real Redis, the Apify emulator as its own
process, a real Celery worker process, and the Flask app wired to all of them.

Services are found through TEST_POSTGRES_URL (a database to connect to for creating the
session's own) and TEST_REDIS_URL; the defaults are the local servers `.ci/run` starts.
"""
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import psycopg
import pytest
import redis

from apify_emulator import spawn as spawn_emulator
from app import create_app
from utils import storage
from utils.config import Settings

ROOT = Path(__file__).resolve().parent.parent
ADMIN_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/13")
APIFY_TOKEN = "test-token"
os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")


# -- services --------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def postgres_url():
    name = f"followsift_test_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'create database "{name}"')
    url = ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    yield url
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'drop database if exists "{name}" with (force)')


@pytest.fixture(scope="session")
def redis_url():
    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    yield REDIS_URL
    client.flushdb()


class Emulator:
    """The Apify emulator process and its control API."""

    def __init__(self, url):
        self.url = url

    def control(self, path, payload=None):
        data = None if payload is None else json.dumps(payload).encode()
        method = "GET" if payload is None else "POST"
        request = urllib.request.Request(f"{self.url}/_emulator/{path}", data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read() or b"null")

    def reset(self):
        return self.control("reset", {})

    def configure(self, **settings):
        return self.control("config", settings)

    def fault(self, **rule):
        return self.control("faults", {"rules": [rule]})

    def stats(self):
        return self.control("stats")


@pytest.fixture(scope="session")
def emulator_process():
    process, url = spawn_emulator("--wait-cap", "0.5")
    yield Emulator(url)
    process.terminate()
    process.wait(10)


@pytest.fixture
def emulator(emulator_process):
    emulator_process.reset()
    yield emulator_process
    emulator_process.reset()


# -- the service itself ----------------------------------------------------------------------

@pytest.fixture(scope="session")
def service_settings(postgres_url, redis_url, emulator_process):
    """What the web app and the worker share, as environment variables."""
    return {
        "DATABASE_URL": postgres_url,
        "REDIS_URL": redis_url,
        "APIFY_TOKEN": APIFY_TOKEN,
        "APIFY_API_URL": emulator_process.url,
        "APIFY_HTTP_RETRIES": "0",
        "RETRY_BACKOFF_SECONDS": "0.2",
        "RETRY_BACKOFF_MAX_SECONDS": "1",
        "BATCH_LEASE_SECONDS": "30",
    }


@pytest.fixture(scope="session")
def app(postgres_url, redis_url):
    application = create_app({"database_url": postgres_url, "redis_url": redis_url})
    storage.migrate(application.extensions["engine"])
    return application


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture(scope="session")
def engine(app):
    return app.extensions["engine"]


@pytest.fixture(params=["postgresql", "sqlite"])
def db(request, tmp_path):
    """An engine on each supported database, migrated."""
    if request.param == "postgresql":
        return request.getfixturevalue("engine")
    sqlite_engine = storage.make_engine(Settings(instance_path=str(tmp_path)))
    storage.migrate(sqlite_engine)
    return sqlite_engine


class Worker:
    """A `celery -A tasks worker` process; its log is kept for assertions."""

    def __init__(self, env, log_path, concurrency=2):
        self.log_path = log_path
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "tasks", "worker", "--loglevel", "INFO",
             "--concurrency", str(concurrency), "--pool", "prefork", "--without-gossip", "--without-mingle",
             "--hostname", f"test-{uuid.uuid4().hex[:6]}@%h"],
            cwd=ROOT, env={**os.environ, **env}, stdout=open(log_path, "w"), stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._wait_ready()

    def _wait_ready(self, timeout=60):
        deadline = time.monotonic() + timeout
        while " ready." not in self.log():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"worker did not start:\n{self.log()[-3000:]}")
            time.sleep(0.2)

    def log(self):
        return Path(self.log_path).read_text(errors="replace")

    def stop(self):
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)


@pytest.fixture(scope="session")
def worker(service_settings, tmp_path_factory):
    # Jobs submitted by tests that ran without a worker would otherwise reach this one.
    redis.Redis.from_url(service_settings["REDIS_URL"]).flushdb()
    process = Worker(service_settings, tmp_path_factory.mktemp("worker") / "worker.log")
    yield process
    process.stop()


# -- helpers -----------------------------------------------------------------------------------

def submit(client, accounts, gender="any", total=None, **extra):
    body = {"accounts": accounts, "targetGender": gender, "totalScrapeCount": total or 10 * len(accounts), **extra}
    response = client.post("/api/scrape-followers", json=body)
    assert response.status_code == 202, response.get_json()
    return response.get_json()


def wait_for_job(client, job_id, timeout=60):
    deadline = time.monotonic() + timeout
    while True:
        status = client.get(f"/api/job-status/{job_id}").get_json()
        if status["status"] in ("completed", "failed", "cancelled"):
            return status
        if time.monotonic() > deadline:
            raise AssertionError(f"job still {status['status']} after {timeout}s: {status}")
        time.sleep(0.1)


def all_results(client, job_id, limit=1000):
    """Every profile of a job, walked by cursor."""
    profiles, url = [], f"/api/job-results/{job_id}?limit={limit}"
    while url:
        page = client.get(url).get_json()
        profiles.extend(page["profiles"])
        url = page["next_cursor"] and f"/api/job-results/{job_id}?limit={limit}&cursor={page['next_cursor']}"
    return profiles
