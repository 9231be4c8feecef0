"""The real parts a test or benchmark runs against: a throwaway Postgres database, the Apify
emulator process with its control API, and `celery -A tasks worker` processes.

Services are found through TEST_POSTGRES_URL (a database to connect to for creating a
throwaway one) and TEST_REDIS_URL; the defaults are the local servers `.ci/run` starts.
"""
import ctypes
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from contextlib import contextmanager
from pathlib import Path

import psycopg

from apify_emulator import spawn as spawn_emulator

ROOT = Path(__file__).resolve().parent.parent
ADMIN_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/13")
APIFY_TOKEN = "test-token"
PR_SET_PDEATHSIG = 1
QUEUE = f"followsift-test-{uuid.uuid4().hex[:8]}"


@contextmanager
def throwaway_database(prefix="followsift_test"):
    """A new, empty Postgres database for the duration of the block; yields its URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'create database "{name}"')
    try:
        yield ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'drop database if exists "{name}" with (force)')


class Emulator:
    """The Apify emulator as its own process, driven through its control API."""

    def __init__(self, *args):
        self.process, self.url = spawn_emulator(*args)

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

    def stop(self):
        self.process.terminate()
        self.process.wait(10)


def _die_with_parent():
    """In the child: get SIGTERM when the test or bench process that started it dies, so a
    killed run leaves no worker behind to steal the next run's messages."""
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class CeleryProcess:
    """A `celery -A tasks ...` process in its own process group; its log is kept for assertions."""

    ready_line = ""

    def __init__(self, args, env, log_path):
        self.log_path = log_path
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "tasks", *args],
            cwd=ROOT, env={**os.environ, **env}, stdout=open(log_path, "w"), stderr=subprocess.STDOUT,
            start_new_session=True, preexec_fn=_die_with_parent,
        )
        self._wait_ready()

    def _wait_ready(self, timeout=60):
        deadline = time.monotonic() + timeout
        while self.ready_line not in self.log():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{type(self).__name__} did not start:\n{self.log()[-3000:]}")
            time.sleep(0.2)

    def log(self):
        return Path(self.log_path).read_text(errors="replace")

    def children(self):
        """Pids of the processes this one forked (a worker's pool processes)."""
        pids = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == self.process.pid:
                pids.append(int(stat.parent.name))
        return pids

    def stop(self):
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)


class Worker(CeleryProcess):
    """`celery -A tasks worker` with `concurrency` pool processes."""

    ready_line = " ready."

    def __init__(self, env, log_path, concurrency=2):
        super().__init__(
            ["worker", "--loglevel", "INFO", "--concurrency", str(concurrency), "--pool", "prefork",
             "--without-gossip", "--without-mingle", "--hostname", f"test-{uuid.uuid4().hex[:6]}@%h"],
            env, log_path,
        )


class Beat(CeleryProcess):
    """`celery -A tasks beat`: the clock that sends the reconciler and the purge."""

    ready_line = "beat: Starting"

    def __init__(self, env, log_path):
        super().__init__(["beat", "--loglevel", "INFO", "--schedule", f"{log_path}.schedule"], env, log_path)


def service_env(database_url, redis_url, emulator_url, **extra):
    """The environment the worker (and web) processes share, as variables. The queue is this
    run's own, so runs sharing a Redis never take each other's messages."""
    return {"DATABASE_URL": database_url, "REDIS_URL": redis_url, "APIFY_TOKEN": APIFY_TOKEN,
            "APIFY_API_URL": emulator_url, "NO_PROXY": "127.0.0.1,localhost", "CELERY_QUEUE": QUEUE, **extra}
