"""Cost control: estimates, per-run charge caps, the cost roll-up, a spent budget, and the
monthly cap read from the spend ledger."""
import threading
import uuid

import pytest
import sqlalchemy as sa

import apify_emulator as emulated
from utils import store
from utils.config import Settings
from utils.store.batches import Fault

from conftest import authorised_client, eventually, runs_of, submit, wait_for_job

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


def test_a_run_gets_its_share_of_what_is_left_of_the_budget(db):
    job_id, *_ = store.work.create_job(
        db, api_key_id=None, usernames=["a", "b"], target_gender="any", min_confidence=0.0,
        total_scrape_count=20, per_account_limit=10, batch_size=1, actor_id="test/actor", max_cost_usd=1.0,
    )
    settings = Settings(apify_max_concurrent_runs=100)
    first, _ = store.work.claim_start(db, settings)
    assert store.work.run_budget(db, first, START_FEE).usd == pytest.approx(0.5)  # its share
    run = f"failing-{job_id}"
    store.work.record_run(db, first, run, 0.5)
    store.work.run_ended(db, run, "FAILED")
    store.work.charge_run(db, run, 0.75, "FAILED", final=True)
    store.work.charge_run(db, run, 0.75, "FAILED", final=True)  # read again: charged once
    assert store.jobs.get_job(db, job_id, store.jobs.ALL_KEYS)["cost_usd"] == pytest.approx(0.75)
    failed = store.work.claim_store(db, job_id, first.batch_index, 60)
    store.work.fault(db, settings.with_overrides({"retry_backoff_seconds": 0}), failed, Fault.RUN_FAILED, "FAILED")
    retry, _ = store.work.claim_start(db, settings)
    assert retry.batch_index == first.batch_index
    assert store.work.run_budget(db, retry, START_FEE).usd == pytest.approx(0.25)  # what is left
    other, _ = store.work.claim_start(db, settings)
    assert store.work.run_budget(db, other, START_FEE).wait, "the retry may yet charge less than its share"
    store.work.refused(db, retry)  # it made no run after all
    assert store.work.run_budget(db, other, START_FEE).usd == pytest.approx(0.25)


def test_each_run_gets_its_share_and_the_status_sums_their_usage(client, worker, emulator):
    accounts = [f"shop{i}" for i in range(50)] + ["nike"]
    assert all(emulated.follower_count(a) >= 10 for a in accounts)
    body = {"accounts": accounts, "targetGender": "any", "totalScrapeCount": 510, "maxCostUsd": 0.2}
    estimate = client.post("/api/estimate", json=body).get_json()
    created = submit(client, accounts, total=510, maxCostUsd=0.2)
    status = wait_for_job(client, created["job_id"])
    assert status["status"] == "completed" and status["budget_exhausted"] is True, status

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
    # The first run stopped at its share: its accounts short of 10 were cut by the budget, not exhausted.
    rows = client.get(f"/api/jobs/{created['job_id']}/accounts?limit=100").get_json()["accounts"]
    short = [row for row in rows if row["scraped"] < 10]
    assert short and {(row["status"], row["cut_by"]) for row in short} == {("cut", "budget")}


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


# -- the monthly cap reads the ledger ------------------------------------------------------------------

def _capped_client(app, cap):
    """A key of its own whose month may cost `cap` USD."""
    engine = app.extensions["engine"]
    name = f"capped-{uuid.uuid4().hex[:8]}"
    client = authorised_client(app, store.keys.create_api_key(engine, name))
    assert store.keys.set_spending_limits(engine, name, monthly_cap_usd=cap)
    return client


def _post(client, accounts, budget):
    return client.post("/api/scrape-followers", json={"accounts": accounts, "targetGender": "any",
                                                      "totalScrapeCount": 100 * len(accounts), "maxCostUsd": budget})


def test_deleting_a_job_gives_none_of_its_spend_back(app, worker, emulator):
    client = _capped_client(app, 0.05)
    spent = _post(client, ["nike", "adidas"], 0.04)
    assert spent.status_code == 202
    status = wait_for_job(client, spent.get_json()["job_id"])
    assert status["status"] == "completed" and status["cost_usd"] > 0.02, status
    assert _post(client, ["puma"], 0.02).status_code == 402
    assert client.delete(f"/api/jobs/{status['job_id']}").status_code == 204
    refused = _post(client, ["puma"], 0.02)
    assert refused.status_code == 402, "what the deleted job's runs cost stays spent"
    assert refused.get_json()["error"]["code"] == "monthly_cap_reached"


def test_what_a_cancelled_jobs_runs_cost_is_recorded(app, client, engine, worker, emulator):
    emulator.configure(run_duration_s=30, run_seconds_per_item=0)
    created = submit(client, ["cancelme"], total=50)
    eventually(lambda: runs_of(emulator, ["cancelme"]), lambda runs: runs and runs[0]["status"] == "RUNNING", 20)
    assert client.post(f"/api/jobs/{created['job_id']}/cancel").get_json()["status"] == "cancelled"
    (run,) = eventually(lambda: runs_of(emulator, ["cancelme"]), lambda runs: runs[0]["status"] == "ABORTED", 20)
    assert run["usage_total_usd"] > 0
    status = eventually(lambda: client.get(created["status_url"]).get_json(),
                        lambda status: status["cost_usd"] > 0, 30)
    assert status["cost_usd"] == pytest.approx(run["usage_total_usd"], abs=1e-6)
    key_id = store.jobs.get_job(engine, created["job_id"], store.jobs.ALL_KEYS)["api_key_id"]
    with engine.connect() as conn:
        entries = conn.execute(sa.select(store.schema.spend_ledger.c.usd).where(
            store.schema.spend_ledger.c.job_id == created["job_id"])).scalars().all()
    assert entries == [pytest.approx(run["usage_total_usd"], abs=1e-6)] and key_id is not None


def test_parallel_posts_cannot_pass_the_cap_together(app):
    client = _capped_client(app, 1.5)
    answers = []

    def post():
        answers.append(_post(client, ["nike"], 1.0).status_code)
    threads = [threading.Thread(target=post) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(answers) == [202] + [402] * 9
