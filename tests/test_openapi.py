"""The OpenAPI document: valid 3.1, covering every /api route; Swagger UI from local files;
and schemathesis driving the app from the document: no 5xx, every answer as documented."""
import re

import schemathesis
from hypothesis import HealthCheck, given, settings
from openapi_spec_validator import validate
from schemathesis.checks import (content_type_conformance, not_a_server_error, response_schema_conformance,
                                 status_code_conformance)

import api_docs


def test_the_document_is_valid_openapi_3_1_without_a_key(app):
    response = app.test_client().get("/api/openapi.json")
    assert response.status_code == 200
    document = response.get_json()
    assert document["openapi"] == "3.1.0"
    validate(document)
    assert document["components"]["securitySchemes"]["bearer"] == {
        "type": "http", "scheme": "bearer", "description": document["components"]["securitySchemes"]["bearer"][
            "description"]}
    body = document["components"]["schemas"]["ScrapeRequest"]
    assert {"callbackUrl", "maxCostUsd", "accounts"} <= set(body["properties"])
    assert body["additionalProperties"] is False


def test_every_api_route_is_documented(app):
    documented = {(path, method.upper()) for path, item in api_docs.openapi_document()["paths"].items()
                  for method in item}
    served = {
        (re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule), method)
        for rule in app.url_map.iter_rules() if rule.rule.startswith("/api/")
        and rule.endpoint != "api_docs.asset"
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    assert served == documented


def test_operation_ids_are_unique_camel_case_identifiers():
    """Client generators name functions and types after them: `getJobStatus`, not a sentence."""
    ids = [operation["operationId"] for item in api_docs.openapi_document()["paths"].values()
           for operation in item.values()]
    assert len(ids) == len(api_docs.OPERATIONS)
    assert len(set(ids)) == len(ids), sorted(ids)
    assert [i for i in ids if not re.fullmatch(r"[a-z]+(?:[A-Z][a-z0-9]*)*", i)] == []


def test_apify_webhook_is_kept_out_of_the_public_document(app):
    """Apify calls it with a per-run token; no API client should, so no client gets a function for it."""
    assert any(rule.rule.startswith("/apify/") for rule in app.url_map.iter_rules())
    assert all(path.startswith("/api/") for path in api_docs.openapi_document()["paths"])


def test_errors_share_the_envelope(app):
    operations = api_docs.openapi_document()["paths"]["/api/scrape-followers"]["post"]["responses"]
    for status in ("400", "401", "413", "415", "429", "503"):
        assert operations[status]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/ErrorResponse"}


def test_swagger_ui_is_served_from_local_files_without_a_key(app):
    client = app.test_client()
    page = client.get("/api/docs")
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    assert "http" not in html.replace("http-equiv", ""), "no asset from another host"
    for src in re.findall(r'(?:src|href)="([^"]+)"', html):
        asset = client.get(src)
        assert asset.status_code == 200 and len(asset.get_data()) > 1000, src


def test_the_api_answers_as_documented(app, api_key):
    """A bounded run: 8 examples per operation."""
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    # schemathesis leaves out the document's own route.
    assert {op.label for op in operations} == {
        f"{op.method.upper()} {op.path}" for op in api_docs.OPERATIONS} - {"GET /api/openapi.json"}
    for operation in operations:
        @given(case=operation.as_strategy())
        @settings(max_examples=8, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        def answers_as_documented(case):
            case.call_and_validate(headers={"Authorization": f"Bearer {api_key}"}, checks=[
                not_a_server_error, status_code_conformance, content_type_conformance,
                response_schema_conformance])

        answers_as_documented()


def test_successful_answers_match_the_schema(app, api_key):
    """Random bodies rarely make a valid job, so the 2xx answers get a directed run too."""
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", app)
    checks = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
    headers = {"Authorization": f"Bearer {api_key}"}

    def call(path, method, expect=(200, 202, 204), **parts):
        response = schema[path][method].Case(**parts).call_and_validate(headers=headers, checks=checks)
        assert response.status_code in expect, response.text
        return response

    body = {"accounts": ["@Nike", "adidas"], "targetGender": "female", "totalScrapeCount": 100,
            "minConfidence": 0.7, "maxCostUsd": 0.5, "callbackUrl": "https://example.com/hooks/followsift"}
    call("/api/estimate", "POST", body=body)
    job_id = call("/api/scrape-followers", "POST", body=body).json()["job_id"]
    job = {"path_parameters": {"job_id": job_id}}
    call("/api/job-status/{job_id}", "GET", **job)
    call("/api/jobs", "GET", query={"limit": 5})
    call("/api/job-results/{job_id}", "GET", query={"limit": 10}, **job)
    for fmt in ("csv", "ndjson"):
        call("/api/job-results/{job_id}/export", "GET", query={"format": fmt}, **job)
    call("/api/jobs/{job_id}/cancel", "POST", expect=(200, 409), **job)  # 409: a worker already ran it
    call("/api/job-events/{job_id}", "GET", **job)  # the job has ended: one event, then the stream closes
    call("/api/jobs/{job_id}", "DELETE", **job)
