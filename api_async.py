"""The asynchronous job API: submit a scrape job, watch it, page through its results.

Views validate and delegate: the job is written to the database and committed, then a
single dispatch message goes to Redis; the worker does the rest.
"""
import hashlib
import re
from typing import Literal

from flask import Blueprint, Response, current_app, g, request, url_for
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from pydantic import BaseModel, ConfigDict, Field, HttpUrl, ValidationError

from celery_config import DISPATCH_JOB, notify_job_end, request_abort
from utils import costs, events, export, storage
from utils.gender import DEFAULT_MIN_CONFIDENCE
from utils.schemas import status_body

bp = Blueprint("api", __name__, url_prefix="/api")


def _rate_limit_key():
    """Limits count per API key; the header is hashed here, before authentication runs."""
    header = request.headers.get("Authorization", "")
    return hashlib.sha256(header.encode()).hexdigest()[:32] if header else get_remote_address()


limiter = Limiter(key_func=_rate_limit_key, headers_enabled=True)
create_limit = limiter.limit(lambda: _settings().rate_limit_create)
read_limit = limiter.limit(lambda: _settings().rate_limit_read)

USERNAME = re.compile(r"[a-z0-9._]{1,30}")


class ApiError(Exception):
    """An error answered as `{"error": {"code", "message", "details"?}}` with `status`."""

    def __init__(self, status, code, message, details=None):
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details


class ScrapeRequest(BaseModel):
    """The body of `POST /api/scrape-followers`."""

    model_config = ConfigDict(extra="forbid", strict=True)

    accounts: list[str] = Field(min_length=1, description="Instagram usernames, with or without @")
    targetGender: Literal["male", "female", "any"]
    totalScrapeCount: int = Field(ge=1, description="Followers to scrape in all, split evenly over the accounts")
    minConfidence: float | None = Field(default=None, ge=0, le=1)
    maxCostUsd: float | None = Field(
        default=None, gt=0, le=1_000_000,
        description="Budget in USD: each Apify run may charge its share, and no run starts once it is spent",
    )
    callbackUrl: HttpUrl | None = Field(
        default=None, description="Where to POST the signed job status when the job ends",
    )


def _settings():
    return current_app.config["SETTINGS"]


def _engine():
    return current_app.extensions["engine"]


@bp.before_request
def authenticate():
    """Every /api route needs `Authorization: Bearer <key>` for a live key."""
    scheme, _, key = request.headers.get("Authorization", "").partition(" ")
    key_id = storage.api_key_id(_engine(), key.strip()) if scheme.lower() == "bearer" and key.strip() else None
    if key_id is None:
        raise ApiError(401, "unauthorized", "Send a valid API key as 'Authorization: Bearer <key>'.")
    g.api_key_id = key_id


@bp.post("/scrape-followers")
@create_limit
def scrape_followers():
    job = submit_job(_parse_scrape_request(), g.api_key_id)
    return {
        "job_id": job["job_id"],
        "status": "queued",
        "status_url": url_for("api.job_status", job_id=job["job_id"]),
        "results_url": url_for("api.job_results", job_id=job["job_id"]),
        **{key: value for key, value in job.items() if key != "job_id"},
    }, 202


def submit_job(spec, api_key_id):
    """Write the job, commit, and queue its dispatch; the POST view and `flask scrape` share it.

    Returns `{"job_id", "total_batches", "accounts", "per_account_limit"}`; raises ApiError
    503 (after removing the job) when the queue is unreachable.
    """
    settings = _settings()
    per_account_limit = costs.per_account_limit(spec.totalScrapeCount, len(spec.accounts))
    job_id, total_batches = storage.create_job(
        _engine(), api_key_id=api_key_id, accounts=spec.accounts, target_gender=spec.targetGender,
        min_confidence=DEFAULT_MIN_CONFIDENCE if spec.minConfidence is None else spec.minConfidence,
        total_scrape_count=spec.totalScrapeCount, per_account_limit=per_account_limit,
        batch_size=settings.batch_size, max_cost_usd=spec.maxCostUsd,
        callback_url=None if spec.callbackUrl is None else str(spec.callbackUrl),
    )
    try:
        current_app.extensions["celery"].send_task(DISPATCH_JOB, args=[job_id])
    except Exception as exc:  # kombu raises several types; the job must not stay behind.
        storage.delete_job(_engine(), job_id)
        current_app.logger.error("could not enqueue job %s: %s", job_id, type(exc).__name__)
        raise ApiError(503, "queue_unavailable", "The job queue is unavailable; try again shortly.") from None
    return {"job_id": job_id, "total_batches": total_batches, "accounts": len(spec.accounts),
            "per_account_limit": per_account_limit}


@bp.post("/estimate")
@read_limit
def estimate():
    """What the job in the body would scrape and cost; no job is created."""
    spec = _parse_scrape_request()
    return costs.estimate(len(spec.accounts), spec.totalScrapeCount, spec.maxCostUsd, _settings())


def _parse_scrape_request():
    if not request.is_json:
        raise ApiError(415, "unsupported_media_type", "Send the job as JSON (Content-Type: application/json).")
    body = request.get_json(silent=True)
    if body is None:
        raise ApiError(400, "invalid_json", "The request body is not valid JSON.")
    return parse_scrape_spec(body)


def parse_scrape_spec(body):
    """Validate and normalise a job request (a dict shaped like the POST body); ApiError 400 when bad."""
    try:
        spec = ScrapeRequest.model_validate(body)
    except ValidationError as exc:
        details = [{"field": ".".join(map(str, e["loc"])), "message": e["msg"]} for e in exc.errors()]
        raise ApiError(400, "invalid_request", "The request body does not match the schema.", details) from None
    spec.accounts = _normalise_accounts(spec.accounts)
    settings = _settings()
    if len(spec.accounts) > settings.max_accounts:
        raise ApiError(400, "too_many_accounts", f"At most {settings.max_accounts} accounts per job.")
    if spec.totalScrapeCount > settings.max_total_scrape_count:
        raise ApiError(400, "invalid_request", f"totalScrapeCount must be at most {settings.max_total_scrape_count}.")
    if spec.callbackUrl is not None and not settings.webhook_signing_secret:
        raise ApiError(400, "callbacks_disabled",
                       "callbackUrl needs WEBHOOK_SIGNING_SECRET to be configured on the server.")
    return spec


def _normalise_accounts(raw):
    """Strip "@", lower-case, check Instagram's rules, drop repeats (first one wins)."""
    accounts, invalid = {}, []
    for name in raw:
        username = name.strip().lstrip("@").lower()
        if USERNAME.fullmatch(username):
            accounts.setdefault(username, None)
        else:
            invalid.append(name)
    if invalid:
        raise ApiError(
            400, "invalid_usernames",
            f"{len(invalid)} account(s) are not valid Instagram usernames (1-30 letters, digits, '.' or '_').",
            [{"field": "accounts", "value": name} for name in invalid[:1000]],
        )
    return list(accounts)


@bp.get("/job-status/<job_id>")
@read_limit
def job_status(job_id):
    return status_body(_job_or_404(job_id))


@bp.get("/jobs")
@read_limit
def list_jobs():
    """The key's jobs, newest first, `limit` (1-100, default 20) a page, paged by `cursor`."""
    limit = _int_arg("limit", 20, 1, 100)
    before = _cursor_arg(storage.decode_job_cursor)
    jobs, next_cursor = storage.list_jobs(_engine(), g.api_key_id, limit, before=before)
    return {"jobs": [status_body(job) for job in jobs], "limit": limit, "next_cursor": next_cursor}


@bp.get("/job-results/<job_id>")
@read_limit
def job_results(job_id):
    job = _job_or_404(job_id)
    limit = _int_arg("limit", 1000, 1, 1000)
    if "cursor" in request.args and "page" in request.args:
        raise ApiError(400, "invalid_request", "Use either page or cursor, not both.")
    after_id = _cursor_arg(storage.decode_cursor)
    if after_id is not None:
        page = None
        profiles, next_cursor = storage.result_page(_engine(), job["job_id"], limit, after_id=after_id)
    else:
        page = _int_arg("page", 1, 1, 10_000_000)
        profiles, next_cursor = storage.result_page(_engine(), job["job_id"], limit, offset=(page - 1) * limit)
    return {"profiles": profiles, "total": job["profiles_kept"], "page": page, "limit": limit,
            "next_cursor": next_cursor, "status": job["status"]}


@bp.get("/job-results/<job_id>/export")
@read_limit
def export_results(job_id):
    """Every result as a CSV or NDJSON download, streamed page by page."""
    job = _job_or_404(job_id)
    fmt = request.args.get("format", "csv")
    if fmt not in export.FORMATS:
        raise ApiError(400, "invalid_parameter", f"format must be one of: {', '.join(export.FORMATS)}.")
    return Response(export.stream(_engine(), job["job_id"], fmt), content_type=export.FORMATS[fmt], headers={
        "Content-Disposition": f'attachment; filename="followsift-{job["job_id"]}.{fmt}"',
    })


@bp.get("/job-events/<job_id>")
@read_limit
def job_events(job_id):
    """The job's status as Server-Sent Events, until it ends (see utils/events.py)."""
    job = _job_or_404(job_id)
    return Response(events.job_events(_engine(), job["job_id"], _settings()), content_type="text/event-stream",
                    headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


@bp.post("/jobs/<job_id>/cancel")
@create_limit
def cancel_job(job_id):
    """Stop a job: batches not started never call Apify; running Apify runs are aborted."""
    job = _job_or_404(job_id)
    if job["status"] in storage.ACTIVE_JOB_STATUSES and storage.cancel_job(_engine(), job["job_id"]):
        _send_follow_up(notify_job_end, job["job_id"], what=f"the callback of job {job['job_id']}")
    job = _job_or_404(job_id)
    if job["status"] != "cancelled":
        raise ApiError(409, "job_finished", f"The job already ended {job['status']}.")
    return {"job_id": job["job_id"], "status": job["status"]}


@bp.delete("/jobs/<job_id>")
@create_limit
def delete_job(job_id):
    """Delete the job, its batches and its results."""
    job = _job_or_404(job_id)
    running = storage.delete_job(_engine(), job["job_id"])
    if running:  # unaborted, the runs end on their own, capped by their item limits
        _send_follow_up(request_abort, running, what=f"the abort of {len(running)} Apify runs")
    return "", 204


def _send_follow_up(send, *args, what):
    """Queue a message that follows a change already committed; the change stands if Redis is away."""
    try:
        send(current_app.extensions["celery"], *args)
    except Exception as exc:  # kombu raises several types
        current_app.logger.warning("could not queue %s: %s", what, type(exc).__name__)


def _cursor_arg(decode):
    """The `cursor` query argument decoded, or None without one."""
    if "cursor" not in request.args:
        return None
    try:
        return decode(request.args["cursor"])
    except ValueError:
        raise ApiError(400, "invalid_cursor", "The cursor is not one this API issued.") from None


def _job_or_404(job_id):
    job = storage.get_job(_engine(), job_id, api_key_id=g.api_key_id)
    if job is None:
        raise ApiError(404, "job_not_found", f"No job with id {job_id!r}.")
    return job


def _int_arg(name, default, low, high):
    raw = request.args.get(name)
    if raw is None:
        return default
    if not re.fullmatch(r"\d{1,9}", raw) or not low <= int(raw) <= high:
        raise ApiError(400, "invalid_parameter", f"{name} must be an integer from {low} to {high}.")
    return int(raw)
