"""`/metrics`: gauges read at scrape time, and the worker's counters (multiprocess mode) after a job."""
import uuid

import pytest
import redis
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from app import create_app
from celery_config import make_celery
from conftest import authorised_client, cancel, submit, wait_for_job
from utils import metrics, store
from utils.config import Settings


@pytest.fixture(scope="module")
def metrics_app(postgres_url, redis_url, metrics_dir, app):
    """The app as gunicorn runs it with PROMETHEUS_MULTIPROC_DIR: it reads the workers' files."""
    return create_app({"database_url": postgres_url, "redis_url": redis_url, "prometheus_multiproc_dir": metrics_dir,
                       "rate_limit_create": "10000/minute", "rate_limit_read": "100000/minute", "rate_limit_unauthenticated": "100000/minute"})


def scrape(app):
    response = app.test_client().get("/metrics")  # no API key
    assert response.status_code == 200 and response.mimetype == "text/plain"
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(response.get_data(as_text=True))
            for sample in family.samples}


def value(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_worker_counters_move_after_a_job(metrics_app, client, engine, worker, emulator):
    emulator.fault(route="start_run", status=503, type="server-error", times=1)
    webhooks_before = _webhook_detections()
    before = scrape(metrics_app)
    created = submit(client, [f"metric{i}" for i in range(60)], gender="female", total=60 * 20)
    status = wait_for_job(client, created["job_id"])
    assert (status["status"], status["batches_failed"]) == ("completed", 0), status
    after = scrape(metrics_app)

    def moved(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("followsift_batches_total", outcome="succeeded") == 2
    assert moved("followsift_batches_total", outcome="failed") == 0
    assert moved("followsift_profiles_total", stage="scraped") == status["profiles_scraped"] > 0
    assert moved("followsift_profiles_total", stage="kept") == status["profiles_kept"] > 0
    assert moved("followsift_apify_errors_total", operation="start_run", type="http_503") == 1
    assert moved("followsift_apify_call_seconds_count", operation="start_run") == 3  # one refused, two runs
    assert moved("followsift_apify_call_seconds_count", operation="dataset_items") >= 2
    # Webhooks land on the web process (here this one, outside multiprocess mode), the poller in the worker.
    assert _webhook_detections() - webhooks_before + moved("followsift_run_ends_detected_total", source="poller") == 2


def _webhook_detections():
    return REGISTRY.get_sample_value("followsift_run_ends_detected_total", {"source": "webhook"}) or 0.0


def test_jobs_by_status_are_counted_at_scrape_time(metrics_app, app, engine):
    own = authorised_client(app, store.keys.create_api_key(engine, f"metrics-{uuid.uuid4().hex[:8]}"))
    before = scrape(metrics_app)
    cancel(engine, submit(own, ["counted"])["job_id"])
    after = scrape(metrics_app)
    assert value(after, "followsift_jobs", status="cancelled") == value(before, "followsift_jobs", status="cancelled") + 1
    assert {"queued", "processing", "completed", "failed"} <= {
        dict(labels)["status"] for name, labels in after if name == "followsift_jobs"}


def test_queue_depth_is_the_length_of_the_celery_queue(redis_url, engine):
    celery = make_celery(Settings(redis_url=redis_url))
    queue = celery.conf.task_default_queue = f"metrics-test-{uuid.uuid4().hex[:8]}"
    for _ in range(3):
        celery.send_task("followsift.nothing", queue=queue)
    try:
        family = next(f for f in metrics.StateCollector(engine, celery, Settings()).collect() if f.name == "followsift_queue_depth")
        assert [(s.labels, s.value) for s in family.samples] == [({"queue": queue}, 3)]
    finally:
        redis.Redis.from_url(redis_url).delete(queue)


def test_capacity_is_visible(quiet_engine, redis_url):
    settings = Settings(apify_max_concurrent_runs=7)
    job_id, *_ = store.work.create_job(quiet_engine, api_key_id=None, usernames=["a", "b"], target_gender="any",
                                      min_confidence=0.0, total_scrape_count=2, per_account_limit=1, batch_size=1, actor_id="test/actor")
    families = {f.name: f for f in metrics.StateCollector(quiet_engine, make_celery(Settings(redis_url=redis_url)),
                                                          settings).collect()}
    room = store.capacity.snapshot(quiet_engine, settings)
    assert families["followsift_apify_capacity_cap"].samples[0].value == 7 == room.cap
    assert families["followsift_apify_runs_in_flight"].samples[0].value == room.in_flight
    waiting = {s.labels["job_id"]: s.value for s in families["followsift_batches_waiting"].samples}
    assert waiting[job_id] == 2


def test_without_a_multiprocess_directory_the_process_registry_is_served(app):
    samples = scrape(app)
    assert ("followsift_jobs", (("status", "queued"),)) in samples
    assert any(name.startswith("process_") or name.startswith("python_") for name, _ in samples)


def test_a_missing_multiprocess_directory_is_a_config_error(tmp_path):
    with pytest.raises(ValueError, match="PROMETHEUS_MULTIPROC_DIR"):
        Settings().with_overrides({"prometheus_multiproc_dir": str(tmp_path / "absent")})
