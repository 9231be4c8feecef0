"""Follower lists reused across jobs (`utils.store.lists`): a job over accounts scraped within
maxAgeDays starts no run for them, concurrent jobs share one scrape, and retention keeps what
other jobs read."""
import threading
import uuid
from datetime import timedelta

import sqlalchemy as sa

import apify_emulator as emulated

from conftest import all_results, authorised_client, check_job, eventually, runs_of, submit, wait_for_job
from utils import store
from utils.store.schema import follower_lists, list_pages

L = follower_lists.c


def _names(prefix, count):
    tag = uuid.uuid4().hex[:6]
    return [f"{prefix}{tag}{i}" for i in range(count)]


def _followers(accounts, limit):
    """How many followers the emulator has for these accounts, up to `limit` each."""
    return sum(len(emulated.followers(account, limit)) for account in accounts)


def _completed(client, job_id):
    status = wait_for_job(client, job_id)
    assert status["status"] == "completed", status
    return status


def test_a_second_job_within_the_window_reads_the_lists_and_starts_no_run(client, worker, emulator):
    accounts = _names("reuse", 3)
    first = _completed(client, submit(client, accounts, gender="any", total=3 * 40)["job_id"])
    runs_before = len(runs_of(emulator, accounts))
    created = submit(client, accounts, gender="female", total=3 * 40, maxAgeDays=7)
    assert created["accounts_reused"] == 3
    second = _completed(client, created["job_id"])

    assert len(runs_of(emulator, accounts)) == runs_before == 1
    status, profiles = check_job(client, created["job_id"], accounts, 40, "female")
    by_first = {p["profile_id"]: p for p in all_results(client, first["job_id"])}
    assert profiles and all(by_first[p["profile_id"]] == p for p in profiles)
    assert {p["profile_id"] for p in by_first.values() if p["gender"] == "female"} == {p["profile_id"] for p in profiles}
    assert second["profiles_scraped"] == first["profiles_scraped"] == _followers(accounts, 40)
    assert second["cost_usd"] == 0
    assert second["reuse"]["accounts"] == 3 and second["reuse"]["followers"] == first["profiles_scraped"]
    assert second["reuse"]["runs_saved"] == 1 and second["reuse"]["usd_saved"] > 0
    page = client.get(f"/api/jobs/{created['job_id']}/accounts").get_json()["accounts"]
    first_page = client.get(f"/api/jobs/{first['job_id']}/accounts").get_json()["accounts"]
    assert [(a["status"], a["scraped"]) for a in page] == [(a["status"], a["scraped"]) for a in first_page]
    assert {a["reused"] for a in page} == {True} and {a["reused"] for a in first_page} == {False}


def test_a_job_over_old_and_new_accounts_runs_only_the_new(client, worker, emulator):
    old, new = _names("old", 10), _names("new", 10)
    _completed(client, submit(client, old, total=10 * 15)["job_id"])
    estimate = client.post("/api/estimate", json={"accounts": old + new, "targetGender": "any",
                                                  "totalScrapeCount": 20 * 15, "maxAgeDays": 7}).get_json()
    assert (estimate["batches"], estimate["max_followers"]) == (1, 10 * 15)
    assert estimate["reuse"] == {"accounts": 10, "followers": _followers(old, 15), "runs_saved": 1,
                                 "usd_saved": estimate["reuse"]["usd_saved"]} and estimate["reuse"]["usd_saved"] > 0
    created = submit(client, old + new, total=20 * 15, maxAgeDays=7)
    status = _completed(client, created["job_id"])
    assert [sorted(run["usernames"]) for run in runs_of(emulator, old + new)] == [sorted(old), sorted(new)], status
    check_job(client, created["job_id"], old + new, 15, "any")
    assert status["reuse"] == estimate["reuse"]


def test_a_larger_limit_than_stored_scrapes_again(client, worker, emulator):
    accounts = _names("grow", 1)
    _completed(client, submit(client, accounts, total=10)["job_id"])
    created = submit(client, accounts, total=25, maxAgeDays=7)
    assert created["accounts_reused"] == 0
    _completed(client, created["job_id"])
    assert len(runs_of(emulator, accounts)) == 2
    check_job(client, created["job_id"], accounts, 25, "any")
    # ...and a smaller one reads the first 10 of those 25.
    smaller = submit(client, accounts, total=10, maxAgeDays=7)
    assert smaller["accounts_reused"] == 1
    _completed(client, smaller["job_id"])
    check_job(client, smaller["job_id"], accounts, 10, "any")
    assert len(runs_of(emulator, accounts)) == 2


def test_a_list_cut_by_a_budget_is_never_served_as_all_there_is(client, worker, emulator):
    """The budget stops the run at 71 of 3,000 followers: the list is cut by the budget, not
    exhausted, and a later job that wants 3,000 scrapes the account again."""
    accounts = _big("budget", 3000)
    cut = _completed(client, submit(client, accounts, total=3000, maxCostUsd=0.05)["job_id"])
    later = submit(client, accounts, total=3000, maxAgeDays=7)
    assert later["accounts_reused"] == 0
    status = _completed(client, later["job_id"])
    assert status["profiles_scraped"] == 3000 and len(runs_of(emulator, accounts)) == 2
    (row,) = client.get(f"/api/jobs/{cut['job_id']}/accounts").get_json()["accounts"]
    assert (row["status"], row["cut_by"]) == ("cut", "budget") and 0 < row["scraped"] < 3000, row
    assert cut["budget_exhausted"] and cut["accounts_by_status"]["cut"] == 1


def _big(prefix, followers):
    """An account name of this test's own whose emulated account has at least `followers`."""
    return next([name] for name in (f"{prefix}{uuid.uuid4().hex[:8]}" for _ in range(100))
                if emulated.follower_count(name) >= followers)


def test_an_old_list_is_not_read(client, engine, worker, emulator):
    accounts = _names("stale", 1)
    _completed(client, submit(client, accounts, total=10)["job_id"])
    with engine.begin() as conn:
        conn.execute(follower_lists.update().where(L.account == accounts[0])
                     .values(ended_at=store.utcnow() - timedelta(days=8)))
    assert submit(client, accounts, total=10, maxAgeDays=7)["accounts_reused"] == 0
    assert submit(client, accounts, total=10, maxAgeDays=0)["accounts_reused"] == 0


def test_concurrent_jobs_over_one_account_make_one_run(app, api_key, client, worker, emulator):
    emulator.configure(run_duration_s=2)
    accounts = _names("together", 1)
    created = []

    def post(gender):
        created.append(submit(authorised_client(app, api_key), accounts, gender=gender, total=30, maxAgeDays=7))
    threads = [threading.Thread(target=post, args=(gender,)) for gender in ("any", "male", "female")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(job["accounts_reused"] for job in created) == [0, 1, 1]
    for job in created:
        _completed(client, job["job_id"])
    assert len(runs_of(emulator, accounts)) == 1
    for job in created:
        gender = client.get(f"/api/job-status/{job['job_id']}").get_json()["target_gender"]
        check_job(client, job["job_id"], accounts, 30, gender)


def test_a_job_waiting_for_a_scrape_that_stops_scrapes_the_account_itself(client, worker, emulator):
    emulator.configure(run_duration_s=30)
    accounts = _names("orphan", 2)
    producer = submit(client, accounts, total=2 * 10)
    waiting = submit(client, accounts, gender="male", total=2 * 10, maxAgeDays=7)
    assert waiting["accounts_reused"] == 2
    assert client.post(f"/api/jobs/{producer['job_id']}/cancel").status_code == 200
    emulator.configure(run_duration_s=0)
    status = _completed(client, waiting["job_id"])
    assert status["total_batches"] == 2 and status["reuse"]["accounts"] == 0
    check_job(client, waiting["job_id"], accounts, 10, "male")
    assert len(runs_of(emulator, accounts)) == 2  # the cancelled one, and the waiting job's own


def test_deleting_a_job_keeps_the_lists_other_jobs_read(client, engine, worker, emulator):
    accounts = _names("kept", 2)
    first = _completed(client, submit(client, accounts, total=20)["job_id"])
    second = submit(client, accounts, total=20, maxAgeDays=7)
    _completed(client, second["job_id"])
    kept = all_results(client, second["job_id"])
    assert client.delete(f"/api/jobs/{first['job_id']}").status_code == 204
    assert all_results(client, second["job_id"]) == kept and kept
    third = submit(client, accounts, total=20, maxAgeDays=7)
    assert third["accounts_reused"] == 2
    _completed(client, third["job_id"])
    check_job(client, third["job_id"], accounts, 10, "any")


def test_a_key_deletes_everything_it_caused_to_be_stored(app, engine, client, worker, emulator):
    own = authorised_client(app, store.keys.create_api_key(engine, f"forget-{uuid.uuid4().hex[:8]}"))
    accounts = _names("forget", 2)
    mine = _completed(own, submit(own, accounts, total=20)["job_id"])
    theirs = submit(client, accounts, total=20, maxAgeDays=7)
    _completed(client, theirs["job_id"])
    kept = len(all_results(client, theirs["job_id"]))

    response = own.delete("/api/data")
    assert response.status_code == 200 and response.get_json() == {"jobs": 1, "follower_lists": 2}
    assert own.get(f"/api/job-status/{mine['job_id']}").status_code == 404
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(follower_lists)
                            .where(L.account.in_(accounts))).scalar() == 0
    assert len(all_results(client, theirs["job_id"])) == kept > 0, "another key's results stay"
    assert submit(client, accounts, total=20, maxAgeDays=7)["accounts_reused"] == 0


def test_purge_deletes_old_lists_no_job_reads(db):
    job_id, *_ = store.work.create_job(db, api_key_id=None, usernames=["p1", "p2"], target_gender="any",
                                       min_confidence=0.0, total_scrape_count=2, per_account_limit=1, batch_size=1,
                                       actor_id="test/actor")
    with db.begin() as conn:
        ids = conn.execute(sa.select(L.id).where(L.job_id == job_id).order_by(L.account)).scalars().all()
        conn.execute(list_pages.insert(), [
            {"list_id": list_id, "first": 0, "followers": 1, "rows": '[["x", "x", "X", "male", 1.0, false, false, null]]'}
            for list_id in ids])
        conn.execute(follower_lists.update().where(L.id.in_(ids))
                     .values(status="complete", ended_at=store.utcnow() - timedelta(days=40)))

    def left(conn):  # the database may be shared: count this test's lists and pages only
        return [conn.execute(sa.select(sa.func.count()).select_from(table).where(column.in_(ids))).scalar()
                for table, column in ((follower_lists, L.id), (list_pages, list_pages.c.list_id))]
    with db.begin() as conn:
        store.lists.purge(conn, store.utcnow() - timedelta(days=30))
        assert left(conn) == [2, 2], "the job still reads them"
    store.work.delete_job(db, job_id)
    with db.begin() as conn:
        store.lists.purge(conn, store.utcnow() - timedelta(days=50))
        assert left(conn) == [2, 2], "not old enough"
        assert store.lists.purge(conn, store.utcnow() - timedelta(days=30)) >= 2
        assert left(conn) == [0, 0]


def _list(db, account, status, scraped, requested=100, actor="test/actor", age_days=0.0, cut_by=None):
    ended = None if status == "pending" else store.utcnow() - timedelta(days=age_days)
    with db.begin() as conn:
        return conn.execute(follower_lists.insert().values(
            account=account, actor_id=actor, requested=requested, scraped=scraped, status=status, cut_by=cut_by,
            created_at=store.utcnow() - timedelta(days=age_days), ended_at=ended).returning(L.id)).scalar()


def test_plan_reads_the_newest_list_that_holds_enough_and_a_cut_one_only_as_far_as_it_goes(db):
    tag = uuid.uuid4().hex[:6]
    name = {key: f"{key}{tag}" for key in ("newest", "exhausted", "private", "few", "budget", "failed", "other",
                                            "old", "going", "small", "none")}
    _list(db, name["newest"], "complete", 100, age_days=3)
    newest = _list(db, name["newest"], "complete", 100, age_days=1)
    exhausted = _list(db, name["exhausted"], "exhausted", 12)  # all there is, whatever a job asks
    private = _list(db, name["private"], "private", 0)
    _list(db, name["few"], "complete", 40, requested=40)  # fewer than the 50 asked
    _list(db, name["budget"], "cut", 12, cut_by="budget")  # a budget stopped it: not all there is
    failed = _list(db, name["failed"], "cut", 60, cut_by="failure")  # cut, but holds the 50 asked
    _list(db, name["other"], "complete", 100, actor="another/actor")
    _list(db, name["old"], "complete", 100, age_days=8)
    going = _list(db, name["going"], "pending", 0)
    _list(db, name["small"], "pending", 0, requested=20)  # being scraped, but to fewer
    with db.connect() as conn:
        found = store.lists.plan(conn, list(name.values()), 50, "test/actor", 7)
        assert store.lists.plan(conn, list(name.values()), 50, "test/actor", 0).scrape == list(name.values())
        assert name["budget"] in store.lists.plan(conn, [name["budget"]], 12, "test/actor", 7).stored, \
            "a cut list serves what it holds"
    assert found.stored == {name["newest"]: newest, name["exhausted"]: exhausted, name["private"]: private,
                            name["failed"]: failed}
    assert found.shared == {name["going"]: going}
    assert found.scrape == [name[key] for key in ("few", "budget", "other", "old", "small", "none")]
    found, followers = store.lists.preview(db, list(name.values()), 50, "test/actor", 7)
    assert followers == 50 + 12 + 0 + 50 + 50  # each cut to the limit, exhausted as it is, the shared one at most the limit


def test_concurrent_deletions_of_a_keys_data_while_its_jobs_store(app, engine, worker, emulator):
    """Rounds of DELETE /api/data at once, while the worker stores the key's jobs: every answer
    is 200, and each job and list is counted by exactly one answer."""
    own = authorised_client(app, store.keys.create_api_key(engine, f"racer-{uuid.uuid4().hex[:8]}"))
    jobs = [submit(own, _names(f"race{n}", 8), total=8 * 2000) for n in range(3)]
    eventually(lambda: [own.get(f"/api/job-status/{job['job_id']}").get_json() for job in jobs],
               lambda statuses: any(status["batches_storing"] for status in statuses), 30, 0.02)
    answers = []

    def forget():
        response = own.delete("/api/data")
        answers.append((response.status_code, response.get_json()))
    for _ in range(3):
        threads = [threading.Thread(target=forget) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert {code for code, _ in answers} == {200}, answers
    assert sum(body["jobs"] for _, body in answers) == 3
    assert sum(body["follower_lists"] for _, body in answers) == 3 * 8
    assert all(own.get(f"/api/job-status/{job['job_id']}").status_code == 404 for job in jobs)
