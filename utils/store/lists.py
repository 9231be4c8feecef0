"""The follower-list lifecycle (tables follower_lists, list_pages): what a scrape of one account
returned (its followers, when, through which actor, for which job, how it ended), apart from any
job. The only module that writes a list's status and pages.

    from     to                       transition  trigger                                   fenced by
    -        pending                  create      a job (or a job's rescrape) scrapes it    planning's lock
    pending  (pages)                  add_pages   a chunk of its followers was stored       its account's row
    pending  as its account ended     end         its account's run ended, or its batch     the batch's lease
                                                  failed (cut by failure)
    pending  cut (cancel | deletion)  cut         the job scraping it stopped or went       the stop / deletion
    ended    (gone)                   purge       older than RESULTS_TTL_DAYS, no job reads  -
    any      (gone)                   delete_caused_by  DELETE /api/data of its key        -

Apify charges for every follower row, every time; a list lets a later job over the same account
read it from Postgres instead. Each input account of a job points at one list
(`scrape_accounts.list_id`): a new one its own runs fill as they are stored, or one another job
scraped (`reused`), served into the job's results by its own target gender and minConfidence (a
list keeps every follower with its gender as inferred). A list a job is still scraping is shared
too: a second job asking for that account meanwhile waits for it (at most REUSE_WAIT_SECONDS)
rather than starting a second run.

How a list ended says what it may serve: a complete or cut list serves a limit up to what it
holds, never more; only a list the actor exhausted (or a private or missing account) is all
there is, whatever a job asks.

Lists are shared by every key of the deployment (the deployment pays Apify); a job's results
stay its own. A list outlives the job that scraped it; the purge deletes the ones no job reads
that are older than RESULTS_TTL_DAYS.
"""
import json
from collections import namedtuple
from dataclasses import dataclass, field
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from utils.store.results import PROFILE
from utils.store.schema import ListStatus as S, accounts, follower_lists, list_pages, utcnow

a, l, p = accounts.c, follower_lists.c, list_pages.c
# Lists that hold all the actor could get, whatever was asked; and those that hold what they hold.
ALL_THERE_IS = (S.EXHAUSTED, S.PRIVATE, S.NOT_FOUND)
AS_FAR_AS_THEY_GO = (S.COMPLETE, S.CUT)
LOOKUP_CHUNK = 1000  # accounts per lookup query
Listed = namedtuple("Listed", PROFILE)  # a follower as a list keeps it


@dataclass
class Plan:
    """Where a new job's accounts get their followers: {account: list_id} for `stored` lists
    (served now) and `shared` ones (another job is scraping them); `scrape` lists the rest."""

    stored: dict = field(default_factory=dict)
    shared: dict = field(default_factory=dict)
    scrape: list = field(default_factory=list)

    @property
    def reused(self):
        """{account: list_id} of both (a new dict: look it up once, not per account)."""
        return {**self.stored, **self.shared}


def plan(conn, accounts, limit, actor_id, max_age_days):
    """Which lists a job over `accounts` (`limit` followers each) can read: ended ones younger
    than `max_age_days` that hold at least `limit` (or all there is), else ones being scraped
    to at least `limit`; the newest wins. `max_age_days` 0 reads none."""
    found = Plan()
    if max_age_days <= 0:
        found.scrape = list(accounts)
        return found
    since = utcnow() - timedelta(days=max_age_days)
    for chunk in _chunks(conn, accounts):
        stored = conn.execute(
            sa.select(l.account, l.id).where(
                _among(conn, l.account, chunk), l.actor_id == actor_id, l.ended_at >= since, _serves(limit))
            .order_by(l.ended_at)).all()
        found.stored.update(stored)  # ascending, so the newest list of an account is the last set
        shared = conn.execute(
            sa.select(l.account, l.id).where(
                _among(conn, l.account, [name for name in chunk if name not in found.stored]),
                l.actor_id == actor_id, l.status == S.PENDING, l.requested >= limit, l.created_at >= since)
            .order_by(l.created_at)).all()
        found.shared.update(shared)
    reused = found.reused
    found.scrape = [name for name in accounts if name not in reused]
    return found


def _serves(limit):
    """A condition: the ended list can serve `limit` followers an account (see the docstring)."""
    return sa.or_(l.status.in_(ALL_THERE_IS), sa.and_(l.status.in_(AS_FAR_AS_THEY_GO), l.scraped >= limit))


def serves(listed, limit):
    """Whether a list as `store.accounts.to_serve` reads it (its status, count) serves `limit`."""
    return listed.list_status in ALL_THERE_IS or (listed.list_status in AS_FAR_AS_THEY_GO
                                                 and listed.list_scraped >= limit)


def _chunks(conn, names):
    """`names` in lookups: all at once on Postgres (one array parameter), by LOOKUP_CHUNK on SQLite."""
    size = (len(names) or 1) if conn.dialect.name == "postgresql" else LOOKUP_CHUNK
    return [names[start:start + size] for start in range(0, len(names), size)]


def _among(conn, column, values):
    """`column IN values`: on Postgres `= ANY(array)` of one parameter however many values."""
    if conn.dialect.name == "postgresql":
        return column == sa.func.any(_array(values, column.type))
    return column.in_(values)


def _array(values, item_type):
    """A Postgres array of `values` (usernames or ids: no commas) sent as one comma-joined text,
    which psycopg sends at once where it would adapt a list item by item."""
    joined = sa.bindparam(None, ",".join(map(str, values)), type_=sa.Text)
    return sa.cast(sa.func.string_to_array(joined, ","), postgresql.ARRAY(item_type))


def preview(engine, accounts, limit, actor_id, max_age_days):
    """(the `plan` for a job over `accounts`, the followers its lists would serve at most)."""
    with engine.connect() as conn:
        found = plan(conn, accounts, limit, actor_id, max_age_days)
        followers = len(found.shared) * limit
        for chunk in _chunks(conn, list(found.stored.values())):
            followers += conn.execute(sa.select(sa.func.coalesce(sa.func.sum(
                sa.case((l.scraped < limit, l.scraped), else_=limit)), 0)).where(_among(conn, l.id, chunk))).scalar()
    return found, int(followers)


def lock_planning(conn):
    """Serialise planning with creating lists (until commit), so that two jobs created at once
    over one account make one list and one run, not two."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("select pg_advisory_xact_lock(hashtext('followsift.follower_lists'))")


def create(conn, job_id, api_key_id, names, limit, actor_id):
    """New pending lists for the accounts a job scrapes itself: {account: list_id}."""
    if not names:
        return {}
    now = utcnow()
    if conn.dialect.name == "postgresql":  # one INSERT ... SELECT over an array, however many accounts
        names_in = sa.select(sa.func.unnest(_array(names, sa.Text)).label("account")).subquery()
        chosen = sa.select(names_in.c.account, sa.literal(actor_id), sa.literal(limit), sa.literal(S.PENDING.value),
                           sa.literal(job_id, sa.Uuid(as_uuid=False)), sa.literal(api_key_id, sa.BigInteger),
                           sa.literal(now, l.created_at.type))
        insert = follower_lists.insert().from_select(
            ["account", "actor_id", "requested", "status", "job_id", "api_key_id", "created_at"], chosen)
        return dict(conn.execute(insert.returning(l.account, l.id)).all())
    rows = [{"account": name, "actor_id": actor_id, "requested": limit, "status": S.PENDING, "job_id": job_id,
             "api_key_id": api_key_id, "created_at": now} for name in names]
    created = {}
    for chunk in _chunks(conn, rows):
        created.update(conn.execute(follower_lists.insert().returning(l.account, l.id), chunk).all())
    return created


def add_pages(conn, listed, own):
    """Append a stored chunk's followers ([(account, row)], rows with their gender as inferred)
    to the lists the job's own runs fill (`own` {account: (list_id, position)}, from
    `store.accounts.add_chunk`): one page a list, from the position its account had reached."""
    by_account = {}
    for account, row in listed:
        by_account.setdefault(account, []).append([row[name] for name in PROFILE])
    pages = [{"list_id": own[account][0], "first": own[account][1], "followers": len(rows),
              "rows": json.dumps(rows, separators=(",", ":"))} for account, rows in by_account.items() if account in own]
    if pages:
        conn.execute(list_pages.insert(), pages)


def end(conn, job_id, batch_index):
    """The lists of the batch's own accounts that have ended take their account's ending and count."""
    ended = conn.execute(
        sa.select(a.list_id, a.status, a.cut_by, a.reason, a.scraped).join(follower_lists, l.id == a.list_id)
        .where(a.job_id == job_id, a.batch_index == batch_index, a.reused.is_(False), a.status != S.PENDING,
               l.status == S.PENDING).order_by(a.list_id)).all()
    if ended:
        conn.execute(follower_lists.update().where(l.id == sa.bindparam("lid"), l.status == S.PENDING).values(
            status=sa.bindparam("st"), cut_by=sa.bindparam("by"), reason=sa.bindparam("why"),
            scraped=sa.bindparam("n"), ended_at=utcnow()),
            [{"lid": row.list_id, "st": row.status, "by": row.cut_by, "why": row.reason, "n": row.scraped}
             for row in ended])


def cut(conn, job_id, cut_by, reason):
    """The job stopped or went: the lists it was still scraping are cut where they got to (what
    its accounts stored), so that jobs waiting for them serve them only as far as they go."""
    stored = sa.select(a.scraped).where(a.job_id == job_id, a.list_id == l.id, a.reused.is_(False)) \
        .scalar_subquery()
    conn.execute(follower_lists.update().where(l.job_id == job_id, l.status == S.PENDING).values(
        status=S.CUT, cut_by=cut_by, reason=reason, scraped=sa.func.coalesce(stored, 0), ended_at=utcnow()))


def read(engine, list_id, start, count):
    """Followers `start` to `start + count - 1` of the list (fewer at its end), in order, as
    `Listed` rows. The caller keeps within the list's count."""
    with engine.connect() as conn:
        pages = conn.execute(sa.select(p.first, p.rows).where(
            p.list_id == list_id, p.first < start + count, p.first + p.followers > start).order_by(p.first)).all()
    found = [Listed(*row) for first, rows in pages for row in json.loads(rows)[max(0, start - first):]]
    return found[:count]


def purge(conn, older_than):
    """Delete the lists no job reads that ended before `older_than`; returns how many."""
    ids = conn.execute(sa.select(l.id).where(l.ended_at < older_than, ~sa.exists().where(a.list_id == l.id))
                       .order_by(l.id)).scalars().all()
    return _delete(conn, ids)


def delete_caused_by(conn, api_key_id):
    """Delete every list the key's jobs caused to be stored (other jobs that read one keep the
    results it gave them, and their accounts no longer point at it); returns how many this
    transaction deleted (a concurrent one counts the rest)."""
    ids = conn.execute(sa.select(l.id).where(l.api_key_id == api_key_id).order_by(l.id)).scalars().all()
    return _delete(conn, ids)


def _delete(conn, ids):
    """Delete these lists: the accounts that read them first (the lock order), then their pages."""
    deleted = 0
    for chunk in _chunks(conn, ids):
        conn.execute(accounts.update().where(_among(conn, a.list_id, chunk)).values(list_id=None))
        conn.execute(list_pages.delete().where(_among(conn, p.list_id, chunk)))
        deleted += len(conn.execute(follower_lists.delete().where(_among(conn, l.id, chunk))
                                    .returning(l.id)).all())
    return deleted
