"""Redis over TLS (rediss://), as Heroku's Redis serves it: a redis-server of the module's own
listening only on a TLS port with a self-signed certificate the test generates. A job runs
end to end through it (the API and its rate limiter, a Celery worker and the clock, /readyz and
/metrics' queue depth), on a database of its own; and `REDIS_TLS_VERIFY=required` refuses the
certificate until the client is told to trust it.
"""
import ssl

import pytest

from api_async import limiter
from app import create_app
from celery_config import broker_url, redis_ssl
from utils.config import ConfigError, Settings

from conftest import check_job, submit, wait_for_job
from stack import Stack, ThrowawayRedis, TlsRedis, throwaway_database


@pytest.fixture(scope="module")
def tls_redis():
    with TlsRedis() as server:
        yield server


@pytest.fixture(scope="module")
def tls_db():
    with throwaway_database("followsift_tls") as url:
        yield url


@pytest.mark.parametrize("query, verify, expected", [
    ("", "none", ssl.CERT_NONE),
    ("", "required", ssl.CERT_REQUIRED),
    ("?ssl_cert_reqs=CERT_NONE", "required", ssl.CERT_NONE),  # Celery's spelling, as Heroku users write it
    ("?ssl_cert_reqs=required&socket_timeout=5", "none", ssl.CERT_REQUIRED),  # redis-py's
])
def test_the_url_or_the_setting_says_how_the_certificate_is_checked(query, verify, expected):
    settings = Settings(redis_url=f"rediss://:secret@redis.example:6380/0{query}", redis_tls_verify=verify)
    assert redis_ssl(settings) == {"ssl_cert_reqs": expected}
    rest = "?socket_timeout=5" if "socket_timeout" in query else ""
    assert broker_url(settings) == f"rediss://:secret@redis.example:6380/0{rest}"


def test_plain_redis_has_no_tls_options_and_bad_values_are_refused():
    assert redis_ssl(Settings(redis_url="redis://127.0.0.1:6379/0")) is None
    with pytest.raises(ConfigError, match="ssl_cert_reqs"):
        redis_ssl(Settings(redis_url="rediss://redis.example:6380/0?ssl_cert_reqs=maybe"))
    with pytest.raises(ConfigError, match="REDIS_TLS_VERIFY"):
        Settings().with_overrides({"redis_tls_verify": "CERT_NONE"})


def _readiness(tls_db, tls_redis, verify):
    app = create_app({"database_url": tls_db, "redis_url": tls_redis.url, "redis_tls_verify": verify})
    response = app.test_client().get("/readyz")
    return response.status_code, response.get_json()["checks"]["redis"]


def test_required_verification_refuses_a_self_signed_certificate_until_it_is_trusted(
        tls_db, tls_redis, monkeypatch):
    assert _readiness(tls_db, tls_redis, "required") == (503, "unreachable")
    assert _readiness(tls_db, tls_redis, "none") == (200, "ok")
    monkeypatch.setenv("SSL_CERT_FILE", str(tls_redis.cert))  # OpenSSL's default trust store, now ours
    assert _readiness(tls_db, tls_redis, "required") == (200, "ok")


@pytest.fixture
def tls_stack(tls_db, tls_redis, service_settings, tmp_path):
    """The app, a worker and the clock on the TLS Redis, certificates unchecked as on Heroku."""
    stack = Stack(tls_db, tls_redis.url, redis_tls_verify="none")
    limiter.init_app(stack.app)  # the limiter is one object per process: onto this app's storage
    with stack.worker_and_clock({**service_settings, "REDIS_TLS_VERIFY": "none"}, tmp_path):
        yield stack
    stack.close()


def test_a_job_runs_end_to_end_over_tls(tls_stack, tls_redis, emulator):
    emulator.configure(run_duration_s=1)
    client = tls_stack.client
    assert client.get("/readyz").get_json()["checks"] == {"database": "ok", "redis": "ok"}
    accounts = [f"tls{i}" for i in range(120)]
    job_id = submit(client, accounts, total=120 * 10)["job_id"]
    status = wait_for_job(client, job_id, timeout=120)
    assert (status["status"], status["batches_done"], status["batches_failed"]) == ("completed", 3, 0), status
    check_job(client, job_id, accounts, 10, "any")
    assert tls_redis.client.keys("LIMITS*"), "the rate limiter counts in the TLS Redis"
    assert b'followsift_queue_depth{queue="' in client.get("/metrics").data


def test_an_app_on_plain_redis_after_one_on_tls_keeps_its_rate_limiter(tls_db, tls_redis):
    """flask-limiter has one limiter per process and keeps the storage options of every app it
    was given: a TLS app's certificate check must not reach the next app's plain Redis."""
    Stack(tls_db, tls_redis.url, redis_tls_verify="none").close()
    with ThrowawayRedis() as plain:
        stack = Stack(tls_db, plain.url)
        try:
            assert stack.client.get("/api/jobs").status_code == 200
            assert plain.client.keys("LIMITS*")
        finally:
            stack.close()
