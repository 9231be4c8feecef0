"""What the benchmarks share: the real stack (throwaway Postgres database, a Redis database,
the Apify emulator, worker processes, gunicorn), an API key, a keep-alive HTTP client,
percentiles, peak memory readings, and the machine's own limits measured in the same run.

Run as a script it prints those limits.
"""
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import psycopg
import redis

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")

from stack import QUEUE, Beat, Emulator, Worker, service_env, throwaway_database  # noqa: E402

os.environ["CELERY_QUEUE"] = QUEUE  # this run's apps and workers on their own queue

BENCH_REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/12")
# Rate limits are a product feature, not what these scripts measure.
UNLIMITED = {"RATE_LIMIT_CREATE": "1000000/second", "RATE_LIMIT_READ": "1000000/second",
             "RATE_LIMIT_UNAUTHENTICATED": "1000000/second", "MAX_COST_USD_DEFAULT": "0",
             # An actor that names each row's account, so a batch is BATCH_SIZE accounts in one run.
             "APIFY_ACTOR_ID": "apify/instagram-followers-following-scraper"}


@contextmanager
def stack(workers=0, concurrency=2, log_dir="/tmp"):
    """Yield (env, emulator, workers) on a fresh database and an empty Redis database; with
    workers, the clock too (it notices runs that ended, as the Procfile's `clock:` does)."""
    redis.Redis.from_url(BENCH_REDIS_URL).flushdb()
    emulator = Emulator("--wait-cap", "0.2")
    started = []
    try:
        with throwaway_database("followsift_bench") as database_url:
            env = service_env(database_url, BENCH_REDIS_URL, emulator.url, **UNLIMITED)
            _migrate(database_url)
            started = [Worker(env, f"{log_dir}/bench-worker-{i}.log", concurrency) for i in range(workers)]
            if workers:
                started.append(Beat(env, f"{log_dir}/bench-clock.log"))
            yield env, emulator, started[:workers]
    finally:
        for process in started:
            process.stop()
        emulator.stop()
        redis.Redis.from_url(BENCH_REDIS_URL).flushdb()


def _migrate(database_url):
    from utils import store
    from utils.config import Settings

    store.migrate(store.make_engine(Settings(database_url=database_url)))


def engine_for(env):
    from utils import store
    from utils.config import Settings

    return store.make_engine(Settings(database_url=env["DATABASE_URL"]))


def api_key(env, name="bench"):
    """A live API key called `name` in the stack's database."""
    from utils import store

    return store.keys.create_api_key(engine_for(env), name)


def p95(samples):
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def summary(samples_ms):
    """Median and p95 of a list of milliseconds, as text."""
    return f"median {_ms(statistics.median(samples_ms))} ms  p95 {_ms(p95(samples_ms))} ms  (n={len(samples_ms)})"


def _ms(value):
    return f"{value:.3f}" if value < 1 else f"{value:.1f}"


def timed_ms(fn, repeats, warmup=2):
    """Milliseconds per call of `fn`, `repeats` times after `warmup` unmeasured calls."""
    samples = []
    for i in range(warmup + repeats):
        started = time.perf_counter()
        fn()
        if i >= warmup:
            samples.append((time.perf_counter() - started) * 1000)
    return samples


# -- result rows ---------------------------------------------------------------------------

def make_job(engine, accounts=("bench_source",), key=None):
    """A job row (with its batch rows) to hang results on, owned by API key `key`; returns its id."""
    from utils import store

    job_id, *_ = store.work.create_job(
        engine, api_key_id=key and store.keys.api_key_id(engine, key), usernames=list(accounts), target_gender="any",
        min_confidence=0.0, total_scrape_count=1, per_account_limit=1, batch_size=50, actor_id="test/actor")
    return job_id


def profile_rows(count, start=0, source="bench_source"):
    """Rows as `utils.store.results.write_profiles` takes them, shaped like real followers."""
    return [
        {"profile_id": str(10_000_000_000 + i), "username": f"user.name_{i}", "full_name": f"Maria Example {i}",
         "gender": "female", "gender_confidence": 0.93, "is_private": i % 3 == 0, "is_verified": False,
         "profile_pic_url": f"https://scontent.cdninstagram.com/v/t51.2885-19/{i}_n.jpg?stp=dst-jpg_s150x150",
         "sources": [source]}
        for i in range(start, start + count)
    ]


def fill_results(engine, job_id, count, chunk=1000):
    """Store `count` profiles for the job through the real write path, in chunks; returns seconds."""
    from utils.store.results import write_profiles

    started = time.perf_counter()
    for offset in range(0, count, chunk):
        write_profiles(engine, job_id, profile_rows(min(chunk, count - offset), offset))
    return time.perf_counter() - started


def storing_claim(engine, job_id):
    """The job's first batch, held as a task holds it while it stores a run's dataset."""
    import sqlalchemy as sa

    from utils.store.batches import Claim
    from utils.store.schema import BatchSource, BatchStatus, batches

    with engine.begin() as conn:
        conn.execute(batches.update().where(batches.c.job_id == job_id, batches.c.batch_index == 0)
                     .values(status=BatchStatus.STORING, attempts=1,
                             lease_expires_at=sa.func.now() + sa.text("interval '1 hour'")))
        accounts = json.loads(conn.execute(sa.select(batches.c.accounts).where(
            batches.c.job_id == job_id, batches.c.batch_index == 0)).scalar())
    return Claim(job_id, 0, 1, BatchStatus.STORING, BatchSource.APIFY, accounts, "RUN", 0, 0, "female", 0.75, 10**9)


# -- the web process -----------------------------------------------------------------------

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def web(env, workers=2, threads=4, port=None):
    """gunicorn as the Procfile runs it, on `port` (a free one by default); yields the port."""
    port = port or free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "wsgi:app", "--bind", f"127.0.0.1:{port}", "--workers", str(workers),
         "--threads", str(threads), "--log-level", "warning"],
        cwd=ROOT, env={**os.environ, **env},
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
                time.sleep(0.1)
        yield port
    finally:
        process.terminate()
        process.wait(10)


class Client:
    """One keep-alive HTTP connection to the API, sending the API key."""

    def __init__(self, port, key):
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        self.headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}

    def request(self, method, path, body=None, expect=200):
        data = body if body is None or isinstance(body, (bytes, str)) else json.dumps(body)
        try:
            self.connection.request(method, path, data, self.headers)
            response = self.connection.getresponse()
        except http.client.RemoteDisconnected:  # gunicorn closed the idle keep-alive connection
            self.connection.close()
            self.connection.request(method, path, data, self.headers)
            response = self.connection.getresponse()
        payload = response.read()
        if response.status != expect:
            raise RuntimeError(f"{method} {path}: {response.status} {payload[:300]!r}")
        return json.loads(payload) if payload else None


def wait_for_job(client, status_url, poll=0.05):
    """Poll the job until it ends; returns its last status."""
    while (status := client.request("GET", status_url))["status"] in ("queued", "processing"):
        time.sleep(poll)
    return status


# -- the machine's own limits --------------------------------------------------------------

def postgres_round_trip_ms(database_url, repeats=2000):
    """A raw `SELECT 1` over one psycopg connection: the floor under any database call."""
    with psycopg.connect(database_url) as conn:
        return timed_ms(lambda: conn.execute("select 1").fetchone(), repeats, warmup=50)


def redis_round_trip_ms(redis_url=BENCH_REDIS_URL, repeats=2000):
    connection = redis.Redis.from_url(redis_url)
    return timed_ms(connection.ping, repeats, warmup=50)


def python_loop_rate(n=5_000_000):
    """Iterations per second of a bare Python loop on one core: the CPU's speed as our code sees it."""
    started = time.perf_counter()
    total = 0
    for i in range(n):
        total += i
    return n / (time.perf_counter() - started)


def machine_limits(database_url=None):
    """The limits as printable lines (Postgres only with a database URL)."""
    lines = [f"machine: python loop {python_loop_rate() / 1e6:.1f} M it/s on one core; "
             f"redis PING {summary(redis_round_trip_ms())}"]
    if database_url:
        lines.append(f"machine: postgres SELECT 1 {summary(postgres_round_trip_ms(database_url))}")
    return lines


def peak_rss_mb(root_pid):
    """Peak resident memory (VmHWM) of each process in the group led by `root_pid`, in MB."""
    peaks = {}
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            pid = int(status.parent.name)
            if os.getpgid(pid) != root_pid:
                continue
            for line in status.read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peaks[pid] = int(line.split()[1]) / 1024
        except (OSError, ValueError):
            continue
    return peaks



def group_pss_mb(root_pid):
    """Proportional set size of the process group led by `root_pid`, in MB: memory shared
    between a worker's processes counted once, as a dyno's memory limit counts it."""
    total = 0
    for rollup in Path("/proc").glob("[0-9]*/smaps_rollup"):
        try:
            if os.getpgid(int(rollup.parent.name)) != root_pid:
                continue
            total += next(int(line.split()[1]) for line in rollup.read_text().splitlines() if line.startswith("Pss:"))
        except (OSError, ValueError, StopIteration):
            continue
    return total / 1024


if __name__ == "__main__":
    from stack import ADMIN_URL

    print("\n".join(machine_limits(ADMIN_URL)))
