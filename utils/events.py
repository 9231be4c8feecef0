"""A job's progress as Server-Sent Events (text/event-stream).

The stream reads the job row every SSE_POLL_SECONDS and sends `event: status` with the
status body whenever it changed; after the status that ends the job it closes. A comment
line goes out when nothing was sent for SSE_HEARTBEAT_SECONDS, so proxies keep the
connection open, and the stream closes after SSE_MAX_SECONDS (`event: timeout`) so that no
connection holds a web thread for ever; EventSource reconnects by itself, as it does after
any drop. Each open stream holds one thread of the web process: run gunicorn with
`--worker-class gthread` (the Procfile's `--threads`) and size the threads for the streams.
"""
import json
import threading
import time
from collections import Counter

from utils.store.jobs import ALL_KEYS, get_job
from utils.store.keys import is_live
from utils.store.schema import ENDED_JOB_STATUSES
from utils.jobs import statuses


def job_events(engine, job_id, api_key_id, settings, clock=time.monotonic, sleep=time.sleep):
    """Yield the SSE stream of one of the tenant's jobs, as text chunks."""
    started = last_sent = clock()
    last_body = None
    yield "retry: 3000\n\n"
    while True:
        if api_key_id is not ALL_KEYS and not is_live(engine, api_key_id):
            yield _event("revoked", {"job_id": job_id})  # a revoked key's streams end with it
            return
        job = get_job(engine, job_id, api_key_id)
        if job is None:
            yield _event("deleted", {"job_id": job_id})
            return
        body = statuses(engine, settings, [job])[0]
        if body != last_body:
            yield _event("status", body)
            last_body, last_sent = body, clock()
        if job["status"] in ENDED_JOB_STATUSES:
            return
        now = clock()
        if now - started >= settings.sse_max_seconds:
            yield _event("timeout", {"job_id": job_id, "reconnect": True})
            return
        if now - last_sent >= settings.sse_heartbeat_seconds:
            yield ": keep-alive\n\n"
            last_sent = now
        sleep(settings.sse_poll_seconds)


def _event(name, data):
    return f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


class StreamSlots:
    """Open streams of this web process, in all and per API key: each holds a gthread thread,
    so a cap keeps threads free for the rest of the API (SSE_MAX_STREAMS_PER_PROCESS, and
    SSE_MAX_STREAMS_PER_KEY of those per key)."""

    def __init__(self):
        self.lock, self.open = threading.Lock(), Counter()

    def take(self, key_id, per_process, per_key):
        """A slot for `key_id`, or None when the process or the key has all it may have."""
        with self.lock:
            if sum(self.open.values()) >= per_process or self.open[key_id] >= per_key:
                return None
            self.open[key_id] += 1
            return key_id

    def give_back(self, key_id):
        with self.lock:
            self.open[key_id] -= 1


STREAMS = StreamSlots()


def released(stream, slot):
    """The stream, giving its slot back when it ends or the client goes away."""
    try:
        yield from stream
    finally:
        STREAMS.give_back(slot)

