"""The actor adapters, row by row, and a job through each of the four supported actors on the
emulator, which serves each as it really answers: exact source accounts, per-account counts and
statuses (a private account, a missing one, a short list, a list continued past the actor's
per-run cap, a spent quota), the overlap of the accounts' followers, and no paid run twice.

Each actor gets a stack of its own (`stack.Stack`: database, queue, worker, clock and webhook
receiver; the session worker runs another actor), with the default timers.
"""
import time
from contextlib import contextmanager

import pytest

import apify_emulator as emulated
from celery_config import request_starts
from utils.actors import ADAPTERS, CursorRow, ErrorRow, continuations
from utils.config import DEFAULT_ACTOR_ID

from conftest import check_job, runs_of, submit, wait_for_job
from stack import Stack, throwaway_database

APIFY, SCRAPING, NETAJI = ("apify/instagram-followers-following-scraper",
                           "scraping_solutions/instagram-scraper-followers-following-no-cookies",
                           "thenetaji/instagram-followers-followings-scraper")
ACCOUNTS = ["nike", "adidas", "natgeo", "missingfan", "privatefan", "shop1", "quotafan"]
LIMIT = 1200  # natgeo has 331 followers, shop1 1,236; the others more
# How each account's list ends, by actor: what the emulator serves, as each actor tells it.
QUOTA = ("cut", "quota")
ENDINGS = {
    APIFY: {"missingfan": ("not_found", None), "privatefan": ("private", None)},
    SCRAPING: {"missingfan": ("exhausted", None), "privatefan": ("exhausted", None)},
    NETAJI: {"missingfan": ("exhausted", None), "privatefan": ("exhausted", None)},
    DEFAULT_ACTOR_ID: {"missingfan": QUOTA, "privatefan": QUOTA},  # one account per run: an empty run
}


# -- reading rows ----------------------------------------------------------------------------------

def test_each_adapter_reads_its_actor_rows_error_rows_cursor_rows_and_page_wrappers():
    accounts = ["nike", "adidas"]
    apify = ADAPTERS[APIFY]
    (follower,) = apify.read({"userId": "1", "username": "Ana", "fullName": "Ana Souza", "sourceUsername": "nike"},
                             accounts)
    assert (follower.profile_id, follower.username, follower.source) == ("1", "ana", "nike")
    assert apify.read({"error": "private_account", "sourceUsername": "adidas"}, accounts) == [
        ErrorRow("adidas", "private", None, "private_account")]
    wrapped = ADAPTERS[NETAJI].read({"cursor_next": "c2", "results": [
        {"id": "2", "username": "bo", "source_username": "adidas"}, {"resumeCursor": "c3", "source_username": "nike"}]},
        accounts)
    assert [type(row) for row in wrapped] == [type(follower), CursorRow] and wrapped[1].cursor == "c3"
    plain = ADAPTERS[DEFAULT_ACTOR_ID]
    assert plain.accounts_per_run == 1 and plain.read({"id": "3", "username": "cy"}, ["puma"])[0].source == "puma"
    assert ADAPTERS[DEFAULT_ACTOR_ID].build_input(["puma"], 10) == {"usernames": ["puma"], "max_count": 50}
    assert ADAPTERS[SCRAPING].build_input(["puma"], 10, "tok") == {
        "Account": ["puma"], "resultsLimit": 10, "dataToScrape": "Followers", "continuationToken": "tok"}


def test_the_output_record_says_which_lists_go_on_and_when_a_quota_is_spent():
    output = {"continuations": [{"account": "nike", "hasNextPage": True, "nextContinuationToken": "t1"},
                                {"account": "adidas", "hasNextPage": False, "nextContinuationToken": None}]}
    assert continuations(output, ["nike", "adidas"]) == ({"nike": "t1"}, None)
    assert continuations({"success": False, "status": "DAILY_LIMIT_REACHED"}, ["nike"])[1] == "DAILY_LIMIT_REACHED"
    assert continuations(None, ["nike"]) == ({}, None)


# -- a job through each actor ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def actor_db():
    with throwaway_database("followsift_actors") as url:
        yield url


@contextmanager
def stack_for(actor, actor_db, redis_url, service_settings, tmp_path):
    """A stack of its own for the actor, on its own queue (each actor's worker runs that actor)."""
    queue = f"{service_settings['CELERY_QUEUE']}-{tmp_path.name}"
    own = Stack(actor_db, redis_url, apify_actor_id=actor, batch_size=2, celery_queue=queue)
    env = {**service_settings, "APIFY_ACTOR_ID": actor, "BATCH_SIZE": "2", "CELERY_QUEUE": queue}
    with own.worker_and_clock(env, tmp_path):
        yield actor, own.app, own.client
    own.close()


@pytest.fixture(params=[APIFY, SCRAPING, NETAJI, DEFAULT_ACTOR_ID])
def actor_stack(request, actor_db, redis_url, service_settings, emulator, tmp_path):
    emulator.fault(route="start_run", quota=True, when_input_contains="quotafan", times=None)
    with stack_for(request.param, actor_db, redis_url, service_settings, tmp_path) as stack:
        yield stack


def test_a_job_through_each_actor_knows_each_account(actor_stack, emulator):
    actor, app, client = actor_stack
    job_id = submit(client, ACCOUNTS, total=len(ACCOUNTS) * LIMIT)["job_id"]
    status = wait_for_job(client, job_id, timeout=120)
    assert (status["status"], status["batches_failed"]) == ("completed", 0), status

    served = [a for a in ACCOUNTS if a != "quotafan"]
    _, profiles = check_job(client, job_id, served, LIMIT, "any")  # every follower with its exact sources
    accounts = {a["account"]: a for a in client.get(f"/api/jobs/{job_id}/accounts?limit=3").get_json()["accounts"]}
    accounts |= _rest_of_accounts(client, job_id)
    endings = {"nike": ("complete", None), "adidas": ("complete", None), "natgeo": ("exhausted", None),
               "shop1": ("complete", None), "quotafan": QUOTA, **ENDINGS[actor]}
    assert {name: (row["status"], row["cut_by"]) for name, row in accounts.items()} == endings
    for name, row in accounts.items():
        assert row["requested"] == LIMIT
        assert row["scraped"] == (0 if name == "quotafan" else min(LIMIT, emulated.follower_count(name)))
        assert row["kept"] == sum(name in p["source_accounts"] for p in profiles)
        assert sum(row["gender_breakdown"].values()) == row["scraped"]
    assert accounts["quotafan"]["reason"] and accounts["natgeo"]["reason"]
    counted = {s: n for s, n in status["accounts_by_status"].items() if n}
    statuses = [ending for ending, _ in endings.values()]
    assert counted == {s: statuses.count(s) for s in set(statuses)}

    runs = {a: len([r for r in runs_of(emulator, ACCOUNTS) if a in r["usernames"]]) for a in ACCOUNTS}
    continued = 2 if actor == SCRAPING else 1  # 1,000 a run: the second goes on from the token
    assert runs["nike"] == runs["adidas"] == runs["shop1"] == continued
    paid = len(runs_of(emulator, ACCOUNTS))
    request_starts(app.extensions["celery"])  # a start delivered again after the job ended
    time.sleep(2)
    assert len(runs_of(emulator, ACCOUNTS)) == paid, "nothing is paid for twice"
    _check_overlap(client, job_id, profiles)


def _rest_of_accounts(client, job_id):
    rows, cursor = {}, ""
    while cursor is not None:
        page = client.get(f"/api/jobs/{job_id}/accounts?limit=3&cursor={cursor}").get_json() if cursor else \
            client.get(f"/api/jobs/{job_id}/accounts?limit=3").get_json()
        rows |= {a["account"]: a for a in page["accounts"]}
        cursor = page["next_cursor"]
    return rows


def _check_overlap(client, job_id, profiles):
    overlap = client.get(f"/api/jobs/{job_id}/overlap?top=3").get_json()
    assert overlap["accounts"] == ["adidas", "nike", "shop1"]  # 1,200 each, then by name
    for pair in overlap["shared"]:
        assert pair["shared"] == sum({pair["a"], pair["b"]} <= set(p["source_accounts"]) for p in profiles)
    for name, unique in overlap["unique"].items():
        assert unique == sum(p["source_accounts"] == [name] for p in profiles)
    assert any(pair["shared"] for pair in overlap["shared"]), "the emulator's followers overlap"


def test_a_failed_continuation_run_goes_on_from_its_token_and_pays_for_no_page_twice(
        actor_db, redis_url, service_settings, emulator, tmp_path):
    """1,000 followers a run, 2,500 asked: the second run fails once. Its retry goes on from the
    token the first run left (not from the start), and the account says complete only when it is."""
    account = "adidas"
    emulator.fault(route="start_run", run_status="FAILED", times=1, skip=1, when_input_contains=account)
    with stack_for(SCRAPING, actor_db, redis_url, service_settings, tmp_path) as (_, _, client):
        job_id = submit(client, [account], total=2500)["job_id"]
        status = wait_for_job(client, job_id, timeout=120)
        assert (status["status"], status["batches_failed"]) == ("completed", 0), status
        check_job(client, job_id, [account], 2500, "any")
        (row,) = client.get(f"/api/jobs/{job_id}/accounts").get_json()["accounts"]
        assert (row["status"], row["scraped"]) == ("complete", 2500)
    runs = runs_of(emulator, [account])
    assert [run["status"] for run in runs] == ["SUCCEEDED", "FAILED", "SUCCEEDED", "SUCCEEDED"]
    assert sum(run["item_count"] for run in runs) == 2500, "every follower delivered (and paid for) once"
    assert status["cost_usd"] == pytest.approx(sum(run["usage_total_usd"] for run in runs), abs=1e-6)
