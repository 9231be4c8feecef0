"""Job-end callbacks: signed, retried after a failure, delivered once; refused when unsigned."""
import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from app import create_app
from utils import store, webhooks

from conftest import WEBHOOK_SECRET, authorised_client, eventually, submit, wait_for_job


class Receiver:
    """A real HTTP server on 127.0.0.1 that records each POST and answers the scripted statuses."""

    def __init__(self, statuses):
        self.statuses, self.requests = list(statuses), []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append((dict(self.headers), body))
                self.send_response(receiver.statuses.pop(0) if receiver.statuses else 200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/followsift"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, count, timeout=30):
        return eventually(lambda: self.requests, lambda requests: len(requests) >= count, timeout)

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver_factory():
    receivers = []

    def make(statuses=()):
        receivers.append(Receiver(statuses))
        return receivers[-1]

    yield make
    for receiver in receivers:
        receiver.close()


def _check_signature(headers, body):
    """Verify as a receiver would, by hand: HMAC-SHA256 over "<t>.<body>"."""
    parts = dict(item.split("=", 1) for item in headers["X-Followsift-Signature"].split(","))
    assert abs(time.time() - int(parts["t"])) < 300
    expected = hmac.new(WEBHOOK_SECRET.encode(), parts["t"].encode() + b"." + body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(parts["v1"], expected)


def _wait_until_recorded(engine, job_id):
    return eventually(lambda: store.jobs.get_job(engine, job_id, store.jobs.ALL_KEYS),
                      lambda job: job["callback_delivered_at"] is not None or job["callback_error"], 10)


def test_the_job_end_is_posted_signed_and_retried_after_a_500(client, engine, worker, emulator, receiver_factory):
    receiver = receiver_factory([500])
    created = submit(client, ["nike", "adidas"], total=20, callbackUrl=receiver.url)
    status = wait_for_job(client, created["job_id"])
    assert status["status"] == "completed"

    (first_headers, first), (headers, body) = receiver.wait_for(2)
    for h, b in ((first_headers, first), (headers, body)):
        _check_signature(h, b)
        assert h["Content-Type"] == "application/json" and h["X-Followsift-Job-Id"] == created["job_id"]
    delivered = json.loads(body)
    assert delivered["job_id"] == created["job_id"] and delivered["status"] == "completed"
    assert delivered["profiles_kept"] == status["profiles_kept"] > 0

    job = _wait_until_recorded(engine, created["job_id"])  # the worker records it after the receiver's 200
    assert job["callback_delivered_at"] is not None and job["callback_error"] is None
    with store.callbacks.callback_to_send(engine, created["job_id"]) as (pending, _):
        assert pending is None, "a delivered callback is not sent again"


def test_a_cancelled_job_is_posted_too(client, worker, emulator, receiver_factory):
    emulator.configure(run_duration_s=30)
    receiver = receiver_factory()
    created = submit(client, ["nike"], total=10, callbackUrl=receiver.url)
    assert client.post(f"/api/jobs/{created['job_id']}/cancel").status_code == 200
    [(headers, body)] = receiver.wait_for(1)
    _check_signature(headers, body)
    assert json.loads(body)["status"] == "cancelled"


@pytest.mark.parametrize("url", ["ftp://example.com/hook", "not a url", "", 42])
def test_a_bad_callback_url_is_refused(client, url):
    body = {"accounts": ["nike"], "targetGender": "any", "totalScrapeCount": 10, "callbackUrl": url}
    response = client.post("/api/scrape-followers", json=body)
    assert response.status_code == 400 and response.get_json()["error"]["code"] == "invalid_request"


def test_callbacks_need_a_signing_secret(postgres_url, redis_url, api_key):
    unsigned = create_app({"database_url": postgres_url, "redis_url": redis_url, "webhook_signing_secret": ""})
    body = {"accounts": ["nike"], "targetGender": "any", "totalScrapeCount": 10,
            "callbackUrl": "https://example.com/hook"}
    response = authorised_client(unsigned, api_key).post("/api/scrape-followers", json=body)
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "callbacks_disabled"
    assert "WEBHOOK_SIGNING_SECRET" in response.get_json()["error"]["message"]


def test_verify_rejects_a_changed_body_another_secret_and_an_old_timestamp():
    body = b'{"job_id":"x","status":"completed"}'
    now = int(time.time())
    header = webhooks.signature("s3cret", now, body)
    assert webhooks.verify("s3cret", header, body)
    assert not webhooks.verify("s3cret", header, body.replace(b"completed", b"failed"))
    assert not webhooks.verify("other", header, body)
    assert not webhooks.verify("s3cret", webhooks.signature("s3cret", now - 600, body), body)
    assert not webhooks.verify("s3cret", "v1=abc", body)
