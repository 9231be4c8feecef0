"""Property tests: thousands of random bodies, headers and URLs thrown at the API never get a
5xx or a traceback, every error is the JSON envelope, and a refused job leaves no row."""
import json
import string
from urllib.parse import quote

import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings, strategies as st

from utils import store

FUZZ = settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children, max_size=5),
    max_leaves=15,
)
usernames = st.text(alphabet=string.ascii_letters + string.digits + "._@ -!é", min_size=0, max_size=34)
near_valid_bodies = st.fixed_dictionaries(
    {
        "accounts": st.lists(usernames, max_size=8) | json_values,
        "targetGender": st.sampled_from(["male", "female", "any", "Male", "", "both"]) | json_values,
        "totalScrapeCount": st.integers(-10, 10**13) | st.floats(allow_nan=False) | json_values,
    },
    optional={"minConfidence": st.floats(-1, 2) | json_values, "extra": json_values},
)
bodies = (near_valid_bodies.map(lambda b: json.dumps(b).encode())
          | json_values.map(lambda v: json.dumps(v).encode())
          | st.binary(max_size=200))
content_types = st.sampled_from(["application/json", "application/json; charset=utf-8", "text/plain",
                                 "application/x-www-form-urlencoded", "", "application/json; charset=latin-1"])
authorizations = st.sampled_from(["", "Bearer", "Bearer x", "Basic Zm9vOmJhcg==", "bearer  "]) | st.text(max_size=60)


def _jobs(engine):
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(store.schema.jobs)).scalar()


def _assert_clean(response):
    assert response.status_code < 500, response.get_data(as_text=True)
    text = response.get_data(as_text=True)
    assert "Traceback" not in text and "<html" not in text.lower()
    if response.status_code >= 400:
        error = response.get_json()["error"]
        assert isinstance(error["code"], str) and isinstance(error["message"], str)


@FUZZ
@given(body=bodies, content_type=content_types)
def test_random_job_bodies(client, engine, body, content_type):
    before = _jobs(engine)
    response = client.post("/api/scrape-followers", data=body, headers={"Content-Type": content_type})
    _assert_clean(response)
    assert _jobs(engine) == before + (response.status_code == 202)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(authorization=authorizations, body=bodies)
def test_random_keys_are_refused_cleanly(app, engine, authorization, body):
    before = _jobs(engine)
    headers = {"Authorization": authorization, "Content-Type": "application/json"}
    try:
        response = app.test_client().post("/api/scrape-followers", data=body, headers=headers)
    except ValueError:
        return  # werkzeug's test client refuses header values no HTTP server would pass on
    _assert_clean(response)
    assert response.status_code in (400, 401, 413, 415)
    assert _jobs(engine) == before


@FUZZ
@given(
    route=st.sampled_from(["job-status/{}", "job-results/{}", "job-results/{}?page={}&limit={}",
                           "job-results/{}?cursor={}&limit={}", "jobs/{}"]),
    job_id=st.uuids().map(str) | st.text(min_size=1, max_size=40),
    first=st.text(max_size=20) | st.integers(-5, 10**12).map(str),
    second=st.text(max_size=20) | st.integers(-5, 10**12).map(str),
)
def test_random_reads(client, route, job_id, first, second):
    path = "/api/" + route.format(quote(job_id, safe=""), quote(first, safe=""), quote(second, safe=""))
    _assert_clean(client.get(path))
