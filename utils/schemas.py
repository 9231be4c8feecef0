"""The JSON the API answers with, as pydantic models.

The OpenAPI document (`api_docs.py`) is generated from these and from the request models
in `utils/jobs.py`, so the document cannot drift from what is validated and sent. The job
status body is built here, not in the web layer, because the worker sends the same body
to a job's `callbackUrl` when the job ends.
"""
from typing import Literal

from pydantic import BaseModel, Field

from utils.store.schema import BatchStatus as Batch, CutBy, JobStatus as Status, ListStatus as AccountState

# Inlined as an enum of strings in the OpenAPI document (one source: the store's JobStatus enum).
JobState = Literal[tuple(Status)]


class ErrorDetail(BaseModel):
    code: str = Field(description="Machine-readable, e.g. invalid_request, job_not_found")
    message: str
    details: list[dict] | None = Field(default=None, description="Per-field problems, when there are any")


class ErrorResponse(BaseModel):
    """Every 4xx and 5xx answer."""

    error: ErrorDetail


class JobCreated(BaseModel):
    job_id: str
    status: Literal[Status.QUEUED.value]
    status_url: str
    results_url: str
    total_batches: int
    accounts: int
    per_account_limit: int
    accounts_reused: int = Field(description="Accounts served from follower lists already stored or being "
                                             "scraped (see maxAgeDays), without an Apify run of this job's")


class Reuse(BaseModel):
    """What follower lists scraped before (or for another job) saved this job."""

    accounts: int = Field(description="Input accounts served from a stored list")
    followers: int = Field(description="Followers those lists brought")
    runs_saved: int = Field(description="Apify runs their batches would have started")
    usd_saved: float = Field(description="Those runs' start fees plus the followers' price, at the configured prices")


class GenderBreakdown(BaseModel):
    male: int
    female: int
    unknown: int


class JobStatus(BaseModel):
    """`GET /api/job-status/<id>`, each Server-Sent Event, and the callback's body."""

    job_id: str
    status: JobState
    progress: float = Field(ge=0, le=100)
    profiles_scraped: int
    profiles_kept: int
    total_batches: int
    batches_done: int
    batches_failed: int
    batches_waiting: int = Field(description="Batches not started yet")
    batches_running: int = Field(description="Batches whose Apify run is starting or running")
    batches_storing: int = Field(description="Batches whose run ended, being stored")
    accounts_by_status: dict[str, int] = Field(
        description="Input accounts by how their lists ended: pending, complete (as many as asked), exhausted "
                    "(fewer, and the actor says there are no more), private, not_found, cut (fewer, and something "
                    "else stopped the list: see each account's cut_by); GET /api/jobs/<id>/accounts pages "
                    "through them")
    waiting_for_capacity: bool = Field(
        description="Batches wait because the Apify account runs as many runs as it admits (not a stall)")
    reuse: Reuse
    gender_breakdown: GenderBreakdown
    target_gender: Literal["male", "female", "any"]
    min_confidence: float
    accounts: int
    per_account_limit: int
    cost_usd: float = Field(description="What the job's Apify runs were charged so far, in USD (failed, aborted "
                                        "and retried runs included; a figure read just after a run ended is "
                                        "corrected once Apify's is final)")
    max_cost_usd: float | None = Field(description="The job's budget (maxCostUsd), if it has one")
    budget_exhausted: bool = Field(description="The budget stopped a run short, or left batches unrun")
    error_message: str | None
    created_at: str | None
    updated_at: str | None
    completed_at: str | None


class JobList(BaseModel):
    jobs: list[JobStatus] = Field(description="The key's jobs, newest first")
    limit: int
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next page; null on the last")


class Profile(BaseModel):
    profile_id: str
    username: str
    full_name: str
    gender: Literal["male", "female", "unknown"]
    gender_confidence: float
    is_private: bool | None
    is_verified: bool | None
    profile_pic_url: str | None
    source_accounts: list[str]


class ResultsPage(BaseModel):
    profiles: list[Profile]
    total: int
    page: int | None = Field(description="The page asked for; null when paging by cursor")
    limit: int
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next page; null on the last")
    status: JobState


class AccountResult(BaseModel):
    account: str
    status: Literal[tuple(AccountState)] = Field(description="How the account's list ended (see JobStatus)")
    cut_by: Literal[tuple(CutBy)] | None = Field(
        description="What cut the list short, when status is cut: budget (the job's maxCostUsd), cancel, deletion "
                    "(of the job scraping it), failure (Apify refused, or the runs failed past the retries), quota "
                    "(an allowance ran out), run_cap (the actor's per-run cap, with no way to go on)")
    reason: str | None = Field(description="Why, in words: what the actor or Apify said, or what cut the list")
    reused: bool = Field(description="Served from a follower list scraped before or for another job")
    requested: int
    scraped: int
    kept: int = Field(description="Followers of the target gender found under this account")
    gender_breakdown: GenderBreakdown = Field(description="Of everyone scraped under this account")


class AccountsPage(BaseModel):
    accounts: list[AccountResult] = Field(description="By account name")
    limit: int
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next page; null on the last")


class SharedFollowers(BaseModel):
    a: str
    b: str
    shared: int


class Overlap(BaseModel):
    """`GET /api/jobs/<id>/overlap`, over the job's kept followers."""

    accounts: list[str] = Field(description="The job's largest accounts, most followers scraped first")
    shared: list[SharedFollowers] = Field(description="Each pair, with the kept followers found under both")
    unique: dict[str, int] = Field(description="Per account, kept followers found under no other input account")


class JobCancelled(BaseModel):
    job_id: str
    status: Literal[Status.CANCELLED.value]


class DataDeleted(BaseModel):
    """`DELETE /api/data`: what the key's deletion removed."""

    jobs: int = Field(description="The key's jobs, with their batches, accounts and results (what their runs cost "
                                  "stays on the key's ledger)")
    follower_lists: int = Field(description="Follower lists its jobs scraped (other keys' jobs keep the "
                                            "results they already took from them)")


class Estimate(BaseModel):
    """`POST /api/estimate`: what a job would cost, without creating it."""

    accounts: int
    per_account_limit: int
    batches: int = Field(description="Apify runs the job starts (one per batch)")
    max_followers: int = Field(description="Followers the runs may return at most: per_account_limit x accounts")
    expected_followers: int = Field(description="max_followers, cut to what maxCostUsd affords")
    expected_cost_usd: float = Field(description="Run start fees plus the price of expected_followers")
    max_cost_usd: float | None
    price_per_1000_usd: float
    run_start_usd: float
    reuse: Reuse = Field(description="Accounts a stored list (or one being scraped) would serve; they are left "
                                     "out of the batches, followers and cost above")


def iso(value):
    return value.isoformat().replace("+00:00", "Z") if value else None


def status_body(job, batch_counts=None, account_full=False, accounts_by_status=None, reuse=None):
    """A job row as the API shows it, with its batches by status (`store.batches.batch_counts`),
    whether the Apify account is full now, its input accounts by how their lists ended, and
    what reused lists saved (`costs.saved`)."""
    done = job["batches_done"]
    counts = batch_counts or {}
    waiting = counts.get(Batch.QUEUED, 0)
    progress = 100.0 if job["status"] == Status.COMPLETED else round(100 * done / job["total_batches"], 1)
    return {
        "job_id": job["job_id"],
        "status": job["status"],
        "progress": progress,
        "profiles_scraped": job["profiles_scraped"],
        "profiles_kept": job["profiles_kept"],
        "total_batches": job["total_batches"],
        "batches_done": done,
        "batches_failed": job["batches_failed"],
        "batches_waiting": waiting,
        "batches_running": counts.get(Batch.STARTING, 0) + counts.get(Batch.RUNNING, 0),
        "batches_storing": counts.get(Batch.FINISHED, 0) + counts.get(Batch.STORING, 0),
        "waiting_for_capacity": bool(waiting and account_full),
        "reuse": reuse or {"accounts": 0, "followers": 0, "runs_saved": 0, "usd_saved": 0.0},
        "accounts_by_status": {status.value: (accounts_by_status or {}).get(status, 0) for status in AccountState},
        "gender_breakdown": {"male": job["male_count"], "female": job["female_count"],
                             "unknown": job["unknown_count"]},
        "target_gender": job["target_gender"],
        "min_confidence": job["min_confidence"],
        "accounts": job["accounts_count"],
        "per_account_limit": job["per_account_limit"],
        "cost_usd": round(float(job["cost_usd"] or 0), 6),
        "max_cost_usd": None if job["max_cost_usd"] is None else float(job["max_cost_usd"]),
        "budget_exhausted": bool(job["budget_exhausted"]),
        "error_message": job["error_message"],
        "created_at": iso(job["created_at"]),
        "updated_at": iso(job["updated_at"]),
        "completed_at": iso(job["completed_at"]),
    }
