"""Secrets never reach a log line or a Sentry event."""
import logging

from utils.config import Settings
from utils.observability import REDACTED, _scrub_event, redact_secrets

SETTINGS = Settings(apify_token="apify_api_tok-123", database_url="postgresql://app:db-pw-456@db.example/x",
                    redis_url="redis://:redis-pw-789@cache.example:6379/0")


def test_log_records_lose_the_secrets(caplog):
    redact_secrets(SETTINGS)
    logging.getLogger("followsift.test").warning("calling %s with %s via %s", SETTINGS.apify_token,
                                                 SETTINGS.database_url, SETTINGS.redis_url)
    assert "tok-123" not in caplog.text and "db-pw-456" not in caplog.text and "redis-pw-789" not in caplog.text
    assert caplog.text.count(REDACTED) == 3


def test_sentry_events_lose_the_secrets():
    redact_secrets(SETTINGS)
    event = {"exception": {"values": [{"value": f"connect to {SETTINGS.database_url} failed"}]},
             "extra": {"token": SETTINGS.apify_token}}
    scrubbed = _scrub_event(event, None)
    assert "db-pw-456" not in str(scrubbed) and "tok-123" not in str(scrubbed)
    assert scrubbed["extra"]["token"] == REDACTED
