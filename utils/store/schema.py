"""The tables, and the statuses of the lifecycles that run through them.

One SQLAlchemy Core schema serves Postgres (production) and SQLite (the embedded default);
the SQL that creates it lives in `migrations/`, one folder per dialect. Each status and each
counter has one module in this package that writes it (see the package's docstring).
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
    """queued -> starting -> running -> finished -> storing -> succeeded | failed (or cancelled);
    see `store.batches` for every transition."""

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


class ListStatus(enum.StrEnum):
    """How a follower list ended, and with it the input account it was scraped for (`pending`
    while it is being scraped). A list is what it is for a fact, never for a count alone."""

    PENDING = "pending"
    COMPLETE = "complete"  # as many followers as asked
    EXHAUSTED = "exhausted"  # fewer, and the actor says there are no more: all there is
    PRIVATE = "private"  # the actor says the account is private: nothing to list
    NOT_FOUND = "not_found"  # the actor says there is no such account
    CUT = "cut"  # fewer, and something other than the list's end stopped it (see CutBy)


class CutBy(enum.StrEnum):
    """What cut a list short."""

    BUDGET = "budget"  # the job's maxCostUsd: the run hit its charge or item cap, or no run could start
    CANCEL = "cancel"  # the job was cancelled
    DELETION = "deletion"  # the job was deleted
    FAILURE = "failure"  # its batch failed (Apify refused, runs failed past the retries)
    QUOTA = "quota"  # the actor's or Apify's allowance ran out
    RUN_CAP = "run_cap"  # the actor stopped at its per-run cap and gave no token to go on


class RunStatus(enum.StrEnum):
    """An Apify run's life in apify_runs (see `store.ledger`)."""

    STARTING = "starting"  # a batch was claimed to start it; its id is not known yet
    RUNNING = "running"
    ENDED = "ended"  # Apify says it ended; what it cost is not read yet
    CHARGED = "charged"  # its usage is in the ledger (perhaps preliminary)
    SETTLED = "settled"  # its final usage is in the ledger
    VOID = "void"  # no run was started after all


ACTIVE_JOB_STATUSES = (JobStatus.QUEUED, JobStatus.PROCESSING)
ENDED_JOB_STATUSES = (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED)
# Batches a task holds under a lease.
HELD = (BatchStatus.STARTING, BatchStatus.STORING)
# Batches on their way: neither waiting to start nor ended.
MOVING = (BatchStatus.STARTING, BatchStatus.RUNNING, BatchStatus.FINISHED, BatchStatus.STORING)
# Runs that hold room at Apify (what the capacity governor counts), and runs not charged yet.
IN_FLIGHT = (RunStatus.STARTING, RunStatus.RUNNING)
UNCHARGED = (RunStatus.STARTING, RunStatus.RUNNING, RunStatus.ENDED)


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
    sa.Column("error_message", sa.Text),
    sa.Column("started_at", UTCDateTime),
    sa.Column("finished_at", UTCDateTime),
    sa.Column("not_before", UTCDateTime),  # a queued batch waits until then (backoff)
    sa.Column("failures", sa.Integer, nullable=False, default=0),  # transient faults so far
    sa.Column("run_checked_at", UTCDateTime),  # when the batch's run was last heard of (finished: to store)
    sa.Column("webhook_token_hash", sa.Text),  # of the token the current attempt's run carries
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
    sa.Column("status", sa.Text, nullable=False, default=ListStatus.PENDING),
    sa.Column("cut_by", sa.Text),  # CutBy, when the status is cut
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
    sa.Column("status", sa.Text, nullable=False, default=ListStatus.PENDING),
    sa.Column("cut_by", sa.Text),  # CutBy, when the status is cut
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
    sa.Column("runs_swept_at", UTCDateTime),  # the account's run list last swept for runs nobody recorded
    sa.Column("updated_at", UTCDateTime),
)

apify_runs = sa.Table(
    "apify_runs", metadata,  # every run a batch may have started, until its cost is final (`store.ledger`)
    sa.Column("id", ID, primary_key=True),
    sa.Column("run_id", sa.Text, unique=True),  # Apify's, once known
    sa.Column("job_id", sa.Uuid(as_uuid=False), nullable=False),  # no foreign key: a run outlives its job
    sa.Column("batch_index", sa.Integer, nullable=False),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("api_key_id", sa.BigInteger),
    sa.Column("status", sa.Text, nullable=False),  # RunStatus
    sa.Column("charge_cap", USD),  # the run's maxTotalChargeUsd
    sa.Column("max_items", sa.Integer),  # the run's maxItems
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime),  # starting: looked for at Apify once this passes unrecorded
    sa.Column("checked_at", UTCDateTime),  # running: when the poller last asked
    sa.Column("ended_at", UTCDateTime),
    sa.Column("run_status", sa.Text),  # Apify's, once it ended
    sa.Column("cost_usd", USD),  # what the ledger holds for it
)

spend_ledger = sa.Table(
    "spend_ledger", metadata,  # append-only: what each run cost, per key (`store.ledger`)
    sa.Column("id", ID, primary_key=True),
    sa.Column("api_key_id", sa.BigInteger),
    sa.Column("job_id", sa.Uuid(as_uuid=False)),
    sa.Column("run_id", sa.Text, nullable=False),
    sa.Column("kind", sa.Text, nullable=False),  # run (its first figure) or settlement (the change to the final one)
    sa.Column("usd", USD, nullable=False),
    sa.Column("recorded_at", UTCDateTime, nullable=False),
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
