"""The tables, and the statuses a job and a batch go through.

One SQLAlchemy Core schema serves Postgres (production) and SQLite (the embedded default);
the SQL that creates it lives in `migrations/`, one folder per dialect. Each table has one
owning module in this package: `keys` (api_keys), `jobs` (scrape_jobs), `batches`
(scrape_batches), `results` (scrape_results), `callbacks` (the callback columns of scrape_jobs).
"""
import enum
from datetime import datetime, timezone

import sqlalchemy as sa


class JobStatus(enum.StrEnum):
    QUEUED = "queued"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


class BatchStatus(enum.StrEnum):
    """queued -> starting -> running -> finished -> storing -> succeeded | failed (or cancelled).

    A task holds a batch (under a lease) only while `starting` (it asks Apify for a run) or
    `storing` (it streams the run's dataset into Postgres); while `running` the batch waits at
    Apify and no task holds it; `finished` means Apify said the run ended and it waits to be stored.
    """

    QUEUED = "queued"
    STARTING = "starting"
    RUNNING = "running"
    FINISHED = "finished"
    STORING = "storing"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


class BatchSource(enum.StrEnum):
    """Where a batch's followers come from."""

    APIFY = "apify"  # runs of the actor
    LISTS = "lists"  # follower lists already stored (or being scraped for another job)


class AccountStatus(enum.StrEnum):
    """How an input account's list ended (`pending` while it is being scraped)."""

    PENDING = "pending"
    COMPLETE = "complete"  # as many followers as asked
    SHORT = "short"  # fewer, and the actor says there are no more
    CAPPED = "capped"  # the actor stopped at its per-run cap and cannot go on
    PRIVATE = "private"
    NOT_FOUND = "not_found"
    QUOTA = "quota"  # the actor's or Apify's allowance ran out
    FAILED = "failed"


ACTIVE_JOB_STATUSES = (JobStatus.QUEUED, JobStatus.PROCESSING)
ENDED_JOB_STATUSES = (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED)
# Batches holding one of the Apify account's runs: what the capacity governor counts.
IN_FLIGHT = (BatchStatus.STARTING, BatchStatus.RUNNING)
# Batches no task holds, waiting to start, at Apify or to be stored: what stopping a job cancels at once.
UNHELD = (BatchStatus.QUEUED, BatchStatus.RUNNING, BatchStatus.FINISHED)
# Batches on their way: neither waiting to start nor ended.
MOVING = (BatchStatus.STARTING, BatchStatus.RUNNING, BatchStatus.FINISHED, BatchStatus.STORING)


def utcnow():
    return datetime.now(timezone.utc)


class UTCDateTime(sa.TypeDecorator):
    """Aware UTC datetimes in and out, also on SQLite (which stores them naive)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value


# Money as numeric in the database, float in Python (SQLite has no decimal type).
USD = sa.Numeric(14, 6, asdecimal=False)
ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")

metadata = sa.MetaData()

api_keys = sa.Table(
    "api_keys", metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("key_hash", sa.Text, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("revoked_at", UTCDateTime),
    sa.Column("webhook_secret", sa.Text),  # signs this key's job-end callbacks (WEBHOOK_SIGNING_SECRET if unset)
    # Spending limits (null: the server's MAX_COST_USD_DEFAULT, MAX_COST_USD_LIMIT, MONTHLY_SPEND_CAP_USD).
    sa.Column("default_max_cost_usd", USD),
    sa.Column("max_cost_usd_limit", USD),
    sa.Column("monthly_cap_usd", USD),
)

jobs = sa.Table(
    "scrape_jobs", metadata,
    sa.Column("job_id", sa.Uuid(as_uuid=False), primary_key=True),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("target_gender", sa.Text, nullable=False),
    sa.Column("min_confidence", sa.Float, nullable=False),
    sa.Column("accounts_count", sa.Integer, nullable=False),
    sa.Column("per_account_limit", sa.Integer, nullable=False),
    sa.Column("total_scrape_count", sa.BigInteger, nullable=False),
    sa.Column("total_batches", sa.Integer, nullable=False),
    sa.Column("batches_done", sa.Integer, nullable=False, default=0),
    sa.Column("batches_failed", sa.Integer, nullable=False, default=0),
    sa.Column("profiles_scraped", sa.BigInteger, nullable=False, default=0),
    sa.Column("profiles_kept", sa.BigInteger, nullable=False, default=0),
    sa.Column("male_count", sa.BigInteger, nullable=False, default=0),
    sa.Column("female_count", sa.BigInteger, nullable=False, default=0),
    sa.Column("unknown_count", sa.BigInteger, nullable=False, default=0),
    sa.Column("error_message", sa.Text),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("completed_at", UTCDateTime),
    sa.Column("api_key_id", sa.BigInteger, sa.ForeignKey("api_keys.id")),
    sa.Column("max_cost_usd", USD),
    sa.Column("cost_usd", USD, nullable=False, default=0),
    sa.Column("budget_exhausted", sa.Boolean, nullable=False, default=False),
    sa.Column("callback_url", sa.Text),
    sa.Column("callback_delivered_at", UTCDateTime),
    sa.Column("callback_error", sa.Text),
    sa.Column("callback_attempts", sa.Integer, nullable=False, default=0),
    sa.Column("callback_checked_at", UTCDateTime),
)

batches = sa.Table(
    "scrape_batches", metadata,
    sa.Column("job_id", sa.Uuid(as_uuid=False), sa.ForeignKey("scrape_jobs.job_id"), primary_key=True),
    sa.Column("batch_index", sa.Integer, primary_key=True),
    sa.Column("accounts", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False, default=BatchStatus.QUEUED),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("lease_expires_at", UTCDateTime),
    sa.Column("apify_run_id", sa.Text),
    sa.Column("profiles_scraped", sa.Integer, nullable=False, default=0),
    sa.Column("cost_usd", USD, nullable=False, default=0),
    sa.Column("error_message", sa.Text),
    sa.Column("started_at", UTCDateTime),
    sa.Column("finished_at", UTCDateTime),
    sa.Column("not_before", UTCDateTime),  # a queued batch waits until then (backoff)
    sa.Column("failures", sa.Integer, nullable=False, default=0),  # transient faults so far
    sa.Column("run_status", sa.Text),  # Apify's status of the run once it ended
    sa.Column("run_started_at", UTCDateTime),
    sa.Column("run_checked_at", UTCDateTime),  # when the poller last asked Apify
    sa.Column("run_cost_usd", USD, nullable=False, default=0),  # the last run's usage as recorded
    sa.Column("cost_settled", sa.Boolean, nullable=False, default=False),
    sa.Column("webhook_token_hash", sa.Text),
    sa.Column("items_read", sa.Integer, nullable=False, default=0),  # dataset offset stored so far
    sa.Column("male_count", sa.Integer, nullable=False, default=0),
    sa.Column("female_count", sa.Integer, nullable=False, default=0),
    sa.Column("unknown_count", sa.Integer, nullable=False, default=0),
    sa.Column("run_accounts", sa.Text),  # JSON list: the accounts of the current run
    sa.Column("source", sa.Text, nullable=False, default="apify"),  # BatchSource
)

accounts = sa.Table(
    "scrape_accounts", metadata,
    sa.Column("job_id", sa.Uuid(as_uuid=False), sa.ForeignKey("scrape_jobs.job_id"), primary_key=True),
    sa.Column("account", sa.Text, primary_key=True),
    sa.Column("batch_index", sa.Integer, nullable=False),
    sa.Column("requested", sa.Integer, nullable=False),
    sa.Column("scraped", sa.Integer, nullable=False, default=0),
    sa.Column("kept", sa.Integer, nullable=False, default=0),
    sa.Column("male_count", sa.Integer, nullable=False, default=0),
    sa.Column("female_count", sa.Integer, nullable=False, default=0),
    sa.Column("unknown_count", sa.Integer, nullable=False, default=0),
    sa.Column("status", sa.Text, nullable=False, default=AccountStatus.PENDING),
    sa.Column("reason", sa.Text),
    sa.Column("continuation", sa.Text),  # the actor's token or cursor to go on from
    sa.Column("runs", sa.Integer, nullable=False, default=0),
    sa.Column("list_id", ID),  # the follower list its followers are read from (no foreign key: see 0007)
    sa.Column("reused", sa.Boolean, nullable=False, default=False),  # a list this job did not scrape
)

follower_lists = sa.Table(
    "follower_lists", metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("account", sa.Text, nullable=False),
    sa.Column("actor_id", sa.Text, nullable=False),
    sa.Column("requested", sa.Integer, nullable=False),
    sa.Column("scraped", sa.Integer, nullable=False, default=0),
    sa.Column("status", sa.Text, nullable=False, default=AccountStatus.PENDING),
    sa.Column("reason", sa.Text),
    sa.Column("job_id", sa.Uuid(as_uuid=False)),  # the job whose runs scrape it (the list outlives it)
    sa.Column("api_key_id", sa.BigInteger),  # whose job caused it to be stored
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("ended_at", UTCDateTime),
)

list_pages = sa.Table(
    "list_pages", metadata,  # a stored chunk's followers of one list (see `store.lists`)
    sa.Column("list_id", ID, sa.ForeignKey("follower_lists.id"), primary_key=True),
    sa.Column("first", sa.Integer, primary_key=True),  # the position in the list of its first follower
    sa.Column("followers", sa.Integer, nullable=False),
    sa.Column("rows", sa.Text, nullable=False),  # JSON: [[profile_id, username, full_name, gender, ...], ...]
)

apify_capacity = sa.Table(
    "apify_capacity", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("account_cap", sa.Integer),  # learned from the account's limits
    sa.Column("lowered_cap", sa.Integer),  # after Apify refused a start, until lowered_until
    sa.Column("lowered_until", UTCDateTime),
    sa.Column("limits_checked_at", UTCDateTime),
    sa.Column("updated_at", UTCDateTime),
)

results = sa.Table(
    "scrape_results", metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("job_id", sa.Uuid(as_uuid=False), sa.ForeignKey("scrape_jobs.job_id"), nullable=False),
    sa.Column("profile_id", sa.Text, nullable=False),
    sa.Column("username", sa.Text, nullable=False),
    sa.Column("full_name", sa.Text, nullable=False),
    sa.Column("gender", sa.Text, nullable=False),
    sa.Column("gender_confidence", sa.Float, nullable=False),
    sa.Column("is_private", sa.Boolean),
    sa.Column("is_verified", sa.Boolean),
    sa.Column("profile_pic_url", sa.Text),
    sa.Column("source_accounts", sa.Text, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
)
