"""Input accounts (table scrape_accounts): per account of a job, what was asked, scraped and
kept, its followers' genders, and how its list ended, with the actor's continuation token
while it goes on. Counts move in the same transaction as the chunk they count
(`store.batches.store_chunk`), so they are exact under retries and redeliveries."""
from dataclasses import dataclass, field

import sqlalchemy as sa

from utils.store import cursors
from utils.store.schema import AccountStatus as A, accounts, results

a = accounts.c
MAX_RUNS_PER_ACCOUNT = 100  # a list continued this often is given up as capped
_FINAL = a.status != A.PENDING


_NEW = ("job_id", "account", "batch_index", "requested", "list_id", "reused")


def insert(conn, job_id, account_batches, per_account_limit, lists, reused):
    """A new job's rows: one per account, in its batch, reading its list (`lists` {account:
    list_id}; `reused` those another job scraped). By COPY on Postgres: a job may have 100,000."""
    rows = [(job_id, account, index, per_account_limit, lists[account], account in reused)
            for index, batch in enumerate(account_batches) for account in batch]
    if conn.dialect.name != "postgresql":
        conn.execute(accounts.insert(), [dict(zip(_NEW, row)) for row in rows])
        return
    with conn.connection.driver_connection.cursor() as cursor, \
            cursor.copy(f"COPY {accounts.name} ({', '.join(_NEW)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def next_run(conn, job_id, batch_index):
    """(accounts, continuation) for the batch's next run: an account whose list goes on, alone
    with its token; else the batch's accounts not ended yet."""
    pending = conn.execute(
        sa.select(a.account, a.continuation).where(a.job_id == job_id, a.batch_index == batch_index,
                                                   a.status == A.PENDING).order_by(a.account)
    ).all()
    going_on = [row for row in pending if row.continuation]
    if going_on:
        return [going_on[0].account], going_on[0].continuation
    return [row.account for row in pending], None


def start_run(conn, job_id, run_accounts):
    """A run of these accounts started: the token it started from is spent."""
    conn.execute(accounts.update().where(a.job_id == job_id, a.account.in_(run_accounts)).values(continuation=None))


def add_chunk(conn, job_id, counts, errors, cursors_seen):
    """Add a chunk's per-account counts ({account: Tally-like with kept}), note the error rows'
    statuses (an account's first reason stands) and the cursors the actor emitted."""
    if counts:
        conn.execute(
            accounts.update().where(a.job_id == job_id, a.account == sa.bindparam("acct")).values(
                scraped=a.scraped + sa.bindparam("s"), kept=a.kept + sa.bindparam("k"),
                male_count=a.male_count + sa.bindparam("m"), female_count=a.female_count + sa.bindparam("f"),
                unknown_count=a.unknown_count + sa.bindparam("u")),
            [{"acct": acct, "s": c.scraped, "k": c.kept, "m": c.male, "f": c.female, "u": c.unknown}
             for acct, c in counts.items()])
    for error in errors:
        conn.execute(accounts.update().where(a.job_id == job_id, a.account == error.account,
                                             a.status == A.PENDING)
                     .values(status=error.status, reason=error.reason))
    for account, cursor in cursors_seen.items():
        conn.execute(accounts.update().where(a.job_id == job_id, a.account == account).values(continuation=cursor))


def close_run(conn, job_id, batch_index, run_accounts, *, tokens, quota, items, run_cap, run_error=None):
    """Say how each account of a finished run ended; returns True when a list of the batch goes
    on (the batch needs another run). `tokens` {account: token} from the OUTPUT record or cursor
    rows, `quota` the OUTPUT record's limit message, `items` the rows the run delivered."""
    for row in conn.execute(sa.select(accounts).where(a.job_id == job_id, a.account.in_(run_accounts))).mappings():
        if row["status"] != A.PENDING:
            continue
        token = tokens.get(row["account"]) or row["continuation"]  # OUTPUT's token, else the last cursor row
        status, reason, token = _ending(row, token, quota, items, run_cap, run_error)
        conn.execute(accounts.update().where(a.job_id == job_id, a.account == row["account"]).values(
            status=status, reason=reason, continuation=token, runs=a.runs + 1))
    return bool(conn.execute(sa.select(sa.func.count()).where(
        a.job_id == job_id, a.batch_index == batch_index, a.status == A.PENDING)).scalar())


def _ending(row, token, quota, items, run_cap, run_error):
    """(status, reason, continuation) of one account after a run."""
    if run_error:
        return A.FAILED, run_error, None
    if row["scraped"] >= row["requested"]:
        return A.COMPLETE, None, None
    if quota:
        return A.QUOTA, quota, token
    if items == 0:
        return A.QUOTA, "the run succeeded with no items, where followers were expected (a spent quota?)", None
    if token and row["runs"] + 1 < MAX_RUNS_PER_ACCOUNT:
        return A.PENDING, None, token
    if token or (run_cap and row["scraped"] and row["scraped"] % run_cap == 0):  # stopped right at the cap
        return A.CAPPED, _capped(row), None
    return A.SHORT, _short(row), None


def _capped(row):
    return f"the actor stopped at its per-run cap after {row['scraped']} of {row['requested']}"


def _short(row):
    return f"{row['scraped']} of {row['requested']}: the actor says there are no more"


def close_served(conn, job_id, account, list_status, list_reason):
    """An account served from a stored list got all the list had for it: complete when that
    was as many as asked, else as the list ended (short, capped, private, not found)."""
    row = conn.execute(sa.select(a.scraped, a.requested).where(a.job_id == job_id, a.account == account,
                                                             a.status == A.PENDING)).mappings().first()
    if row is None:
        return
    if row["scraped"] >= row["requested"]:
        status, reason = A.COMPLETE, None
    elif list_status == A.CAPPED:
        status, reason = A.CAPPED, _capped(row)
    elif list_status in (A.PRIVATE, A.NOT_FOUND):
        status, reason = list_status, list_reason
    else:
        status, reason = A.SHORT, _short(row)
    conn.execute(accounts.update().where(a.job_id == job_id, a.account == account, a.status == A.PENDING)
                 .values(status=status, reason=reason))


def fail_pending(conn, job_id, batch_index, reason):
    """A batch failed: its accounts not ended yet failed with it."""
    conn.execute(accounts.update().where(a.job_id == job_id, a.batch_index == batch_index, a.status == A.PENDING)
                 .values(status=A.FAILED, reason=reason))


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
    """'3 private, 2 quota' for a job's ended accounts that brought nothing."""
    rows = conn.execute(sa.select(a.status, sa.func.count()).where(a.job_id == job_id, _FINAL, a.scraped == 0)
                        .group_by(a.status).order_by(a.status)).all()
    return ", ".join(f"{count} {status}" for status, count in rows)


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
    return {"account": row["account"], "status": row["status"], "reason": row["reason"], "reused": row["reused"],
            "requested": row["requested"], "scraped": row["scraped"], "kept": row["kept"],
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
