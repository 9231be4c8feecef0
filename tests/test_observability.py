"""Secrets never reach a log line or a Sentry event."""
import io
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


def _handler_output(log_call):
    """What a plain stream handler writes for the records `log_call(logger)` makes."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger = logging.getLogger("followsift.test.handler")
    logger.addHandler(handler)
    try:
        log_call(logger)
    finally:
        logger.removeHandler(handler)
    return stream.getvalue()


def _fail_with_the_token():
    try:
        raise ConnectionError(f"GET https://api.apify.com/v2/acts?token={SETTINGS.apify_token} failed")
    except ConnectionError as exc:
        raise RuntimeError(f"scrape failed for {SETTINGS.database_url}") from exc


def test_tracebacks_lose_the_secrets():
    redact_secrets(SETTINGS)

    def log_exception(logger):
        try:
            _fail_with_the_token()
        except RuntimeError:
            logger.exception("batch failed")

    output = _handler_output(log_exception)
    assert "Traceback (most recent call last)" in output and "ConnectionError" in output
    assert "tok-123" not in output and "db-pw-456" not in output
    assert output.count(REDACTED) == 2


def test_stack_info_loses_the_secrets():
    redact_secrets(SETTINGS)
    # A stack shows each frame's source line, and the next one carries the token in its comment.
    output = _handler_output(lambda logger: logger.warning("where?", stack_info=True))  # apify_api_tok-123
    assert "Stack (most recent call last)" in output and "tok-123" not in output and REDACTED in output
