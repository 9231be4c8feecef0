"""How the service learns that an Apify run ended: Apify's ad-hoc webhook to the web dyno, or
the clock's poller. Both end in `store.batches.mark_finished`, which moves a batch once, so
a doubled webhook, a webhook after the poller, or a retried delivery changes nothing.

A webhook is POSTed to `<PUBLIC_BASE_URL>/apify/webhook/<job_id>/<batch_index>` with a token
made for that run alone in the `X-Followsift-Run-Token` header (Apify's headersTemplate; a
header, so that no router or access log records it). Only its hash is stored, so a delivery is
checked without any shared secret. A delivery only says "look now": the store task reads the
run from Apify before it stores anything.
"""
import enum
import hmac
import secrets
from datetime import timedelta

from utils import metrics, store
from utils.scraper import TERMINAL_RUN_STATUSES
from utils.store.schema import BatchStatus, utcnow

# A run Apify no longer knows is treated as failed.
MISSING = "MISSING"


class Delivery(enum.Enum):
    """What a webhook delivery did, and what Apify is answered (2xx ends its retries)."""

    FINISHED = 200  # the batch's run is marked ended: store it
    ALREADY = 208  # nothing to do: seen before, or not this batch's current run
    TOO_EARLY = 409  # the run is not recorded yet (its start is being committed): retry
    REFUSED = 404  # no such batch, or the token does not match: not from Apify
    MALFORMED = 400


def new_token():
    return secrets.token_urlsafe(24)


TOKEN_HEADER = "X-Followsift-Run-Token"


def webhook(settings, job_id, batch_index, token):
    """(url, headers) where Apify says that the batch's run ended; None without a public URL
    (then the poller alone finds ended runs)."""
    if not settings.public_base_url:
        return None
    return f"{settings.public_base_url.rstrip('/')}/apify/webhook/{job_id}/{batch_index}", {TOKEN_HEADER: token}


def on_webhook(engine, job_id, batch_index, token, payload):
    """Check a webhook delivery and record what it says; returns a `Delivery`."""
    if not store.cursors.is_uuid(job_id):
        return Delivery.REFUSED
    batch = store.batches.run_of(engine, job_id, batch_index)
    if batch is None:
        return Delivery.REFUSED
    if batch.status == BatchStatus.STARTING:
        return Delivery.TOO_EARLY
    if not batch.webhook_token_hash or not hmac.compare_digest(batch.webhook_token_hash,
                                                               store.batches.hash_token(token or "")):
        return Delivery.REFUSED
    if not isinstance(payload, dict) or payload.get("status") not in TERMINAL_RUN_STATUSES:
        return Delivery.MALFORMED
    if payload.get("runId") != batch.apify_run_id:
        return Delivery.ALREADY
    if not store.batches.mark_finished(engine, job_id, batch_index, batch.apify_run_id, payload["status"]):
        return Delivery.ALREADY
    metrics.run_end_detected("webhook")
    return Delivery.FINISHED


def poll(engine, settings, scraper):
    """Ask Apify about the running runs that are due a look, with a bounded number of calls:
    one list of the account's recent runs when many are due, per-run reads for a few (and for
    any the list missed). Returns the (job_id, batch_index) of the batches whose runs ended."""
    interval = settings.apify_webhook_poll_seconds if settings.public_base_url else settings.apify_poll_seconds
    # Due a little early rather than a whole tick late.
    due = store.batches.runs_to_poll(engine, utcnow() - timedelta(seconds=interval - settings.tick_seconds / 4),
                                     limit=1000)
    if not due:
        return []
    reads = settings.apify_poll_reads
    statuses = scraper.recent_runs(min(1000, len(due) + 100)) if len(due) > reads else {}
    for run in [run for run in due if run.apify_run_id not in statuses][:reads]:
        state = scraper.run_state(run.apify_run_id)
        statuses[run.apify_run_id] = state.status if state else MISSING
    ended, still = [], []
    for run in due:
        status = statuses.get(run.apify_run_id)
        if status in TERMINAL_RUN_STATUSES or status == MISSING:
            if store.batches.mark_finished(engine, run.job_id, run.batch_index, run.apify_run_id, status):
                ended.append((run.job_id, run.batch_index))
                metrics.run_end_detected("poller")
        elif status is not None:
            still.append((run.job_id, run.batch_index))
    store.batches.mark_checked(engine, still)
    return ended
