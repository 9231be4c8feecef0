"""Job-end callbacks (the callback_* columns of scrape_jobs): at most one sender at a time,
delivered once."""
from contextlib import contextmanager

from utils.store.schema import ENDED_JOB_STATUSES, jobs, utcnow

@contextmanager
def callback_to_send(engine, job_id):
    """Yield (job, record) for an ended job whose callback is still to be sent, else (None, None).

    The job row stays locked (FOR UPDATE SKIP LOCKED) until the block ends, so a duplicate
    message finds nothing to send while one sender is at it; `record()` marks the callback
    delivered, `record(error=...)` gives up on it, both committed when the block ends.
    An exception in the block (a retry) rolls back and frees the row.
    """
    j = jobs.c
    with engine.begin() as conn:
        row = conn.execute(
            jobs.select().where(
                j.job_id == job_id, j.status.in_(ENDED_JOB_STATUSES), j.callback_url.is_not(None),
                j.callback_delivered_at.is_(None), j.callback_error.is_(None),
            ).with_for_update(skip_locked=True)
        ).mappings().first()
        if row is None:
            yield None, None
            return

        def record(error=None):
            conn.execute(jobs.update().where(j.job_id == job_id).values(
                callback_delivered_at=None if error else utcnow(), callback_error=error,
            ))

        yield dict(row), record


