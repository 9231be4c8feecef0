"""The Celery application, configured for short, idempotent tasks over Redis.

Postgres is the queue of record; Redis carries only the messages that are due now, and the
clock (`tick`, every TICK_SECONDS) publishes again whatever Redis lost.

Both sides configure it from the same `Settings`: the worker (`tasks.py`) registers the task
bodies on it and configures it when Celery first reads its settings; the web process only
publishes messages by task name, so it never imports worker code.
"""
import ssl
from urllib.parse import parse_qsl, urlencode, urlsplit

from celery import Celery
from kombu import Queue

from utils import embedded_redis
from utils.config import ConfigError

START_RUNS = "followsift.start_runs"
STORE_BATCH = "followsift.store_batch"
SERVE_LISTS = "followsift.serve_lists"
ABORT_RUNS = "followsift.abort_runs"
TICK = "followsift.tick"
PURGE = "followsift.purge"
NOTIFY_JOB_END = "followsift.notify_job_end"


def callback_queue(settings):
    return f"{settings.celery_queue}.callbacks"


def lists_queue(settings):
    return f"{settings.celery_queue}.lists"


# How a rediss:// server's certificate is checked: REDIS_TLS_VERIFY, or the URL's own
# `ssl_cert_reqs` (Celery's CERT_NONE spelling or redis-py's none), which wins.
CERT_REQS = {"none": ssl.CERT_NONE, "optional": ssl.CERT_OPTIONAL, "required": ssl.CERT_REQUIRED}


def broker_url(settings):
    """REDIS_URL without its `ssl_cert_reqs` (see `redis_ssl`), or the embedded Redis."""
    if not settings.redis_url:
        return embedded_redis.ensure_running(settings.instance_path)
    parts = urlsplit(settings.redis_url)
    query = [(key, value) for key, value in parse_qsl(parts.query) if key != "ssl_cert_reqs"]
    if len(query) == len(parse_qsl(parts.query)):
        return settings.redis_url  # as given: geturl() would turn redis+socket:///path into redis+socket:/path
    return parts._replace(query=urlencode(query)).geturl()


def redis_cert_check(settings):
    """How a rediss:// REDIS_URL's certificate is checked, in redis-py's spelling (none, optional,
    required); None for any other Redis.

    Celery and redis-py spell the URL's `ssl_cert_reqs` differently (CERT_NONE, none), so
    `broker_url` takes it out and each client is given it in its own spelling."""
    parts = urlsplit(settings.redis_url)
    if parts.scheme != "rediss":
        return None
    given = dict(parse_qsl(parts.query)).get("ssl_cert_reqs", settings.redis_tls_verify)
    name = given.lower().removeprefix("cert_")
    if name not in CERT_REQS:
        raise ConfigError(f"ssl_cert_reqs={given!r} in REDIS_URL: use none, optional or required")
    return name


def redis_ssl(settings):
    """Celery's `broker_use_ssl`: None unless REDIS_URL is rediss://."""
    check = redis_cert_check(settings)
    return None if check is None else {"ssl_cert_reqs": CERT_REQS[check]}


def make_celery(settings):
    return configure(Celery("followsift"), settings)


def configure(celery, settings):
    transport = {
        # Redis hands an unacknowledged message to another worker after this long; every
        # task ends (time limit) and every retry countdown elapses well before it.
        "visibility_timeout": settings.broker_visibility_timeout_seconds,
    }
    celery.conf.update(
        broker_url=broker_url(settings),
        broker_use_ssl=redis_ssl(settings),
        broker_transport_options=transport,
        broker_connection_retry_on_startup=True,
        task_default_queue=settings.celery_queue,
        # Callbacks and the serving of stored lists on queues of their own, which a worker takes
        # from by turns with the main one: a slow receiver (each delivery has one deadline) or a
        # large job served from lists never holds up a batch's start or store for more than a slice.
        task_queues=[Queue(settings.celery_queue), Queue(callback_queue(settings)), Queue(lists_queue(settings))],
        task_routes={NOTIFY_JOB_END: {"queue": callback_queue(settings)}, SERVE_LISTS: {"queue": lists_queue(settings)}},
        # Results go to Postgres; Redis only carries messages.
        task_ignore_result=True,
        result_backend=None,
        task_serializer="json",
        accept_content=["json"],
        # At-least-once: ack after the task ran, requeue when its process dies, and take
        # one message at a time so nothing waits in a busy worker's buffer.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_time_limit=settings.task_time_limit_seconds,
        task_soft_time_limit=max(settings.task_time_limit_seconds - 60, settings.task_time_limit_seconds // 2),
        # `celery -A tasks beat` (the Procfile's clock) runs the tick in its own process
        # (`tasks.Clock`: no worker's backlog can starve it) and sends the hourly purge.
        beat_scheduler="tasks:Clock",
        beat_schedule={
            "tick": {"task": TICK, "schedule": settings.tick_seconds},
            "purge": {"task": PURGE, "schedule": 3600.0},
        },
    )
    return celery


def request_starts(celery):
    """Have queued batches started, as far as the Apify account has room (by task name: the
    web side does not import the tasks)."""
    celery.send_task(START_RUNS)


def request_serves(celery):
    """Have batches of stored follower lists served into their jobs' results."""
    celery.send_task(SERVE_LISTS)


def publish_store(celery, job_id, batch_index):
    """Have a batch whose run ended stored."""
    celery.send_task(STORE_BATCH, args=[job_id, batch_index])


class Publisher:
    """How the clock (`utils.maintenance.tick`) has work done: by message, from either side."""

    def __init__(self, celery):
        self.celery = celery

    def store(self, job_id, batch_index):
        publish_store(self.celery, job_id, batch_index)

    def start(self):
        request_starts(self.celery)

    def serve(self):
        request_serves(self.celery)

    def callback(self, job_id):
        notify_job_end(self.celery, job_id)


def request_abort(celery, run_ids):
    celery.send_task(ABORT_RUNS, args=[list(run_ids)])


def notify_job_end(celery, job_id):
    """Have the ended job's callback sent, if it has one."""
    celery.send_task(NOTIFY_JOB_END, args=[job_id])
