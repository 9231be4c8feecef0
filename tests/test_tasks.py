"""Jobs end to end: the web app, real Redis, a real Celery worker process, Postgres and the
Apify emulator; and the same on the embedded default (SQLite, embedded Redis)."""
import time

import pytest
import sqlalchemy as sa

from app import create_app
from utils import embedded_redis, store

from conftest import authorised_client, check_job, eventually, runs_of, submit, wait_for_job
from stack import APIFY_TOKEN, Beat, Worker


def test_a_job_from_post_to_the_last_page(client, worker, emulator):
    accounts = [f"shop{i}" for i in range(60)] + ["natgeo", "nike", "adidas"] * 2
    created = submit(client, accounts, gender="female", total=63 * 30)
    assert created["total_batches"] == 2
    status = wait_for_job(client, created["job_id"])
    assert status["status"] == "completed", status
    assert (status["batches_done"], status["batches_failed"], status["progress"]) == (2, 0, 100.0)
    assert status["completed_at"] is not None and status["error_message"] is None
    unique_accounts = list(dict.fromkeys(accounts))
    _, profiles = check_job(client, created["job_id"], unique_accounts, 30, "female")
    assert any(len(p["source_accounts"]) > 1 for p in profiles), "the emulator's followers overlap"

    first = client.get(f"{created['results_url']}?page=1&limit=50").get_json()
    assert first["total"] == len(profiles) and first["page"] == 1 and first["limit"] == 50
    assert first["profiles"] == profiles[:50]
    last_page = (len(profiles) - 1) // 50 + 1
    last = client.get(f"{created['results_url']}?page={last_page}&limit=50").get_json()
    assert last["profiles"] == profiles[(last_page - 1) * 50:] and last["next_cursor"] is None
    beyond = client.get(f"{created['results_url']}?page={last_page + 1}&limit=50").get_json()
    assert beyond["profiles"] == []
    assert len(runs_of(emulator, unique_accounts)) == 2


def test_results_are_readable_while_the_job_runs(client, worker, emulator):
    emulator.configure(run_duration_s=2)
    created = submit(client, ["alpha", "beta"], total=40)
    time.sleep(0.5)
    status = client.get(created["status_url"]).get_json()
    assert status["status"] == "processing"
    page = client.get(created["results_url"]).get_json()
    assert page["profiles"] == [] and page["total"] == 0
    assert wait_for_job(client, created["job_id"])["status"] == "completed"


def test_a_retried_batch_stores_nothing_twice(client, worker, emulator):
    accounts = [f"retry{i}" for i in range(50)] + ["natgeo"]
    emulator.fault(route="start_run", run_status="FAILED", times=1, when_input_contains="retry7")
    # The second dataset page requested fails once, after the rows of the first were stored.
    emulator.fault(route="dataset_items", status=503, type="server-error", message="flaky", times=1, skip=1)
    created = submit(client, accounts, total=51 * 40)
    status = wait_for_job(client, created["job_id"])
    assert (status["status"], status["batches_failed"]) == ("completed", 0), status
    check_job(client, created["job_id"], accounts, 40, "any")
    stats = emulator.stats()
    assert len(runs_of(emulator, accounts)) == 3  # two batches, one run failed and was replaced
    assert stats["requests"]["dataset_items"]["503"] == 1
    assert "retry 1/3" in worker.log()


def test_a_batch_that_keeps_failing_fails_alone(client, worker, emulator):
    accounts = [f"good{i}" for i in range(50)] + ["doomed"]
    emulator.fault(route="start_run", run_status="FAILED", when_input_contains="doomed")
    created = submit(client, accounts, total=51 * 10)
    status = wait_for_job(client, created["job_id"])
    assert status["status"] == "completed", status
    assert (status["batches_done"], status["batches_failed"]) == (2, 1)
    check_job(client, created["job_id"], accounts[:50], 10, "any")
    doomed_runs = [r for r in emulator.stats()["runs"] if "doomed" in r["usernames"]]
    assert len(doomed_runs) == 4  # the first attempt and three retries


def test_a_bad_token_fails_the_job_fast_and_spends_nothing_more(client, worker, emulator):
    emulator.configure(valid_tokens=["a-token-we-do-not-have"])
    created = submit(client, [f"acct{i}" for i in range(500)], total=5000)
    started = time.monotonic()
    status = wait_for_job(client, created["job_id"], timeout=20)
    elapsed = time.monotonic() - started
    assert status["status"] == "failed"
    assert "401" in status["error_message"] and "token" in status["error_message"].lower()
    assert elapsed < 10
    time.sleep(1)  # let any batch already taken from the queue finish
    calls = emulator.stats()["requests"].get("start_run", {})
    assert sum(calls.values()) <= 3, calls
    assert APIFY_TOKEN not in worker.log()


def test_every_batch_failing_fails_the_job(client, worker, emulator):
    emulator.fault(route="start_run", status=503, type="server-error", message="Apify is down")
    created = submit(client, ["lonely"], total=10)
    status = wait_for_job(client, created["job_id"])
    assert status["status"] == "failed"
    assert "503" in status["error_message"]


def _all_aborted(runs):
    return all(run["status"] == "ABORTED" for run in runs)


@pytest.mark.parametrize("stop", ["cancel", "delete"])
def test_stopping_a_job_aborts_its_runs_and_starts_no_more(client, worker, emulator, engine, stop):
    emulator.configure(run_duration_s=60, max_concurrent_runs=2)
    accounts = [f"{stop}me{i}" for i in range(150)]  # three batches for an account that runs two
    created = submit(client, accounts, total=150 * 10)
    eventually(lambda: runs_of(emulator, accounts), lambda runs: len(runs) >= 2, 20)
    if stop == "cancel":
        assert client.post(f"/api/jobs/{created['job_id']}/cancel").get_json()["status"] == "cancelled"
    else:
        assert client.delete(f"/api/jobs/{created['job_id']}").status_code == 204
    runs = eventually(lambda: runs_of(emulator, accounts), _all_aborted, 20)
    assert len(runs) == 2, "the batch that had not started never called Apify"
    time.sleep(1.5)  # a poll interval more: still no new run
    assert len(eventually(lambda: runs_of(emulator, accounts), _all_aborted, 20)) == 2
    if stop == "cancel":
        with engine.connect() as conn:
            statuses = conn.execute(sa.select(store.schema.batches.c.status)
                                    .where(store.schema.batches.c.job_id == created["job_id"])).scalars().all()
        assert sorted(statuses) == ["cancelled"] * 3


@pytest.fixture
def default_stack(tmp_path_factory, emulator):
    """The no-servers default: SQLite and embedded Redis in a fresh instance folder."""
    instance = str(tmp_path_factory.mktemp("instance"))
    env = {"INSTANCE_PATH": instance, "DATABASE_URL": "", "REDIS_URL": "", "APIFY_TOKEN": APIFY_TOKEN,
           "APIFY_API_URL": emulator.url, "APIFY_HTTP_RETRIES": "0"}
    app = create_app({"instance_path": instance, "database_url": "", "redis_url": ""})
    store.migrate(app.extensions["engine"])
    worker, clock = Worker(env, f"{instance}/worker.log"), Beat(env, f"{instance}/beat.log")
    yield app
    clock.stop()
    worker.stop()
    embedded_redis.stop(instance)


def test_the_embedded_default_runs_the_same_pipeline(default_stack):
    assert default_stack.extensions["engine"].dialect.name == "sqlite"
    assert default_stack.extensions["celery"].conf.broker_url.startswith("redis+socket://")
    client = authorised_client(default_stack, store.keys.create_api_key(default_stack.extensions["engine"], "local"))
    accounts = [f"local{i}" for i in range(55)]
    created = submit(client, accounts, gender="male", total=55 * 12)
    status = wait_for_job(client, created["job_id"])
    assert (status["status"], status["batches_done"]) == ("completed", 2), status
    check_job(client, created["job_id"], accounts, 12, "male")
