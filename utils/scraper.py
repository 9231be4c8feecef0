"""Apify I/O, and normalisation of the follower actors' output.

Each call is short: start a run (with an ad-hoc webhook when the service has a public URL),
read a run's state, list the account's recent runs, read its limits, read one page of a
dataset. Nothing here waits for a run to end: the clock and Apify's webhooks say when it did.
Every failure leaves this module as one of three errors: `CapacityRefused` (the account is
full: wait, never fail), `TransientApifyError` (worth a retry: rate limits, 5xx, network
trouble) or `FatalApifyError` (retrying cannot help and only burns money: a bad token, no
credit, no such actor, rejected input).
"""
import contextvars
import json
import re
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

import impit
import pydantic
from apify_client import ApifyClient
from apify_client.errors import ApifyApiError
from apify_client.http_clients import ImpitHttpClient

from utils import metrics

TERMINAL_RUN_STATUSES = {"SUCCEEDED", "FAILED", "TIMED-OUT", "ABORTED"}
WEBHOOK_EVENTS = ["ACTOR.RUN.SUCCEEDED", "ACTOR.RUN.FAILED", "ACTOR.RUN.TIMED_OUT", "ACTOR.RUN.ABORTED"]
WEBHOOK_PAYLOAD = '{"eventType": {{eventType}}, "runId": {{resource.id}}, "status": {{resource.status}}}'
# The account is full: Apify's answer to a start over its memory or concurrent-runs limit
# (402 in most reports, 400 in some), told apart from billing trouble by its type.
CAPACITY_TYPES = {"actor-memory-limit-exceeded", "concurrent-runs-limit-exceeded"}
# 401 bad token, 402 out of credit, 403 forbidden or over the usage limit, 404 no such
# actor, 400 input the actor rejects: the same call would fail again.
FATAL_STATUSES = {400, 401, 402, 403, 404}
_BILLING = re.compile(r"usage limit|usage-limit|not-enough-usage|credit|platform-feature-disabled", re.I)


class TransientApifyError(Exception):
    """Apify failed in a way a later attempt may not."""


class CapacityRefused(Exception):
    """Apify refused to start a run because the account has no room for it now."""


class FatalApifyError(Exception):
    """Apify refused in a way no retry will fix. `public` is what a tenant may be told."""

    def __init__(self, message, public=None):
        super().__init__(message)
        self.public = public or message


@dataclass(frozen=True, slots=True)
class Follower:
    profile_id: str
    username: str
    full_name: str
    is_private: bool | None
    is_verified: bool | None
    profile_pic_url: str | None
    source: str | None


@dataclass(frozen=True, slots=True)
class RunState:
    status: str
    dataset_id: str
    usage_usd: float
    store_id: str | None = None  # the run's default key-value store (its OUTPUT record)


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a dataset: its items as the actor wrote them, the offset after it, and
    whether it was the last."""

    items: list
    next_offset: int
    last: bool


@contextmanager
def apify_errors(operation):
    """Map apify-client's, impit's and pydantic's exceptions onto ours; time and count the call."""
    try:
        with metrics.apify_call(operation):
            yield
    except ApifyApiError as exc:
        raise _classify(exc) from None
    except impit.HTTPError as exc:
        raise TransientApifyError(f"network error talking to Apify: {type(exc).__name__}: {exc}") from None
    except pydantic.ValidationError as exc:
        raise TransientApifyError(f"Apify returned a malformed object: {exc.error_count()} errors") from None


def _classify(exc):
    message = f"Apify API error {exc.status_code} ({exc.type or 'unknown'}): {exc.message}"
    if exc.type in CAPACITY_TYPES:
        return CapacityRefused(message)
    if exc.status_code in (402, 403) and _BILLING.search(f"{exc.type} {exc.message}"):
        return FatalApifyError(message, public="The service's Apify account cannot start runs now (its usage "
                                              "limit or credit is spent); the operator has been alerted.")
    if exc.status_code in FATAL_STATUSES:
        return FatalApifyError(message)
    return TransientApifyError(message)


_TAG = contextvars.ContextVar("followsift_run_tag", default=None)


class _TaggingHttpClient(ImpitHttpClient):
    """apify-client's own transport, which appends the tag of the start being made (if any) to
    the User-Agent: Apify keeps a run's User-Agent (`meta.userAgent`, also in the list of the
    account's runs), so a run whose start was never recorded can be found and named."""

    def send_request(self, *, headers, **kwargs):
        tag = _TAG.get()
        if tag:
            headers = {**headers, "User-Agent": f"{headers.get('User-Agent', 'ApifyClient')}; {tag}"}
        return super().send_request(headers=headers, **kwargs)


class Scraper:
    """One per worker process: an apify-client configured from `Settings`."""

    def __init__(self, settings):
        self.actor_id = settings.apify_actor_id
        self.run_timeout = timedelta(seconds=settings.apify_run_timeout_seconds)
        self.memory_mbytes = settings.apify_memory_mbytes
        token = settings.apify_token or None
        self.client = ApifyClient.with_custom_http_client(token, api_url=settings.apify_api_url, http_client=(
            _TaggingHttpClient(token=token, max_retries=settings.apify_http_retries,
                               min_delay_between_retries=timedelta(milliseconds=settings.apify_http_retry_delay_ms))))

    def start_run(self, run_input, max_items, max_charge_usd=None, webhook=None, tag=None):
        """Start the actor on `run_input` (see utils/actors.py), charging for at most `max_items`
        results and `max_charge_usd`, with an ad-hoc webhook (url, headers) when the run ends and
        `tag` at the end of its User-Agent; returns the run id."""
        webhooks = webhook and [{"event_types": WEBHOOK_EVENTS, "request_url": webhook[0],
                                 "payload_template": WEBHOOK_PAYLOAD, "headers_template": json.dumps(webhook[1])}]
        tagged = _TAG.set(tag)
        try:
            with apify_errors("start_run"):
                run = self.client.actor(self.actor_id).start(
                    run_input=run_input,
                    max_items=max_items,
                    max_total_charge_usd=None if max_charge_usd is None else Decimal(str(round(max_charge_usd, 6))),
                    run_timeout=self.run_timeout,
                    memory_mbytes=self.memory_mbytes,
                    webhooks=webhooks or None,
                )
        finally:
            _TAG.reset(tagged)
        return run.id

    def runs_since(self, since):
        """[(run id, its User-Agent)] of the account's runs started since `since` (one call of
        the newest 1,000)."""
        with apify_errors("list_runs"):
            page = self.client.runs().list(desc=True, limit=1000, started_after=since)
        return [(run.id, run.meta.user_agent or "") for run in page.items if run.started_at >= since]

    def run_state(self, run_id):
        """The run's `RunState`, or None when Apify does not know it."""
        with apify_errors("get_run"):
            run = self.client.run(run_id).get()
        if run is None:
            return None
        return RunState(run.status, run.default_dataset_id, float(run.usage_total_usd or 0),
                        run.default_key_value_store_id)

    def recent_runs(self, limit):
        """{run id: status} of the account's `limit` most recently started runs (one call)."""
        with apify_errors("list_runs"):
            page = self.client.runs().list(desc=True, limit=limit)
        return {run.id: run.status for run in page.items}

    def account_limits(self):
        """The account's run limits and what is in use now (by every client of the account):
        {"max_runs", "max_memory_gb", "active_runs", "memory_used_gb"}."""
        with apify_errors("account_limits"):
            limits = self.client.user().limits()
        return {"max_runs": limits.limits.max_concurrent_actor_jobs,
                "max_memory_gb": float(limits.limits.max_actor_memory_gbytes),
                "active_runs": limits.current.active_actor_job_count,
                "memory_used_gb": float(limits.current.actor_memory_gbytes)}

    def abort_run(self, run_id):
        """Abort the run; its status afterwards (ABORTING, or how it had ended already), or None
        when Apify does not know it."""
        with apify_errors("abort_run"):
            try:
                return self.client.run(run_id).abort().status
            except ApifyApiError as exc:
                if exc.status_code == 404:
                    return None
                raise

    def read_page(self, dataset_id, offset, limit):
        """The dataset's items from `offset` (counted in rows scanned, as Apify pages)."""
        with apify_errors("dataset_items"):
            page = self.client.dataset(dataset_id).list_items(offset=offset, limit=limit, clean=True)
        scanned = max(page.count, len(page.items))
        return Page(page.items, offset + scanned, scanned == 0 or offset + scanned >= page.total)

    def run_output(self, store_id):
        """The value of the run's OUTPUT record (where some actors say how far they got), or None."""
        if not store_id:
            return None
        with apify_errors("get_record"):
            record = self.client.key_value_store(store_id).get_record("OUTPUT")
        return record and record["value"]


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
