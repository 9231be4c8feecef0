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
CERT_CHECKS = ("none", "required")
POOL_MODES = ("transaction", "session", "direct")


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
_PARSERS = {str: str, int: int, float: float, dict: _input_template}


def setting(default, *, minimum=None, maximum=None):
    """A field with bounds that `from_env` enforces."""
    bounds = {key: value for key, value in (("minimum", minimum), ("maximum", maximum)) if value is not None}
    return field(default=default, metadata=bounds)


@dataclass(frozen=True)
class Settings:
    """Typed settings. Field names are the environment variable names, lower-cased; a field's
    type says how its variable is parsed and `setting(...)` gives its bounds."""

    # Storage and messaging. Empty means the embedded default under `instance_path`.
    database_url: str = ""
    redis_url: str = ""
    instance_path: str = str(PROJECT_ROOT / "instance")
    # rediss:// only: check the server's certificate (`required`) or not (`none`: Heroku's Redis,
    # whose certificate is self-signed). An `ssl_cert_reqs` in REDIS_URL wins.
    redis_tls_verify: str = "required"
    # transaction, session or direct; empty = from DATABASE_URL (utils/store.pool_mode).
    database_pool_mode: str = ""
    celery_queue: str = "celery"

    # Apify. `apify_api_url` points the client at the emulator in tests and the demo.
    apify_token: str = ""
    apify_actor_id: str = DEFAULT_ACTOR_ID
    apify_api_url: str = "https://api.apify.com"
    apify_input_template: dict = field(default_factory=lambda: dict(DEFAULT_INPUT_TEMPLATE))
    apify_http_retries: int = setting(2, minimum=0)
    apify_http_retry_delay_ms: int = setting(500, minimum=1)
    apify_run_timeout_seconds: int = setting(3600, minimum=1)
    apify_memory_mbytes: int = setting(1024, minimum=128, maximum=32768)
    # The web dyno's public URL (https://<app>.herokuapp.com): Apify's ad-hoc webhooks say there
    # when a run ends. Unset (local runs), the clock's poller alone finds ended runs.
    public_base_url: str = ""
    # How often the poller asks about each running run: without webhooks, and with them (a safety net).
    apify_poll_seconds: float = setting(1.0, minimum=0.5)
    apify_webhook_poll_seconds: float = setting(10.0, minimum=1)
    # Per-run reads when this few runs are due a poll; more, and one list of the account's runs.
    apify_poll_reads: int = setting(10, minimum=1, maximum=100)

    # The capacity governor (utils/store/capacity.py). 0 = learn from the account.
    apify_max_concurrent_runs: int = setting(0, minimum=0)
    apify_memory_limit_mb: int = setting(0, minimum=0)
    apify_fallback_max_runs: int = setting(25, minimum=1)
    apify_capacity_backoff_seconds: float = setting(60.0, minimum=1)
    apify_limits_refresh_seconds: float = setting(60.0, minimum=5)
    # Apify's usageTotalUsd may be preliminary this long after a run ends; read it again after.
    apify_cost_settle_seconds: float = setting(15.0, minimum=0)
    # How often the clock reads the account's run list for runs of ours nobody recorded (a start
    # whose answer was lost), to abort and charge them.
    apify_orphan_sweep_seconds: float = setting(60.0, minimum=1)

    # The API and the pipeline.
    max_request_bytes: int = setting(10 * 1024 * 1024, minimum=1024)
    batch_size: int = setting(50, minimum=1)
    max_accounts: int = setting(100_000, minimum=1)
    max_total_scrape_count: int = setting(10_000_000, minimum=1)
    write_chunk_size: int = setting(1000, minimum=1, maximum=1000)
    batch_max_retries: int = setting(3, minimum=0)
    retry_backoff_seconds: float = setting(10.0, minimum=0)
    retry_backoff_max_seconds: float = setting(600.0, minimum=0)
    # A task holds a batch under a lease it renews at each chunk; a dead task's batch is free
    # again this long after its last renewal.
    batch_lease_seconds: int = setting(20, minimum=2)
    # A task hands its work on (and re-queues the rest) after this long, so a SIGTERMed worker
    # is done within seconds and no process is held for long.
    task_slice_seconds: float = setting(5.0, minimum=0.5)
    task_time_limit_seconds: int = setting(300, minimum=10)
    broker_visibility_timeout_seconds: int = setting(3600, minimum=60)

    # Upkeep and access. The clock ticks every TICK_SECONDS: reclaims expired leases, polls
    # runs, starts what is due, and republishes what Redis lost (Postgres is the record).
    tick_seconds: float = setting(1.0, minimum=0.5)
    results_ttl_days: float = setting(30, minimum=0)
    # A job reads an account's follower list scraped at most this many days ago instead of
    # paying for a new run (a job's maxAgeDays overrides it; 0: always scrape).
    reuse_max_age_days: float = setting(7, minimum=0)
    # How long a job waits for a follower list another job is scraping before it scrapes the
    # account itself, and how many batches of stored lists are served at once (of every worker).
    reuse_wait_seconds: float = setting(300.0, minimum=0)
    lists_serve_parallel: int = setting(2, minimum=1)
    rate_limit_create: str = "60/minute"
    rate_limit_read: str = "1200/minute"
    rate_limit_unauthenticated: str = "30/minute"  # requests without a valid key, per client address
    # Proxies in front of the web process whose X-Forwarded-For is trusted (Heroku's router: 1).
    proxy_hops: int = setting(0, minimum=0, maximum=5)

    sentry_dsn: str = ""
    # A directory shared by one host's web and worker processes for prometheus-client's
    # multiprocess mode (utils/metrics.py); prometheus-client reads the variable itself too.
    prometheus_multiproc_dir: str = ""
    # The bearer token /metrics wants; unset, /metrics answers only requests from this machine.
    metrics_token: str = ""

    # Spending per key (a key's own limits, set with `flask set-key-limits`, come first): the
    # maxCostUsd a job gets when it names none, the largest one it may name, and what a key's
    # jobs may spend in a calendar month (0: no cap).
    max_cost_usd_default: float = setting(100.0, minimum=0)
    max_cost_usd_limit: float = setting(1000.0, minimum=0)
    monthly_spend_cap_usd: float = setting(0.0, minimum=0)

    # Cost estimates and budgets: what Apify charges for the follower actor.
    apify_price_per_1000_usd: float = setting(0.70, minimum=0)
    apify_run_start_usd: float = setting(0.00005, minimum=0)

    # Job-end callbacks (`callbackUrl`), signed with HMAC-SHA256; unset refuses callbackUrl.
    webhook_signing_secret: str = ""
    webhook_max_retries: int = setting(6, minimum=0, maximum=20)
    webhook_retry_backoff_seconds: float = setting(5.0, minimum=0)
    webhook_timeout_seconds: float = setting(10.0, minimum=0.1)
    # 1 lets callbacks go to loopback and private addresses over plain http (local development
    # and tests only); 0 refuses any URL that is not https to a public address (SSRF).
    webhook_allow_private_addresses: int = setting(0, minimum=0, maximum=1)

    # Server-Sent Events: how often a stream looks at the job, and for how long it stays open.
    sse_poll_seconds: float = setting(1.0, minimum=0.05)
    sse_heartbeat_seconds: float = setting(15.0, minimum=1)
    sse_max_seconds: int = setting(600, minimum=1)
    # Open streams per web process (each holds a thread: keep it below WEB_THREADS), and per key.
    sse_max_streams_per_process: int = setting(4, minimum=1)
    sse_max_streams_per_key: int = setting(2, minimum=1)

    @classmethod
    def from_env(cls, load_dotenv_file=True):
        """Every field from the environment variable of its name in capitals; unset or empty
        keeps the default."""
        if load_dotenv_file:
            load_dotenv(PROJECT_ROOT / ".env")
        defaults = cls()
        settings = cls(**{
            f.name: _env(f.name.upper(), _PARSERS[f.type], getattr(defaults, f.name), **f.metadata)
            for f in fields(cls)
        })
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
        if self.batch_lease_seconds <= self.task_slice_seconds:
            raise ConfigError("BATCH_LEASE_SECONDS must exceed TASK_SLICE_SECONDS, or live batches lose their lease "
                              "between chunks")
        if self.prometheus_multiproc_dir and not Path(self.prometheus_multiproc_dir).is_dir():
            raise ConfigError("PROMETHEUS_MULTIPROC_DIR must be an existing directory (create it before starting)")
        if self.database_url and not self.database_url.startswith(("postgresql", "postgres://", "sqlite")):
            raise ConfigError("DATABASE_URL must be a postgresql:// or sqlite:// URL")
        for name, allowed in (("redis_tls_verify", CERT_CHECKS), ("database_pool_mode", ("", *POOL_MODES))):
            if getattr(self, name) not in allowed:
                raise ConfigError(f"{name.upper()} must be one of: {', '.join(filter(None, allowed))}")
        for name in ("rate_limit_create", "rate_limit_read", "rate_limit_unauthenticated"):
            try:
                parse_many(getattr(self, name))
            except ValueError:
                raise ConfigError(f"{name.upper()} must read like '60/minute' or '10/second;500/hour'") from None
