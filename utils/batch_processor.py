"""Classify a chunk of followers and write the kept ones, idempotently.

Each chunk (at most 1000 followers) is one transaction: insert the profiles that are new
to the job, add the source account to the ones already there, and add the number of new
rows to the job's `profiles_kept`. Since only rows that really were inserted are counted,
a retried or redelivered batch that writes the same followers again adds nothing, and the
job's counter always equals its number of result rows.

On Postgres the new rows go in by COPY (see `_copy_new`): a multi-row `INSERT ... ON
CONFLICT` of 1,000 rows x 11 parameters costs more in client-side parameter handling and
speculative insertion than the database spends storing the rows (bench/write_path.py).
SQLite, and Postgres when batches race for the same follower, take the multi-row insert.
"""
import psycopg
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from utils import metrics
from utils.gender import detect_genders
from utils.storage import jobs, results, utcnow

_INSERT = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}


def process_chunk(engine, claim, followers, tally):
    """Infer genders for `followers`, count them into `tally`, store the kept ones.

    Returns the number of profiles that were new to the job.
    """
    guesses = detect_genders((f.full_name, f.username) for f in followers)
    kept = {}
    for follower, guess in zip(followers, guesses):
        gender = guess.gender if guess.confidence >= claim.min_confidence else "unknown"
        tally.scraped += 1
        setattr(tally, gender, getattr(tally, gender) + 1)
        if claim.target_gender not in ("any", gender):
            continue
        row = kept.get(follower.profile_id)
        if row is None:
            kept[follower.profile_id] = row = _row(follower, gender, guess.confidence)
        if follower.source and follower.source not in row["sources"]:
            row["sources"].append(follower.source)
    return write_profiles(engine, claim.job_id, list(kept.values()))


def _row(follower, gender, confidence):
    return {
        "profile_id": follower.profile_id, "username": follower.username, "full_name": follower.full_name,
        "gender": gender, "gender_confidence": round(confidence, 4), "is_private": follower.is_private,
        "is_verified": follower.is_verified, "profile_pic_url": follower.profile_pic_url, "sources": [],
    }


def write_profiles(engine, job_id, rows):
    """Upsert `rows` (dicts with a `sources` list) for the job; returns how many were new."""
    if not rows:
        return 0
    # In profile order: concurrent batches that share followers then lock the rows they
    # both touch in the same order, and cannot deadlock.
    rows = sorted(rows, key=lambda row: row["profile_id"])
    now = utcnow()
    with engine.begin() as conn:
        insert_new = _copy_new if conn.dialect.name == "postgresql" else _insert_new
        new_ids = insert_new(conn, job_id, rows, now)
        seen_before = [
            {"pid": row["profile_id"], "src": source, "pattern": _contains_pattern(source)}
            for row in rows if row["profile_id"] not in new_ids for source in row["sources"]
        ]
        if seen_before:
            conn.execute(_ADD_SOURCE.where(results.c.job_id == job_id), seen_before)
        if new_ids:
            conn.execute(
                jobs.update().where(jobs.c.job_id == job_id)
                .values(profiles_kept=jobs.c.profiles_kept + len(new_ids), updated_at=now)
            )
    metrics.profiles_kept(len(new_ids))
    return len(new_ids)


# What a row brings itself; the job id and the time are the chunk's.
_ROW = ("profile_id", "username", "full_name", "gender", "gender_confidence", "is_private", "is_verified",
        "profile_pic_url")


def _insert_new(conn, job_id, rows, now):
    """Insert the rows whose profile is new to the job; returns their profile ids."""
    values = [{**{name: row[name] for name in _ROW}, "source_accounts": ",".join(row["sources"]),
               "job_id": job_id, "created_at": now} for row in rows]
    insert = _INSERT[conn.dialect.name](results).on_conflict_do_nothing(index_elements=["job_id", "profile_id"])
    return set(conn.execute(insert.returning(results.c.profile_id), values).scalars())


_STORED = (
    sa.select(results.c.profile_id)
    .where(results.c.job_id == sa.bindparam("job_id"),
           results.c.profile_id == sa.func.any(sa.bindparam("ids", type_=postgresql.ARRAY(sa.Text))))
)
_COPY = f"COPY {results.name} (job_id, created_at, {', '.join(_ROW)}, source_accounts) FROM STDIN"


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
                    copy.write_row((*chunk, *(row[name] for name in _ROW), ",".join(row["sources"])))
    except psycopg.errors.UniqueViolation:
        return _insert_new(conn, job_id, rows, now)
    return {row["profile_id"] for row in new}


# Append a source account to a stored profile unless it is listed already. Usernames hold
# only letters, digits, "." and "_", so "," separates them safely; "_" is escaped for LIKE.
_source = sa.bindparam("src", type_=sa.Text)
_listed = (sa.literal(",") + results.c.source_accounts + ",").like(sa.bindparam("pattern"), escape="\\")
_ADD_SOURCE = (
    results.update()
    .where(results.c.profile_id == sa.bindparam("pid"), sa.not_(_listed))
    .values(source_accounts=sa.case(
        (results.c.source_accounts == "", _source),
        else_=results.c.source_accounts + "," + _source,
    ))
)


def _contains_pattern(source):
    return "%," + source.replace("_", "\\_") + ",%"
