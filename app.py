"""The Flask application factory, error envelope and health checks.

`gunicorn wsgi:app` serves the API; `flask --app app <command>` runs the commands in cli.py.
"""
import hmac

import sqlalchemy as sa
from flask import Flask, current_app, request
from prometheus_client import CONTENT_TYPE_LATEST
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix

import cli
from dashboard import bp as dashboard_bp
from api_async import JOB_ERROR_STATUS, ApiError, apify_bp, bp as api_bp, limiter
from api_docs import bp as api_docs_bp
from celery_config import make_celery, redis_cert_check
from utils import jobs, metrics, store
from utils.config import Settings
from utils.observability import init_sentry, redact_secrets


def create_app(config=None):
    """Build the app from the environment; `config` overrides settings by field name."""
    settings = Settings.from_env().with_overrides(config or {})
    redact_secrets(settings)
    init_sentry(settings)
    app = Flask(__name__, instance_path=settings.instance_path)
    if settings.proxy_hops:  # the client's address as the router saw it, for per-address limits
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.proxy_hops, x_proto=settings.proxy_hops)
    app.config.update(SETTINGS=settings, MAX_CONTENT_LENGTH=settings.max_request_bytes)
    app.json.sort_keys = False
    app.url_map.merge_slashes = False  # "//" would answer an HTML redirect instead of a JSON 404
    app.extensions["engine"] = store.make_engine(settings, pool_size=5)
    app.extensions["celery"] = celery = make_celery(settings)
    app.config["RATELIMIT_STORAGE_URI"] = _limits_storage_uri(celery.conf.broker_url, redis_cert_check(settings))
    metrics.track_requests(app)
    limiter.init_app(app)
    app.register_blueprint(api_bp)
    app.register_blueprint(apify_bp)
    app.register_blueprint(dashboard_bp)
    app.register_blueprint(api_docs_bp)
    app.add_url_rule("/healthz", view_func=healthz)
    app.add_url_rule("/readyz", view_func=readyz)
    app.add_url_rule("/metrics", view_func=metrics_view)
    _register_error_handlers(app)
    for command in cli.COMMANDS:
        app.cli.add_command(command)
    return app


def _limits_storage_uri(broker_url, cert_check):
    """The `limits` library spells Celery's redis+socket:// URLs redis+unix://, and takes a
    rediss:// server's certificate check in the URL (not RATELIMIT_STORAGE_OPTIONS, which
    flask-limiter's one limiter keeps from any app it was given before)."""
    uri = broker_url.replace("redis+socket://", "redis+unix://", 1)
    if cert_check is None:
        return uri
    return f"{uri}{'&' if '?' in uri else '?'}ssl_cert_reqs={cert_check}"


def healthz():
    """The process is alive."""
    return {"status": "ok"}


def readyz():
    """The database and Redis answer; 503 otherwise."""
    checks = {}
    try:
        with current_app.extensions["engine"].connect() as conn:
            conn.execute(sa.text("select 1"))
        checks["database"] = "ok"
    except sa.exc.SQLAlchemyError:
        checks["database"] = "unreachable"
    try:
        with current_app.extensions["celery"].connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
        checks["redis"] = "ok"
    except Exception:  # kombu and redis raise several types for a broker that is away
        checks["redis"] = "unreachable"
    ready = all(value == "ok" for value in checks.values())
    return {"status": "ok" if ready else "unavailable", "checks": checks}, 200 if ready else 503


def metrics_view():
    """Prometheus metrics, for `Authorization: Bearer <METRICS_TOKEN>`; without a token
    configured, only for requests from this machine (a public web dyno's scrapers need one)."""
    token = current_app.config["SETTINGS"].metrics_token
    if not _metrics_allowed(token):
        return _error(401, "unauthorized", "Send 'Authorization: Bearer <METRICS_TOKEN>' for the metrics.")
    body = metrics.render(current_app.extensions["engine"], current_app.extensions["celery"],
                          current_app.config["SETTINGS"], current_app.extensions["request_metrics"])
    return body, 200, {"Content-Type": CONTENT_TYPE_LATEST}


def _metrics_allowed(token):
    if token:
        sent = request.headers.get("Authorization", "").split()
        return len(sent) == 2 and sent[0].lower() == "bearer" and hmac.compare_digest(sent[1], token)
    local = request.remote_addr in ("127.0.0.1", "::1")
    return local and "X-Forwarded-For" not in request.headers


def _error(status, code, message, details=None):
    body = {"code": code, "message": message}
    if details:
        body["details"] = details
    return {"error": body}, status


def _register_error_handlers(app):
    @app.errorhandler(ApiError)
    def api_error(exc):
        return _error(exc.status, exc.code, exc.message, exc.details)

    @app.errorhandler(jobs.JobError)
    def job_error(exc):
        return _error(JOB_ERROR_STATUS[type(exc)], exc.code, exc.message, exc.details)

    @app.errorhandler(HTTPException)
    def http_error(exc):
        code = (exc.name or "error").lower().replace(" ", "_")
        return _error(exc.code or 500, code, exc.description or exc.name)

    @app.errorhandler(Exception)
    def unexpected_error(exc):
        app.logger.exception("unhandled error")
        return _error(500, "internal_error", "Something went wrong on our side.")
