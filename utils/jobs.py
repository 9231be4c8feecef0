"""The job service: what a job request may be, and creating, cancelling and deleting jobs.

The POST view (`api_async.py`) and `flask scrape` (`cli.py`) both come through here, so a
job is validated, normalised and queued the same way whichever door it came in by. Errors
are domain errors (`JobError` and its kinds); the API maps them to HTTP statuses and the
CLI to messages.
"""
import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, ValidationError

from celery_config import notify_job_end, request_abort, request_serves, request_starts
from utils import actors, costs, store, webhooks
from utils.gender import DEFAULT_MIN_CONFIDENCE
from utils.schemas import status_body
from utils.store.schema import ACTIVE_JOB_STATUSES, JobStatus

USERNAME = re.compile(r"[a-z0-9._]{1,30}")
MAX_ECHOED = 50  # bad usernames named in an error (each cut to 64 characters)
TargetGender = Literal["male", "female", "any"]


class ScrapeRequest(BaseModel):
    """The body of `POST /api/scrape-followers`."""

    model_config = ConfigDict(extra="forbid", strict=True)

    accounts: list[str] = Field(min_length=1, description="Instagram usernames, with or without @")
    targetGender: TargetGender
    totalScrapeCount: int = Field(ge=1, description="Followers to scrape in all, split evenly over the accounts")
    minConfidence: float | None = Field(default=None, ge=0, le=1)
    maxCostUsd: float | None = Field(
        default=None, gt=0, le=1_000_000,
        description="Budget in USD: each Apify run may charge its share, and no run starts once it is spent",
    )
    callbackUrl: HttpUrl | None = Field(
        default=None, description="Where to POST the signed job status when the job ends",
    )
    maxAgeDays: float | None = Field(
        default=None, ge=0, le=3650,
        description="Serve an account from a follower list scraped this many days ago at most, to at least "
                    "the per-account limit, instead of a new Apify run (default REUSE_MAX_AGE_DAYS; 0: always scrape)",
    )


class JobError(Exception):
    """A request the job service refuses; `code` is machine-readable, `details` per field."""

    def __init__(self, code, message, details=None):
        super().__init__(message)
        self.code, self.message, self.details = code, message, details


class InvalidJob(JobError):
    """The job request breaks the schema or a limit."""


class JobNotFound(JobError):
    """No such job for this tenant."""


class JobFinished(JobError):
    """The job already ended, so it cannot be cancelled."""


class OverBudget(JobError):
    """maxCostUsd above what the key may spend on one job."""


class SpendCapReached(JobError):
    """The key's jobs this month would spend more than its monthly cap."""


class QueueUnavailable(JobError):
    """Redis is away; nothing was created."""


def parse_spec(body, settings):
    """Validate and normalise a job request (a dict shaped like the POST body). The account
    count is checked first, so an oversized list costs no validation work."""
    if isinstance(body, dict) and isinstance(body.get("accounts"), list) and len(body["accounts"]) > settings.max_accounts:
        raise InvalidJob("too_many_accounts", f"At most {settings.max_accounts} accounts per job.")
    try:
        spec = ScrapeRequest.model_validate(body)
    except ValidationError as exc:
        # The usernames are checked too, so that one answer lists everything to fix.
        details = [{"field": ".".join(map(str, e["loc"])), "message": e["msg"]} for e in exc.errors()]
        details += _username_details(_split_accounts(_string_accounts(body))[1])
        raise InvalidJob("invalid_request", "The request body does not match the schema.", details) from None
    spec.accounts = _normalise_accounts(spec.accounts)
    if len(spec.accounts) > settings.max_accounts:
        raise InvalidJob("too_many_accounts", f"At most {settings.max_accounts} accounts per job.")
    if spec.totalScrapeCount > settings.max_total_scrape_count:
        raise InvalidJob("invalid_request", f"totalScrapeCount must be at most {settings.max_total_scrape_count}.")
    if spec.callbackUrl is not None:
        _check_callback(str(spec.callbackUrl), settings)
    return spec


def _check_callback(url, settings):
    try:
        webhooks.check_callback_url(url, allow_private=bool(settings.webhook_allow_private_addresses),
                                    resolve=_resolve_now)
    except webhooks.UnsafeCallbackUrl as exc:
        raise InvalidJob("unsafe_callback_url", str(exc), [{"field": "callbackUrl", "message": str(exc)}]) from None
    except _Unresolved:
        pass  # DNS cannot say now; the address is checked again, and pinned, when the callback is sent


class _Unresolved(Exception):
    pass


def _resolve_now(host, port):
    try:
        return webhooks.resolve_host(host, port)
    except OSError as exc:
        raise _Unresolved from exc


def _normalise_accounts(raw):
    """Strip "@", lower-case, check Instagram's rules, drop repeats (first one wins)."""
    accounts, invalid = _split_accounts(raw)
    if invalid:
        raise InvalidJob(
            "invalid_usernames",
            f"{len(invalid)} account(s) are not valid Instagram usernames (1-30 letters, digits, '.' or '_').",
            _username_details(invalid),
        )
    return accounts


def _split_accounts(raw):
    """(the valid usernames, normalised and de-duplicated; the names that break the rules)."""
    accounts, invalid = {}, []
    for name in raw:
        username = name.strip().lstrip("@").lower()
        if USERNAME.fullmatch(username):
            accounts.setdefault(username, None)
        else:
            invalid.append(name)
    return list(accounts), invalid


def _string_accounts(body):
    """The string items of a body's `accounts` list, whatever else is wrong with the body."""
    accounts = body.get("accounts") if isinstance(body, dict) else None
    return [name for name in accounts if isinstance(name, str)] if isinstance(accounts, list) else []


def _username_details(invalid):
    return [{"field": "accounts", "value": name[:64]} for name in invalid[:MAX_ECHOED]]


def submit(engine, celery, settings, spec, api_key_id):
    """Write the job and its batches, commit, and have runs started and stored lists served.

    Returns `{"job_id", "total_batches", "accounts", "per_account_limit", "accounts_reused"}`;
    raises QueueUnavailable (after removing the job) when the queue is unreachable.
    """
    if spec.callbackUrl is not None and not signing_secret(engine, settings, api_key_id):
        raise InvalidJob("callbacks_disabled", "callbackUrl needs a signing secret: the key's own (flask --app app "
                                               "rotate-webhook-secret NAME) or WEBHOOK_SIGNING_SECRET on the server.")
    budget, cap = budget_for(engine, settings, spec, api_key_id)
    per_account_limit = costs.per_account_limit(spec.totalScrapeCount, len(spec.accounts))
    try:
        job_id, total_batches, found = store.work.create_job(
            engine, api_key_id=api_key_id, usernames=spec.accounts, target_gender=spec.targetGender,
            min_confidence=DEFAULT_MIN_CONFIDENCE if spec.minConfidence is None else spec.minConfidence,
            total_scrape_count=spec.totalScrapeCount, per_account_limit=per_account_limit,
            batch_size=batch_size(settings), actor_id=settings.apify_actor_id,
            max_age_days=max_age_days(spec, settings), max_cost_usd=budget,
            callback_url=None if spec.callbackUrl is None else str(spec.callbackUrl), monthly_cap=cap)
    except store.work.CapReached as exc:
        raise SpendCapReached("monthly_cap_reached", f"This key's jobs this month would spend more than its "
                                                     f"{cap:g} USD cap ({exc.committed:.2f} USD committed).") from None
    try:
        if found.scrape:
            request_starts(celery)
        if found.reused:
            request_serves(celery)
    except Exception as exc:  # kombu raises several types; the job must not stay behind.
        store.work.delete_job(engine, job_id)
        raise QueueUnavailable("queue_unavailable", "The job queue is unavailable; try again shortly.") from exc
    return {"job_id": job_id, "total_batches": total_batches, "accounts": len(spec.accounts),
            "per_account_limit": per_account_limit, "accounts_reused": len(found.reused)}


def estimate(engine, settings, spec, api_key_id):
    """What the job `spec` would scrape and cost (`costs.estimate`), over the accounts no
    stored list serves, and what those lists would save."""
    budget, _ = budget_for(engine, settings, spec, api_key_id)
    limit = costs.per_account_limit(spec.totalScrapeCount, len(spec.accounts))
    found, followers = store.lists.preview(engine, spec.accounts, limit, settings.apify_actor_id,
                                           max_age_days(spec, settings))
    figures = costs.estimate(len(found.scrape), limit, budget, settings, batch_size(settings))
    return {**figures, "accounts": len(spec.accounts), "per_account_limit": limit,
            "reuse": costs.saved(len(found.reused), followers, settings, batch_size(settings))}


def max_age_days(spec, settings):
    """How old a follower list a job may read: maxAgeDays as asked, else REUSE_MAX_AGE_DAYS."""
    return settings.reuse_max_age_days if spec.maxAgeDays is None else spec.maxAgeDays


def budget_for(engine, settings, spec, api_key_id):
    """(the job's maxCostUsd, the key's monthly cap or None): maxCostUsd as asked, or the key's
    default; OverBudget above the key's maximum. The cap is checked when the job is written
    (`store.work.create_job`), against the key's ledger, in one step with the insert."""
    default, limit, cap = (own if own is not None else server for own, server in zip(
        store.keys.spending_limits(engine, api_key_id),
        (settings.max_cost_usd_default, settings.max_cost_usd_limit, settings.monthly_spend_cap_usd)))
    budget = spec.maxCostUsd if spec.maxCostUsd is not None else (float(default) or None)
    if budget is not None and limit and budget > float(limit):
        raise OverBudget("budget_over_limit", f"maxCostUsd may be at most {float(limit):g} USD for this key.")
    return budget, (float(cap) if cap and api_key_id is not None else None)


def signing_secret(engine, settings, api_key_id):
    """What signs a job's callbacks: its key's own secret, else the server's."""
    return store.keys.webhook_secret_of(engine, api_key_id) or settings.webhook_signing_secret


def batch_size(settings):
    """Accounts per batch (one Apify run): BATCH_SIZE, or 1 for an actor whose rows do not say
    whose follower they are, so that every follower's source account is exact."""
    return actors.adapter_for(settings).accounts_per_run or settings.batch_size


def find(engine, job_id, api_key_id):
    """The tenant's job, or JobNotFound."""
    job = store.jobs.get_job(engine, job_id, api_key_id)
    if job is None:
        raise JobNotFound("job_not_found", f"No job with id {job_id!r}.")
    return job


def statuses(engine, settings, found):
    """The status bodies of job rows, with their batches by status and the account's state."""
    job_ids = [job["job_id"] for job in found]
    counts = store.batches.batch_counts(engine, job_ids)
    summaries = store.accounts.summaries(engine, job_ids)
    waiting = any(c.get(store.schema.BatchStatus.QUEUED) for c in counts.values())
    full = waiting and store.capacity.snapshot(engine, settings).free == 0
    bodies = []
    for job in found:
        summary = summaries.get(job["job_id"]) or store.accounts.Summary()
        reuse = costs.saved(summary.reused, summary.reused_followers, settings, batch_size(settings))
        bodies.append(status_body(job, counts.get(job["job_id"]), full, summary.by_status, reuse))
    return bodies


def cancel(engine, celery, job_id, api_key_id, on_queue_error):
    """Stop the tenant's job (idempotent): batches not started never call Apify; running runs
    are aborted. Returns the job; JobFinished when it had already ended otherwise."""
    job = find(engine, job_id, api_key_id)
    running = None
    if job["status"] in ACTIVE_JOB_STATUSES:
        running = store.work.stop_job(engine, job["job_id"], JobStatus.CANCELLED, "Cancelled on request.")
    if running is not None:
        _follow_up(on_queue_error, f"the callback of job {job['job_id']}", notify_job_end, celery, job["job_id"])
    if running:
        _follow_up(on_queue_error, f"the abort of {len(running)} Apify runs", request_abort, celery, running)
    job = find(engine, job_id, api_key_id)
    if job["status"] != JobStatus.CANCELLED:
        raise JobFinished("job_finished", f"The job already ended {job['status']}.")
    return job


def delete(engine, celery, job_id, api_key_id, on_queue_error):
    """Delete the tenant's job, its batches and its results, and abort its Apify runs (what they
    cost stays on the key's ledger). False when it was gone already (a concurrent delete)."""
    job = find(engine, job_id, api_key_id)
    running = store.work.delete_job(engine, job["job_id"])
    if running:  # unaborted, the clock aborts them; they end on their own anyway, capped by their item limits
        _follow_up(on_queue_error, f"the abort of {len(running)} Apify runs", request_abort, celery, running)
    return running is not None


def forget_key(engine, celery, api_key_id, on_queue_error):
    """Delete everything the key caused to be stored: each of its jobs (as `delete`), then the
    follower lists they scraped. Returns `{"jobs", "follower_lists"}` this call deleted (a
    concurrent call counts what it deleted itself). The key's ledger stays: it is what was spent."""
    deleted = 0
    for job_id in store.jobs.job_ids_of(engine, api_key_id):
        try:
            deleted += delete(engine, celery, job_id, api_key_id, on_queue_error)
        except JobNotFound:
            pass  # deleted meanwhile
    return {"jobs": deleted, "follower_lists": store.work.forget_lists(engine, api_key_id)}


def _follow_up(on_queue_error, what, send, *args):
    """Queue a message that follows a change already committed; the change stands if Redis is away."""
    try:
        send(*args)
    except Exception as exc:  # kombu raises several types
        on_queue_error(f"could not queue {what}: {type(exc).__name__}")
