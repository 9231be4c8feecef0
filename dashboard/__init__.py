"""The dashboard at `/`: one static page, one script, one stylesheet, all served from here.

The page itself needs no key; it asks for an API key, keeps it in the browser's
localStorage, and reads and writes everything through the JSON API with
`Authorization: Bearer <key>`. Nothing is loaded from a CDN (vendored files are listed in
static/vendor/README.md).
"""
import json

from flask import Blueprint, current_app

from utils.store.schema import ENDED_JOB_STATUSES, BatchStatus, JobStatus

bp = Blueprint("dashboard", __name__, static_folder="static", static_url_path="/dashboard/static")

# Everything the page loads comes from this origin, but the followers' pictures from Instagram's
# CDNs (loaded with referrerpolicy="no-referrer"); no inline script or style.
CSP = ("default-src 'self'; img-src 'self' data: https://*.cdninstagram.com https://*.fbcdn.net; "
       "object-src 'none'; base-uri 'none'; frame-ancestors 'none'")
REAL_APIFY_URL = "https://api.apify.com"


@bp.get("/")
def index():
    response = bp.send_static_file("index.html")
    response.headers["Content-Security-Policy"] = CSP
    response.headers["Cache-Control"] = "no-cache"
    return response


@bp.get("/dashboard/statuses.js")
def statuses():
    """The status enums of utils/store/schema.py, for the page's script (one source for both)."""
    names = {"job": list(JobStatus), "batch": list(BatchStatus), "jobEnded": list(ENDED_JOB_STATUSES)}
    return f"const FOLLOWSIFT_STATUSES = {json.dumps(names)};\n", 200, {
        "Content-Type": "text/javascript; charset=utf-8", "Cache-Control": "no-cache"}


@bp.get("/dashboard/info.json")
def info():
    """What the page says about this server, before any key: `synthetic` is true when Apify is
    emulated, i.e. APIFY_API_URL is not Apify's own API (https://api.apify.com) or APIFY_TOKEN
    is empty, so the followers shown are made up."""
    settings = current_app.config["SETTINGS"]
    real = settings.apify_api_url.rstrip("/") == REAL_APIFY_URL and bool(settings.apify_token)
    return {"synthetic": not real}, 200, {"Cache-Control": "no-cache"}


@bp.get("/favicon.ico")
def favicon():
    return bp.send_static_file("favicon.ico")
