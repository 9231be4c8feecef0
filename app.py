"""The Flask application factory, error envelope, health checks and command-line commands.

`gunicorn wsgi:app` serves the API; `flask --app app migrate | create-api-key NAME |
revoke-api-key NAME | reconcile | purge` look after it.
"""
import click
import sqlalchemy as sa
from flask import Flask, current_app
from flask.cli import with_appcontext
from prometheus_client import CONTENT_TYPE_LATEST
from werkzeug.exceptions import HTTPException

import cli
from dashboard import bp as dashboard_bp
from api_async import ApiError, bp as api_bp, limiter
from api_docs import bp as api_docs_bp
from celery_config import make_celery, publish_batch, request_abort
from utils import maintenance, metrics, storage
from utils.config import Settings
from utils.observability import init_sentry, redact_secrets


def create_app(config=None):
    """Build the app from the environment; `config` overrides settings by field name."""
    settings = Settings.from_env().with_overrides(config or {})
    redact_secrets(settings)
    init_sentry(settings)
    app = Flask(__name__, instance_path=settings.instance_path)
    app.config.update(SETTINGS=settings, MAX_CONTENT_LENGTH=settings.max_request_bytes)
    app.json.sort_keys = False
    app.url_map.merge_slashes = False  # "//" would answer an HTML redirect instead of a JSON 404
    app.extensions["engine"] = storage.make_engine(settings, pool_size=5)
    app.extensions["celery"] = celery = make_celery(settings)
    app.config["RATELIMIT_STORAGE_URI"] = _limits_storage_uri(celery.conf.broker_url)
    limiter.init_app(app)
    app.register_blueprint(api_bp)
    app.register_blueprint(dashboard_bp)
    app.register_blueprint(api_docs_bp)
    app.add_url_rule("/healthz", view_func=healthz)
    app.add_url_rule("/readyz", view_func=readyz)
    app.add_url_rule("/metrics", view_func=metrics_view)
    _register_error_handlers(app)
    for command in (migrate_command, create_api_key_command, revoke_api_key_command, reconcile_command,
                    purge_command, *cli.COMMANDS):
        app.cli.add_command(command)
    return app


def _limits_storage_uri(broker_url):
    # The `limits` library spells Celery's redis+socket:// URLs redis+unix://.
    return broker_url.replace("redis+socket://", "redis+unix://", 1)


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
    """Prometheus metrics; no key needed, so firewall it or protect it at the proxy."""
    body = metrics.render(current_app.extensions["engine"], current_app.extensions["celery"],
                          current_app.config["SETTINGS"].prometheus_multiproc_dir)
    return body, 200, {"Content-Type": CONTENT_TYPE_LATEST}


def _error(status, code, message, details=None):
    body = {"code": code, "message": message}
    if details:
        body["details"] = details
    return {"error": body}, status


def _register_error_handlers(app):
    @app.errorhandler(ApiError)
    def api_error(exc):
        return _error(exc.status, exc.code, exc.message, exc.details)

    @app.errorhandler(HTTPException)
    def http_error(exc):
        code = (exc.name or "error").lower().replace(" ", "_")
        return _error(exc.code or 500, code, exc.description or exc.name)

    @app.errorhandler(Exception)
    def unexpected_error(exc):
        app.logger.exception("unhandled error")
        return _error(500, "internal_error", "Something went wrong on our side.")


def _engine():
    return current_app.extensions["engine"]


@click.command("migrate")
@with_appcontext
def migrate_command():
    """Apply the SQL files in migrations/ that have not run yet."""
    applied = storage.migrate(_engine())
    click.echo(f"applied: {', '.join(applied)}" if applied else "schema up to date")


@click.command("create-api-key")
@with_appcontext
@click.argument("name")
def create_api_key_command(name):
    """Create an API key called NAME and print it (it is shown only this once)."""
    try:
        key = storage.create_api_key(_engine(), name)
    except sa.exc.IntegrityError:
        raise click.ClickException(f"a live key called {name!r} exists; revoke it first") from None
    click.echo(key)


@click.command("revoke-api-key")
@with_appcontext
@click.argument("name")
def revoke_api_key_command(name):
    """Revoke the API key called NAME; its jobs stay, unreachable."""
    if not storage.revoke_api_key(_engine(), name):
        raise click.ClickException(f"no live key called {name!r}")
    click.echo(f"revoked {name}")


@click.command("reconcile")
@with_appcontext
def reconcile_command():
    """Re-enqueue batches whose messages were lost (what the clock runs every minute)."""
    celery = current_app.extensions["celery"]
    count = maintenance.reconcile(_engine(), current_app.config["SETTINGS"],
                                  lambda job_id, index: publish_batch(celery, job_id, index))
    click.echo(f"re-enqueued {count} batches")


@click.command("purge")
@with_appcontext
def purge_command():
    """Delete jobs older than RESULTS_TTL_DAYS, with their batches and results."""
    celery = current_app.extensions["celery"]
    count = maintenance.purge(_engine(), current_app.config["SETTINGS"],
                              lambda run_ids: request_abort(celery, run_ids))
    click.echo(f"purged {count} jobs")
