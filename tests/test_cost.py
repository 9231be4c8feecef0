"""Cost control: estimates, per-run charge caps, the cost roll-up and a spent budget."""
import pytest
import sqlalchemy as sa

import apify_emulator as emulated
from utils import store
from utils.config import Settings

from conftest import runs_of, submit, wait_for_job

PRICE_PER_ITEM, START_FEE = 0.0007, 0.00005  # the emulator's defaults and the settings' defaults


def _count_jobs(engine):
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(store.schema.jobs)).scalar()


def test_estimate_creates_no_job_and_prices_every_run(client, engine):
    before = _count_jobs(engine)
    body = {"accounts": [f"brand{i}" for i in range(120)], "targetGender": "female", "totalScrapeCount": 1200}
    response = client.post("/api/estimate", json=body)
    assert response.status_code == 200, response.get_json()
    estimate = response.get_json()
    assert (estimate["batches"], estimate["per_account_limit"], estimate["max_followers"]) == (3, 10, 1200)
    assert estimate["expected_followers"] == 1200
    assert estimate["expected_cost_usd"] == pytest.approx(3 * START_FEE + 1200 * PRICE_PER_ITEM)
    assert _count_jobs(engine) == before


def test_estimate_within_a_budget(client):
    # 3 runs of 500, 500 and 200 items; a $0.30 budget gives each run $0.10, enough for 142 items.
    body = {"accounts": [f"brand{i}" for i in range(120)], "targetGender": "any", "totalScrapeCount": 1200,
            "maxCostUsd": 0.3}
    estimate = client.post("/api/estimate", json=body).get_json()
    assert estimate["expected_followers"] == 3 * 142
    assert estimate["expected_cost_usd"] == pytest.approx(3 * (START_FEE + 142 * PRICE_PER_ITEM))
    assert estimate["expected_cost_usd"] <= 0.3


@pytest.mark.parametrize("extra", [{"maxCostUsd": 0}, {"maxCostUsd": -1}, {"maxCostUsd": "5"}])
def test_estimate_and_post_reject_a_bad_budget(client, extra):
    body = {"accounts": ["nike"], "targetGender": "any", "totalScrapeCount": 10, **extra}
    for url in ("/api/estimate", "/api/scrape-followers"):
        response = client.post(url, json=body)
        assert response.status_code == 400 and response.get_json()["error"]["code"] == "invalid_request"


def test_cost_rolls_up_once_per_batch(db):
    job_id, *_ = store.jobs.create_job(
        db, api_key_id=None, accounts=["a", "b"], target_gender="any", min_confidence=0.0,
        total_scrape_count=20, per_account_limit=10, batch_size=1, actor_id="test/actor", max_cost_usd=1.0,
    )
    with db.begin() as conn:  # nothing else is going on
        conn.execute(store.schema.jobs.update().where(store.schema.jobs.c.job_id != job_id).values(status="cancelled"))
    settings = Settings(apify_max_concurrent_runs=100)
    first, _ = store.batches.claim_start(db, settings)
    assert store.batches.run_budget(db, first, START_FEE) == pytest.approx(0.5)  # its share
    store.batches.requeue(db, first, delay_seconds=0, error="run FAILED", failure=True, run_cost_usd=0.75)
    retry, _ = store.batches.claim_start(db, settings)
    assert retry.batch_index == first.batch_index
    assert store.batches.run_budget(db, retry, START_FEE) == pytest.approx(0.25)  # what is left
    assert store.batches.end_batch(db, retry, run_cost_usd=0.25) == "processing"
    assert store.batches.end_batch(db, retry, run_cost_usd=0.25) is None  # a duplicate
    assert store.jobs.get_job(db, job_id, store.jobs.ALL_KEYS)["cost_usd"] == pytest.approx(1.0)
    other, _ = store.batches.claim_start(db, settings)
    assert store.batches.run_budget(db, other, START_FEE) == 0


def test_each_run_gets_its_share_and_the_status_sums_their_usage(client, worker, emulator):
    accounts = [f"shop{i}" for i in range(50)] + ["nike"]
    assert all(emulated.follower_count(a) >= 10 for a in accounts)
    body = {"accounts": accounts, "targetGender": "any", "totalScrapeCount": 510, "maxCostUsd": 0.2}
    estimate = client.post("/api/estimate", json=body).get_json()
    created = submit(client, accounts, total=510, maxCostUsd=0.2)
    status = wait_for_job(client, created["job_id"])
    assert status["status"] == "completed" and status["budget_exhausted"] is False, status

    runs = runs_of(emulator, accounts)
    assert len(runs) == 2
    assert sorted(run["options"]["maxTotalChargeUsd"] for run in runs) == [0.1, 0.1]
    assert sorted(run["options"]["maxItems"] for run in runs) == [10, 500]
    # The $0.10 share affords 142 of the first batch's 500 followers; the second needs 10.
    assert sorted(run["item_count"] for run in runs) == [10, 142]
    assert status["profiles_scraped"] == 152 == estimate["expected_followers"]
    assert status["cost_usd"] == pytest.approx(sum(run["usage_total_usd"] for run in runs), abs=1e-6)
    assert status["cost_usd"] == pytest.approx(estimate["expected_cost_usd"], abs=1e-6)
    assert status["max_cost_usd"] == 0.2 and status["cost_usd"] <= 0.2


def test_a_spent_budget_starts_no_more_runs(client, worker, emulator):
    # Every run fails, and each costs its $0.50 start fee: two runs spend the $1 budget, and the
    # retry after them ends the batch instead of paying for a third.
    emulator.configure(start_fee_usd=0.5)
    emulator.fault(route="start_run", run_status="FAILED", times=None)
    created = submit(client, ["nike"], total=10, maxCostUsd=1.0)
    status = wait_for_job(client, created["job_id"])
    assert status["status"] == "failed" and status["budget_exhausted"] is True, status
    assert "budget" in status["error_message"]
    assert len(runs_of(emulator, ["nike"])) == 2
    assert status["cost_usd"] == pytest.approx(1.0)
