"""Request metrics on `/metrics` (prometheus-flask-exporter): by route and status, in a single
process and added up over processes with PROMETHEUS_MULTIPROC_DIR, as gunicorn runs."""
import os
import subprocess
import sys
import uuid
from pathlib import Path

from api_async import limiter
from app import create_app
from conftest import authorised_client
from test_metrics import scrape, value
from utils import store

ROOT = Path(__file__).resolve().parent.parent
REQUESTS = "followsift_http_request_duration_seconds_count"
STATUS_ROUTE = "/api/job-status/<job_id>"


def test_requests_are_counted_by_url_rule_and_status(app, client):
    before = scrape(app)
    job_id = str(uuid.uuid4())
    for _ in range(2):
        assert client.get(f"/api/job-status/{job_id}").status_code == 404
    assert app.test_client().get("/api/jobs").status_code == 401  # no key
    assert app.test_client().get("/no-such-page").status_code == 404
    after = scrape(app)

    def moved(**labels):
        return value(after, REQUESTS, **labels) - value(before, REQUESTS, **labels)

    assert moved(method="GET", route=STATUS_ROUTE, status="404") == 2
    assert moved(method="GET", route="/api/jobs", status="401") == 1
    assert moved(method="GET", route="unmatched", status="404") == 1
    assert not any(job_id in str(labels) for _, labels in after), "a raw path became a label"


def test_rate_limited_requests_are_timed_under_their_route(postgres_url, redis_url, app):
    """A refusal of the rate limiter (which wraps the view) is a request of its route like any other."""
    strict = create_app({"database_url": postgres_url, "redis_url": redis_url, "rate_limit_read": "1/hour"})
    own = authorised_client(strict, store.keys.create_api_key(app.extensions["engine"], f"rl-{uuid.uuid4().hex[:8]}"))
    try:
        assert [own.get(f"/api/job-status/{uuid.uuid4()}").status_code for _ in range(2)] == [404, 429]
    finally:
        limiter.init_app(app)  # the limiter is one object per process: point it back at the session's app
    assert value(scrape(strict), REQUESTS, method="GET", route=STATUS_ROUTE, status="429") == 1


def test_requests_of_several_processes_add_up_in_multiprocess_mode(tmp_path, postgres_url, redis_url):
    """Two processes serve requests with PROMETHEUS_MULTIPROC_DIR set; a third one's /metrics counts both."""
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "DATABASE_URL": postgres_url,
           "REDIS_URL": redis_url}
    serve = "import sys; from app import create_app; c = create_app().test_client(); [c.get(p) for p in sys.argv[1:]]"
    children = [subprocess.Popen([sys.executable, "-c", serve, "/healthz", "/api/jobs"], cwd=ROOT, env=env)
                for _ in range(2)]
    assert [child.wait(timeout=60) for child in children] == [0, 0]
    samples = scrape(create_app({"database_url": postgres_url, "redis_url": redis_url,
                                 "prometheus_multiproc_dir": str(tmp_path)}))
    assert value(samples, REQUESTS, method="GET", route="/healthz", status="200") == 2
    assert value(samples, REQUESTS, method="GET", route="/api/jobs", status="401") == 2
