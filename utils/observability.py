"""Error reporting: Sentry when `SENTRY_DSN` is set, with no personal data or secrets sent."""
import sentry_sdk


def init_sentry(settings):
    if settings.sentry_dsn:
        # The Flask and Celery integrations switch themselves on when those packages load.
        sentry_sdk.init(dsn=settings.sentry_dsn, send_default_pii=False)
