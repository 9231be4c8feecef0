"""Configuration from the environment, in one place.

Every setting is read from an environment variable (a `.env` file is loaded first
through python-dotenv), parsed to its type, and checked; a missing or malformed value
raises `ConfigError` naming the variable. The web app, the worker and the CLI all
build their `Settings` here.
"""
import json
import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from dotenv import load_dotenv
from limits import parse_many

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_ACTOR_ID = "datadoping/instagram-followers-scraper"
DEFAULT_INPUT_TEMPLATE = {"usernames": "{accounts}", "max_count": "{limit}"}


class ConfigError(ValueError):
    """A setting is missing or has a value that cannot be used."""


def _env(name, kind, default, *, minimum=None, maximum=None):
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    raw = raw.strip()
    try:
        value = kind(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a valid {kind.__name__}") from None
    if minimum is not None and value < minimum:
        raise ConfigError(f"{name}={raw!r} must be at least {minimum}")
    if maximum is not None and value > maximum:
        raise ConfigError(f"{name}={raw!r} must be at most {maximum}")
    return value


def _input_template(raw):
    template = json.loads(raw)
    if not isinstance(template, dict):
        raise ValueError
    return template


_input_template.__name__ = "JSON object"


@dataclass(frozen=True)
class Settings:
    """Typed settings. Field names are the environment variable names, lower-cased."""

    # Storage and messaging. Empty means the embedded default under `instance_path`.
    database_url: str = ""
    redis_url: str = ""
    instance_path: str = str(PROJECT_ROOT / "instance")
    celery_queue: str = "celery"

    # Apify. `apify_api_url` points the client at the emulator in tests and the demo.
    apify_token: str = ""
    apify_actor_id: str = DEFAULT_ACTOR_ID
    apify_api_url: str = "https://api.apify.com"
    apify_input_template: dict = field(default_factory=lambda: dict(DEFAULT_INPUT_TEMPLATE))
    apify_http_retries: int = 2
    apify_http_retry_delay_ms: int = 500
    apify_run_timeout_seconds: int = 3600
    apify_memory_mbytes: int = 1024
    apify_poll_seconds: int = 10

    # The API and the pipeline.
    max_request_bytes: int = 10 * 1024 * 1024
    batch_size: int = 50
    max_accounts: int = 100_000
    max_total_scrape_count: int = 10_000_000
    write_chunk_size: int = 1000
    batch_max_retries: int = 3
    retry_backoff_seconds: float = 10.0
    retry_backoff_max_seconds: float = 600.0
    batch_lease_seconds: int = 300
    task_time_limit_seconds: int = 3 * 3600
    broker_visibility_timeout_seconds: int = 4 * 3600

    # Upkeep and access.
    requeue_stalled_seconds: int = 600
    reconcile_interval_seconds: int = 60
    results_ttl_days: float = 30
    rate_limit_create: str = "60/minute"
    rate_limit_read: str = "1200/minute"

    sentry_dsn: str = ""
    # A directory shared by one host's web and worker processes for prometheus-client's
    # multiprocess mode (utils/metrics.py); prometheus-client reads the variable itself too.
    prometheus_multiproc_dir: str = ""

    # Cost estimates and budgets: what Apify charges for the follower actor.
    apify_price_per_1000_usd: float = 0.70
    apify_run_start_usd: float = 0.00005

    # Job-end callbacks (`callbackUrl`), signed with HMAC-SHA256; unset refuses callbackUrl.
    webhook_signing_secret: str = ""
    webhook_max_retries: int = 6
    webhook_retry_backoff_seconds: float = 5.0
    webhook_timeout_seconds: float = 10.0

    # Server-Sent Events: how often a stream looks at the job, and for how long it stays open.
    sse_poll_seconds: float = 1.0
    sse_heartbeat_seconds: float = 15.0
    sse_max_seconds: int = 600

    @classmethod
    def from_env(cls, load_dotenv_file=True):
        if load_dotenv_file:
            load_dotenv(PROJECT_ROOT / ".env")
        d = cls()
        settings = cls(
            database_url=_env("DATABASE_URL", str, d.database_url),
            redis_url=_env("REDIS_URL", str, d.redis_url),
            instance_path=_env("INSTANCE_PATH", str, d.instance_path),
            celery_queue=_env("CELERY_QUEUE", str, d.celery_queue),
            apify_token=_env("APIFY_TOKEN", str, d.apify_token),
            apify_actor_id=_env("APIFY_ACTOR_ID", str, d.apify_actor_id),
            apify_api_url=_env("APIFY_API_URL", str, d.apify_api_url),
            apify_input_template=_env("APIFY_INPUT_TEMPLATE", _input_template, d.apify_input_template),
            apify_http_retries=_env("APIFY_HTTP_RETRIES", int, d.apify_http_retries, minimum=0),
            apify_http_retry_delay_ms=_env("APIFY_HTTP_RETRY_DELAY_MS", int, d.apify_http_retry_delay_ms, minimum=1),
            apify_run_timeout_seconds=_env("APIFY_RUN_TIMEOUT_SECONDS", int, d.apify_run_timeout_seconds, minimum=1),
            apify_memory_mbytes=_env("APIFY_MEMORY_MBYTES", int, d.apify_memory_mbytes, minimum=128, maximum=32768),
            apify_poll_seconds=_env("APIFY_POLL_SECONDS", int, d.apify_poll_seconds, minimum=1),
            max_request_bytes=_env("MAX_REQUEST_BYTES", int, d.max_request_bytes, minimum=1024),
            batch_size=_env("BATCH_SIZE", int, d.batch_size, minimum=1),
            max_accounts=_env("MAX_ACCOUNTS", int, d.max_accounts, minimum=1),
            max_total_scrape_count=_env("MAX_TOTAL_SCRAPE_COUNT", int, d.max_total_scrape_count, minimum=1),
            write_chunk_size=_env("WRITE_CHUNK_SIZE", int, d.write_chunk_size, minimum=1, maximum=1000),
            batch_max_retries=_env("BATCH_MAX_RETRIES", int, d.batch_max_retries, minimum=0),
            retry_backoff_seconds=_env("RETRY_BACKOFF_SECONDS", float, d.retry_backoff_seconds, minimum=0),
            retry_backoff_max_seconds=_env("RETRY_BACKOFF_MAX_SECONDS", float, d.retry_backoff_max_seconds, minimum=0),
            batch_lease_seconds=_env("BATCH_LEASE_SECONDS", int, d.batch_lease_seconds, minimum=2),
            task_time_limit_seconds=_env("TASK_TIME_LIMIT_SECONDS", int, d.task_time_limit_seconds, minimum=10),
            broker_visibility_timeout_seconds=_env(
                "BROKER_VISIBILITY_TIMEOUT_SECONDS", int, d.broker_visibility_timeout_seconds, minimum=60
            ),
            requeue_stalled_seconds=_env("REQUEUE_STALLED_SECONDS", int, d.requeue_stalled_seconds, minimum=1),
            reconcile_interval_seconds=_env(
                "RECONCILE_INTERVAL_SECONDS", int, d.reconcile_interval_seconds, minimum=1
            ),
            results_ttl_days=_env("RESULTS_TTL_DAYS", float, d.results_ttl_days, minimum=0),
            rate_limit_create=_env("RATE_LIMIT_CREATE", str, d.rate_limit_create),
            rate_limit_read=_env("RATE_LIMIT_READ", str, d.rate_limit_read),
            sentry_dsn=_env("SENTRY_DSN", str, d.sentry_dsn),
            prometheus_multiproc_dir=_env("PROMETHEUS_MULTIPROC_DIR", str, d.prometheus_multiproc_dir),
            apify_price_per_1000_usd=_env("APIFY_PRICE_PER_1000_USD", float, d.apify_price_per_1000_usd, minimum=0),
            apify_run_start_usd=_env("APIFY_RUN_START_USD", float, d.apify_run_start_usd, minimum=0),
            webhook_signing_secret=_env("WEBHOOK_SIGNING_SECRET", str, d.webhook_signing_secret),
            webhook_max_retries=_env("WEBHOOK_MAX_RETRIES", int, d.webhook_max_retries, minimum=0, maximum=20),
            webhook_retry_backoff_seconds=_env(
                "WEBHOOK_RETRY_BACKOFF_SECONDS", float, d.webhook_retry_backoff_seconds, minimum=0
            ),
            webhook_timeout_seconds=_env("WEBHOOK_TIMEOUT_SECONDS", float, d.webhook_timeout_seconds, minimum=0.1),
            sse_poll_seconds=_env("SSE_POLL_SECONDS", float, d.sse_poll_seconds, minimum=0.05),
            sse_heartbeat_seconds=_env("SSE_HEARTBEAT_SECONDS", float, d.sse_heartbeat_seconds, minimum=1),
            sse_max_seconds=_env("SSE_MAX_SECONDS", int, d.sse_max_seconds, minimum=1),
        )
        settings.check()
        return settings

    def with_overrides(self, overrides):
        """A copy with `overrides` (a mapping of field name to value) applied and checked."""
        known = {f.name for f in fields(self)}
        unknown = set(overrides) - known
        if unknown:
            raise ConfigError(f"unknown settings: {', '.join(sorted(unknown))}")
        settings = replace(self, **overrides)
        settings.check()
        return settings

    def check(self):
        """Cross-field rules: a task must end before Redis hands its message to another worker."""
        longest_hold = max(self.task_time_limit_seconds, self.retry_backoff_max_seconds)
        if longest_hold >= self.broker_visibility_timeout_seconds:
            raise ConfigError(
                "BROKER_VISIBILITY_TIMEOUT_SECONDS must exceed TASK_TIME_LIMIT_SECONDS and "
                "RETRY_BACKOFF_MAX_SECONDS, or Redis redelivers running batches"
            )
        if self.batch_lease_seconds < 2 * self.apify_poll_seconds:
            raise ConfigError("BATCH_LEASE_SECONDS must be at least twice APIFY_POLL_SECONDS, or live batches lose "
                              "their lease between heartbeats")
        if self.prometheus_multiproc_dir and not Path(self.prometheus_multiproc_dir).is_dir():
            raise ConfigError("PROMETHEUS_MULTIPROC_DIR must be an existing directory (create it before starting)")
        if self.database_url and not self.database_url.startswith(("postgresql", "postgres://", "sqlite")):
            raise ConfigError("DATABASE_URL must be a postgresql:// or sqlite:// URL")
        for name in ("rate_limit_create", "rate_limit_read"):
            try:
                parse_many(getattr(self, name))
            except ValueError:
                raise ConfigError(f"{name.upper()} must read like '60/minute' or '10/second;500/hour'") from None
