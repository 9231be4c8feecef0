"""Error reporting and log hygiene: Sentry when `SENTRY_DSN` is set, no secret (the Apify
token, database and Redis passwords) in any log line or Sentry event, and worker log lines
that say which job and batch they are about."""
import contextvars
import inspect
import json
import logging
from urllib.parse import urlsplit

import sentry_sdk
from celery import signals
from sentry_sdk.integrations.celery import CeleryIntegration
from sentry_sdk.integrations.flask import FlaskIntegration

REDACTED = "[redacted]"
_secrets = set()
_base_record_factory = logging.getLogRecordFactory()
_plain_formatter = logging.Formatter()


def init_sentry(settings):
    if settings.sentry_dsn:
        sentry_sdk.init(dsn=settings.sentry_dsn, send_default_pii=False, before_send=_scrub_event,
                        integrations=[FlaskIntegration(), CeleryIntegration()])


# key=value fields before the message, so `grep job_id=<id>` finds a job's whole story.
WORKER_LOG_FORMAT = ("%(asctime)s level=%(levelname)s process=%(processName)s job_id=%(job_id)s "
                     "batch=%(batch)s logger=%(name)s %(message)s")
_task_context = contextvars.ContextVar("task_context", default={})


class TaskContextFilter(logging.Filter):
    """Give every record the running task's `job_id` and `batch` ("-" outside a task)."""

    def filter(self, record):
        context = _task_context.get()
        record.job_id = context.get("job_id", "-")
        record.batch = context.get("batch_index", "-")
        return True


def setup_worker_logging():
    """In the Celery worker: remember each task's job and batch, and log them on every line."""
    signals.task_prerun.connect(_enter_task, weak=False)
    signals.task_postrun.connect(_leave_task, weak=False)
    signals.after_setup_logger.connect(_format_handlers, weak=False)
    signals.after_setup_task_logger.connect(_format_handlers, weak=False)


def _enter_task(task, args, kwargs, **_):
    arguments = inspect.signature(task.run).bind_partial(*args, **kwargs).arguments
    _task_context.set({name: arguments[name] for name in ("job_id", "batch_index") if name in arguments})


def _leave_task(**_):
    _task_context.set({})


def _format_handlers(logger, **_):
    for handler in logger.handlers:
        handler.addFilter(TaskContextFilter())
        handler.setFormatter(logging.Formatter(WORKER_LOG_FORMAT))


def redact_secrets(settings):
    """Replace the settings' secrets in every log record made from now on."""
    passwords = (urlsplit(url).password for url in (settings.database_url, settings.redis_url) if url)
    _secrets.update(secret for secret in (*passwords, settings.apify_token, settings.webhook_signing_secret) if secret)
    logging.setLogRecordFactory(_redacting_record)


def redact(text):
    for secret in _secrets:
        text = text.replace(secret, REDACTED)
    return text


def _redacting_record(*args, **kwargs):
    """A record whose message, traceback and stack are rendered now and redacted. Handlers'
    formatters use a record's `exc_text` when it is set instead of formatting `exc_info` again,
    so an exception's text (and its causes') reaches no handler unredacted."""
    record = _base_record_factory(*args, **kwargs)
    if _secrets:
        record.msg, record.args = redact(record.getMessage()), ()
        if record.exc_info:
            record.exc_text = redact(_plain_formatter.formatException(record.exc_info))
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
    return record


def _scrub_event(event, _hint):
    """Sentry's last look at an event: the same redaction over its serialised text."""
    return json.loads(redact(json.dumps(event, default=str))) if _secrets else event
