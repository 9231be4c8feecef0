"""The HTTP contract: validation, error envelope, job creation, status and result paging."""
import uuid

import pytest
import sqlalchemy as sa

from utils import store


def _count_jobs(engine):
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(store.schema.jobs)).scalar()


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


def test_bad_usernames_and_an_unknown_field_are_reported_together(client):
    body = {"accounts": ["ok", "not ok", 7], "targetGender": "any", "totalScrapeCount": 10, "colour": "red"}
    error = _assert_error(client.post("/api/scrape-followers", json=body), 400, "invalid_request")
    assert {d["field"] for d in error["details"] if "message" in d} == {"colour", "accounts.2"}
    assert [d["value"] for d in error["details"] if "value" in d] == ["not ok"]


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
    job = store.jobs.get_job(engine, created["job_id"], store.jobs.ALL_KEYS)
    assert job["accounts_count"] == 4
    assert job["per_account_limit"] == 251  # ceil(1001 / 4)
    with engine.connect() as conn:
        accounts = conn.execute(sa.select(store.schema.batches.c.accounts)
                                .where(store.schema.batches.c.job_id == created["job_id"])).scalar()
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


# -- access ------------------------------------------------------------------------------------

@pytest.mark.parametrize("header", [None, "Bearer", "Bearer nope", "Basic dGVzdDp0ZXN0", "fs_abc"])
def test_every_api_route_needs_a_valid_key(app, header):
    client = app.test_client()
    headers = {"Authorization": header} if header else {}
    job = str(uuid.uuid4())
    for method, path in (("post", "/api/scrape-followers"), ("get", f"/api/job-status/{job}"),
                         ("get", f"/api/job-results/{job}"), ("post", f"/api/jobs/{job}/cancel"),
                         ("delete", f"/api/jobs/{job}")):
        response = getattr(client, method)(path, headers=headers, json={})
        _assert_error(response, 401, "unauthorized")


def test_a_revoked_key_is_refused(app, engine):
    key = store.keys.create_api_key(engine, "short-lived")
    client = app.test_client()
    headers = {"Authorization": f"Bearer {key}"}
    assert client.get(f"/api/job-status/{uuid.uuid4()}", headers=headers).status_code == 404
    assert store.keys.revoke_api_key(engine, "short-lived")
    _assert_error(client.get(f"/api/job-status/{uuid.uuid4()}", headers=headers), 401, "unauthorized")


def test_a_job_is_invisible_to_other_keys(app, client, engine):
    created = client.post("/api/scrape-followers", json={
        "accounts": ["nike"], "targetGender": "male", "totalScrapeCount": 5,
    }).get_json()
    other = app.test_client()
    other.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {store.keys.create_api_key(engine, 'other-tenant')}"
    job = created["job_id"]
    for response in (other.get(f"/api/job-status/{job}"), other.get(f"/api/job-results/{job}"),
                     other.post(f"/api/jobs/{job}/cancel"), other.delete(f"/api/jobs/{job}")):
        _assert_error(response, 404, "job_not_found")
    assert client.get(f"/api/job-status/{job}").get_json()["status"] in ("queued", "processing", "completed")


def test_health_checks_need_no_key(app):
    client = app.test_client()
    assert client.get("/healthz").get_json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.get_json()["checks"] == {"database": "ok", "redis": "ok"}


def test_readyz_is_503_when_redis_is_away(postgres_url):
    from app import create_app

    app = create_app({"database_url": postgres_url, "redis_url": "redis://127.0.0.1:9/0"})
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["checks"] == {"database": "ok", "redis": "unreachable"}


def test_rate_limits_answer_429_with_retry_after(postgres_url, redis_url, engine):
    from app import create_app

    app = create_app({"database_url": postgres_url, "redis_url": redis_url,
                      "rate_limit_read": "2/minute", "rate_limit_create": "1/minute"})
    first, second = (app.test_client() for _ in range(2))
    first.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {store.keys.create_api_key(engine, f'rl-{uuid.uuid4()}')}"
    second.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {store.keys.create_api_key(engine, f'rl-{uuid.uuid4()}')}"
    path = f"/api/job-status/{uuid.uuid4()}"
    assert [first.get(path).status_code for _ in range(2)] == [404, 404]
    limited = first.get(path)
    _assert_error(limited, 429, "too_many_requests")
    assert int(limited.headers["Retry-After"]) > 0
    assert second.get(path).status_code == 404  # another key has its own budget
    body = {"accounts": ["nike"], "targetGender": "any", "totalScrapeCount": 1}
    assert first.post("/api/scrape-followers", json=body).status_code == 202
    _assert_error(first.post("/api/scrape-followers", json=body), 429, "too_many_requests")


# -- control ------------------------------------------------------------------------------------

def _new_job(client, accounts=("nike", "adidas")):
    return client.post("/api/scrape-followers", json={
        "accounts": list(accounts), "targetGender": "any", "totalScrapeCount": 10,
    }).get_json()


def test_cancel_stops_a_job_and_is_idempotent(client, engine):
    created = _new_job(client)
    for _ in range(2):
        response = client.post(f"/api/jobs/{created['job_id']}/cancel")
        assert response.status_code == 200
        assert response.get_json() == {"job_id": created["job_id"], "status": "cancelled"}
    waiting = store.batches.batch_counts(engine, [created["job_id"]]).get(created["job_id"], {})
    assert "queued" not in waiting, "no batch of a cancelled job waits to start"
    status = client.get(created["status_url"]).get_json()
    assert status["status"] == "cancelled" and status["completed_at"] is not None


def test_a_finished_job_cannot_be_cancelled(client, engine):
    created = _new_job(client, accounts=["solo"])
    with engine.begin() as conn:
        conn.execute(store.schema.jobs.update().where(store.schema.jobs.c.job_id == created["job_id"])
                     .values(status="completed"))
    _assert_error(client.post(f"/api/jobs/{created['job_id']}/cancel"), 409, "job_finished")


def test_delete_removes_the_job_and_everything_it_holds(client, engine):
    from utils.store.results import write_profiles

    created = _new_job(client)
    write_profiles(engine, created["job_id"], [{
        "profile_id": "1", "username": "x", "full_name": "", "gender": "unknown", "gender_confidence": 0.0,
        "is_private": None, "is_verified": None, "profile_pic_url": None, "sources": ["nike"],
    }])
    response = client.delete(f"/api/jobs/{created['job_id']}")
    assert response.status_code == 204 and response.data == b""
    _assert_error(client.get(created["status_url"]), 404, "job_not_found")
    with engine.connect() as conn:
        for table in (store.schema.results, store.schema.batches, store.schema.jobs):
            count = conn.execute(sa.select(sa.func.count()).select_from(table)
                                 .where(table.c.job_id == created["job_id"])).scalar()
            assert count == 0
    _assert_error(client.delete(f"/api/jobs/{created['job_id']}"), 404, "job_not_found")


# -- command line -------------------------------------------------------------------------------

def test_api_key_commands(app, engine):
    runner = app.test_cli_runner()
    name = f"cli-{uuid.uuid4().hex[:6]}"
    created = runner.invoke(args=["create-api-key", name])
    assert created.exit_code == 0
    key = created.output.strip()
    assert key.startswith("fs_") and len(key) > 40
    assert store.keys.api_key_id(engine, key) is not None
    with engine.connect() as conn:
        stored = conn.execute(sa.select(store.schema.api_keys.c.key_hash).where(store.schema.api_keys.c.name == name)).scalar()
    assert key not in stored
    again = runner.invoke(args=["create-api-key", name])
    assert again.exit_code != 0 and "exists" in again.output
    assert runner.invoke(args=["revoke-api-key", name]).exit_code == 0
    assert store.keys.api_key_id(engine, key) is None
    assert runner.invoke(args=["revoke-api-key", name]).exit_code != 0
    assert runner.invoke(args=["create-api-key", name]).exit_code == 0  # the name is free again


def test_migrate_command_is_idempotent(app):
    result = app.test_cli_runner().invoke(args=["migrate"])
    assert result.exit_code == 0 and result.output.strip() == "schema up to date"
