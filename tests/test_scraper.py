"""The scraper against the emulator through the real apify-client, and output normalisation."""
import pytest

import apify_emulator as emulated
from utils.actors import ADAPTERS
from utils.config import DEFAULT_ACTOR_ID, Settings
from utils.scraper import (
    CapacityRefused, FatalApifyError, Follower, Scraper, TransientApifyError, build_input, normalise,
)

ACCOUNTS = ["nike", "adidas"]


@pytest.mark.parametrize("item, expected", [
    (  # datadoping-style, the default actor
        {"id": "11", "username": "Ana.Souza", "full_name": "Ana Souza", "is_private": False, "is_verified": True,
         "profile_pic_url": "https://x/1.jpg", "source_username": "nike"},
        Follower("11", "ana.souza", "Ana Souza", False, True, "https://x/1.jpg", "nike"),
    ),
    (  # scraping_solutions: the source is `username_scrape`
        {"id": 12, "username": "joao", "full_name": "João", "is_private": "false", "username_scrape": "@Adidas",
         "type": "Followers"},
        Follower("12", "joao", "João", False, None, None, "adidas"),
    ),
    (  # Apify's own actor: `user_id`, no `id`
        {"user_id": "13", "username": "li.wei", "full_name": "李伟", "type": "FOLLOWER", "source_username": "nike"},
        Follower("13", "li.wei", "李伟", None, None, None, "nike"),
    ),
    (  # camelCase with a nested user object
        {"sourceUsername": "adidas", "user": {"pk": 14, "username": "olga", "fullName": "Ольга",
                                              "isPrivate": True, "isVerified": False, "profilePicUrl": "u"}},
        Follower("14", "olga", "Ольга", True, False, "u", "adidas"),
    ),
    (  # the source as a profile URL; no id: the username stands in
        {"username": "sam", "full_name": None, "input_username": "https://www.instagram.com/nike/"},
        Follower("sam", "sam", "", None, None, None, "nike"),
    ),
    (  # a source that is not one of the batch's accounts is not trusted
        {"id": "15", "username": "kim", "source_username": "puma"},
        Follower("15", "kim", "", None, None, None, None),
    ),
])
def test_normalise_tolerates_the_common_actors(item, expected):
    assert normalise(item, ACCOUNTS) == expected


@pytest.mark.parametrize("item", [{}, {"full_name": "No Handle"}, {"id": "1", "username": ""}, [], "x", None])
def test_items_naming_nobody_are_dropped(item):
    assert normalise(item, ACCOUNTS) is None


def test_single_account_batches_attribute_without_a_source_field():
    assert normalise({"id": "1", "username": "x"}, ["nike"]).source == "nike"


def test_build_input_fills_the_template():
    template = {"Account": "{accounts}", "resultsLimit": "{limit}", "dataToScrape": "Followers",
                "nested": {"max": "{limit}"}}
    assert build_input(template, ("a", "b"), 7) == {
        "Account": ["a", "b"], "resultsLimit": 7, "dataToScrape": "Followers", "nested": {"max": 7},
    }


# -- against the emulator ----------------------------------------------------------------------

def _scraper(emulator, **overrides):
    settings = Settings(apify_token="test-token", apify_api_url=emulator.url, apify_http_retries=0)
    return Scraper(settings.with_overrides(overrides))


def _start(scraper, accounts, limit):
    adapter = ADAPTERS.get(scraper.actor_id, ADAPTERS[DEFAULT_ACTOR_ID])
    return scraper.start_run(adapter.build_input(accounts, limit), limit * len(accounts))


def _items(scraper, run_id, page_size=100):
    """Read a run's dataset page by page as the worker does."""
    state = scraper.run_state(run_id)
    assert state.status == "SUCCEEDED"
    items, offset, last = [], 0, False
    while not last:
        page = scraper.read_page(state.dataset_id, offset, page_size)
        items += page.items
        offset, last = page.next_offset, page.last
    return items


def test_a_run_is_read_page_by_page_to_the_last_item(emulator):
    accounts = [f"brand{i}" for i in range(60)]  # a gzipped request body
    scraper = _scraper(emulator, apify_actor_id="apify/instagram-followers-following-scraper")
    items = _items(scraper, _start(scraper, accounts, 7))
    assert [item["userId"] for item in items] == [f.id for a in accounts for f in emulated.followers(a, 7)]


def test_a_bad_token_is_fatal(emulator):
    emulator.configure(valid_tokens=["another-token"])
    with pytest.raises(FatalApifyError, match="401"):
        _start(_scraper(emulator), ACCOUNTS, 5)


def test_an_unknown_actor_is_fatal(emulator):
    with pytest.raises(FatalApifyError, match="404"):
        _start(_scraper(emulator, apify_actor_id="someone/nothing-here"), ACCOUNTS, 5)


@pytest.mark.parametrize("status", [429, 500, 503])
def test_rate_limits_and_server_errors_are_transient(emulator, status):
    emulator.fault(route="start_run", status=status, type="boom", message="try later")
    with pytest.raises(TransientApifyError, match=str(status)):
        _start(_scraper(emulator), ACCOUNTS, 5)


@pytest.mark.parametrize("run_status", ["FAILED", "TIMED-OUT", "ABORTED"])
def test_a_run_that_ends_badly_says_so_in_its_state(emulator, run_status):
    emulator.fault(route="start_run", run_status=run_status)
    scraper = _scraper(emulator)
    state = scraper.run_state(_start(scraper, ACCOUNTS, 5))
    assert state.status == run_status
    assert scraper.run_state("NoSuchRun00000000") is None


@pytest.mark.parametrize("limit", [{"max_memory_mb": 1024}, {"max_concurrent_runs": 1}])
def test_a_full_account_is_back_pressure_not_a_failure(emulator, limit):
    emulator.configure(run_duration_s=30, **limit)
    scraper = _scraper(emulator)
    _start(scraper, ACCOUNTS, 5)
    with pytest.raises(CapacityRefused, match="limit"):
        _start(scraper, ACCOUNTS, 5)


@pytest.mark.parametrize("status, type_, message", [
    (402, "not-enough-usage-to-run-paid-actor", "You do not have enough usage left"),
    (403, "platform-feature-disabled", "Monthly usage hard limit exceeded"),
    (402, "emulated-error", "User exceeded their usage limit"),
])
def test_billing_exhaustion_is_fatal_and_told_to_tenants_without_the_details(emulator, status, type_, message):
    emulator.fault(route="start_run", status=status, type=type_, message=message)
    with pytest.raises(FatalApifyError) as caught:
        _start(_scraper(emulator), ACCOUNTS, 5)
    assert message in str(caught.value) and message not in caught.value.public
    assert "operator" in caught.value.public


def test_the_account_runs_and_limits_are_read(emulator):
    emulator.configure(run_duration_s=30, max_memory_mb=4096, max_concurrent_runs=3)
    scraper = _scraper(emulator)
    run_id = _start(scraper, ACCOUNTS, 5)
    assert scraper.recent_runs(10) == {run_id: "RUNNING"}
    assert scraper.account_limits() == {"max_runs": 3, "max_memory_gb": 4.0, "active_runs": 1,
                                        "memory_used_gb": 1.0}


def test_no_emulator_at_all_is_transient(emulator):
    scraper = Scraper(Settings(apify_token="t", apify_api_url="http://127.0.0.1:9", apify_http_retries=0))
    with pytest.raises(TransientApifyError, match="network error"):
        _start(scraper, ACCOUNTS, 5)
