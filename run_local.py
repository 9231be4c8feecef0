"""`make run`: the whole stack on this machine, a sample job, then the API left serving.

With nothing configured it runs the embedded default: SQLite and Redis under `instance/`,
and, without APIFY_TOKEN, the Apify emulator (synthetic followers). DATABASE_URL,
REDIS_URL and APIFY_TOKEN in the environment or `.env` switch each part to the real thing.

Start-up: the web app and the emulator start at once (the emulator on a port chosen here, so
nobody waits for it to say where it listens), the key is made while they import, and polling
/readyz every 50 ms finds the web app up; then the worker and the clock start and the sample
job is submitted at once, waiting in the queue for the worker. Their output goes to
`instance/logs/`, so this console shows only our own lines. Each child runs in its own session and gets SIGTERM from the kernel
if this process dies; Ctrl-C and SIGTERM stop every one of them (their whole process groups),
and this process in turn gets SIGTERM when make dies.
"""
import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from celery_config import broker_url
from cli import local_key
from utils import embedded_redis, store
from utils.config import Settings
from utils.store.schema import ENDED_JOB_STATUSES

HOST, PORT = "127.0.0.1", int(os.environ.get("PORT", "5000"))
API = f"http://{HOST}:{PORT}"
SAMPLE_ACCOUNTS = ["natgeo", "nike", "adidas", "cristiano", "selenagomez", "nasa", "bbcnews", "zara",
                   "instagram", "therock"] + [f"creator_{i:02d}" for i in range(90)]
PR_SET_PDEATHSIG = 1
STOP_GRACE_SECONDS = 10


def main():
    _die_with_parent()
    for signum in (signal.SIGINT, signal.SIGTERM):  # SIGINT too: a shell's background job starts with it ignored
        signal.signal(signum, _interrupt)
    settings = Settings.from_env()
    logs = Path(settings.instance_path) / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    children = {}
    try:
        emulator_port = None if settings.apify_token else _free_port()
        env, sample = _environment(settings, emulator_port)
        engine = store.make_engine(settings)
        store.migrate(engine)
        children = _start_all(_serving_commands(emulator_port), env, logs)
        key = local_key(engine, settings.instance_path)
        say(f"Database: {store.database_url(settings).split('@')[-1]}; Redis: {env['REDIS_URL'].split('@')[-1]}; "
            f"logs: {logs}/")
        say(f"API key (kept in {settings.instance_path}/local-api-key; `flask --app app local-key` shows it): {key}")
        _wait_for_api(children, logs)
        children.update(_start_all(_background_commands(settings), env, logs))
        say(f"Serving on {API}: open it in a browser and paste the key.")
        run_sample_job(key, *sample)
        say(f"The API and dashboard are serving on {API} (Ctrl-C to stop).")
        _watch(children, logs)
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the clean-up short
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        _stop(children.values())
        if not settings.redis_url:
            embedded_redis.stop(settings.instance_path)


def _interrupt(*_):
    raise KeyboardInterrupt


def _die_with_parent():
    """Have the kernel send SIGTERM when our parent dies (Linux only): for `make run`, a signal
    sent to make's pid alone then still stops us; for a child, our death stops it."""
    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _environment(settings, emulator_port):
    """The children's environment, and the sample job (accounts, total) that suits it."""
    env = {**os.environ, "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost",
           "REDIS_URL": broker_url(settings)}
    if settings.apify_token:
        say(f"Using the real Apify API with actor {settings.apify_actor_id}: the sample job is 20 followers.")
        return env, (["natgeo"], 20)
    emulator_url = f"http://{HOST}:{emulator_port}"
    # The emulator's webhooks reach the local web app, so ended runs are seen at once.
    env.update(APIFY_TOKEN="emulator-token", APIFY_API_URL=emulator_url)
    env.setdefault("PUBLIC_BASE_URL", API)
    env.setdefault("WEBHOOK_ALLOW_PRIVATE_ADDRESSES", "1")
    say(f"No APIFY_TOKEN: followers come from the built-in Apify emulator at {emulator_url}. They are SYNTHETIC.")
    return env, (SAMPLE_ACCOUNTS, 5000)


def _free_port():
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def _serving_commands(emulator_port):
    """What "serving" waits for: the web app, and the emulator (only with a port) it calls."""
    commands = {"web": [sys.executable, "-m", "gunicorn", "wsgi:app", "--bind", f"{HOST}:{PORT}", "--worker-class",
                        "gthread", "--workers", "1", "--threads", "8", "--graceful-timeout", "5",
                        "--log-level", "warning"]}
    if emulator_port:
        commands["emulator"] = [sys.executable, "-m", "apify_emulator", "--host", HOST, "--port", str(emulator_port)]
    return commands


def _background_commands(settings):
    """The worker and the clock, started once the web app answers. Each imports the app for
    over a CPU second; started with the web app on a two-core machine they starve it (serving
    took 4.5 s on average, 3.0 s this way), and the sample job ends no later."""
    celery = [sys.executable, "-m", "celery", "-A", "tasks", "--quiet"]
    return {
        "worker": [*celery, "worker", "--loglevel", "WARNING", "--concurrency", "2", "--without-gossip",
                   "--without-mingle"],
        "clock": [*celery, "beat", "--loglevel", "WARNING",
                  "--schedule", os.path.join(settings.instance_path, "celerybeat-schedule")],
    }


def _start_all(commands, env, logs):
    """Start every command of {name: command} at once; returns {name: Popen}."""
    return {name: _start(command, env, logs / f"{name}.log") for name, command in commands.items()}


def _start(command, env, log_path):
    """`command` in a session of its own (a terminal's Ctrl-C reaches us, and we stop its whole
    group), dying with us, its output in `log_path`."""
    with open(log_path, "w") as log:
        return subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True, preexec_fn=_die_with_parent)


def _wait_for_api(children, logs, timeout=60):
    deadline = time.monotonic() + timeout
    while True:
        _check_alive(children, logs)
        try:
            urllib.request.urlopen(f"{API}/readyz", timeout=2).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise SystemExit(f"the web app did not answer within {timeout}s; see {logs}/web.log")
            time.sleep(0.05)


def _watch(children, logs):
    while True:
        _check_alive(children, logs)
        time.sleep(1)


def _check_alive(children, logs):
    for name, child in children.items():
        if child.poll() is not None:
            tail = (logs / f"{name}.log").read_text(errors="replace")[-2000:]
            raise SystemExit(f"the {name} process exited ({child.returncode}); the end of {logs}/{name}.log:\n{tail}")


def _stop(children):
    """SIGTERM to each child's process group, SIGKILL to the groups still there after the grace."""
    children = list(children)
    for child in children:
        _signal_group(child, signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    for child in children:
        try:
            child.wait(max(deadline - time.monotonic(), 0))
        except subprocess.TimeoutExpired:
            _signal_group(child, signal.SIGKILL)
            child.wait()
        _signal_group(child, signal.SIGKILL)  # what the leader left behind (pool processes)


def _signal_group(child, signum):
    try:
        os.killpg(child.pid, signum)
    except ProcessLookupError:
        pass


def say(message):
    print(f"==> {message}", flush=True)


def call(method, path, key, body=None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(API + path, data=data, method=method,
                                     headers={"Content-Type": "application/json", "Authorization": f"Bearer {key}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


class ProgressLine:
    """One line redrawn in place on a terminal; elsewhere (a pipe, a file) a plain line each
    time it changes, since a carriage return there garbles the output."""

    def __init__(self, stream=sys.stdout):
        self.stream, self.redraw, self.last = stream, stream.isatty(), None

    def update(self, text):
        if text == self.last:
            return
        self.last = text
        self.stream.write(f"\r{text}" if self.redraw else f"{text}\n")
        self.stream.flush()

    def close(self):
        if self.redraw and self.last is not None:
            self.stream.write("\n")


def run_sample_job(key, accounts, total):
    job = call("POST", "/api/scrape-followers", key,
               {"accounts": accounts, "targetGender": "female", "totalScrapeCount": total})
    say(f"Sample job {job['job_id']}: {len(accounts)} accounts, {total} followers, keep women; "
        f"{job['total_batches']} batches.")
    started, progress = time.monotonic(), ProgressLine()
    while True:
        status = call("GET", job["status_url"], key)
        progress.update(f"    {status['status']:<10} {status['progress']:5.1f}%"
                        f"  scraped {status['profiles_scraped']:>6}  kept {status['profiles_kept']:>6}")
        if status["status"] in ENDED_JOB_STATUSES:
            break
        time.sleep(0.25)
    progress.close()
    say(f"Job {status['status']} in {time.monotonic() - started:.1f}s; gender breakdown of everyone scraped: "
        f"{status['gender_breakdown']}")
    if status["error_message"]:
        say(f"Error: {status['error_message']}")
    results = call("GET", f"{job['results_url']}?limit=10", key)
    say(f"First {len(results['profiles'])} of {results['total']} results:")
    for profile in results["profiles"]:
        print(f"    {profile['username']:<28} {profile['full_name'][:32]:<32} {profile['gender']:<7}"
              f" {profile['gender_confidence']:.2f}  via {', '.join(profile['source_accounts'])}")
    print(f"    more: {API}{job['results_url']}?limit=1000")


if __name__ == "__main__":
    main()
