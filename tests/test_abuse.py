"""Abuse the API cannot be bent to: rate limits keyed on the authenticated key (however its
header is spelled) in shared scopes, a per-address limit for requests without a valid key,
input capped before validation work, deep OFFSETs refused, progress streams capped per process
and per key, and a revoked key's streams closed."""
import json
import uuid

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from api_async import limiter
from app import create_app
from utils import store
from utils.config import Settings
from utils.events import STREAMS, job_events

from conftest import WEBHOOK_SECRET, cancel


@pytest.fixture(scope="module")
def strict_app(quiet_postgres_url, redis_url, quiet_engine):
    """An app on the quiet database (no worker) with small limits; its limiter storage is this test's."""
    return create_app({"database_url": quiet_postgres_url, "redis_url": redis_url,
                       "rate_limit_read": "3/minute", "rate_limit_create": "2/minute",
                       "rate_limit_unauthenticated": "3/minute", "sse_max_streams_per_key": 1,
                       "webhook_signing_secret": WEBHOOK_SECRET, "celery_queue": f"abuse-{uuid.uuid4().hex[:6]}"})


@pytest.fixture
def app(strict_app):
    limiter.init_app(strict_app)
    limiter.reset()
    return strict_app


def _new_key(app):
    return store.keys.create_api_key(app.extensions["engine"], f"abuse-{uuid.uuid4().hex}")


def _job_of(app, key):
    """A one-account job of the key's, straight in the quiet database."""
    engine = app.extensions["engine"]
    job_id, *_ = store.work.create_job(engine, api_key_id=store.keys.api_key_id(engine, key), usernames=["a"],
                                      target_gender="any", min_confidence=0.0, total_scrape_count=1,
                                      per_account_limit=1, batch_size=1, actor_id="test/actor")
    return job_id


_SCHEMES = st.sampled_from(["Bearer", "bearer", "BEARER", "bEaReR"])
_GAPS = st.sampled_from([" ", "  ", "\t", " \t "])
_EDGES = st.sampled_from(["", " ", "  "])


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(variants=st.lists(st.tuples(_EDGES, _SCHEMES, _GAPS, _EDGES), min_size=4, max_size=4))
def test_every_spelling_of_a_key_shares_its_bucket(app, variants):
    key, client = _new_key(app), app.test_client()
    answers = [client.get("/api/jobs", headers={"Authorization": f"{lead}{scheme}{gap}{key}{tail}"}).status_code
               for lead, scheme, gap, tail in variants]
    assert answers == [200, 200, 200, 429], variants


def test_create_cancel_and_delete_share_one_bucket(app):
    key = _new_key(app)
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {key}"
    job_id = _job_of(app, key)
    assert client.post(f"/api/jobs/{job_id}/cancel").status_code == 200
    assert client.post(f"/api/jobs/{job_id}/cancel").status_code == 200
    response = client.delete(f"/api/jobs/{job_id}")
    assert response.status_code == 429 and response.get_json()["error"]["code"] == "too_many_requests"


def test_requests_without_a_valid_key_are_limited_per_address(app):
    client = app.test_client()
    answers = [client.get("/api/jobs", headers={"Authorization": f"Bearer fs_guess{i}"}).status_code for i in range(4)]
    assert answers == [401, 401, 401, 429]
    other = app.test_client().get("/api/jobs", headers={"X-Forwarded-For": "203.0.113.9"})
    assert other.status_code == 429, "PROXY_HOPS is 0: a forwarded-for header is not believed"


def test_an_oversized_account_list_is_refused_before_any_validation(app):
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {_new_key(app)}"
    too_many = Settings().max_accounts + 1
    response = client.post("/api/estimate", data=json.dumps(
        {"accounts": ["x" * 40] * too_many, "targetGender": "any", "totalScrapeCount": 1}),
        content_type="application/json")
    assert response.status_code == 400 and response.get_json()["error"]["code"] == "too_many_accounts"


def test_bad_usernames_are_echoed_capped(app):
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {_new_key(app)}"
    bad = ["not valid " + "y" * 500 + str(i) for i in range(2000)]
    response = client.post("/api/estimate", json={"accounts": bad, "targetGender": "any", "totalScrapeCount": 1})
    error = response.get_json()["error"]
    assert response.status_code == 400 and "2000 account(s)" in error["message"]
    assert len(error["details"]) == 50 and all(len(d["value"]) <= 64 for d in error["details"])
    assert len(response.get_data()) < 10_000


def test_paging_by_number_stops_where_the_cursor_should_take_over(app):
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {_new_key(app)}"
    job_id = str(uuid.uuid4())
    response = client.get(f"/api/job-results/{job_id}?page=1000000000&limit=10")
    assert response.status_code in (400, 404)
    own = _job_of(app, client.environ_base["HTTP_AUTHORIZATION"][7:])
    cancel(app.extensions["engine"], own)
    assert client.get(f"/api/job-results/{own}?page=1000000000&limit=10").status_code == 400
    assert client.get(f"/api/job-results/{own}?page=100000&limit=10").status_code == 200


def test_streams_are_capped_per_key_and_given_back(app):
    key = _new_key(app)
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {key}"
    job_id = _job_of(app, key)
    first = client.get(f"/api/job-events/{job_id}", buffered=False)
    assert first.status_code == 200
    second = client.get(f"/api/job-events/{job_id}")
    assert second.status_code == 429 and second.get_json()["error"]["code"] == "too_many_streams"
    first.close()
    cancel(app.extensions["engine"], job_id)
    third = client.get(f"/api/job-events/{job_id}")
    assert third.status_code == 200 and "event: status" in third.get_data(as_text=True)
    third.close()
    assert sum(STREAMS.open.values()) == 0


def test_revoking_a_key_ends_its_streams(quiet_engine):
    name = f"revoked-{uuid.uuid4().hex}"
    key_id = store.keys.api_key_id(quiet_engine, store.keys.create_api_key(quiet_engine, name))
    job_id, *_ = store.work.create_job(quiet_engine, api_key_id=key_id, usernames=["a"], target_gender="any",
                                      min_confidence=0.0, total_scrape_count=1, per_account_limit=1, batch_size=1, actor_id="test/actor")
    stream = job_events(quiet_engine, job_id, key_id, Settings(sse_poll_seconds=0.05), sleep=lambda _: None)
    assert next(stream).startswith("retry:") and next(stream).startswith("event: status")
    store.keys.revoke_api_key(quiet_engine, name)
    assert next(stream).startswith("event: revoked")
    assert list(stream) == []
    cancel(quiet_engine, job_id)


def test_metrics_need_their_token_or_this_machine(quiet_postgres_url, redis_url):
    guarded = create_app({"database_url": quiet_postgres_url, "redis_url": redis_url, "metrics_token": "m-tok"})
    client = guarded.test_client()
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer nope"}).status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer m-tok"}).status_code == 200
    open_locally = create_app({"database_url": quiet_postgres_url, "redis_url": redis_url}).test_client()
    assert open_locally.get("/metrics").status_code == 200
    assert open_locally.get("/metrics", headers={"X-Forwarded-For": "203.0.113.9"}).status_code == 401
    assert open_locally.get("/metrics", environ_base={"REMOTE_ADDR": "10.1.2.3"}).status_code == 401


def test_a_key_spends_within_its_limits_before_any_run_starts(app):
    engine = app.extensions["engine"]
    name = f"spender-{uuid.uuid4().hex}"
    key = store.keys.create_api_key(engine, name)
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {key}"
    body = {"accounts": ["nike"], "targetGender": "any", "totalScrapeCount": 10}
    assert client.post("/api/estimate", json=body).get_json()["max_cost_usd"] == Settings().max_cost_usd_default
    result = app.test_cli_runner().invoke(args=["set-key-limits", name, "--default-budget", "5", "--max-budget", "20",
                                                "--monthly-cap", "30"])
    assert result.exit_code == 0, result.output
    assert client.post("/api/estimate", json=body).get_json()["max_cost_usd"] == 5
    over = client.post("/api/estimate", json={**body, "maxCostUsd": 25})
    assert over.status_code == 403 and over.get_json()["error"]["code"] == "budget_over_limit"
    first = client.post("/api/scrape-followers", json={**body, "maxCostUsd": 20})
    assert first.status_code in (202, 503)  # 503 only when this app's queue is away; the job is then removed
    if first.status_code == 202:
        refused = client.post("/api/scrape-followers", json={**body, "maxCostUsd": 15})
        assert refused.status_code == 402 and refused.get_json()["error"]["code"] == "monthly_cap_reached"
