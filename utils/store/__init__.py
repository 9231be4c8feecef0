"""Storage by aggregate, on Postgres (production) or SQLite (the embedded default).

Each lifecycle has one home, the only module that writes its status and counters, with its
transitions listed as a table in its docstring:

    jobs       scrape_jobs: a job's status and counters
    batches    scrape_batches: one unit of a job's work (a run at Apify, or stored lists to
               serve), its claims and leases; and the fault policy
    accounts   scrape_accounts: per input account of a job, its counts, how its list ended, its token
    lists      follower_lists, list_pages: what a scrape of one account returned, reused across jobs
    ledger     apify_runs, spend_ledger: every run a batch may have started, and what it cost

The steps that move more than one of them at once (a chunk stored: the batch's tally, the job's
results and counters, the accounts, the lists) are transactions in `work`, which takes locks in
the order `locks` sets down. The rest:

    schema     the tables and the status enums
    keys       api_keys: create, revoke, authenticate, spending limits
    results    scrape_results: the write path (COPY) and result pages
    capacity   apify_capacity: the governor that keeps the Apify account at (not over) its limit
    callbacks  the job-end callback columns of scrape_jobs: who sends it, once
    cursors    opaque page cursors

This module builds the engine and applies `migrations/`. Postgres is the source of truth:
every state change is a conditional UPDATE, so a redelivered or duplicated Celery message can
never move a job or a batch twice.
"""
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import make_url

from utils.store import (accounts, batches, callbacks, capacity, cursors, jobs, keys, ledger, lists,  # noqa: F401
                         locks, results, schema, work)
from utils.store.schema import utcnow

MIGRATIONS = Path(__file__).resolve().parent.parent.parent / "migrations"


def database_url(settings):
    """The SQLAlchemy URL: psycopg 3 for Postgres, a file under the instance folder by default."""
    url = settings.database_url
    if not url:
        Path(settings.instance_path).mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{Path(settings.instance_path) / 'followsift.db'}"
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def make_engine(settings, pool_size=2):
    """An engine whose pool suits how DATABASE_URL reaches Postgres (`pool_mode`).

    transaction  a pooler lends a server connection per transaction: prepared statements
                 (psycopg prepares a query run five times) would meet another client's
                 connection, so none are made; idle client connections cost the pooler nothing.
    session      a pooler lends a server connection per client connection, for as long as it
                 is open: each process keeps at most one idle, and opens the rest only while
                 they are used (overflow connections close when returned), so idle processes
                 do not hold the pooler's Pool Size and starve the busy ones.
    direct       Postgres itself: `pool_size` kept open plus 2 under load.
    """
    url = make_url(database_url(settings))
    if url.get_backend_name() == "sqlite":
        engine = sa.create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    mode = pool_mode(settings)
    connect_args = {"prepare_threshold": None} if mode == "transaction" else {}
    sizes = {"pool_size": 1, "max_overflow": pool_size + 1} if mode == "session" else {
        "pool_size": pool_size, "max_overflow": 2}
    return sa.create_engine(url, pool_pre_ping=True, connect_args=connect_args, **sizes)


SUPABASE_POOLER = ".pooler.supabase.com"


def pool_mode(settings):
    """DATABASE_POOL_MODE, or else what the URL says: Supabase's pooler host (Supavisor) runs
    transaction mode on port 6543 and session mode on 5432; any other host is taken as direct.

    The server cannot say: pgbouncer passes `SHOW pool_mode` on to Postgres, which does not
    know it, and reports the same parameters as Postgres. Set DATABASE_POOL_MODE for any other
    pooler (a port alone, 6543 included, proves nothing)."""
    if settings.database_pool_mode:
        return settings.database_pool_mode
    url = make_url(database_url(settings))
    if (url.host or "").endswith(SUPABASE_POOLER):
        return "transaction" if url.port == 6543 else "session"
    return "direct"


def _sqlite_pragmas(dbapi_connection, _record):
    # WAL lets the web process read while a worker writes; foreign keys give ON DELETE CASCADE.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def migrate(engine):
    """Apply the dialect's SQL files in `migrations/` that have not run yet; return their names."""
    postgres = engine.dialect.name == "postgresql"
    folder = MIGRATIONS / ("postgresql" if postgres else "sqlite")
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "create table if not exists schema_migrations "
            "(version text primary key, applied_at text not null)"
        )
        if postgres:
            # Like every table: no access through Supabase's anon/authenticated roles.
            conn.exec_driver_sql("alter table schema_migrations enable row level security")
        done = set(conn.exec_driver_sql("select version from schema_migrations").scalars())
    applied = []
    for path in sorted(folder.glob("*.sql")):
        if path.name in done:
            continue
        _run_script(engine, path.read_text())
        with engine.begin() as conn:
            conn.execute(sa.text("insert into schema_migrations (version, applied_at) values (:v, :at)"),
                         {"v": path.name, "at": utcnow().isoformat()})
        applied.append(path.name)
    return applied


def _run_script(engine, sql):
    raw = engine.raw_connection()
    try:
        if engine.dialect.name == "sqlite":
            raw.executescript(sql)
        else:
            raw.cursor().execute(sql)
        raw.commit()
    finally:
        raw.close()
