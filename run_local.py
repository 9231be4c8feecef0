"""`make run`: the whole stack on this machine, a sample job, then the API left serving.

With nothing configured it runs the embedded default: SQLite and Redis under `instance/`,
and, without APIFY_TOKEN, the Apify emulator (synthetic followers). DATABASE_URL,
REDIS_URL and APIFY_TOKEN in the environment or `.env` switch each part to the real thing.
"""
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request

from apify_emulator import spawn as spawn_emulator
from celery_config import broker_url
from utils import embedded_redis, store
from utils.store.schema import ENDED_JOB_STATUSES
from utils.config import Settings

HOST, PORT = "127.0.0.1", int(os.environ.get("PORT", "5000"))
API = f"http://{HOST}:{PORT}"
SAMPLE_ACCOUNTS = ["natgeo", "nike", "adidas", "cristiano", "selenagomez", "nasa", "bbcnews", "zara",
                   "instagram", "therock"] + [f"creator_{i:02d}" for i in range(90)]


def main():
    settings = Settings.from_env()
    env = {**os.environ, "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}
    children = []
    if settings.apify_token:
        accounts, total = ["natgeo"], 20
        say(f"Using the real Apify API with actor {settings.apify_actor_id}: the sample job is 20 followers.")
    else:
        emulator, url = spawn_emulator()
        children.append(emulator)
        env.update(APIFY_TOKEN="emulator-token", APIFY_API_URL=url)
        accounts, total = SAMPLE_ACCOUNTS, 5000
        say(f"No APIFY_TOKEN: followers come from the built-in Apify emulator at {url}. They are SYNTHETIC.")
    env["REDIS_URL"] = broker_url(settings)
    engine = store.make_engine(settings)
    store.migrate(engine)
    store.keys.revoke_api_key(engine, "make-run")
    key = store.keys.create_api_key(engine, "make-run")
    say(f"Database: {store.database_url(settings).split('@')[-1]}; Redis: {env['REDIS_URL'].split('@')[-1]}")
    say(f"API key for this run (send it as 'Authorization: Bearer <key>'): {key}")
    celery = [sys.executable, "-m", "celery", "-A", "tasks", "--quiet"]
    children.append(subprocess.Popen([*celery, "worker", "--loglevel", "WARNING", "--concurrency", "2"], env=env))
    children.append(subprocess.Popen(
        [*celery, "beat", "--loglevel", "WARNING",
         "--schedule", os.path.join(settings.instance_path, "celerybeat-schedule")],
        env=env,
    ))
    children.append(subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "wsgi:app", "--bind", f"{HOST}:{PORT}", "--workers", "2",
         "--log-level", "warning"],
        env=env,
    ))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        wait_for_api()
        run_sample_job(key, accounts, total)
        say(f"The API is serving on {API} (Ctrl-C to stop).")
        while all(child.poll() is None for child in children):
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        for child in children:
            child.terminate()
        for child in children:
            child.wait(30)
        if not settings.redis_url:
            embedded_redis.stop(settings.instance_path)


def say(message):
    print(f"==> {message}", flush=True)


def call(method, path, key, body=None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(API + path, data=data, method=method,
                                     headers={"Content-Type": "application/json", "Authorization": f"Bearer {key}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def wait_for_api(timeout=60):
    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(f"{API}/readyz", timeout=5).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise SystemExit("the web process did not come up")
            time.sleep(0.3)


def run_sample_job(key, accounts, total):
    job = call("POST", "/api/scrape-followers", key,
               {"accounts": accounts, "targetGender": "female", "totalScrapeCount": total})
    say(f"Sample job {job['job_id']}: {len(accounts)} accounts, {total} followers, keep women; "
        f"{job['total_batches']} batches.")
    started = time.monotonic()
    while True:
        status = call("GET", job["status_url"], key)
        print(f"\r    {status['status']:<10} {status['progress']:5.1f}%  scraped {status['profiles_scraped']:>6}"
              f"  kept {status['profiles_kept']:>6}", end="", flush=True)
        if status["status"] in ENDED_JOB_STATUSES:
            break
        time.sleep(0.5)
    print()
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
