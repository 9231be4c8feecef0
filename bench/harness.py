"""What the benchmarks share: the real stack (throwaway Postgres database, a Redis database,
the Apify emulator, worker processes), percentiles and peak memory readings."""
import os
import statistics
import sys
from contextlib import contextmanager
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")

from stack import Emulator, Worker, service_env, throwaway_database  # noqa: E402

BENCH_REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/12")


@contextmanager
def stack(workers=0, concurrency=2, log_dir="/tmp"):
    """Yield (env, emulator, workers) on a fresh database and an empty Redis database."""
    redis.Redis.from_url(BENCH_REDIS_URL).flushdb()
    emulator = Emulator("--wait-cap", "0.2")
    started = []
    try:
        with throwaway_database("followsift_bench") as database_url:
            env = service_env(database_url, BENCH_REDIS_URL, emulator.url)
            _migrate(database_url)
            started = [Worker(env, f"{log_dir}/bench-worker-{i}.log", concurrency) for i in range(workers)]
            yield env, emulator, started
            for worker in started:
                worker.stop()
    finally:
        for worker in started:
            worker.stop()
        emulator.stop()
        redis.Redis.from_url(BENCH_REDIS_URL).flushdb()


def _migrate(database_url):
    from utils import storage
    from utils.config import Settings

    storage.migrate(storage.make_engine(Settings(database_url=database_url)))


def summary(samples_ms):
    """Median and p95 of a list of milliseconds, as text."""
    ordered = sorted(samples_ms)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return f"median {statistics.median(ordered):7.1f} ms  p95 {p95:7.1f} ms  (n={len(ordered)})"


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
