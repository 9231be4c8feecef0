"""docs/grafana.json queries only metrics that /metrics exports, and covers the capacity metrics."""
import json
import re
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

DASHBOARD = Path(__file__).resolve().parent.parent / "docs" / "grafana.json"
# The sample names each metric type exports (prometheus-client drops a counter's `_total` from its family name).
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}
CAPACITY = {"followsift_apify_runs_in_flight", "followsift_apify_capacity_cap", "followsift_apify_starts_refused_total",
            "followsift_batches_waiting", "followsift_run_ends_detected_total"}


def expressions():
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [target["expr"] for panel in panels for target in panel.get("targets", ())]


def exported_names(text):
    """Every sample name the exposition text has or declares: a labelled metric nothing has
    counted yet (a worker's counter, seen from the web process) is declared but has no sample."""
    names = set()
    for family in text_string_to_metric_families(text):
        names |= {sample.name for sample in family.samples}
        names |= {family.name + suffix for suffix in SUFFIXES.get(family.type, ())}
    return names


def test_every_queried_metric_is_exported(app, client):
    for path in ("/healthz", "/api/jobs", "/api/job-status/nope"):
        client.get(path)
    exported = exported_names(app.test_client().get("/metrics").get_data(as_text=True))
    queried = {name for expr in expressions() for name in re.findall(r"\bfollowsift_\w+", expr)}
    assert all(re.search(r"\bfollowsift_\w+", expr) for expr in expressions())
    assert queried - exported == set()
    assert CAPACITY <= queried
    assert {"followsift_http_request_duration_seconds_bucket", "followsift_http_request_duration_seconds_count",
            "followsift_jobs", "followsift_queue_depth", "followsift_apify_call_seconds_bucket",
            "followsift_apify_errors_total", "followsift_batches_total", "followsift_profiles_total"} <= queried
