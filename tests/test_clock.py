"""The clock cannot be starved: it ticks in its own process (`tasks.Clock`), so however busy the
workers are, leases are handed back and runs polled; and serving stored lists, on a queue of its
own and LISTS_SERVE_PARALLEL at a time, never keeps a start or a store waiting for long.

A worker of one process is kept busy serving large stored lists while a job's run ends with no
webhook (the poller alone must notice it): the job is done while the lists are still served."""
import json
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from conftest import SESSION_ACTOR, submit, wait_for_job
from stack import Beat, Worker
from utils import store
from utils.store.schema import follower_lists, list_pages

FOLLOWERS = 60_000  # per stored list; 6 lists, 360,000 followers to serve


@pytest.fixture(scope="module")
def stack_settings():
    return {"public_base_url": "", "lists_serve_parallel": 1}


@pytest.fixture(scope="module")
def busy_worker(service_settings, tmp_path_factory):
    """One worker process, as a small dyno runs it, and the clock."""
    folder = Path(tmp_path_factory.mktemp("busy"))
    process, clock = Worker(service_settings, folder / "worker.log", concurrency=1), Beat(service_settings,
                                                                                         folder / "beat.log")
    yield process
    clock.stop()
    process.stop()


def _stored_list(engine, account, followers):
    """A complete follower list of `account`, as a scrape a day ago left it."""
    with engine.begin() as conn:
        list_id = conn.execute(follower_lists.insert().values(
            account=account, actor_id=SESSION_ACTOR, requested=followers, scraped=followers, status="complete",
            created_at=store.utcnow(), ended_at=store.utcnow()).returning(follower_lists.c.id)).scalar()
        conn.execute(list_pages.insert(), [
            {"list_id": list_id, "first": first, "followers": 1000, "rows": json.dumps(
                [[f"{account}-{i}", f"user{i}", f"Maria Example {i}", "female", 0.9, False, False, None]
                 for i in range(first, first + 1000)])}
            for first in range(0, followers, 1000)])


def test_a_run_ends_and_is_stored_while_every_worker_process_serves_lists(client, engine, busy_worker, emulator):
    emulator.configure(run_duration_s=3)
    run_job = submit(client, [f"polled{uuid.uuid4().hex[:6]}"], total=10)
    reused = []
    for _ in range(3):
        accounts = [f"served{uuid.uuid4().hex[:8]}" for _ in range(2)]
        for account in accounts:
            _stored_list(engine, account, FOLLOWERS)
        reused.append(submit(client, accounts, total=2 * FOLLOWERS, maxAgeDays=7)["job_id"])

    status = wait_for_job(client, run_job["job_id"], timeout=60)
    assert status["status"] == "completed", status
    serving = [client.get(f"/api/job-status/{job_id}").get_json() for job_id in reused]
    assert any(job["status"] != "completed" for job in serving), "the lists were still being served"
    with engine.connect() as conn:
        left = conn.execute(sa.select(sa.func.count()).select_from(store.schema.batches).where(
            store.schema.batches.c.status == "storing")).scalar()
    assert left <= 1, "LISTS_SERVE_PARALLEL: one batch of lists at a time"
    for job_id in reused:
        assert wait_for_job(client, job_id, timeout=120)["profiles_kept"] == 2 * FOLLOWERS
