"""Periodic upkeep, from Postgres state alone: re-enqueue batches whose messages were lost,
and purge jobs older than the retention period.

Both run from Celery beat (`clock:` in the Procfile) and once from the CLI
(`flask --app app reconcile`, `flask --app app purge`). `publish(job_id, batch_index)`
sends a batch's message; `abort_runs(run_ids)` asks a worker to abort Apify runs.
"""
from datetime import timedelta

from utils import store


def reconcile(engine, settings, publish):
    """Publish again the batches whose holder died and, when the queue has gone silent,
    the batches still waiting. Duplicates are harmless: a batch is claimed only once."""
    lost = store.batches.requeue_expired_batches(engine)
    lost += store.batches.stalled_queued_batches(engine, settings.requeue_stalled_seconds)
    for job_id, batch_index in lost:
        publish(job_id, batch_index)
    return len(lost)


def purge(engine, settings, abort_runs):
    """Delete jobs created more than `RESULTS_TTL_DAYS` ago, with their batches and results."""
    older_than = store.utcnow() - timedelta(days=settings.results_ttl_days)
    job_ids = store.jobs.expired_job_ids(engine, older_than)
    for job_id in job_ids:
        running = store.jobs.delete_job(engine, job_id)
        if running:
            abort_runs(running)
    return len(job_ids)
