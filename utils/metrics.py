"""Prometheus metrics (prometheus-client), served by the web app at `/metrics`.

Counters and the Apify latency histogram are incremented where the work happens, in the
worker: batches ended, followers scraped, profiles kept, every Apify API call. Job counts by
status and the queue depth are read from Postgres and Redis when Prometheus scrapes, so
they are right whichever process answers.

Gunicorn and Celery run several processes. With `PROMETHEUS_MULTIPROC_DIR` set (a directory
shared by the web and worker processes of one host, emptied before they start),
prometheus-client keeps each process's values in files there and `/metrics` adds them up.
Unset, each process counts on its own and `/metrics` shows the web process's own registry.

Requests are counted and timed by prometheus-flask-exporter (`track_requests`): by method,
route (the URL rule, so one series per route, not per job id) and status.
"""
import time
from contextlib import contextmanager

import sqlalchemy as sa
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_flask_exporter import PrometheusMetrics

from utils.store import capacity
from utils.store.schema import ACTIVE_JOB_STATUSES, BatchStatus, JobStatus, batches, jobs

JOB_STATUSES = tuple(JobStatus)

BATCHES = Counter("followsift_batches_total", "Batches ended, by outcome (succeeded or failed).", ["outcome"])
PROFILES = Counter("followsift_profiles_total",
                   "Followers scraped (stage=scraped) and profiles stored (stage=kept).", ["stage"])
APIFY_CALL_SECONDS = Histogram(
    "followsift_apify_call_seconds", "Duration of Apify API calls through apify-client, retries included.",
    ["operation"], buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800),
)
STARTS_REFUSED = Counter("followsift_apify_starts_refused_total",
                         "Run starts Apify refused because the account was full (memory or concurrent runs).")
RUN_ENDS = Counter("followsift_run_ends_detected_total",
                   "Ended Apify runs noticed, by who noticed first (webhook or poller).", ["source"])
TICK_SECONDS = Histogram("followsift_tick_seconds", "How long the clock's ticks take (in the clock's process).",
                         buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
APIFY_ERRORS = Counter("followsift_apify_errors_total",
                       "Apify API calls that failed, by operation and type (http_<status> or the exception).",
                       ["operation", "type"])


def batch_ended(failed, scraped):
    """Count a batch this execution ended (once per batch, like the job's own counters)."""
    BATCHES.labels(BatchStatus.FAILED if failed else BatchStatus.SUCCEEDED).inc()
    PROFILES.labels("scraped").inc(scraped)


def tick_took(seconds):
    TICK_SECONDS.observe(seconds)


def start_refused():
    STARTS_REFUSED.inc()


def run_end_detected(source):
    RUN_ENDS.labels(source).inc()


def profiles_kept(count):
    """Count profiles newly stored; a retried chunk stores (and counts) nothing twice."""
    PROFILES.labels("kept").inc(count)


@contextmanager
def apify_call(operation):
    """Time one Apify API call and count its failure by type; exceptions pass through."""
    started = time.perf_counter()
    try:
        yield
    except Exception as exc:
        status = getattr(exc, "status_code", None)
        APIFY_ERRORS.labels(operation, f"http_{status}" if status else type(exc).__name__).inc()
        raise
    finally:
        APIFY_CALL_SECONDS.labels(operation).observe(time.perf_counter() - started)


class StateCollector:
    """Gauges computed at scrape time: jobs by status, runs in flight, the capacity governor's
    cap and batches waiting per job (Postgres), and queue depth (Redis)."""

    def __init__(self, engine, celery, settings):
        self.engine, self.celery, self.settings = engine, celery, settings

    def collect(self):
        jobs = GaugeMetricFamily("followsift_jobs", "Jobs by status.", labels=["status"])
        with self.engine.connect() as conn:
            counts = dict(conn.execute(sa.text("select status, count(*) from scrape_jobs group by status")).all())
        for status in JOB_STATUSES:
            jobs.add_metric([status], counts.get(status, 0))
        yield jobs
        yield from self._capacity()
        queue = self.celery.conf.task_default_queue
        with self.celery.connection_for_read() as conn:
            depth = conn.default_channel.client.llen(queue)
        gauge = GaugeMetricFamily("followsift_queue_depth", "Messages waiting in the Celery queue (LLEN).",
                                  labels=["queue"])
        gauge.add_metric([queue], depth)
        yield gauge


    def _capacity(self):
        room = capacity.snapshot(self.engine, self.settings)
        yield _gauge("followsift_apify_runs_in_flight", "Apify runs started and not yet ended, all workers.",
                     room.in_flight)
        yield _gauge("followsift_apify_capacity_cap", "Runs the capacity governor allows in flight now.", room.cap)
        waiting = GaugeMetricFamily("followsift_batches_waiting", "Batches of active jobs waiting to start, by job.",
                                    labels=["job_id"])
        b, j = batches.c, jobs.c
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(b.job_id, sa.func.count()).join(jobs, j.job_id == b.job_id)
                .where(b.status == BatchStatus.QUEUED, j.status.in_(ACTIVE_JOB_STATUSES)).group_by(b.job_id)).all()
        for job_id, count in rows:
            waiting.add_metric([str(job_id)], count)
        yield waiting


def _gauge(name, documentation, value):
    gauge = GaugeMetricFamily(name, documentation)
    gauge.add_metric([], value)
    return gauge


def route(request):
    """The URL rule that answered (`/api/job-status/<job_id>`), `unmatched` for a 404 or 405 without one."""
    return request.url_rule.rule if request.url_rule else "unmatched"


def track_requests(app):
    """Count and time `app`'s requests: `followsift_http_request_duration_seconds{method, route, status}`
    (a histogram, whose `_count` is the request count) and `followsift_http_request_total{method, status}`.

    Each app gets a registry of its own, kept in `app.extensions["request_metrics"]`, so that
    several apps in one process (the tests) each count their own requests. With
    PROMETHEUS_MULTIPROC_DIR in the environment, prometheus-client writes these values to that
    directory whatever the registry, and `render` reads them back with the rest. The exporter
    serves no endpoint of its own (`path=None`): `/metrics` is `render`.
    """
    registry = CollectorRegistry()
    PrometheusMetrics(app, path=None, registry=registry, defaults_prefix="followsift", group_by=route)
    app.extensions["request_metrics"] = registry


def render(engine, celery, settings, requests):
    """The exposition text for `/metrics`; `requests` is the web app's registry from `track_requests`."""
    registry = CollectorRegistry()
    if settings.prometheus_multiproc_dir:
        MultiProcessCollector(registry, path=settings.prometheus_multiproc_dir)
    else:
        registry.register(REGISTRY)
        registry.register(requests)
    registry.register(StateCollector(engine, celery, settings))
    return generate_latest(registry)
