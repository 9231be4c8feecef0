"""The account lifecycle (table scrape_accounts): per input account of a job, what was asked,
scraped and kept, its followers' genders, how its list ended and the actor's token to go on
from. The only module that writes an account's status and counters.

    from     to                          transition   trigger                                  fenced by
    -        pending                     insert       the job is created                       -
    pending  (counters, token)           add_chunk    a chunk of its followers was stored      the batch's lease
    pending  private | not_found | cut   add_chunk    an error row of the actor names it       the batch's lease
    pending  pending (next token)        close_run    its run's pages are stored; it goes on   the batch's lease
    pending  complete | exhausted |      close_run    its run's pages are stored; it ended     the batch's lease
             private | not_found | cut
    pending  complete | as its list      close_served it was served from a stored list         the batch's lease
    pending  cut                         cut          its batch failed, its job stopped,       the batch's end /
                                                      the budget left no run for it            the stop
    pending  pending (scraped instead)   reassign     the list it was to be served from was    the batch's lease
                                                      cut short of its limit, went, or kept it
                                                      waiting REUSE_WAIT_SECONDS (what it served
                                                      so far is counted again by the scrape)

A token is replaced only by `close_run`, once the run that used it succeeded and its pages are
stored (or by a cursor row stored with the pages before it): a failed run leaves it, so a retry
goes on from there and pays for no page twice. Counts move in the same transaction as the chunk
they count, so they are exact under retries and redeliveries; `kept` counts the job's result rows
that list the account.
"""
from dataclasses import dataclass, field

import sqlalchemy as sa

from utils.store import cursors
from utils.store.schema import CutBy, ListStatus as S, accounts, follower_lists, results

a = accounts.c
MAX_RUNS_PER_ACCOUNT = 100  # a list continued this often is cut as capped
_FINAL = a.status != S.PENDING
_NEW = ("job_id", "account", "batch_index", "requested", "list_id", "reused")


@dataclass(frozen=True)
class Ending:
    """How an account's list ended."""

    status: str
    cut_by: str | None = None
    reason: str | None = None


# -- transitions -----------------------------------------------------------------------------------

def insert(conn, job_id, account_batches, per_account_limit, lists, reused):
    """A new job's rows: one per account, in its batch, reading its list (`lists` {account:
    list_id}; `reused` those another job scrapes). By COPY on Postgres: a job may have 100,000."""
    rows = [(job_id, account, index, per_account_limit, lists[account], account in reused)
            for index, batch in enumerate(account_batches) for account in batch]
    if conn.dialect.name != "postgresql":
        conn.execute(accounts.insert(), [dict(zip(_NEW, row)) for row in rows])
        return
    with conn.connection.driver_connection.cursor() as cursor, \
            cursor.copy(f"COPY {accounts.name} ({', '.join(_NEW)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def add_chunk(conn, job_id, tallies, kept, errors, cursors_seen):
    """Add a chunk's per-account counts ({account: Tally}) and new result rows ({account: n}),
    note what its error rows say (an account's first ending stands) and the cursors it carried.
    Returns {account: (list_id, position)} of the accounts whose lists the job's own runs fill:
    where the chunk's followers go in their lists (the count before the chunk)."""
    rows = [(acct, c.scraped, kept.get(acct, 0), c.male, c.female, c.unknown) for acct, c in sorted(tallies.items())]
    added = _add_counts(conn, job_id, rows) if rows else []
    for error in errors:
        _end(conn, job_id, error.account, Ending(error.status, error.cut_by, error.reason))
    for account, cursor in cursors_seen.items():
        conn.execute(accounts.update().where(a.job_id == job_id, a.account == account, a.status == S.PENDING)
                     .values(continuation=cursor))
    return {account: (list_id, position) for account, list_id, position, reused in added
            if list_id is not None and not reused}


_ADD_COUNTS = sa.text("""
    update scrape_accounts a
    set scraped = a.scraped + v.s, kept = a.kept + v.k, male_count = a.male_count + v.m,
        female_count = a.female_count + v.f, unknown_count = a.unknown_count + v.u
    from unnest(cast(:accounts as text[]), cast(:s as int[]), cast(:k as int[]), cast(:m as int[]),
                cast(:f as int[]), cast(:u as int[])) as v (account, s, k, m, f, u)
    where a.job_id = :job and a.account = v.account
    returning a.account, a.list_id, a.scraped - v.s, a.reused""")


def _add_counts(conn, job_id, rows):
    """[(account, list_id, count before, reused)] after adding `rows` [(account, scraped, kept,
    male, female, unknown)]: one statement on Postgres."""
    if conn.dialect.name == "postgresql":
        columns = dict(zip(("accounts", "s", "k", "m", "f", "u"), map(list, zip(*rows))))
        return conn.execute(_ADD_COUNTS, {"job": str(job_id), **columns}).all()
    added = []
    for account, scraped, kept, male, female, unknown in rows:
        added += conn.execute(accounts.update().where(a.job_id == job_id, a.account == account).values(
            scraped=a.scraped + scraped, kept=a.kept + kept, male_count=a.male_count + male,
            female_count=a.female_count + female, unknown_count=a.unknown_count + unknown,
        ).returning(a.account, a.list_id, a.scraped - scraped, a.reused)).all()
    return added


def close_run(conn, job_id, batch_index, run_accounts, *, tokens, quota, items, run_cap, budget_cut):
    """Say how each account of a run whose pages are all stored ended; True when a list of the
    batch goes on (the batch needs another run). `tokens` {account: token} from the OUTPUT record
    (else the last cursor row stored stands), `quota` the OUTPUT record's limit message, `items`
    the rows the run delivered, `budget_cut` whether the run stopped at its charge or item cap."""
    rows = conn.execute(sa.select(accounts).where(a.job_id == job_id, a.account.in_(run_accounts),
                                                  a.status == S.PENDING)).mappings().all()
    for row in rows:
        token = tokens.get(row["account"]) or row["continuation"]
        ending, token = _after_run(row, token, quota, items, run_cap, budget_cut)
        conn.execute(accounts.update().where(a.job_id == job_id, a.account == row["account"]).values(
            status=ending.status, cut_by=ending.cut_by, reason=ending.reason, continuation=token, runs=a.runs + 1))
    return bool(conn.execute(sa.select(sa.func.count()).where(
        a.job_id == job_id, a.batch_index == batch_index, a.status == S.PENDING)).scalar())


def _after_run(row, token, quota, items, run_cap, budget_cut):
    """(Ending, the token to go on from) of one account after a run, from facts alone."""
    got = dict(row, runs=row["runs"] + 1)
    if row["scraped"] >= row["requested"]:
        return Ending(S.COMPLETE), None
    if quota:
        return Ending(S.CUT, CutBy.QUOTA, quota), None
    if budget_cut:
        return Ending(S.CUT, CutBy.BUDGET, f"{_counts(got)}: the run stopped at the job's budget"), None
    if items == 0:
        return Ending(S.CUT, CutBy.QUOTA, "the run succeeded with no items, where followers were expected "
                                          "(a spent quota?)"), None
    if token and got["runs"] < MAX_RUNS_PER_ACCOUNT:
        return Ending(S.PENDING), token
    if token or (run_cap and row["scraped"] and row["scraped"] % run_cap == 0):  # stopped right at the cap
        return Ending(S.CUT, CutBy.RUN_CAP, f"{_counts(got)}: the actor stopped at its per-run cap"), None
    return Ending(S.EXHAUSTED, None, f"{_counts(got)}: the actor says there are no more"), None


def _counts(row):
    return f"{row['scraped']} of {row['requested']}"


def close_served(conn, job_id, account, listed):
    """An account served from a stored list got what it could: complete when that was as many
    as asked, else as the list ended (`listed`: its status, cut_by and reason)."""
    row = conn.execute(sa.select(a.scraped, a.requested).where(a.job_id == job_id, a.account == account,
                                                               a.status == S.PENDING)).mappings().first()
    if row is None:
        return
    if row["scraped"] >= row["requested"]:
        ending = Ending(S.COMPLETE)
    elif listed.list_status == S.EXHAUSTED:
        ending = Ending(S.EXHAUSTED, None, f"{_counts(row)}: the actor says there are no more")
    else:
        ending = Ending(listed.list_status, listed.list_cut_by, listed.list_reason)
    _end(conn, job_id, account, ending)


def cut(conn, job_id, cut_by, reason, batch_index=None, names=None):
    """The job's accounts still pending (of one batch, or only `names`) are cut by `cut_by`."""
    where = [a.job_id == job_id, a.status == S.PENDING]
    if batch_index is not None:
        where.append(a.batch_index == batch_index)
    if names is not None:
        where.append(a.account.in_(names))
    conn.execute(accounts.update().where(*where).values(status=S.CUT, cut_by=cut_by, reason=reason, continuation=None))


def _end(conn, job_id, account, ending):
    conn.execute(accounts.update().where(a.job_id == job_id, a.account == account, a.status == S.PENDING)
                 .values(status=ending.status, cut_by=ending.cut_by, reason=ending.reason, continuation=None))


def reassign(conn, job_id, moves):
    """Accounts the job scrapes itself after all: `moves` [(account, batch_index, list_id)]. What
    a list they were served from gave them so far is forgotten (the scrape delivers it again;
    the result rows stay, and `kept` with them). Returns the counts forgotten, summed (a Tally-
    like row: scraped, male, female, unknown), for the batch that had served them."""
    names = [name for name, _, _ in moves]
    forgotten = conn.execute(sa.select(
        sa.func.coalesce(sa.func.sum(a.scraped), 0).label("scraped"),
        sa.func.coalesce(sa.func.sum(a.male_count), 0).label("male"),
        sa.func.coalesce(sa.func.sum(a.female_count), 0).label("female"),
        sa.func.coalesce(sa.func.sum(a.unknown_count), 0).label("unknown"))
        .where(a.job_id == job_id, a.account.in_(names))).one()
    conn.execute(accounts.update().where(a.job_id == job_id, a.account == sa.bindparam("n"))
                 .values(batch_index=sa.bindparam("i"), list_id=sa.bindparam("lid"), reused=False, scraped=0,
                         male_count=0, female_count=0, unknown_count=0),
                 [{"n": name, "i": index, "lid": list_id} for name, index, list_id in moves])
    return forgotten


def lock(conn, job_id):
    """Lock the job's accounts, in account order (before the lists they point at)."""
    conn.execute(sa.select(a.account).where(a.job_id == job_id).order_by(a.account).with_for_update())


def remove(conn, job_id):
    conn.execute(accounts.delete().where(a.job_id == job_id))


# -- reading ---------------------------------------------------------------------------------------

def next_run(conn, job_id, batch_index):
    """(accounts, continuation, items still wanted) for the batch's next run: an account whose
    list goes on, alone with its token; else the batch's accounts not ended yet."""
    pending = conn.execute(
        sa.select(a.account, a.continuation, a.requested - a.scraped)
        .where(a.job_id == job_id, a.batch_index == batch_index, a.status == S.PENDING).order_by(a.account)
    ).all()
    going_on = [row for row in pending if row.continuation]
    if going_on:
        return [going_on[0].account], going_on[0].continuation, max(1, going_on[0][2])
    return [row.account for row in pending], None, max(1, sum(max(0, row[2]) for row in pending))


def to_serve(conn, job_id, batch_index):
    """The batch's accounts still to serve, with their list's state (None: the list is gone)."""
    l = follower_lists.c
    return conn.execute(
        sa.select(a.account, a.list_id, a.scraped, a.requested, l.status.label("list_status"),
                  l.cut_by.label("list_cut_by"), l.reason.label("list_reason"), l.scraped.label("list_scraped"))
        .select_from(accounts.outerjoin(follower_lists, l.id == a.list_id))
        .where(a.job_id == job_id, a.batch_index == batch_index, a.status == S.PENDING)
        .order_by(a.account)).all()


@dataclass
class Summary:
    """A job's input accounts: how many by status, and those served from lists another job
    scraped (`reused`) with the followers they brought."""

    by_status: dict = field(default_factory=dict)
    reused: int = 0
    reused_followers: int = 0


def summaries(engine, job_ids):
    """{job_id: Summary}."""
    if not job_ids:
        return {}
    with engine.connect() as conn:
        rows = conn.execute(sa.select(a.job_id, a.status, a.reused, sa.func.count(), sa.func.sum(a.scraped))
                            .where(a.job_id.in_(job_ids)).group_by(a.job_id, a.status, a.reused)).all()
    found = {}
    for job_id, status, reused, count, scraped in rows:
        job = found.setdefault(job_id, Summary())
        job.by_status[status] = job.by_status.get(status, 0) + count
        if reused:
            job.reused += count
            job.reused_followers += int(scraped or 0)
    return found


def summary(conn, job_id):
    """'3 private, 2 cut by quota' for a job's ended accounts that brought nothing."""
    rows = conn.execute(sa.select(a.status, a.cut_by, sa.func.count())
                        .where(a.job_id == job_id, _FINAL, a.scraped == 0)
                        .group_by(a.status, a.cut_by).order_by(a.status, a.cut_by)).all()
    return ", ".join(f"{count} {status}" + (f" by {cut_by}" if cut_by else "") for status, cut_by, count in rows)


def page(engine, job_id, limit, after=None):
    """A job's accounts by name: (rows, next_cursor)."""
    query = sa.select(accounts).where(a.job_id == job_id).order_by(a.account).limit(limit + 1)
    if after is not None:
        query = query.where(a.account > after)
    with engine.connect() as conn:
        rows = [_public(row) for row in conn.execute(query).mappings()]
    next_cursor = cursors.encode("a", rows[limit - 1]["account"]) if len(rows) > limit else None
    return rows[:limit], next_cursor


def decode_cursor(cursor):
    return cursors.decode("a", cursor)


def _public(row):
    return {"account": row["account"], "status": row["status"], "cut_by": row["cut_by"], "reason": row["reason"],
            "reused": row["reused"], "requested": row["requested"], "scraped": row["scraped"], "kept": row["kept"],
            "gender_breakdown": {"male": row["male_count"], "female": row["female_count"],
                                 "unknown": row["unknown_count"]}}


def overlap(engine, job_id, top):
    """The job's `top` accounts by followers scraped, and among their kept followers: each
    pair's shared count and each one's unique count. {"accounts", "shared", "unique"}."""
    with engine.connect() as conn:
        names = conn.execute(sa.select(a.account).where(a.job_id == job_id)
                             .order_by(a.scraped.desc(), a.account).limit(top)).scalars().all()
        if not names:
            return {"accounts": [], "shared": [], "unique": {}}
        listed = {name: (sa.literal(",") + results.c.source_accounts + ",").like(f"%,{_like(name)},%", escape="\\")
                  for name in names}
        pairs = [(x, y) for i, x in enumerate(names) for y in names[i + 1:]]
        columns = [sa.func.count().filter(sa.and_(listed[x], listed[y])) for x, y in pairs]
        columns += [sa.func.count().filter(results.c.source_accounts == n) for n in names]
        counts = conn.execute(sa.select(*columns).where(results.c.job_id == job_id)).one()
    shared = [{"a": x, "b": y, "shared": counts[i]} for i, (x, y) in enumerate(pairs)]
    unique = {name: counts[len(pairs) + i] for i, name in enumerate(names)}
    return {"accounts": names, "shared": shared, "unique": unique}


def _like(name):
    return name.replace("\\", "\\\\").replace("_", "\\_").replace("%", "\\%")
