"""Job-end callbacks: signed, retried after a failure, delivered once; refused when unsigned;
never sent into our own network, and never left hanging on a slow receiver.

No test here connects anywhere but loopback: DNS names are resolved by the `resolve` the test
passes, and a refused URL is refused before any connection."""
import hashlib
import hmac
import ipaddress
import json
import shutil
import socket
import ssl
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from app import create_app
from utils import store, webhooks

from conftest import WEBHOOK_SECRET, authorised_client, eventually, submit, wait_for_job


class Receiver:
    """A real HTTP server on 127.0.0.1 that records each POST and answers the scripted statuses."""

    def __init__(self, statuses, tls=None):
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
        if tls:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_port
        self.url = f"http://127.0.0.1:{self.port}/hooks/followsift"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, count, timeout=30):
        return eventually(lambda: self.requests, lambda requests: len(requests) >= count, timeout)

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver_factory():
    receivers = []

    def make(statuses=(), tls=None):
        receivers.append(Receiver(statuses, tls))
        return receivers[-1]

    yield make
    for receiver in receivers:
        receiver.close()


def _check_signature(headers, body, secret=WEBHOOK_SECRET):
    """Verify as a receiver would, by hand: HMAC-SHA256 over "<t>.<body>"."""
    parts = dict(item.split("=", 1) for item in headers["X-Followsift-Signature"].split(","))
    assert abs(time.time() - int(parts["t"])) < 300
    expected = hmac.new(secret.encode(), parts["t"].encode() + b"." + body, hashlib.sha256).hexdigest()
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
    with store.callbacks.callback_to_send(engine, created["job_id"], 7) as (pending, _):
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


def test_a_key_with_its_own_secret_gets_callbacks_only_it_can_verify(app, engine, worker, emulator,
                                                                    receiver_factory):
    name = f"tenant-{time.time_ns()}"
    tenant = authorised_client(app, store.keys.create_api_key(engine, name))
    secret = app.test_cli_runner().invoke(args=["rotate-webhook-secret", name]).output.strip()
    assert secret.startswith("whsec_")
    receiver = receiver_factory()
    created = submit(tenant, ["nike"], total=10, callbackUrl=receiver.url)
    wait_for_job(tenant, created["job_id"])
    ((headers, body),) = receiver.wait_for(1)
    _check_signature(headers, body, secret)
    with pytest.raises(AssertionError):
        _check_signature(headers, body)  # the server-wide secret another tenant may know does not verify it


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


# -- where a callback may go (SSRF) ---------------------------------------------------------------

PUBLIC = "93.184.216.34"
PAYLOAD = {"job_id": "j-1", "status": "completed"}


def _no_dns(host, port):
    raise AssertionError(f"{host} was resolved, but a literal or malformed host must be judged as written")


def _resolving_to(*addresses):
    return lambda host, port: list(addresses)


PRIVATE_ADDRESSES = [
    "127.0.0.1", "127.8.9.10", "::1", "0.0.0.0", "169.254.169.254", "10.1.2.3", "172.16.5.4", "192.168.0.10",
    "100.64.0.1", "224.0.0.1", "255.255.255.255", "fe80::1", "fc00::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1",
    "64:ff9b::a9fe:a9fe", "2002:a9fe:a9fe::1",  # NAT64 and 6to4 wrappings of 169.254.169.254
]


@pytest.mark.parametrize("address", PRIVATE_ADDRESSES)
def test_a_private_address_is_refused_written_out_or_behind_a_name(address):
    literal = f"[{address}]" if ":" in address else address
    with pytest.raises(webhooks.UnsafeCallbackUrl, match="not public"):
        webhooks.check_callback_url(f"https://{literal}/hook", resolve=_no_dns)
    with pytest.raises(webhooks.UnsafeCallbackUrl, match="not public"):
        webhooks.check_callback_url("https://hooks.example.com/hook", resolve=_resolving_to(address))


@pytest.mark.parametrize("url", [
    "https://2130706433/", "https://0x7f000001/", "https://0177.0.0.1/", "https://127.1/", "https://0x7f.1/",
    "https://%31%32%37.0.0.1/", "https://user:pw@hooks.example.com/", "https://hooks.example.com@127.0.0.1/",
    "https://hooks.example.com\\@127.0.0.1/", "http://hooks.example.com/", "ftp://hooks.example.com/",
    "https://hooks.example.com./", "https:///hook", "https://hooks.example.com:99999/", "https://hooks.example.com:0/",
    "https://hooks.exa mple.com/",
    "https://bücher.example/", "https://-hooks.example.com/", "https://hooks.example.com/\n", 42,
])
def test_odd_forms_are_refused_before_any_lookup(url):
    with pytest.raises(webhooks.UnsafeCallbackUrl):
        webhooks.check_callback_url(url, resolve=_no_dns)


def test_metadata_names_and_names_that_do_not_resolve_are_refused():
    with pytest.raises(webhooks.UnsafeCallbackUrl, match="169.254.169.254"):
        webhooks.check_callback_url("https://metadata.google.internal/computeMetadata/v1/",
                                    resolve=_resolving_to("169.254.169.254"))

    def unknown(host, port):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    with pytest.raises(webhooks.UnsafeCallbackUrl, match="does not resolve"):
        webhooks.check_callback_url("https://metadata.google.internal/", resolve=unknown)


def test_a_name_with_one_private_address_among_public_ones_is_refused():
    with pytest.raises(webhooks.UnsafeCallbackUrl, match="10.0.0.7"):
        webhooks.check_callback_url("https://hooks.example.com/", resolve=_resolving_to(PUBLIC, "10.0.0.7"))


def test_public_https_urls_pass_and_private_ones_only_when_allowed():
    webhooks.check_callback_url("https://hooks.example.com:8443/x?y=1", resolve=_resolving_to(PUBLIC, "2606:4700::1111"))
    webhooks.check_callback_url(f"https://{PUBLIC}/hook", resolve=_no_dns)
    webhooks.check_callback_url("http://localhost:8000/hook", allow_private=True, resolve=_resolving_to("127.0.0.1"))
    with pytest.raises(webhooks.UnsafeCallbackUrl):
        webhooks.check_callback_url("http://2130706433/", allow_private=True, resolve=_no_dns)
    assert issubclass(webhooks.UnsafeCallbackUrl, ValueError)


def test_deliver_refuses_what_the_check_refuses_without_connecting(receiver_factory):
    receiver = receiver_factory()
    with pytest.raises(webhooks.DeliveryError, match="refused"):
        webhooks.deliver(receiver.url, PAYLOAD, WEBHOOK_SECRET, 2)
    assert receiver.requests == []


def test_deliver_posts_signed_json_when_private_addresses_are_allowed(receiver_factory):
    receiver = receiver_factory([200])
    webhooks.deliver(receiver.url, PAYLOAD, WEBHOOK_SECRET, 2, allow_private=True)
    [(headers, body)] = receiver.requests
    _check_signature(headers, body)
    assert json.loads(body) == PAYLOAD and headers["X-Followsift-Job-Id"] == "j-1"


def test_deliver_reports_a_non_2xx_answer(receiver_factory):
    receiver = receiver_factory([302])
    with pytest.raises(webhooks.DeliveryError, match="answered 302"):
        webhooks.deliver(receiver.url, PAYLOAD, WEBHOOK_SECRET, 2, allow_private=True)


class Rebinding:
    """A resolver whose name answers `first`, then `then` on every later lookup."""

    def __init__(self, first, then):
        self.answers, self.lookups = [first, then], 0

    def __call__(self, host, port):
        self.lookups += 1
        return [self.answers[min(self.lookups, 2) - 1]]


def test_a_name_rebound_to_a_private_address_after_the_check_is_refused_at_send_time(receiver_factory):
    receiver = receiver_factory()
    url = f"https://hooks.example.com:{receiver.port}/hooks"
    rebinding = Rebinding(PUBLIC, "127.0.0.1")
    webhooks.check_callback_url(url, resolve=rebinding)  # at submit time the name looked public
    with pytest.raises(webhooks.DeliveryError, match="not public: 127.0.0.1"):
        webhooks.deliver(url, PAYLOAD, WEBHOOK_SECRET, 2, resolve=rebinding)
    assert receiver.requests == []


def test_deliver_connects_to_the_address_it_checked_and_names_the_host(receiver_factory):
    receiver = receiver_factory()  # listens on 127.0.0.1 only; nothing answers on 127.0.0.2
    rebinding = Rebinding("127.0.0.1", "127.0.0.2")
    webhooks.deliver(f"http://hooks.example.com:{receiver.port}/hooks", PAYLOAD, WEBHOOK_SECRET, 2,
                     allow_private=True, resolve=rebinding)
    [(headers, _)] = receiver.requests
    assert headers["Host"] == f"hooks.example.com:{receiver.port}" and rebinding.lookups == 1


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    """A self-signed certificate for hooks.test, which the test makes the only trusted one."""
    folder = tmp_path_factory.mktemp("tls")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=hooks.test",
                    "-addext", "subjectAltName=DNS:hooks.test", "-keyout", folder / "key.pem", "-out", folder / "cert.pem"],
                   check=True, capture_output=True)
    return folder / "cert.pem", folder / "key.pem"


def test_tls_is_verified_against_the_name_while_connecting_to_the_checked_address(receiver_factory, certificate,
                                                                                  monkeypatch):
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(*certificate)
    receiver = receiver_factory(tls=tls)
    loopback = _resolving_to("127.0.0.1")
    webhooks.deliver(f"https://hooks.test:{receiver.port}/hooks", PAYLOAD, WEBHOOK_SECRET, 5,
                     allow_private=True, resolve=loopback)
    assert len(receiver.requests) == 1
    with pytest.raises(webhooks.DeliveryError, match="CERTIFICATE_VERIFY_FAILED"):
        webhooks.deliver(f"https://other.test:{receiver.port}/hooks", PAYLOAD, WEBHOOK_SECRET, 5,
                         allow_private=True, resolve=loopback)
    assert len(receiver.requests) == 1


# -- a receiver that answers slowly ---------------------------------------------------------------

@pytest.fixture
def dribbling_receiver():
    """A loopback server that reads the request, then answers one byte every 0.2 s (a whole
    answer would take over 10 s); yields its URL and the count of bytes it managed to send."""
    listener = socket.create_server(("127.0.0.1", 0))
    sent = []

    def serve():
        connection, _ = listener.accept()
        with connection:
            connection.recv(65536)
            for byte in b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX-Slow: " + b"x" * 20 + b"\r\n\r\n":
                try:
                    connection.sendall(bytes([byte]))
                except OSError:
                    return
                sent.append(byte)
                time.sleep(0.2)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/hooks", sent
    listener.close()
    thread.join(15)


def test_a_receiver_dribbling_its_answer_is_given_up_at_the_deadline(dribbling_receiver):
    url, sent = dribbling_receiver
    started = time.monotonic()
    with pytest.raises(webhooks.DeliveryError, match="within 1s"):
        webhooks.deliver(url, PAYLOAD, WEBHOOK_SECRET, 1, allow_private=True)
    elapsed = time.monotonic() - started
    assert 0.9 < elapsed < 1.5, elapsed
    assert 3 <= len(sent) < 20, "the receiver was still answering when deliver gave up"


def test_a_slow_dns_answer_counts_against_the_deadline():
    def slow(host, port):
        time.sleep(3)
        return ["127.0.0.1"]  # refused anyway, should the deadline fail to cut the lookup short

    started = time.monotonic()
    with pytest.raises(webhooks.DeliveryError, match="does not resolve"):
        webhooks.deliver("https://hooks.example.com/hooks", PAYLOAD, WEBHOOK_SECRET, 1, resolve=slow)
    assert time.monotonic() - started < 1.5


def _interface_addresses():
    listing = subprocess.run(["ip", "-j", "address", "show"], capture_output=True, text=True, check=True).stdout
    return [ipaddress.ip_address(a["local"]) for interface in json.loads(listing) for a in interface["addr_info"]
            if not a["local"].startswith("fe80:")]  # link-local needs a scope to route


@pytest.mark.skipif(shutil.which("ip") is None, reason="needs iproute2's ip to list this machine's addresses")
def test_this_machines_own_addresses_are_recognised_without_sending_anything():
    addresses = _interface_addresses()
    assert ipaddress.ip_address("127.0.0.1") in addresses
    assert all(webhooks.is_this_host(address) for address in addresses), addresses
    assert not webhooks.is_this_host(ipaddress.ip_address(PUBLIC))  # a UDP connect() only picks a route


def test_callbacks_and_serves_travel_on_queues_of_their_own():
    from celery_config import NOTIFY_JOB_END, SERVE_LISTS, START_RUNS, make_celery
    from utils.config import Settings

    celery = make_celery(Settings(redis_url="redis://127.0.0.1:6379/13", celery_queue="q"))
    assert celery.amqp.router.route({}, NOTIFY_JOB_END)["queue"].name == "q.callbacks"
    assert celery.amqp.router.route({}, SERVE_LISTS)["queue"].name == "q.lists"
    assert celery.amqp.router.route({}, START_RUNS)["queue"].name == "q"
    assert {queue.name for queue in celery.conf.task_queues} == {"q", "q.callbacks", "q.lists"}
