"""The Flask application factory, error envelope and command-line commands.

`flask --app app migrate` applies the schema; `gunicorn wsgi:app` serves the API.
"""
import click
from flask import Flask
from werkzeug.exceptions import HTTPException

from api_async import ApiError, bp as api_bp
from celery_config import make_celery
from utils import storage
from utils.config import Settings
from utils.observability import init_sentry


def create_app(config=None):
    """Build the app from the environment; `config` overrides settings by field name."""
    settings = Settings.from_env().with_overrides(config or {})
    init_sentry(settings)
    app = Flask(__name__, instance_path=settings.instance_path)
    app.config.update(SETTINGS=settings, MAX_CONTENT_LENGTH=settings.max_request_bytes)
    app.json.sort_keys = False
    app.extensions["engine"] = storage.make_engine(settings, pool_size=5)
    app.extensions["celery"] = make_celery(settings)
    app.register_blueprint(api_bp)
    _register_error_handlers(app)
    app.cli.add_command(migrate_command)
    return app


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


@click.command("migrate")
def migrate_command():
    """Apply the SQL files in migrations/ that have not run yet."""
    from flask import current_app

    applied = storage.migrate(current_app.extensions["engine"])
    click.echo(f"applied: {', '.join(applied)}" if applied else "schema up to date")

