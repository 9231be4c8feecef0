"""Apify I/O for one batch of accounts, and normalisation of the follower actors' output.

The scraper starts one actor run per batch, waits for it, and streams the run's dataset.
Every failure leaves this module as one of two errors: `TransientApifyError` (worth a
retry: rate limits, 5xx, network trouble, a run that failed) or `FatalApifyError` (retrying
cannot help and only burns money: a bad token, no credit, no such actor, rejected input).
"""
import re
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

import impit
import pydantic
from apify_client import ApifyClient
from apify_client.errors import ApifyApiError

from utils import metrics

FAILED_RUN_STATUSES = {"FAILED", "TIMED-OUT", "ABORTED"}
# 401 bad token, 402 out of credit, 403 forbidden or over the usage limit, 404 no such
# actor, 400 input the actor rejects: the same call would fail again.
FATAL_STATUSES = {400, 401, 402, 403, 404}


class TransientApifyError(Exception):
    """Apify failed in a way a later attempt may not. `run_failed`: the run itself is spent,
    having cost `usage_usd`."""

    def __init__(self, message, run_failed=False, usage_usd=0.0):
        super().__init__(message)
        self.run_failed, self.usage_usd = run_failed, usage_usd


class FatalApifyError(Exception):
    """Apify refused in a way no retry will fix."""


class BatchStopped(Exception):
    """The batch lost its lease or its job ended while it ran."""


@dataclass(frozen=True, slots=True)
class Follower:
    profile_id: str
    username: str
    full_name: str
    is_private: bool | None
    is_verified: bool | None
    profile_pic_url: str | None
    source: str | None


@contextmanager
def apify_errors(operation):
    """Map apify-client's, impit's and pydantic's exceptions onto ours; time and count the call."""
    try:
        with metrics.apify_call(operation):
            yield
    except ApifyApiError as exc:
        message = f"Apify API error {exc.status_code} ({exc.type or 'unknown'}): {exc.message}"
        if exc.status_code in FATAL_STATUSES:
            raise FatalApifyError(message) from None
        raise TransientApifyError(message) from None
    except impit.HTTPError as exc:
        raise TransientApifyError(f"network error talking to Apify: {type(exc).__name__}: {exc}") from None
    except pydantic.ValidationError as exc:
        raise TransientApifyError(f"Apify returned a malformed object: {exc.error_count()} errors") from None


class Scraper:
    """One per worker process: an apify-client configured from `Settings`."""

    def __init__(self, settings):
        self.actor_id = settings.apify_actor_id
        self.input_template = settings.apify_input_template
        self.run_timeout = timedelta(seconds=settings.apify_run_timeout_seconds)
        self.memory_mbytes = settings.apify_memory_mbytes
        self.poll = timedelta(seconds=settings.apify_poll_seconds)
        self.client = ApifyClient(
            token=settings.apify_token or None,
            api_url=settings.apify_api_url,
            max_retries=settings.apify_http_retries,
            min_delay_between_retries=timedelta(milliseconds=settings.apify_http_retry_delay_ms),
        )

    def start_run(self, accounts, per_account_limit, max_charge_usd=None):
        """Start the actor on `accounts`, charging at most `max_charge_usd`; returns the run id."""
        with apify_errors("start_run"):
            run = self.client.actor(self.actor_id).start(
                run_input=build_input(self.input_template, accounts, per_account_limit),
                max_items=per_account_limit * len(accounts),
                max_total_charge_usd=None if max_charge_usd is None else Decimal(str(round(max_charge_usd, 6))),
                run_timeout=self.run_timeout,
                memory_mbytes=self.memory_mbytes,
            )
        return run.id

    def wait_for_run(self, run_id, heartbeat):
        """Wait for the run to end, calling `heartbeat()` between polls; returns
        (its dataset id, its usage in USD).

        `heartbeat` returning False means the batch is no longer ours to run.
        """
        while True:
            with apify_errors("wait_for_run"):
                run = self.client.run(run_id).wait_for_finish(wait_duration=self.poll)
            if run is None:
                raise TransientApifyError(f"Apify run {run_id} not found", run_failed=True)
            if run.status == "SUCCEEDED":
                return run.default_dataset_id, float(run.usage_total_usd or 0)
            if run.status in FAILED_RUN_STATUSES:
                raise TransientApifyError(f"Apify run {run_id} ended {run.status}", run_failed=True,
                                          usage_usd=float(run.usage_total_usd or 0))
            if not heartbeat():
                raise BatchStopped(f"batch stopped while Apify run {run_id} was {run.status}")

    def abort_run(self, run_id):
        with apify_errors("abort_run"):
            self.client.run(run_id).abort()

    def iter_followers(self, dataset_id, accounts):
        """Stream the dataset as normalised `Follower`s, dropping rows without an identity."""
        # Timed over the whole stream, the caller's storing of each chunk included.
        with apify_errors("stream_dataset"):
            for item in self.client.dataset(dataset_id).iterate_items(clean=True):
                follower = normalise(item, accounts)
                if follower is not None:
                    yield follower


def build_input(template, accounts, limit):
    """Fill the actor input template: "{accounts}" becomes the list, "{limit}" the per-account limit."""
    def fill(value):
        if value == "{accounts}":
            return list(accounts)
        if value == "{limit}":
            return limit
        if isinstance(value, dict):
            return {key: fill(item) for key, item in value.items()}
        return value

    return fill(template)


# Field names of the common follower actors, most common first. Nested user objects
# (`user`, `node`, `follower`) are flattened under the item's own fields.
_ID_FIELDS = ("id", "pk", "user_id", "userId", "pk_id", "profile_id")
_USERNAME_FIELDS = ("username", "handle", "userName")
_NAME_FIELDS = ("full_name", "fullName", "name", "display_name")
_PRIVATE_FIELDS = ("is_private", "isPrivate", "private")
_VERIFIED_FIELDS = ("is_verified", "isVerified", "verified")
_PIC_FIELDS = ("profile_pic_url", "profilePicUrl", "profile_pic_url_hd", "profilePicUrlHD")
_SOURCE_FIELDS = ("source_username", "username_scrape", "sourceUsername", "followers_of", "follower_of",
                  "following_of", "input_username", "inputUsername", "source_account", "query")
_NESTED_FIELDS = ("user", "node", "follower", "following_user")
_HANDLE_IN_URL = re.compile(r"instagram\.com/([A-Za-z0-9._]{1,30})")


def normalise(item, accounts):
    """One actor output item as a `Follower`, or None when it names nobody."""
    if not isinstance(item, dict):
        return None
    flat = {}
    for key in _NESTED_FIELDS:
        if isinstance(item.get(key), dict):
            flat.update(item[key])
    flat.update((key, value) for key, value in item.items() if key not in _NESTED_FIELDS)

    username = _text(_first(flat, _USERNAME_FIELDS)).lstrip("@").lower()
    profile_id = _text(_first(flat, _ID_FIELDS)) or username
    if not profile_id or not username:
        return None
    return Follower(
        profile_id=profile_id,
        username=username,
        full_name=_text(_first(flat, _NAME_FIELDS)),
        is_private=_bool(_first(flat, _PRIVATE_FIELDS)),
        is_verified=_bool(_first(flat, _VERIFIED_FIELDS)),
        profile_pic_url=_text(_first(flat, _PIC_FIELDS)) or None,
        source=_source(flat, accounts),
    )


def _first(item, keys):
    for key in keys:
        value = item.get(key)
        if value is not None and value != "":
            return value
    return None


def _text(value):
    if value is None or isinstance(value, (dict, list)):
        return ""
    return str(value).strip()


def _bool(value):
    if isinstance(value, bool) or value is None:
        return value
    return str(value).strip().lower() in ("true", "1", "yes")


def _source(item, accounts):
    """The input account the follower was found under, when the actor says or it is obvious."""
    raw = _text(_first(item, _SOURCE_FIELDS))
    match = _HANDLE_IN_URL.search(raw)
    source = (match.group(1) if match else raw).lstrip("@").lower()
    if source in accounts:
        return source
    return accounts[0] if len(accounts) == 1 else None
