"""Error reporting and log hygiene: Sentry when `SENTRY_DSN` is set, and no secret (the
Apify token, database and Redis passwords) in any log line or Sentry event."""
import json
import logging
from urllib.parse import urlsplit

import sentry_sdk

REDACTED = "[redacted]"
_secrets = set()
_base_record_factory = logging.getLogRecordFactory()


def init_sentry(settings):
    if settings.sentry_dsn:
        # The Flask and Celery integrations switch themselves on when those packages load.
        sentry_sdk.init(dsn=settings.sentry_dsn, send_default_pii=False, before_send=_scrub_event)


def redact_secrets(settings):
    """Replace the settings' secrets in every log record made from now on."""
    passwords = (urlsplit(url).password for url in (settings.database_url, settings.redis_url) if url)
    _secrets.update(secret for secret in (*passwords, settings.apify_token) if secret)
    logging.setLogRecordFactory(_redacting_record)


def redact(text):
    for secret in _secrets:
        text = text.replace(secret, REDACTED)
    return text


def _redacting_record(*args, **kwargs):
    record = _base_record_factory(*args, **kwargs)
    if _secrets:
        record.msg, record.args = redact(record.getMessage()), ()
    return record


def _scrub_event(event, _hint):
    """Sentry's last look at an event: the same redaction over its serialised text."""
    return json.loads(redact(json.dumps(event, default=str))) if _secrets else event
