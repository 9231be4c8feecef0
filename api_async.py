"""The asynchronous job API: submit a scrape job, watch it, page through its results.

Views validate the HTTP side and delegate to the job service (`utils/jobs.py`), whose
refusals are answered with the status in JOB_ERROR_STATUS; the worker does the rest.
"""
import re

from flask import Blueprint, Response, current_app, g, request, url_for
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

from celery_config import publish_store, request_starts
from utils import events, export, jobs, runs, store

bp = Blueprint("api", __name__, url_prefix="/api")
# Apify's ad-hoc webhooks (utils/runs.py): no API key, each run's own token instead.
apify_bp = Blueprint("apify", __name__, url_prefix="/apify")


def _rate_limit_key():
    """Limits count per authenticated API key id (however its header is spelled); a request
    that has no key yet counts against its client address (behind PROXY_HOPS proxies). Both
    within the deployment's namespace in Redis (its CELERY_QUEUE), which it may share."""
    key_id = g.get("api_key_id")
    who = f"key:{key_id}" if key_id is not None else f"ip:{get_remote_address()}"
    return f"{_settings().celery_queue}:{who}"


limiter = Limiter(key_func=_rate_limit_key, headers_enabled=True)
# One bucket per scope and key: creating, cancelling and deleting share `create`, reads `read`.
create_limit = limiter.shared_limit(lambda: _settings().rate_limit_create, scope="create")
read_limit = limiter.shared_limit(lambda: _settings().rate_limit_read, scope="read")

class ApiError(Exception):
    """An error answered as `{"error": {"code", "message", "details"?}}` with `status`."""

    def __init__(self, status, code, message, details=None):
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details


MAX_OFFSET = 1_000_000  # paging by number beyond this many rows: use the cursor
# How the job service's refusals are answered.
JOB_ERROR_STATUS = {jobs.InvalidJob: 400, jobs.JobNotFound: 404, jobs.JobFinished: 409, jobs.QueueUnavailable: 503,
                    jobs.OverBudget: 403, jobs.SpendCapReached: 402}


def _settings():
    return current_app.config["SETTINGS"]


def _engine():
    return current_app.extensions["engine"]


def _celery():
    return current_app.extensions["celery"]


@bp.before_request
def authenticate():
    """Every /api route needs `Authorization: Bearer <key>` for a live key."""
    parts = request.headers.get("Authorization", "").split()
    bearer = len(parts) == 2 and parts[0].lower() == "bearer" and len(parts[1]) <= 200
    key_id = store.keys.api_key_id(_engine(), parts[1]) if bearer else None
    if key_id is None:
        with limiter.limit(lambda: _settings().rate_limit_unauthenticated, scope="unauthenticated"):
            raise ApiError(401, "unauthorized", "Send a valid API key as 'Authorization: Bearer <key>'.")
    g.api_key_id = key_id


@bp.post("/scrape-followers")
@create_limit
def scrape_followers():
    job = jobs.submit(_engine(), _celery(), _settings(), _parse_scrape_request(), g.api_key_id)
    return {
        "job_id": job["job_id"],
        "status": store.schema.JobStatus.QUEUED,
        "status_url": url_for("api.job_status", job_id=job["job_id"]),
        "results_url": url_for("api.job_results", job_id=job["job_id"]),
        **{key: value for key, value in job.items() if key != "job_id"},
    }, 202


@bp.post("/estimate")
@read_limit
def estimate():
    """What the job in the body would scrape and cost; no job is created."""
    return jobs.estimate(_engine(), _settings(), _parse_scrape_request(), g.api_key_id)


def _parse_scrape_request():
    if not request.is_json:
        raise ApiError(415, "unsupported_media_type", "Send the job as JSON (Content-Type: application/json).")
    body = request.get_json(silent=True)
    if body is None:
        raise ApiError(400, "invalid_json", "The request body is not valid JSON.")
    return jobs.parse_spec(body, _settings())


@bp.get("/job-status/<job_id>")
@read_limit
def job_status(job_id):
    return jobs.statuses(_engine(), _settings(), [_job_or_404(job_id)])[0]


@bp.get("/jobs")
@read_limit
def list_jobs():
    """The key's jobs, newest first, `limit` (1-100, default 20) a page, paged by `cursor`."""
    limit = _int_arg("limit", 20, 1, 100)
    before = _cursor_arg(store.jobs.decode_job_cursor)
    found, next_cursor = store.jobs.list_jobs(_engine(), g.api_key_id, limit, before=before)
    return {"jobs": jobs.statuses(_engine(), _settings(), found), "limit": limit, "next_cursor": next_cursor}


@bp.get("/job-results/<job_id>")
@read_limit
def job_results(job_id):
    job = _job_or_404(job_id)
    limit = _int_arg("limit", 1000, 1, 1000)
    if "cursor" in request.args and "page" in request.args:
        raise ApiError(400, "invalid_request", "Use either page or cursor, not both.")
    after_id = _cursor_arg(store.results.decode_cursor)
    if after_id is not None:
        page = None
        profiles, next_cursor = store.results.result_page(_engine(), job["job_id"], limit, after_id=after_id)
    else:
        page = _int_arg("page", 1, 1, max(1, MAX_OFFSET // limit))
        profiles, next_cursor = store.results.result_page(_engine(), job["job_id"], limit, offset=(page - 1) * limit)
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
    source = request.args.get("source")
    if source is not None and not jobs.USERNAME.fullmatch(source):
        raise ApiError(400, "invalid_parameter", "source must be one of the job's accounts (an Instagram username).")
    return Response(export.stream(_engine(), job["job_id"], fmt, source), content_type=export.FORMATS[fmt], headers={
        "Content-Disposition": f'attachment; filename="followsift-{job["job_id"]}.{fmt}"',
    })


@bp.get("/jobs/<job_id>/accounts")
@read_limit
def job_accounts(job_id):
    """The job's input accounts by name, `limit` (1-1000, default 100) a page, paged by `cursor`:
    requested, scraped, kept, their followers' genders, and how each list ended."""
    job = _job_or_404(job_id)
    limit = _int_arg("limit", 100, 1, 1000)
    found, next_cursor = store.accounts.page(_engine(), job["job_id"], limit,
                                             after=_cursor_arg(store.accounts.decode_cursor))
    return {"accounts": found, "limit": limit, "next_cursor": next_cursor}


@bp.get("/jobs/<job_id>/overlap")
@read_limit
def job_overlap(job_id):
    """Among the job's `top` (2-10, default 10) largest accounts: the kept followers each pair
    shares, and each account's followers found under no other."""
    job = _job_or_404(job_id)
    return store.accounts.overlap(_engine(), job["job_id"], _int_arg("top", 10, 2, 10))


@bp.get("/job-events/<job_id>")
@read_limit
def job_events(job_id):
    """The job's status as Server-Sent Events, until it ends (see utils/events.py)."""
    job = _job_or_404(job_id)
    settings = _settings()
    slot = events.STREAMS.take(g.api_key_id, settings.sse_max_streams_per_process, settings.sse_max_streams_per_key)
    if slot is None:
        raise ApiError(429, "too_many_streams", "Too many open progress streams: close one, or poll the job status.")
    stream = events.job_events(_engine(), job["job_id"], g.api_key_id, settings)
    return Response(events.released(stream, slot), content_type="text/event-stream",
                    headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


@bp.post("/jobs/<job_id>/cancel")
@create_limit
def cancel_job(job_id):
    """Stop a job: batches not started never call Apify; running Apify runs are aborted."""
    job = jobs.cancel(_engine(), _celery(), job_id, g.api_key_id, current_app.logger.warning)
    return {"job_id": job["job_id"], "status": job["status"]}


@bp.delete("/jobs/<job_id>")
@create_limit
def delete_job(job_id):
    """Delete the job, its batches and its results."""
    jobs.delete(_engine(), _celery(), job_id, g.api_key_id, current_app.logger.warning)
    return "", 204


@bp.delete("/data")
@create_limit
def delete_key_data():
    """Delete everything the key caused to be stored."""
    return jobs.forget_key(_engine(), _celery(), g.api_key_id, current_app.logger.warning)


def _cursor_arg(decode):
    """The `cursor` query argument decoded, or None without one."""
    if "cursor" not in request.args:
        return None
    try:
        return decode(request.args["cursor"])
    except ValueError:
        raise ApiError(400, "invalid_cursor", "The cursor is not one this API issued.") from None


def _job_or_404(job_id):
    return jobs.find(_engine(), job_id, g.api_key_id)


def _int_arg(name, default, low, high):
    raw = request.args.get(name)
    if raw is None:
        return default
    if not re.fullmatch(r"\d{1,9}", raw) or not low <= int(raw) <= high:
        raise ApiError(400, "invalid_parameter", f"{name} must be an integer from {low} to {high}.")
    return int(raw)


@apify_bp.post("/webhook/<job_id>/<int:batch_index>")
def apify_webhook(job_id, batch_index):
    """An Apify run ended: note it and have the batch stored. Idempotent; 2xx stops Apify's retries."""
    outcome = runs.on_webhook(_engine(), job_id, batch_index, request.headers.get(runs.TOKEN_HEADER),
                              request.get_json(silent=True))
    if outcome is runs.Delivery.FINISHED:
        try:
            publish_store(_celery(), job_id, batch_index)
            request_starts(_celery())
        except Exception as exc:  # kombu raises several types; the clock finds the batch in Postgres
            current_app.logger.warning("could not queue the store of batch %s/%s: %s", job_id, batch_index,
                                       type(exc).__name__)
    if outcome.value >= 400:
        raise ApiError(outcome.value, outcome.name.lower(), "Webhook not accepted.")
    return {"outcome": outcome.name.lower()}, outcome.value
