"""Adapters for the Instagram follower actors, chosen by APIFY_ACTOR_ID alone.

Each adapter says how to ask its actor for followers (input names, limits, continuation), how
to read what it writes (rows, page wrappers, error rows, cursor rows), whether a row names the
input account it was found under, and how it continues a list. An actor id that no adapter
knows is served by the generic one, with APIFY_INPUT_TEMPLATE as its input.

Attribution is exact for every actor: one that does not name the source account is run one
account at a time (`accounts_per_run = 1`), and the run's account is the source of every row.
"""
from dataclasses import dataclass, field

from utils.scraper import Follower, build_input, normalise
from utils.store.schema import CutBy, ListStatus

# Reasons an actor gives, in its rows or its OUTPUT record, mapped onto how an account's list ended.
_PRIVATE, _MISSING = (ListStatus.PRIVATE, None), (ListStatus.NOT_FOUND, None)
_REASONS = (("private", _PRIVATE), ("not_found", _MISSING), ("not found", _MISSING), ("does not exist", _MISSING),
            ("no_such", _MISSING), ("doesn't exist", _MISSING), ("limit", (ListStatus.CUT, CutBy.QUOTA)),
            ("quota", (ListStatus.CUT, CutBy.QUOTA)), ("no_items", (ListStatus.EXHAUSTED, None)),
            ("no items", (ListStatus.EXHAUSTED, None)))
_CURSOR_KEYS = ("resumeCursor", "resume_cursor", "cursor", "next_cursor", "nextCursor", "end_cursor")
_WRAPPER_KEYS = ("results", "items", "followers", "data")


@dataclass(frozen=True)
class ErrorRow:
    """The actor said something went wrong for `account` (None: for the whole run): how its
    list ended (`status`, `cut_by`) and the actor's words."""

    account: str | None
    status: str
    cut_by: str | None
    reason: str


@dataclass(frozen=True)
class CursorRow:
    account: str | None
    cursor: str


@dataclass(frozen=True)
class Adapter:
    actor_id: str
    accounts_key: str
    limit_key: str
    names_source: bool
    fixed_input: dict = field(default_factory=dict)
    min_limit: int = 1  # the actor refuses a smaller limit; the batch's own limit still caps what is kept
    run_cap: int | None = None  # rows one run delivers at most, continued in a next run
    continuation_key: str | None = None  # input key that takes the previous run's token or cursor

    @property
    def accounts_per_run(self):
        """None: as many as a batch holds; 1 when rows do not say whose follower they are."""
        return None if self.names_source else 1

    def build_input(self, accounts, limit, continuation=None):
        run_input = {self.accounts_key: list(accounts), self.limit_key: max(limit, self.min_limit),
                     **self.fixed_input}
        if continuation and self.continuation_key:
            run_input[self.continuation_key] = continuation
        return run_input

    def read(self, item, accounts):
        """What one dataset item says: a list of `Follower`s, `ErrorRow`s and `CursorRow`s."""
        if not isinstance(item, dict):
            return []
        rows = next((item[key] for key in _WRAPPER_KEYS if isinstance(item.get(key), list)), None)
        if rows is not None:  # a page wrapper: {cursor_next, results: [...]}
            return [read for row in rows for read in self.read(row, accounts)]
        own = accounts[0] if len(accounts) == 1 else None
        if item.get("error") or item.get("errorMessage") or item.get("daily_limit_reached"):
            return [_error_row(item, accounts, own)]
        follower = normalise(item, accounts)
        if follower is not None:
            if not self.names_source:
                follower = _with_source(follower, own)
            return [follower]
        cursor = next((item[key] for key in _CURSOR_KEYS if isinstance(item.get(key), str) and item[key]), None)
        return [CursorRow(_source_of(item, accounts, own), cursor)] if cursor else []


def _with_source(follower, source):
    return Follower(follower.profile_id, follower.username, follower.full_name, follower.is_private,
                    follower.is_verified, follower.profile_pic_url, source)


def _source_of(item, accounts, own):
    for key in ("sourceUsername", "source_username", "username_scrape", "username", "input", "account"):
        value = str(item.get(key) or "").lstrip("@").lower()
        if value in accounts:
            return value
    return own


def _error_row(item, accounts, own):
    text = " ".join(str(item.get(key) or "") for key in ("error", "errorMessage", "message", "status"))
    if item.get("daily_limit_reached"):
        text += " daily limit"
    return ErrorRow(_source_of(item, accounts, own), *reason_status(text), text.strip()[:300])


def reason_status(text):
    """(status, cut_by) of an account's list for what an actor said (default: cut by a failure)."""
    lowered = text.lower()
    return next((ending for needle, ending in _REASONS if needle in lowered), (ListStatus.CUT, CutBy.FAILURE))


def continuations(output, accounts):
    """From a run's OUTPUT record: ({account: token} for lists that go on, quota message or None)."""
    if not isinstance(output, dict):
        return {}, None
    quota = None
    if output.get("success") is False or "LIMIT" in str(output.get("status", "")).upper():
        quota = str(output.get("status") or output.get("message") or "the actor's allowance ran out")
    tokens = {}
    for entry in output.get("continuations") or []:
        account = str(entry.get("account") or "").lstrip("@").lower()
        if account in accounts and entry.get("hasNextPage") and entry.get("nextContinuationToken"):
            tokens[account] = entry["nextContinuationToken"]
    cursor = output.get("resumeCursor") or output.get("resume_cursor")
    if cursor and len(accounts) == 1:
        tokens[accounts[0]] = cursor
    return tokens, quota


ADAPTERS = {adapter.actor_id: adapter for adapter in (
    Adapter("datadoping/instagram-followers-scraper", "usernames", "max_count", names_source=False, min_limit=50),
    Adapter("apify/instagram-followers-following-scraper", "usernames", "resultsLimit", names_source=True,
            fixed_input={"dataToScrape": "followers"}),
    Adapter("scraping_solutions/instagram-scraper-followers-following-no-cookies", "Account", "resultsLimit",
            names_source=True, fixed_input={"dataToScrape": "Followers"}, run_cap=1000,
            continuation_key="continuationToken"),
    Adapter("thenetaji/instagram-followers-followings-scraper", "username", "maxItem", names_source=True,
            fixed_input={"type": "followers"}, continuation_key="resumeCursor"),
)}


@dataclass(frozen=True)
class GenericAdapter(Adapter):
    """An actor no adapter knows: APIFY_INPUT_TEMPLATE's "{accounts}" and "{limit}" filled in."""

    template: dict = field(default_factory=dict)

    def build_input(self, accounts, limit, continuation=None):
        return build_input(self.template, accounts, limit)


def adapter_for(settings):
    known = ADAPTERS.get(settings.apify_actor_id)
    if known is not None:
        return known
    return GenericAdapter(settings.apify_actor_id, "", "", names_source=True, template=settings.apify_input_template)
