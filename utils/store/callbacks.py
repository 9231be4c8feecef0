"""Job-end callbacks (the callback_* columns of scrape_jobs): one sender at a time, delivered
once, attempts counted here so a callback whose message was lost is found and sent again."""
from contextlib import contextmanager
from datetime import timedelta

import sqlalchemy as sa

from utils.store.schema import ENDED_JOB_STATUSES, jobs, utcnow

j = jobs.c
_PENDING = sa.and_(j.status.in_(ENDED_JOB_STATUSES), j.callback_url.is_not(None),
                   j.callback_delivered_at.is_(None), j.callback_error.is_(None))


class Attempt:
    """One delivery attempt of a locked job's callback: say how it went, once."""

    def __init__(self, conn, job, max_attempts):
        self.conn, self.job_id = conn, job["job_id"]
        self.number = job["callback_attempts"] + 1
        self.last = self.number >= max_attempts

    def delivered(self):
        self._record(callback_delivered_at=utcnow())

    def failed(self, error):
        """Record a failure; past the last attempt the callback is given up with `error`."""
        self._record(callback_error=error if self.last else None)

    def _record(self, **values):
        self.conn.execute(jobs.update().where(j.job_id == self.job_id).values(
            callback_attempts=self.number, callback_checked_at=utcnow(), **values))


@contextmanager
def callback_to_send(engine, job_id, max_attempts):
    """Yield (job, Attempt) for an ended job whose callback is still to be sent, else (None, None).

    The job row stays locked (FOR UPDATE) until the block ends, so a duplicate message waits
    for the sender at it and then finds the callback sent; what the Attempt records is
    committed when the block ends. `max_attempts` counts over every message ever sent for it.
    (Not SKIP LOCKED: a task that holds the job row FOR SHARE a moment, to see whether the job
    stopped, would make the only message skip a callback that nobody is sending.)
    """
    with engine.begin() as conn:
        row = conn.execute(
            jobs.select().where(j.job_id == job_id, _PENDING).with_for_update()
        ).mappings().first()
        if row is None:
            yield None, None
            return
        yield dict(row), Attempt(conn, row, max_attempts)


def lost_callbacks(engine, quiet_seconds):
    """Ended jobs whose callback is still to be sent and nobody tried for `quiet_seconds`
    (a worker died between ending the job and queueing it); touched, so each comes back only
    after as long again."""
    now = utcnow()
    quiet = now - timedelta(seconds=quiet_seconds)
    with engine.begin() as conn:
        return conn.execute(
            jobs.update().where(_PENDING, j.completed_at < quiet,
                                sa.or_(j.callback_checked_at.is_(None), j.callback_checked_at < quiet))
            .values(callback_checked_at=now).returning(j.job_id)
        ).scalars().all()
