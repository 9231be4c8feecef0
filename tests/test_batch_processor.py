"""Classifying chunks and writing them: idempotent, merged across accounts, counted exactly."""
import pytest
import sqlalchemy as sa

from utils import store
from utils.batch_processor import classify
from utils.scraper import Follower
from utils.store.results import write_profiles


def _claim(engine, gender="any", min_confidence=0.0, accounts=("nike", "adidas")):
    job_id, *_ = store.work.create_job(
        engine, api_key_id=None, usernames=list(accounts), target_gender=gender, min_confidence=min_confidence,
        total_scrape_count=100, per_account_limit=50, batch_size=50, actor_id="test/actor",
    )
    return store.jobs.get_job(engine, job_id, store.jobs.ALL_KEYS)


def process_chunk(engine, job, followers, tally):
    """What a store task does with one page: classify it, write what it keeps, add up its tally."""
    chunk = classify(followers, job["target_gender"], job["min_confidence"])
    for name in ("scraped", "male", "female", "unknown"):
        setattr(tally, name, getattr(tally, name) + getattr(chunk.tally, name))
    return write_profiles(engine, job["job_id"], chunk.rows)


def _follower(pid, name, source, username=None):
    return Follower(pid, username or f"user{pid}", name, False, False, None, source)


def _rows(engine, job_id):
    with engine.connect() as conn:
        return conn.execute(
            sa.select(store.schema.results).where(store.schema.results.c.job_id == job_id).order_by(store.schema.results.c.id)
        ).mappings().all()


def test_rewriting_a_chunk_adds_nothing(db):
    claim = _claim(db)
    chunk = [_follower("1", "John Smith", "nike"), _follower("2", "Maria Garcia", "nike")]
    assert process_chunk(db, claim, chunk, store.batches.Tally()) == 2
    assert process_chunk(db, claim, chunk, store.batches.Tally()) == 0
    assert len(_rows(db, claim["job_id"])) == 2
    assert store.jobs.get_job(db, claim["job_id"], store.jobs.ALL_KEYS)["profiles_kept"] == 2


def test_a_follower_of_several_accounts_is_one_row_listing_them(db):
    claim = _claim(db, accounts=("nike", "adidas", "puma_shoes"))
    process_chunk(db, claim, [_follower("7", "Ana Souza", "nike"), _follower("7", "Ana Souza", "adidas")],
                  store.batches.Tally())
    process_chunk(db, claim, [_follower("7", "Ana Souza", "puma_shoes"), _follower("7", "Ana Souza", "nike")],
                  store.batches.Tally())
    (row,) = _rows(db, claim["job_id"])
    assert row["source_accounts"] == "nike,adidas,puma_shoes"
    page, _ = store.results.result_page(db, claim["job_id"], 10)
    assert page[0]["source_accounts"] == ["nike", "adidas", "puma_shoes"]


def test_an_underscore_in_a_source_is_not_a_wildcard(db):
    claim = _claim(db, accounts=("a_b", "axb"))
    process_chunk(db, claim, [_follower("1", "", "axb")], store.batches.Tally())
    process_chunk(db, claim, [_follower("1", "", "a_b")], store.batches.Tally())
    assert _rows(db, claim["job_id"])[0]["source_accounts"] == "axb,a_b"


def test_only_the_target_gender_is_kept_but_all_are_counted(db):
    claim = _claim(db, gender="female")
    tally = store.batches.Tally()
    chunk = [_follower("1", "John Smith", "nike"), _follower("2", "Maria Garcia", "nike"),
             _follower("3", "🍕🍕", "nike")]
    assert process_chunk(db, claim, chunk, tally) == 1
    assert [r["profile_id"] for r in _rows(db, claim["job_id"])] == ["2"]
    assert (tally.scraped, tally.male, tally.female, tally.unknown) == (3, 1, 1, 1)


def test_below_min_confidence_counts_as_unknown_and_is_not_kept(db):
    claim = _claim(db, gender="female", min_confidence=1.0)
    tally = store.batches.Tally()
    assert process_chunk(db, claim, [_follower("2", "Maria Garcia", "nike")], tally) == 0
    assert (tally.female, tally.unknown) == (0, 1)


def test_any_keeps_unknown_genders(db):
    claim = _claim(db, gender="any")
    assert process_chunk(db, claim, [_follower("3", "", "nike")], store.batches.Tally()) == 1
    assert _rows(db, claim["job_id"])[0]["gender"] == "unknown"


def test_write_profiles_of_nothing_is_a_no_op(db):
    claim = _claim(db)
    assert write_profiles(db, claim["job_id"], []) == 0


@pytest.mark.parametrize("limit", [1, 3, 1000])
def test_pages_by_cursor_and_by_number_agree(db, limit):
    claim = _claim(db)
    process_chunk(db, claim, [_follower(str(i), "", "nike") for i in range(7)], store.batches.Tally())
    by_cursor, after = [], None
    while True:
        page, cursor = store.results.result_page(db, claim["job_id"], limit, after_id=after)
        by_cursor += page
        if cursor is None:
            break
        after = store.results.decode_cursor(cursor)
    by_number = []
    for n in range(0, 7, limit):
        by_number += store.results.result_page(db, claim["job_id"], limit, offset=n)[0]
    assert [p["profile_id"] for p in by_cursor] == [str(i) for i in range(7)]
    assert by_number == by_cursor


def test_a_profile_stored_meanwhile_by_another_batch_is_merged_not_duplicated(quiet_engine):
    """Postgres: the COPY meets a row another batch has not committed yet, and falls back."""
    import threading

    claim = _claim(quiet_engine)
    other = quiet_engine.connect()
    racing = other.begin()
    other.execute(store.schema.results.insert().values(
        job_id=claim["job_id"], profile_id="race", username="racer", full_name="", gender="unknown",
        gender_confidence=0.0, source_accounts="adidas", created_at=store.utcnow(),
    ))
    written = []
    writer = threading.Thread(target=lambda: written.append(process_chunk(
        quiet_engine, claim, [_follower("race", "", "nike", "racer"), _follower("fresh", "", "nike")], store.batches.Tally(),
    )))
    writer.start()
    writer.join(0.5)
    assert writer.is_alive(), "the COPY waits for the other batch's row"
    racing.commit()
    other.close()
    writer.join(10)
    assert written == [1]
    rows = {row["profile_id"]: row for row in _rows(quiet_engine, claim["job_id"])}
    assert set(rows) == {"race", "fresh"}
    assert rows["race"]["source_accounts"] == "adidas,nike"
