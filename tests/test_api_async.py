"""The HTTP contract: validation, error envelope, job creation, status and result paging."""
import uuid

import pytest
import sqlalchemy as sa

from utils import storage


def _count_jobs(engine):
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(storage.jobs)).scalar()


def _assert_error(response, status, code):
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.is_json
    error = response.get_json()["error"]
    assert error["code"] == code
    assert isinstance(error["message"], str) and error["message"]
    return error


BAD_BODIES = [
    ({"accounts": "nike", "targetGender": "male", "totalScrapeCount": 10}, "invalid_request"),
    ({"accounts": [], "targetGender": "male", "totalScrapeCount": 10}, "invalid_request"),
    ({"accounts": [1, 2], "targetGender": "male", "totalScrapeCount": 10}, "invalid_request"),
    ({"accounts": ["nike"], "targetGender": "men", "totalScrapeCount": 10}, "invalid_request"),
    ({"accounts": ["nike"], "targetGender": None, "totalScrapeCount": 10}, "invalid_request"),
    ({"accounts": ["nike"], "targetGender": "male", "totalScrapeCount": 0}, "invalid_request"),
    ({"accounts": ["nike"], "targetGender": "male", "totalScrapeCount": -5}, "invalid_request"),
    ({"accounts": ["nike"], "targetGender": "male", "totalScrapeCount": "500"}, "invalid_request"),
    ({"accounts": ["nike"], "targetGender": "male", "totalScrapeCount": 1.5}, "invalid_request"),
    ({"accounts": ["nike"], "targetGender": "male", "totalScrapeCount": True}, "invalid_request"),
    ({"accounts": ["nike"], "targetGender": "male", "totalScrapeCount": 10**12}, "invalid_request"),
    ({"accounts": ["nike"], "targetGender": "male"}, "invalid_request"),
    ({"accounts": ["nike"], "targetGender": "male", "totalScrapeCount": 10, "extra": 1}, "invalid_request"),
    ({"accounts": ["nike"], "targetGender": "male", "totalScrapeCount": 10, "minConfidence": 2}, "invalid_request"),
    ([1, 2, 3], "invalid_request"),
    ("nike", "invalid_request"),
    ({"accounts": ["nike", "bad name!"], "targetGender": "male", "totalScrapeCount": 10}, "invalid_usernames"),
    ({"accounts": ["@"], "targetGender": "male", "totalScrapeCount": 10}, "invalid_usernames"),
    ({"accounts": ["a" * 31], "targetGender": "male", "totalScrapeCount": 10}, "invalid_usernames"),
    ({"accounts": ["josé"], "targetGender": "male", "totalScrapeCount": 10}, "invalid_usernames"),
]


@pytest.mark.parametrize("body, code", BAD_BODIES)
def test_bad_bodies_get_400_and_leave_nothing(client, engine, body, code):
    before = _count_jobs(engine)
    _assert_error(client.post("/api/scrape-followers", json=body), 400, code)
    assert _count_jobs(engine) == before


def test_invalid_usernames_are_each_listed(client):
    body = {"accounts": ["ok", "not ok", "@fine", "x" * 40, "also-bad"], "targetGender": "any",
            "totalScrapeCount": 10}
    error = _assert_error(client.post("/api/scrape-followers", json=body), 400, "invalid_usernames")
    assert [d["value"] for d in error["details"]] == ["not ok", "x" * 40, "also-bad"]


def test_malformed_json(client):
    response = client.post("/api/scrape-followers", data='{"accounts": [', content_type="application/json")
    _assert_error(response, 400, "invalid_json")


def test_not_json(client):
    response = client.post("/api/scrape-followers", data="accounts=nike", content_type="text/plain")
    _assert_error(response, 415, "unsupported_media_type")


def test_too_many_accounts(app, client):
    body = {"accounts": [f"user{i}" for i in range(app.config["SETTINGS"].max_accounts + 1)],
            "targetGender": "any", "totalScrapeCount": 10}
    _assert_error(client.post("/api/scrape-followers", json=body), 400, "too_many_accounts")


def test_body_over_the_size_limit(client, app):
    size = app.config["SETTINGS"].max_request_bytes
    response = client.post("/api/scrape-followers", data="x" * (size + 1), content_type="application/json")
    _assert_error(response, 413, "request_entity_too_large")


def test_accepted_job_normalises_accounts_and_splits_the_total(client, engine):
    body = {"accounts": ["@Nike", "nike", " adidas ", "NatGeo", "@@puma"], "targetGender": "female",
            "totalScrapeCount": 1001}
    response = client.post("/api/scrape-followers", json=body)
    assert response.status_code == 202
    created = response.get_json()
    assert created["status"] == "queued"
    assert created["total_batches"] == 1
    assert created["status_url"] == f"/api/job-status/{created['job_id']}"
    assert created["results_url"] == f"/api/job-results/{created['job_id']}"
    job = storage.get_job(engine, created["job_id"])
    assert job["accounts_count"] == 4
    assert job["per_account_limit"] == 251  # ceil(1001 / 4)
    with engine.connect() as conn:
        accounts = conn.execute(sa.select(storage.batches.c.accounts)
                                .where(storage.batches.c.job_id == created["job_id"])).scalar()
    assert accounts == '["nike", "adidas", "natgeo", "puma"]'


def test_accounts_are_split_into_batches_of_fifty(client):
    created = client.post("/api/scrape-followers", json={
        "accounts": [f"acct{i}" for i in range(101)], "targetGender": "any", "totalScrapeCount": 101,
    }).get_json()
    assert created["total_batches"] == 3


def test_fresh_job_status(client):
    created = client.post("/api/scrape-followers", json={
        "accounts": ["nike"], "targetGender": "male", "totalScrapeCount": 5,
    }).get_json()
    status = client.get(created["status_url"]).get_json()
    expected_keys = {"job_id", "status", "progress", "profiles_scraped", "profiles_kept", "total_batches",
                     "batches_done", "batches_failed", "error_message", "created_at", "updated_at",
                     "completed_at", "gender_breakdown"}
    assert expected_keys <= set(status)
    assert status["job_id"] == created["job_id"]
    assert status["progress"] == 0
    assert status["gender_breakdown"] == {"male": 0, "female": 0, "unknown": 0}
    assert status["created_at"].endswith("Z")


@pytest.mark.parametrize("job_id", [str(uuid.uuid4()), "not-a-uuid", "1' or '1'='1"])
def test_unknown_job_is_404(client, job_id):
    _assert_error(client.get(f"/api/job-status/{job_id}"), 404, "job_not_found")
    _assert_error(client.get(f"/api/job-results/{job_id}"), 404, "job_not_found")


@pytest.mark.parametrize("query, code", [
    ("limit=0", "invalid_parameter"), ("limit=1001", "invalid_parameter"), ("limit=abc", "invalid_parameter"),
    ("page=0", "invalid_parameter"), ("page=-1", "invalid_parameter"), ("cursor=bm9wZQ", "invalid_cursor"),
    ("cursor=%%%", "invalid_cursor"), ("cursor=cjox&page=2", "invalid_request"),
])
def test_bad_result_parameters(client, query, code):
    created = client.post("/api/scrape-followers", json={
        "accounts": ["nike"], "targetGender": "male", "totalScrapeCount": 5,
    }).get_json()
    _assert_error(client.get(f"{created['results_url']}?{query}"), 400, code)


def test_unknown_route_and_method_are_json(client):
    _assert_error(client.get("/api/nope"), 404, "not_found")
    _assert_error(client.get("/api/scrape-followers"), 405, "method_not_allowed")
