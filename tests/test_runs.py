"""Apify's webhook (`utils/runs.py`): the run's token is checked before anything is said about
the batch; a delivery moves a run and its batch once; and a run of the batch's start that
nobody recorded, named by a delivery, is registered (nobody's: the clock aborts and charges it)."""
import uuid

import pytest
import sqlalchemy as sa

from utils import store
from utils.config import Settings
from utils.runs import TOKEN_HEADER

R = store.schema.apify_runs
ROOMY = Settings(apify_max_concurrent_runs=100)


@pytest.fixture
def started(engine):
    """A job whose one batch was claimed to start: (claim, the started run's id)."""
    job_id, *_ = store.work.create_job(engine, api_key_id=None, usernames=[f"hooked{uuid.uuid4().hex[:6]}"],
                                       target_gender="any", min_confidence=0.0, total_scrape_count=10,
                                       per_account_limit=10, batch_size=1, actor_id="test/actor")
    claim = _claim_of(engine, job_id)
    return claim, f"RUN-{uuid.uuid4().hex[:8]}"


def _claim_of(engine, job_id):
    while True:  # the module's database may hold other tests' jobs: take this job's batch
        claim, _ = store.work.claim_start(engine, ROOMY)
        if claim.job_id == job_id:
            return claim


def _deliver(client, claim, token, run_id, status="SUCCEEDED"):
    return client.post(f"/apify/webhook/{claim.job_id}/{claim.batch_index}", headers={TOKEN_HEADER: token},
                       json={"eventType": "ACTOR.RUN.SUCCEEDED", "runId": run_id, "status": status})


def _run(engine, run_id):
    with engine.connect() as conn:
        return conn.execute(sa.select(R.c.status, R.c.job_id).where(R.c.run_id == run_id)).first()


def test_a_delivery_without_the_runs_token_learns_nothing(client, engine, started):
    claim, run_id = started
    store.work.record_run(engine, claim, run_id, None)
    wrong = _deliver(client, claim, "not-the-token", run_id)
    missing = client.post(f"/apify/webhook/{uuid.uuid4()}/0", headers={TOKEN_HEADER: "x"},
                          json={"runId": run_id, "status": "SUCCEEDED"})
    assert wrong.status_code == missing.status_code == 404
    assert wrong.get_json() == missing.get_json(), "whether the batch exists is not said"
    assert client.post(f"/apify/webhook/urn:uuid:{claim.job_id}/0", json={}).status_code == 404


def test_a_run_ends_once_whatever_the_deliveries(client, engine, started):
    claim, run_id = started
    assert _deliver(client, claim, claim.token, run_id).status_code == 409, "not recorded yet: Apify retries"
    store.work.record_run(engine, claim, run_id, None)
    assert _deliver(client, claim, claim.token, run_id, status="RUNNING").status_code == 400
    assert _deliver(client, claim, claim.token, run_id).status_code == 200
    assert _deliver(client, claim, claim.token, run_id).status_code == 208, "a doubled delivery changes nothing"
    assert _run(engine, run_id).status == "ended"


def test_a_run_nobody_recorded_named_by_a_delivery_is_registered_to_be_charged(client, engine, started):
    claim, run_id = started
    store.work.record_run(engine, claim, run_id, None)
    stray = f"STRAY-{uuid.uuid4().hex[:8]}"  # apify-client's retry of the start made a second run, say
    assert _deliver(client, claim, claim.token, stray, status="ABORTED").status_code == 208
    assert tuple(_run(engine, stray)) == ("ended", claim.job_id), "nobody's, ended: the clock charges it"
    assert _run(engine, run_id).status == "running", "the batch's own run goes on"
