"""Results (table scrape_results): the write path and result pages.

Writes are idempotent: a chunk inserts the profiles that are new to the job and adds the
source account to the ones already there, and says how many rows it inserted and, per source
account, how many rows list it that did not before. The job's `profiles_kept` and each
account's `kept` move by those figures in the same transaction (`store.work.store_chunk`), so
a retried or redelivered batch that writes the same followers again adds nothing, and the
counters always equal the rows.

On Postgres the new rows go in by COPY (see `_copy_new`): a multi-row `INSERT ... ON
CONFLICT` of 1,000 rows x 11 parameters costs more in client-side parameter handling and
speculative insertion than the database spends storing the rows (bench/write_path.py).
SQLite, and Postgres when batches race for the same follower, take the multi-row insert.
"""
from collections import Counter, defaultdict

import psycopg
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from utils import metrics
from utils.store import cursors, jobs
from utils.store.batches import Tally
from utils.store.schema import results, utcnow

_INSERT = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}
RESULT_COLUMNS = ("profile_id", "username", "full_name", "gender", "gender_confidence",
                  "is_private", "is_verified", "profile_pic_url", "source_accounts")


def write_profiles(engine, job_id, rows):
    """`write_rows` in a transaction of its own, counted into the job (for tests and benchmarks
    that fill a job's results without a scrape)."""
    with engine.begin() as conn:
        new, _ = write_rows(conn, job_id, rows)
        jobs.add_chunk(conn, job_id, Tally(), new)
    metrics.profiles_kept(new)
    return new


def write_rows(conn, job_id, rows):
    """Store `rows` (dicts with a `sources` list) for the job; returns (how many profiles were
    new, {account: rows that list it now and did not before})."""
    if not rows:
        return 0, Counter()
    # In profile order: concurrent batches that share followers then lock the rows they
    # both touch in the same order, and cannot deadlock.
    rows = sorted(rows, key=lambda row: row["profile_id"])
    insert_new = _copy_new if conn.dialect.name == "postgresql" else _insert_new
    new_ids = insert_new(conn, job_id, rows, utcnow())
    listed = Counter(source for row in rows if row["profile_id"] in new_ids for source in row["sources"])
    listed.update(_add_sources(conn, job_id, [(row["profile_id"], source) for row in rows
                                              if row["profile_id"] not in new_ids for source in row["sources"]]))
    return len(new_ids), listed


# What a row brings itself; the job id and the time are the chunk's. A follower list keeps the same.
PROFILE = ("profile_id", "username", "full_name", "gender", "gender_confidence", "is_private", "is_verified",
           "profile_pic_url")


def _insert_new(conn, job_id, rows, now):
    """Insert the rows whose profile is new to the job; returns their profile ids."""
    values = [{**{name: row[name] for name in PROFILE}, "source_accounts": ",".join(row["sources"]),
               "job_id": job_id, "created_at": now} for row in rows]
    insert = _INSERT[conn.dialect.name](results).on_conflict_do_nothing(index_elements=["job_id", "profile_id"])
    return set(conn.execute(insert.returning(results.c.profile_id), values).scalars())


_STORED = (
    sa.select(results.c.profile_id)
    .where(results.c.job_id == sa.bindparam("job_id"),
           results.c.profile_id == sa.func.any(sa.bindparam("ids", type_=postgresql.ARRAY(sa.Text))))
)
_COPY = f"COPY {results.name} (job_id, created_at, {', '.join(PROFILE)}, source_accounts) FROM STDIN"


def _copy_new(conn, job_id, rows, now):
    """`_insert_new` on Postgres, at nearly the speed of a plain COPY.

    The rows whose profile is not stored yet are COPY'd straight into the table. If another
    batch stores one of them meanwhile (it has not committed when we look), the COPY hits the
    unique key; the chunk then falls back to `INSERT ... ON CONFLICT DO NOTHING`, which is
    slower (bench/write_path.py) but settles any overlap.
    """
    stored = set(conn.execute(_STORED, {"job_id": job_id, "ids": [row["profile_id"] for row in rows]}).scalars())
    new = [row for row in rows if row["profile_id"] not in stored]
    chunk = (str(job_id), now.isoformat())  # as text: Postgres parses them faster than psycopg adapts them
    try:
        with conn.begin_nested():
            with conn.connection.driver_connection.cursor() as cursor, cursor.copy(_COPY) as copy:
                for row in new:
                    copy.write_row((*chunk, *(row[name] for name in PROFILE), ",".join(row["sources"])))
    except psycopg.errors.UniqueViolation:
        return _insert_new(conn, job_id, rows, now)
    return {row["profile_id"] for row in new}


# Append a source account to a stored profile unless it is listed already. Usernames hold
# only letters, digits, "." and "_", so "," separates them safely; "_" is escaped for LIKE.
_source = sa.bindparam("src", type_=sa.Text)
_listed = (sa.literal(",") + results.c.source_accounts + ",").like(sa.bindparam("pattern"), escape="\\")
_ADD_SOURCE = (
    results.update()
    .where(results.c.job_id == sa.bindparam("job"), results.c.profile_id == sa.bindparam("pid"), sa.not_(_listed))
    .values(source_accounts=sa.case(
        (results.c.source_accounts == "", _source),
        else_=results.c.source_accounts + "," + _source,
    ))
)
# The same for many profiles in one statement on Postgres, saying which sources it added.
_ADD_SOURCES = sa.text(r"""
    update scrape_results r
    set source_accounts = case when r.source_accounts = '' then v.src else r.source_accounts || ',' || v.src end
    from unnest(cast(:pids as text[]), cast(:srcs as text[])) as v (pid, src)
    where r.job_id = :job and r.profile_id = v.pid
      and (',' || r.source_accounts || ',') not like '%,' || replace(v.src, '_', '\_') || ',%' escape ''
    returning v.src""")


def _add_sources(conn, job_id, pairs):
    """Add each (profile_id, source) to the stored profile that does not list it yet; returns
    {source: profiles it was added to}."""
    added = Counter()
    if conn.dialect.name != "postgresql":
        for pid, source in pairs:
            added[source] += conn.execute(_ADD_SOURCE, {"job": job_id, "pid": pid, "src": source,
                                                        "pattern": _contains_pattern(source)}).rowcount
        return added
    rounds = defaultdict(list)  # a profile once a statement: an UPDATE ... FROM changes a row once
    seen = Counter()
    for pid, source in pairs:
        rounds[seen[pid]].append((pid, source))
        seen[pid] += 1
    for batch in rounds.values():
        pids, sources = zip(*batch)
        added.update(conn.execute(_ADD_SOURCES, {"job": str(job_id), "pids": list(pids),
                                                 "srcs": list(sources)}).scalars())
    return added


def _contains_pattern(source):
    return "%," + source.replace("_", "\\_") + ",%"


def remove(conn, job_id):
    conn.execute(results.delete().where(results.c.job_id == job_id))


def encode_cursor(last_id):
    return cursors.encode("r", str(last_id))


def decode_cursor(cursor):
    """The result id a cursor points after; ValueError for anything we did not issue."""
    number = cursors.decode("r", cursor)
    if not number.isdigit() or len(number) > 19:
        raise ValueError("malformed cursor")
    return int(number)


def result_page(engine, job_id, limit, *, after_id=None, offset=0, source=None):
    """One page of a job's results in insertion order, by keyset (`after_id`) or by offset;
    with `source`, only the followers found under that input account.

    Returns (profiles, next_cursor); next_cursor is None on the last page.
    """
    query = (
        sa.select(results.c.id, *(results.c[name] for name in RESULT_COLUMNS))
        .where(results.c.job_id == job_id)
        .order_by(results.c.job_id, results.c.id)
        .limit(limit + 1)
    )
    if source is not None:
        query = query.where(_listed.params(pattern=_contains_pattern(source)))
    if after_id is not None:
        query = query.where(results.c.id > after_id)
    elif offset:
        query = query.offset(offset)
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            # Walk the (job_id, id) index in order. Until statistics know a big job, the
            # planner guesses it is small and would rather fetch all of its rows and sort them.
            conn.exec_driver_sql("SET LOCAL enable_bitmapscan = off")
        rows = conn.execute(query).all()
    page = [_profile(row) for row in rows[:limit]]
    next_cursor = encode_cursor(rows[limit - 1].id) if len(rows) > limit else None
    return page, next_cursor


def _profile(row):
    # By position: a Row's attribute lookup costs more than the rest of a page (bench/results_pages.py).
    profile = dict(zip(RESULT_COLUMNS, row[1:]))
    profile["source_accounts"] = [s for s in profile["source_accounts"].split(",") if s]
    return profile
