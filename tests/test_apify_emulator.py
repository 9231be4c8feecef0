"""The Apify emulator driven by the real apify-client 3.4 over HTTP (and raw urllib where the client
cannot reach: the legacy `/v2/acts/` path, `?token=`, a missing token)."""
import gzip
import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import timedelta
from decimal import Decimal

import pytest
from apify_client import ApifyClient
from apify_client.errors import InvalidRequestError, NotFoundError, ServerError, UnauthorizedError

from apify_emulator import EmulatorServer, follower_count, followers, spawn

os.environ["NO_PROXY"] = "127.0.0.1,localhost"  # impit would send even 127.0.0.1 through a proxy
TOKEN = "good-token"
DATADOPING = "datadoping/instagram-followers-scraper"
PRICE, START_FEE = 0.0007, 0.00005
ACCOUNTS = ["nike", "natgeo", "zara"]
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def server():
    with EmulatorServer(valid_tokens=[TOKEN]) as emu:
        yield emu


@pytest.fixture
def emu(server):
    control(server.url, "reset", {})
    yield server


def control(url, path, payload=None):
    data = None if payload is None else json.dumps(payload).encode()
    request = urllib.request.Request(f"{url}/_emulator/{path}", data=data, method="GET" if data is None else "POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def client_for(url, token=TOKEN):
    return ApifyClient(token=token, api_url=url, max_retries=1, min_delay_between_retries=timedelta(milliseconds=5))


def call(emu, accounts=ACCOUNTS, limit=20, actor=DATADOPING, **kwargs):
    return client_for(emu.url).actor(actor).call(run_input={"usernames": accounts, "max_count": limit},
                                                 logger=None, **kwargs)


def items_of(url, run, token=TOKEN, **kwargs):
    return list(client_for(url, token).dataset(run.default_dataset_id).iterate_items(**kwargs))


def expected(accounts, limit):
    return [(f, account) for account in accounts for f in followers(account, limit)]


# --------------------------------------------------------------------------- runs and items


def test_call_serves_the_followers_of_every_account_in_order(emu):
    run = call(emu, limit=20)
    want = expected(ACCOUNTS, 20)
    assert run.status == "SUCCEEDED"
    assert len(run.id) == 17 and run.id.isalnum()
    items = items_of(emu.url, run, clean=True)
    assert [(i["id"], i["username"], i["full_name"]) for i in items] == \
           [(f.id, f.username, f.full_name) for f, _account in want]
    assert not any("source_username" in i for i in items), "the default actor does not name the input account"
    assert run.charged_event_counts == {"apify-actor-start": 1, "apify-default-dataset-item": len(want)}
    assert run.usage_total_usd == pytest.approx(START_FEE + PRICE * len(want))


def test_start_then_wait_for_finish_long_polls_a_running_run(emu):
    control(emu.url, "config", {"run_duration_s": 0.4})
    client = client_for(emu.url)
    started = client.actor(DATADOPING).start(run_input={"usernames": ["nike"], "max_count": 10})
    assert started.status == "RUNNING" and started.finished_at is None
    began = time.monotonic()
    finished = client.run(started.id).wait_for_finish()
    assert finished.status == "SUCCEEDED"
    assert 0.2 < time.monotonic() - began < 1.5
    assert finished.finished_at > finished.started_at
    assert len(items_of(emu.url, finished)) == 10


def test_wait_for_finish_is_capped_by_wait_cap(emu):
    control(emu.url, "config", {"run_duration_s": 3, "wait_cap_s": 0.2})
    run = client_for(emu.url).actor(DATADOPING).start(run_input={"usernames": ["nike"], "max_count": 10})
    began = time.monotonic()
    with urllib.request.urlopen(f"{emu.url}/v2/actor-runs/{run.id}?waitForFinish=60&token={TOKEN}") as response:
        assert json.loads(response.read())["data"]["status"] == "RUNNING"
    assert 0.15 < time.monotonic() - began < 1.0


def test_gzipped_input_of_100_usernames(emu):
    accounts = [f"creator_{i:03d}" for i in range(100)]
    run = call(emu, accounts, limit=2)
    assert run.stats.input_body_len >= 1024  # so the client sent it gzip-compressed
    assert [r["usernames"] for r in control(emu.url, "stats")["runs"]] == [accounts]
    assert len(items_of(emu.url, run, clean=True)) == sum(min(2, follower_count(a)) for a in accounts)


PROFILE_CASES = [
    (DATADOPING, {"max_count": 5}, "usernames",
     {"id", "username", "full_name", "is_private", "is_verified", "profile_pic_url"}),
    ("scraping_solutions/instagram-scraper-followers-following-no-cookies",
     {"resultsLimit": 5, "dataToScrape": "Followers"}, "Account",
     {"id", "username", "full_name", "is_private", "is_verified", "profile_pic_url", "username_scrape", "type"}),
    ("apify/instagram-followers-following-scraper", {"resultsLimit": 5, "dataToScrape": "followers"}, "usernames",
     {"userId", "username", "fullName", "type", "sourceUsername", "isVerified", "isPrivate", "profilePicUrl"}),
    ("thenetaji/instagram-followers-followings-scraper", {"maxItem": 5, "type": "followers"}, "username",
     {"id", "username", "full_name", "is_private", "is_verified", "profile_pic_url", "source_username", "enriched"}),
    ("memo23/instagram-followers-scraper", {"maxItems": 5}, "usernames", {"sourceUsername", "user"}),
]


def _identity(item):
    """(id, username, full_name, source) whatever the actor calls them."""
    if "user" in item:
        user = item["user"]
        assert set(user) == {"pk", "username", "fullName", "isPrivate", "isVerified", "profilePicUrl"}
        return user["pk"], user["username"], user["fullName"], item["sourceUsername"]
    source = item.get("source_username", item.get("username_scrape", item.get("sourceUsername")))
    return item.get("id", item.get("userId")), item["username"], item.get("full_name", item.get("fullName")), source


@pytest.mark.parametrize("actor, limit_input, users_key, keys", PROFILE_CASES, ids=lambda v: str(v)[:12])
def test_each_actor_profile_has_its_own_input_and_item_shape(emu, actor, limit_input, users_key, keys):
    run = client_for(emu.url).actor(actor).call(run_input={users_key: ["@Nike", "adidas"], **limit_input}, logger=None)
    items = items_of(emu.url, run, clean=True)
    assert all(set(item) == keys for item in items)
    named = actor != DATADOPING  # the default actor does not say whose follower a row is
    assert [_identity(i) for i in items] == [(f.id, f.username, f.full_name, a if named else None)
                                             for f, a in expected(["nike", "adidas"], 5)]
    assert {item.get("type") for item in items} <= {None, "Followers", "FOLLOWER"}


def test_wrong_input_keys_are_invalid_input_and_unknown_actors_are_404(emu):
    actor = client_for(emu.url).actor("apify/instagram-followers-following-scraper")
    with pytest.raises(InvalidRequestError) as error:
        actor.start(run_input={"usernames": ["nike"], "max_count": 5})  # that actor's limit is resultsLimit
    assert error.value.type == "invalid-input"
    with pytest.raises(NotFoundError) as error:
        client_for(emu.url).actor("someone/unknown-actor").start(run_input={"usernames": ["nike"], "max_count": 1})
    assert error.value.type == "actor-not-found"
    assert client_for(emu.url).run("NoSuchRun00000000").get() is None


def test_legacy_acts_path_token_query_and_raw_gzip(emu):
    body = gzip.compress(json.dumps({"usernames": ["nike"], "max_count": 3}).encode())
    request = urllib.request.Request(
        f"{emu.url}/v2/acts/datadoping~instagram-followers-scraper/runs?token={TOKEN}&maxItems=2", data=body,
        method="POST", headers={"Content-Type": "application/json", "Content-Encoding": "gzip"})
    with urllib.request.urlopen(request) as response:
        assert response.status == 201
        run = json.loads(response.read())["data"]
        assert response.headers["Location"].endswith(f"/v2/actor-runs/{run['id']}")
    assert run["options"]["maxItems"] == 2 and run["chargedEventCounts"]["apify-default-dataset-item"] == 2


# --------------------------------------------------------------------------- auth and faults


def test_bad_and_missing_tokens_are_401(emu):
    with pytest.raises(UnauthorizedError) as error:
        client_for(emu.url, token="wrong-token").actor(DATADOPING).call(
            run_input={"usernames": ["nike"], "max_count": 1}, logger=None)
    assert error.value.type == "user-or-token-not-found"
    with pytest.raises(urllib.error.HTTPError) as raw:
        urllib.request.urlopen(f"{emu.url}/v2/actor-runs/whatever")
    assert raw.value.code == 401
    assert json.loads(raw.value.read())["error"]["type"] == "token-not-provided"


def test_a_429_is_retried_by_the_client_then_succeeds(emu):
    control(emu.url, "faults", {"rules": [{"route": "start_run", "status": 429, "times": 1}]})
    assert call(emu).status == "SUCCEEDED"
    assert control(emu.url, "stats")["requests"]["start_run"] == {"429": 1, "201": 1}


def test_skip_lets_the_first_matching_requests_through(emu):
    control(emu.url, "faults", {"rules": [{"route": "start_run", "status": 500, "times": 1, "skip": 1}]})
    assert call(emu).status == "SUCCEEDED"
    assert call(emu).status == "SUCCEEDED"
    assert control(emu.url, "stats")["requests"]["start_run"] == {"201": 2, "500": 1}


def test_503_forever_exhausts_the_retries(emu):
    control(emu.url, "faults", {"rules": [{"route": "any", "status": 503}]})
    with pytest.raises(ServerError) as error:
        call(emu)
    assert error.value.status_code == 503 and error.value.attempt == 2
    assert error.value.type == "internal-server-error"


def test_probabilistic_faults_are_seeded(emu):
    first = _count_faults(emu)
    assert 0 < first < 20 and first == _count_faults(emu)


def _count_faults(emu, attempts=20):
    control(emu.url, "reset", {})
    control(emu.url, "faults", {"rules": [{"route": "get_actor", "status": 500, "probability": 0.5}]})
    for _ in range(attempts):
        try:
            urllib.request.urlopen(f"{emu.url}/v2/actors/{DATADOPING.replace('/', '~')}?token={TOKEN}").close()
        except urllib.error.HTTPError:
            pass
    return control(emu.url, "stats")["requests"]["get_actor"].get("500", 0)


def test_a_run_outcome_rule_fails_only_the_matching_input(emu):
    control(emu.url, "faults", {"rules": [{"route": "start_run", "run_status": "FAILED", "when_input_contains": "doomed"}]})
    failed = call(emu, ["nike", "doomed_account"])
    assert failed.status == "FAILED" and items_of(emu.url, failed) == []
    assert failed.usage_total_usd == pytest.approx(START_FEE)
    assert call(emu, ["nike"]).status == "SUCCEEDED"


def test_items_limit_rule_truncates_a_succeeded_run(emu):
    control(emu.url, "faults", {"rules": [{"route": "start_run", "items_limit": 7, "times": 1}]})
    run = call(emu, limit=20)
    assert run.status == "SUCCEEDED" and len(items_of(emu.url, run)) == 7


def test_abort_ends_a_running_run_with_the_items_so_far(emu):
    control(emu.url, "config", {"run_duration_s": 10})
    client = client_for(emu.url)
    run = client.actor(DATADOPING).start(run_input={"usernames": ACCOUNTS, "max_count": 1000})
    time.sleep(0.2)
    aborted = client.run(run.id).abort()
    assert aborted.status == "ABORTED"
    assert client.run(run.id).wait_for_finish().status == "ABORTED"
    partial = len(items_of(emu.url, run, clean=True))
    assert 0 < partial < sum(min(1000, follower_count(a)) for a in ACCOUNTS) / 5
    assert partial == aborted.charged_event_counts["apify-default-dataset-item"]
    assert control(emu.url, "stats")["runs_aborted"] == 1


def test_run_timeout_shorter_than_the_scrape_times_out(emu):
    control(emu.url, "config", {"run_duration_s": 2})
    run = call(emu, limit=100, run_timeout=timedelta(seconds=1))
    assert run.status == "TIMED-OUT"
    assert 0 < run.charged_event_counts["apify-default-dataset-item"] < 300


def test_latency_is_added_to_api_calls(emu):
    control(emu.url, "config", {"latency_ms": 150})
    began = time.monotonic()
    client_for(emu.url).run("NoSuchRun00000000").get()
    assert time.monotonic() - began >= 0.15


def test_invalid_fault_rules_are_rejected(emu):
    for rule in ({"route": "start_run"}, {"route": "nowhere", "status": 500},
                 {"route": "get_run", "run_status": "FAILED"}, {"status": 500, "colour": "red"}):
        with pytest.raises(urllib.error.HTTPError) as error:
            control(emu.url, "faults", {"rules": [rule]})
        assert error.value.code == 400


# --------------------------------------------------------------------------- cost and datasets


def test_max_items_truncates_the_dataset_and_the_cost(emu):
    run = call(emu, limit=20, max_items=30)
    assert run.options.max_items == 30
    assert len(items_of(emu.url, run)) == 30
    assert run.usage_total_usd == pytest.approx(START_FEE + PRICE * 30)


def test_max_total_charge_usd_stops_the_run_at_the_budget(emu):
    run = call(emu, limit=20, max_total_charge_usd=Decimal("0.01"))
    affordable = int((0.01 - START_FEE) / PRICE)
    assert run.options.max_total_charge_usd == 0.01
    assert len(items_of(emu.url, run)) == affordable == 14
    assert run.usage_total_usd <= 0.01


def test_pages_desc_fields_and_pagination_headers(emu):
    run = call(emu, limit=20)
    dataset = client_for(emu.url).dataset(run.default_dataset_id)
    ids = [f.id for f, _ in expected(ACCOUNTS, 20)]
    page = dataset.list_items(offset=5, limit=10, fields=["id", "username"])
    assert (page.total, page.offset, page.count, page.limit, page.desc) == (60, 5, 10, 10, False)
    assert [item["id"] for item in page.items] == ids[5:15] and set(page.items[0]) == {"id", "username"}
    backwards = dataset.list_items(offset=2, limit=3, desc=True, omit=["#debug", "profile_pic_url"])
    assert [item["id"] for item in backwards.items] == ids[::-1][2:5]
    assert "profile_pic_url" not in backwards.items[0] and "#debug" not in backwards.items[0]
    assert dataset.list_items().limit == 999999999999
    assert dataset.get().item_count == 60


def test_debug_field_is_hidden_unless_clean_is_false(emu):
    run = call(emu, ["nike"], limit=30)
    raw, clean = items_of(emu.url, run, clean=False), items_of(emu.url, run, clean=True)
    want = followers("nike", 30)
    assert [item["#debug"]["intended_gender"] for item in raw] == [f.intended_gender for f in want]
    assert [item["#debug"]["position"] for item in raw] == list(range(30))
    assert all("#debug" not in item for item in clean)
    assert all("#debug" not in item for item in items_of(emu.url, run, skip_hidden=True))


def test_command_line_prints_its_port_and_serves():
    process = subprocess.Popen([sys.executable, "-m", "apify_emulator", "--port", "0", "--token", "cli-token"],
                               cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        url = re.fullmatch(r"apify-emulator listening on (http://127\.0\.0\.1:\d+)\n", process.stdout.readline()).group(1)
        run = client_for(url, "cli-token").actor(DATADOPING).call(
            run_input={"usernames": ["nike"], "max_count": 4}, logger=None)
        assert [i["id"] for i in items_of(url, run, "cli-token")] == [f.id for f in followers("nike", 4)]
    finally:
        process.terminate()
        process.wait(10)


def test_spawn_returns_a_live_child_and_its_url():
    process, url = spawn("--wait-cap", "0.5")
    try:
        assert client_for(url).run("NoSuchRun00000000").get() is None
    finally:
        process.terminate()
        process.wait(10)
    assert process.returncode is not None


# --------------------------------------------------------------------------- the synthetic followers


def test_followers_are_deterministic_across_processes():
    script = "from apify_emulator import followers; print([tuple(f) for f in followers('nike', 40)])"
    outputs = {subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                              env={**os.environ, "PYTHONHASHSEED": seed}, cwd=ROOT).stdout for seed in ("1", "2")}
    assert outputs == {repr([tuple(f) for f in followers("nike", 40)]) + "\n"}
    assert followers("nike", 10, start=30) == followers("nike", 40)[30:]


def test_accounts_share_followers_consistently():
    first, second = followers("nike", 1000), followers("adidas", 1000)
    assert len({f.id for f in first}) == 1000  # no one twice within an account
    shared = {f.id for f in first} & {f.id for f in second}
    assert shared and all(f.shared for f in first if f.id in shared)
    assert {f for f in first if f.id in shared} == {f for f in second if f.id in shared}
    assert 0.10 <= sum(f.shared for f in first) / 1000 <= 0.20


def test_special_accounts_and_counts():
    assert follower_count("empty_shop") == 0 and followers("empty_shop", 50) == []
    assert follower_count("private.person") == 0 and followers("private.person", 50) == []
    counts = [follower_count(f"account{i}") for i in range(300)]
    assert sum(c < 1000 for c in counts) > 5 and sum(c >= 1000 for c in counts) > 250
    assert max(counts) > 10**7
    small = next(f"account{i}" for i, c in enumerate(counts) if c < 50)
    assert len(followers(small, 1000)) == follower_count(small)


def test_names_are_realistic_and_varied():
    people = [f for i in range(60) for f in followers(f"creator_{i}", 50)]
    names = [f.full_name for f in people]
    share = lambda predicate: sum(map(predicate, people)) / len(people)  # noqa: E731
    assert 0.06 <= share(lambda f: f.full_name == "") <= 0.15
    assert 0.02 <= share(lambda f: f.intended_gender is None and f.full_name != "") <= 0.10  # brands, couples
    assert 0.4 <= share(lambda f: f.intended_gender == "female") / share(lambda f: f.intended_gender == "male") <= 2.5
    scripts = {"Cyrillic": "\u0400-\u04ff", "Arabic": "\u0600-\u06ff", "Devanagari": "\u0900-\u097f",
               "Greek": "\u0370-\u03ff", "Hangul": "\uac00-\ud7af", "CJK": "\u4e00-\u9fff",
               "math letters": "\U0001d400-\U0001d7ff"}
    for script, block in scripts.items():
        assert any(re.search(f"[{block}]", name) for name in names), script
    assert any(re.search("[\U0001f300-\U0001faff]", name) for name in names)  # emoji
    assert any(" | " in name for name in names) and any(" & " in name for name in names)
    assert any(name.isupper() for name in names) and any(name.startswith(("Dr. ", "Mr. ", "Mrs. ")) for name in names)
    assert any(name.endswith(("Store", "Fan Club", "Official")) for name in names)
    assert all(re.fullmatch(r"[a-z0-9._]{1,30}", f.username) for f in people)
    assert len({f.culture for f in people}) >= 18
