"""Fair shares of the Apify account: by key first, then by job; and a job that waits for another
job's scrape of an account waits at most REUSE_WAIT_SECONDS, then scrapes it itself.

Runs are slow here (they hold their slots) and the account admits 25, so who gets a slot shows.
A batch is one account (BATCH_SIZE 1), so one job can want many slots at once."""
import uuid

import pytest

from conftest import authorised_client, cancel, eventually, runs_of, submit, wait_for_job
from utils import store


@pytest.fixture(scope="module")
def stack_settings():
    return {"batch_size": 1, "apify_max_concurrent_runs": 25, "reuse_wait_seconds": 3}


def _client(app):
    return authorised_client(app, store.keys.create_api_key(app.extensions["engine"], f"fair-{uuid.uuid4().hex[:8]}"))


def test_a_key_with_many_jobs_takes_no_more_than_its_share(app, engine, emulator, request):
    """30 one-account jobs of one key, then a 20-account job of another: the second key gets as
    many slots as the first, not what 30 jobs of the first leave it."""
    emulator.configure(run_duration_s=60)
    many, other = _client(app), _client(app)
    crowd = [f"crowd{i}" for i in range(30)]
    jobs = [submit(many, [name], total=10)["job_id"] for name in crowd]
    alone = [f"alone{i}" for i in range(20)]
    jobs.append(submit(other, alone, total=20 * 10)["job_id"])
    request.getfixturevalue("worker")  # the worker starts once every job is waiting
    runs = eventually(lambda: emulator.stats()["runs"], lambda runs: len(runs) >= 25, 30)
    theirs = len(runs_of(emulator, alone))
    assert len(runs) == 25 and theirs >= 12, f"the second key has {theirs} of 25 runs"
    for job_id in jobs:
        cancel(engine, job_id)


def test_waiting_for_another_jobs_scrape_is_bounded(client, app, worker, emulator):
    """The producer's run takes long; the job that shares its list gives up waiting after
    REUSE_WAIT_SECONDS and scrapes the account itself, and is done long before the producer."""
    emulator.configure(run_duration_s=0, run_seconds_per_item=0.05)  # 1,000 followers: 50 s
    account = [f"slowbrand{uuid.uuid4().hex[:6]}"]
    producer = submit(_client(app), account, total=1000)
    eventually(lambda: runs_of(emulator, account), lambda runs: len(runs) == 1, 20)
    waiting = submit(client, account, gender="female", total=10, maxAgeDays=7)
    assert waiting["accounts_reused"] == 1, "it shares the pending list at first"
    status = wait_for_job(client, waiting["job_id"], timeout=30)
    assert status["status"] == "completed" and status["reuse"]["accounts"] == 0, status
    runs = runs_of(emulator, account)
    assert [run["status"] for run in runs] == ["RUNNING", "SUCCEEDED"], "its own run, the producer's still going"
    (row,) = client.get(f"/api/jobs/{waiting['job_id']}/accounts").get_json()["accounts"]
    assert (row["status"], row["scraped"], row["reused"]) == ("complete", 10, False)
    cancel(app.extensions["engine"], producer["job_id"])
