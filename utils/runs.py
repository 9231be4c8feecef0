"""How the service learns that an Apify run ended, and charges it: Apify's ad-hoc webhook to the
web dyno, or the clock's poller. Both end in `store.work.run_ended`, which moves a run and its
batch once, so a doubled webhook, a webhook after the poller, or a retried delivery changes nothing.

A webhook is POSTed to `<PUBLIC_BASE_URL>/apify/webhook/<job_id>/<batch_index>` with a token
made for that start attempt alone in the `X-Followsift-Run-Token` header (Apify's headersTemplate; a
header, so that no router or access log records it). Only its hash is stored, so a delivery is
checked without any shared secret. A delivery only says "look now": the store task reads the
run from Apify before it stores anything.
"""
import enum
import hmac
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
    REFUSED = 404  # no such batch, or the token does not match: not from Apify (nothing else is said)
    MALFORMED = 400


TOKEN_HEADER = "X-Followsift-Run-Token"


def webhook(settings, job_id, batch_index, token):
    """(url, headers) where Apify says that the batch's run ended; None without a public URL
    (then the poller alone finds ended runs)."""
    if not settings.public_base_url:
        return None
    return f"{settings.public_base_url.rstrip('/')}/apify/webhook/{job_id}/{batch_index}", {TOKEN_HEADER: token}


def on_webhook(engine, job_id, batch_index, token, payload):
    """Check a webhook delivery and record what it says; returns a `Delivery`. The token is
    checked before anything is said about the batch."""
    if not store.cursors.is_uuid(job_id):
        return Delivery.REFUSED
    batch = store.batches.run_of(engine, job_id, batch_index)
    if batch is None or not batch.webhook_token_hash or not hmac.compare_digest(
            batch.webhook_token_hash, store.batches.hash_token(token or "")):
        return Delivery.REFUSED
    if not isinstance(payload, dict) or payload.get("status") not in TERMINAL_RUN_STATUSES \
            or not isinstance(payload.get("runId"), str):
        return Delivery.MALFORMED
    if batch.status == BatchStatus.STARTING:
        return Delivery.TOO_EARLY
    run_id = payload["runId"]
    if store.ledger.unknown(engine, [run_id]):  # the token names the attempt: a run of it nobody recorded
        store.work.found_run(engine, run_id, job_id, batch_index, batch.attempts)
    if store.work.run_ended(engine, run_id, payload["status"]) is None:
        return Delivery.ALREADY
    metrics.run_end_detected("webhook")
    return Delivery.FINISHED


def poll(engine, settings, scraper):
    """Ask Apify about the running runs that are due a look (whether a batch still wants them),
    with a bounded number of calls: one list of the account's recent runs when many are due,
    per-run reads for a few (and for any the list missed). Returns the (job_id, batch_index) of
    the batches whose runs ended."""
    interval = settings.apify_webhook_poll_seconds if settings.public_base_url else settings.apify_poll_seconds
    # Due a little early rather than a whole tick late.
    due = store.ledger.to_poll(engine, utcnow() - timedelta(seconds=interval - settings.tick_seconds / 4), limit=1000)
    if not due:
        return []
    reads = settings.apify_poll_reads
    statuses = scraper.recent_runs(min(1000, len(due) + 100)) if len(due) > reads else {}
    for run_id in [run_id for run_id in due if run_id not in statuses][:reads]:
        state = scraper.run_state(run_id)
        statuses[run_id] = state.status if state else MISSING
    ended, still = [], []
    for run_id in due:
        status = statuses.get(run_id)
        if status in TERMINAL_RUN_STATUSES or status == MISSING:
            batch = store.work.run_ended(engine, run_id, status)
            if batch is not None:
                ended.append(batch)
                metrics.run_end_detected("poller")
        elif status is not None:
            still.append(run_id)
    store.ledger.mark_checked(engine, still)
    return ended


def charge(engine, settings, run_id, state):
    """Charge an ended run from its `scraper.RunState` (None: Apify no longer knows it, and it
    is charged nothing, for good). A figure read before APIFY_COST_SETTLE_SECONDS is settled
    later by the clock."""
    final = state is None or settings.apify_cost_settle_seconds == 0
    store.work.charge_run(engine, run_id, state.usage_usd if state else 0.0, state.status if state else MISSING, final)
