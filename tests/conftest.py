"""Fixtures: each test module gets a Postgres database and a Redis namespace (its own Celery
queue and rate-limit keys) of its own, and its own Celery worker and beat processes when it
asks for them; the Apify emulator is one process for the session, reset before each test; the
Flask app is wired to all of them, also served over HTTP so that the emulator's webhooks reach
it (see stack.py).

Postgres is the queue of record: a worker starts every queued batch of an active job it finds
in its database, so a module that runs a worker shares it with no other module, and no test
cleans up after another. A test of the store alone (`db`) gets a database of its own, copied from
a migrated template, or an SQLite file of its own.
"""
import threading
import os
import re
import time
from collections import Counter

import pytest
import redis

import apify_emulator as emulated
from api_async import limiter
from app import create_app
from werkzeug.serving import make_server

from stack import QUEUE, REDIS_URL, Beat, Emulator, Worker, service_env, throwaway_database
from utils import store
from utils.config import Settings
from utils.gender import detect_genders

os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")
# An actor that names each row's input account, so a batch is BATCH_SIZE accounts in one run;
# tests/test_actors.py runs every supported actor, the default one included.
SESSION_ACTOR = "apify/instagram-followers-following-scraper"
os.environ["APIFY_ACTOR_ID"] = SESSION_ACTOR
WEBHOOK_SECRET = "test-webhook-secret"


@pytest.fixture(scope="module", autouse=True)
def namespace(request):
    """The module's Celery queue, which also prefixes its rate-limit keys in Redis: every app and
    worker the module makes uses it."""
    name = f"{QUEUE}-{re.sub(r'[^a-z0-9]+', '-', request.module.__name__.lower())}"
    before = os.environ.get("CELERY_QUEUE")
    os.environ["CELERY_QUEUE"] = name
    yield name
    if before is None:
        os.environ.pop("CELERY_QUEUE")
    else:
        os.environ["CELERY_QUEUE"] = before


# -- services --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def postgres_url():
    with throwaway_database() as url:
        yield url


@pytest.fixture(scope="module")
def quiet_postgres_url():
    """A database no worker watches, for tests of the store on its own."""
    with throwaway_database("followsift_quiet") as url:
        yield url


@pytest.fixture(scope="session")
def redis_url():
    yield REDIS_URL
    for key in redis.Redis.from_url(REDIS_URL).scan_iter(f"*{QUEUE}*"):  # this session's namespaces only
        redis.Redis.from_url(REDIS_URL).delete(key)


@pytest.fixture(scope="session")
def emulator_process():
    process = Emulator("--wait-cap", "0.5")
    yield process
    process.stop()


@pytest.fixture
def emulator(emulator_process, request):
    emulator_process.reset()
    if "worker" in request.fixturenames:  # a fresh account: forget what the governor learned
        forget_capacity(request.getfixturevalue("engine"))
    yield emulator_process
    emulator_process.reset()


def forget_capacity(engine):
    with engine.begin() as conn:
        conn.execute(store.schema.apify_capacity.update().values(
            account_cap=None, lowered_cap=None, lowered_until=None, limits_checked_at=None))


# -- the service itself ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def metrics_dir(tmp_path_factory):
    """prometheus-client's multiprocess directory, shared by the workers and the app's /metrics."""
    return str(tmp_path_factory.mktemp("prometheus"))


@pytest.fixture(scope="module")
def stack_settings():
    """Settings the module's app and worker run with beyond the tests' own: a module overrides
    this fixture, as {field_name: value} (see utils/config.py)."""
    return {}


@pytest.fixture(scope="module")
def service_settings(postgres_url, redis_url, emulator_process, metrics_dir, web_server, namespace, stack_settings):
    """What the web app and the worker share, as environment variables."""
    ours = dict(PROMETHEUS_MULTIPROC_DIR=metrics_dir, APIFY_HTTP_RETRIES="0", PUBLIC_BASE_URL=web_server,
                RETRY_BACKOFF_SECONDS="0.2", RETRY_BACKOFF_MAX_SECONDS="1", WEBHOOK_SIGNING_SECRET=WEBHOOK_SECRET,
                WEBHOOK_RETRY_BACKOFF_SECONDS="0.2", WEBHOOK_ALLOW_PRIVATE_ADDRESSES="1", CELERY_QUEUE=namespace)
    return service_env(postgres_url, redis_url, emulator_process.url,
                       **{**ours, **{name.upper(): str(value) for name, value in stack_settings.items()}})


@pytest.fixture(scope="module")
def app(postgres_url, redis_url, namespace, stack_settings):
    # Jobs scrape every time unless a test asks for reuse (maxAgeDays): tests share account names.
    application = create_app({"database_url": postgres_url, "redis_url": redis_url, "reuse_max_age_days": 0,
                              "rate_limit_create": "10000/minute", "rate_limit_read": "100000/minute",
                              "rate_limit_unauthenticated": "100000/minute", "celery_queue": namespace,
                              "webhook_signing_secret": WEBHOOK_SECRET, "webhook_allow_private_addresses": 1,
                              **stack_settings})
    store.migrate(application.extensions["engine"])
    return application


@pytest.fixture(scope="module")
def web_server(app):
    """The app over real HTTP on a free port (Apify's webhooks come here); yields its URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


@pytest.fixture(scope="module")
def api_key(app):
    return store.keys.create_api_key(app.extensions["engine"], "tests")


def authorised_client(app, key):
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {key}"
    return client


@pytest.fixture
def client(app, api_key):
    """A test client that sends the session's API key."""
    # The rate limiter is one object per process and every create_app points it at that app's
    # storage (a test's embedded Redis, since stopped): point it back. Its hooks are added once.
    limiter.init_app(app)
    return authorised_client(app, api_key)


@pytest.fixture(scope="module")
def engine(app):
    return app.extensions["engine"]


@pytest.fixture(scope="module")
def quiet_engine(quiet_postgres_url):
    engine = store.make_engine(Settings(database_url=quiet_postgres_url))
    store.migrate(engine)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def migrated_template():
    """The name of a migrated Postgres database that tests' own databases are copied from."""
    with throwaway_database("followsift_template") as url:
        engine = store.make_engine(Settings(database_url=url))
        store.migrate(engine)
        engine.dispose()  # a template must have no one connected when it is copied
        yield url.rsplit("/", 1)[1]


@pytest.fixture(params=["postgresql", "sqlite"])
def db(request, tmp_path):
    """An engine on each supported database, migrated, of this test's own: a test of the store
    alone sees only what it wrote."""
    if request.param == "sqlite":
        sqlite_engine = store.make_engine(Settings(instance_path=str(tmp_path)))
        store.migrate(sqlite_engine)
        yield sqlite_engine
        return
    with throwaway_database("followsift_store", template=request.getfixturevalue("migrated_template")) as url:
        engine = store.make_engine(Settings(database_url=url))
        yield engine
        engine.dispose()


@pytest.fixture(scope="module")
def worker(service_settings, tmp_path_factory):
    """A worker and the clock on the module's database and queue, as the Procfile runs them."""
    folder = tmp_path_factory.mktemp("worker")
    process = Worker(service_settings, folder / "worker.log")
    clock = Beat(service_settings, folder / "beat.log")
    yield process
    clock.stop()
    process.stop()


# -- helpers -----------------------------------------------------------------------------------

def submit(client, accounts, gender="any", total=None, **extra):
    body = {"accounts": accounts, "targetGender": gender, "totalScrapeCount": total or 10 * len(accounts), **extra}
    response = client.post("/api/scrape-followers", json=body)
    assert response.status_code == 202, response.get_json()
    return response.get_json()


def eventually(probe, done, timeout=30, interval=0.05):
    """Call `probe()` until `done(value)` holds and return that value; fail with the last one."""
    deadline = time.monotonic() + timeout
    while not done(value := probe()):
        if time.monotonic() > deadline:
            raise AssertionError(f"not there after {timeout}s: {value!r}")
        time.sleep(interval)
    return value


def wait_for_job(client, job_id, timeout=60):
    return eventually(lambda: client.get(f"/api/job-status/{job_id}").get_json(),
                      lambda status: status["status"] in ("completed", "failed", "cancelled"), timeout, 0.1)


def cancel(engine, job_id):
    """Cancel a job as `POST /api/jobs/<id>/cancel` does, without the queue (the clock aborts its runs)."""
    return store.work.stop_job(engine, job_id, "cancelled", "Cancelled on request.")


def runs_of(emulator, accounts):
    """The emulator's runs on these accounts only."""
    return [run for run in emulator.stats()["runs"] if set(run["usernames"]) <= set(accounts)]


def all_results(client, job_id, limit=1000):
    """Every profile of a job, walked by cursor."""
    profiles, url = [], f"/api/job-results/{job_id}?limit={limit}"
    while url:
        page = client.get(url).get_json()
        profiles.extend(page["profiles"])
        url = page["next_cursor"] and f"/api/job-results/{job_id}?limit={limit}&cursor={page['next_cursor']}"
    return profiles


def expected_profiles(accounts, limit, target, min_confidence):
    """What a job should keep: the emulator's followers of the target gender, with their sources."""
    found = [(f, account) for account in accounts for f in emulated.followers(account, limit)]
    guesses = detect_genders((f.full_name, f.username) for f, _ in found)
    kept, scraped = {}, Counter()
    for (follower, account), guess in zip(found, guesses):
        gender = guess.gender if guess.confidence >= min_confidence else "unknown"
        scraped[gender] += 1
        if target in ("any", gender):
            kept.setdefault(follower.id, set()).add(account)
    return kept, scraped


def check_job(client, job_id, accounts, limit, target):
    status = client.get(f"/api/job-status/{job_id}").get_json()
    kept, scraped = expected_profiles(accounts, limit, target, status["min_confidence"])
    profiles = all_results(client, job_id, limit=97)
    ids = [p["profile_id"] for p in profiles]
    assert len(ids) == len(set(ids)), "a profile is stored twice"
    assert {p["profile_id"]: set(p["source_accounts"]) for p in profiles} == kept
    assert status["profiles_kept"] == len(profiles)
    assert status["profiles_scraped"] == sum(scraped.values())
    assert status["gender_breakdown"] == {g: scraped[g] for g in ("male", "female", "unknown")}
    if target != "any":
        assert {p["gender"] for p in profiles} == {target}
    return status, profiles
