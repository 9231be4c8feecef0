"""An emulated run: its dataset as a pure function of the clock (it fills while the run scrapes),
the lists it continues from a token, the rows and OUTPUT record its actor leaves, what it costs,
and the Run object the API answers with."""
from __future__ import annotations

import base64
import binascii
import bisect
from dataclasses import dataclass, field
from itertools import accumulate

from .actors import NO_LIMIT, TERMINAL, USER_ID, ActorProfile, ApiError, iso, new_id
from .faults import Settings
from .followers import follower_count, followers

@dataclass
class Run:
    """A run whose progress is a pure function of the clock: RUNNING until `finish`, then `final_status`."""

    id: str
    profile: ActorProfile
    usernames: list[str]
    segments: list[tuple[str, int]]  # (source username, item count) in dataset order
    total: int  # items when the scrape completes
    options: dict
    start: float  # time.time()
    scrape_s: float  # time to scrape all `total` items
    finish: float
    final_status: str
    input_len: int
    user_agent: str
    webhooks: list | None
    starts: dict = field(default_factory=dict)  # {source: first follower position} for continued lists
    specials: list = field(default_factory=list)  # error and cursor rows, after the followers
    output: dict | None = None  # the OUTPUT record of the run's key-value store
    aborted: bool = False
    dataset_id: str = field(default_factory=new_id)
    kvs_id: str = field(default_factory=new_id)
    queue_id: str = field(default_factory=new_id)
    offsets: list[int] = field(init=False)

    def __post_init__(self):
        self.offsets = [0, *accumulate(count for _, count in self.segments)]
        self.total += len(self.specials)

    def status(self, now: float) -> str:
        return self.final_status if now >= self.finish else "RUNNING"

    def item_count(self, now: float) -> int:
        """Items in the dataset at `now`: it fills linearly while the run scrapes."""
        if self.scrape_s <= 0 or min(now, self.finish) >= self.start + self.scrape_s:  # as `finish` was computed
            return self.total
        elapsed = min(now, self.finish) - self.start
        return min(self.total, int(self.total * elapsed / self.scrape_s))

    def abort(self, now: float) -> None:
        if now < self.finish:
            self.finish, self.final_status, self.aborted = now, "ABORTED", True

    def items(self, start: int, stop: int, hidden: bool) -> list[dict]:
        """Dataset items number start .. stop-1, rendered in the actor's output shape."""
        out = []
        segment = bisect.bisect_right(self.offsets, start) - 1
        while start < stop and segment < len(self.segments):
            source, count = self.segments[segment]
            first = start - self.offsets[segment]
            take = min(count - first, stop - start)
            begin = first + self.starts.get(source, 0)
            for position, follower in enumerate(followers(source, take, begin), begin):
                item = self.profile.item(follower, source)
                if hidden:
                    item["#debug"] = {"intended_gender": follower.intended_gender, "culture": follower.culture,
                                      "shared": follower.shared, "source": source, "position": position}
                out.append(item)
            start += take
            segment += 1
        base = self.offsets[-1]
        out += [dict(row) for row in self.specials[max(0, start - base):max(0, stop - base)]]
        return out


def plan_segments(usernames: list[str], limit: int, cap: int, run_cap: int | None = None,
                  starts: dict | None = None) -> tuple[list[tuple[str, int]], int]:
    """Per-account counts (each account cut at `limit` in all, at `run_cap` in this run, the
    whole at `cap`; a continued list from its start) and their sum."""
    segments, total = [], 0
    for username in usernames:
        start = (starts or {}).get(username, 0)
        count = min(limit - start, follower_count(username) - start, run_cap or NO_LIMIT, cap - total)
        if count > 0:
            segments.append((username, count))
            total += count
    return segments, total


def _token(username: str, position: int) -> str:
    return base64.urlsafe_b64encode(f"{username}:{position}".encode()).decode()


def continued_from(profile: ActorProfile, run_input: dict, usernames: list[str]) -> dict:
    """{username: position} where a continuation token in the input says a list goes on."""
    raw = run_input.get(profile.continuation_key) if profile.continuation_key else None
    if not raw:
        return {}
    try:
        username, _, position = base64.urlsafe_b64decode(raw.encode()).decode().rpartition(":")
        return {username: int(position)} if username in usernames else {}
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise ApiError(400, "invalid-input", "Invalid input: the continuation token is not valid") from None


def account_notes(profile: ActorProfile, usernames: list[str], limit: int, segments: list,
                  starts: dict) -> tuple[list[dict], dict | None]:
    """(error and cursor rows, the OUTPUT record) a run of these accounts leaves, as its actor does."""
    delivered = dict(segments)
    specials, continuations = [], []
    for username in usernames:
        kind = "private" if username.startswith("private") else "missing" if username.startswith("missing") else None
        if kind and profile.error_item:
            specials.append(profile.error_item(username, kind))
        reached = starts.get(username, 0) + delivered.get(username, 0)
        more = reached < min(limit, follower_count(username))
        if more and profile.cursor_item:
            specials.append(profile.cursor_item(username, _token(username, reached)))
        if profile.run_cap:
            continuations.append({"account": username, "dataToScrape": "Followers", "hasNextPage": more,
                                  "nextContinuationToken": _token(username, reached) if more else None})
    output = {"success": True, "continuations": continuations} if profile.run_cap else None
    if profile.cursor_item and len(usernames) == 1 and specials and "resumeCursor" in specials[-1]:
        output = {"resumeCursor": specials[-1]["resumeCursor"]}
    return specials, output


def usage_usd(run: Run, items: int, settings: Settings, now: float | None = None) -> float:
    if now is not None and run.status(now) in TERMINAL and now < run.finish + settings.usage_settle_s:
        return round(settings.start_fee_usd, 8)  # preliminary: the item charges are not in yet
    usage = settings.start_fee_usd + settings.price_per_item_usd * items
    cap = run.options.get("maxTotalChargeUsd")
    return round(usage if cap is None else min(usage, cap), 8)


def run_json(run: Run, now: float, settings: Settings) -> dict:
    status, items = run.status(now), run.item_count(now)
    terminal = status in TERMINAL
    message = (f"Finished! Scraped {items} followers" if status == "SUCCEEDED" else
               f"Run ended: {status}" if terminal else f"Scraping followers: {items} so far")
    return {
        "id": run.id, "actId": run.profile.act_id, "userId": USER_ID, "actorTaskId": None,
        "startedAt": iso(run.start), "finishedAt": iso(run.finish) if terminal else None,
        "status": status, "statusMessage": message, "isStatusMessageTerminal": terminal,
        "meta": {"origin": "API", "userAgent": run.user_agent},
        "stats": {"inputBodyLen": run.input_len, "restartCount": 0, "resurrectCount": 0,
                  "runTimeSecs": round(min(now, run.finish) - run.start, 3), "computeUnits": 0},
        "options": run.options, "buildId": "EmuLatorBuild0001", "buildNumber": "0.0.1",
        "exitCode": (0 if status == "SUCCEEDED" else 1) if terminal else None,
        "defaultKeyValueStoreId": run.kvs_id, "defaultDatasetId": run.dataset_id,
        "defaultRequestQueueId": run.queue_id,
        "usageTotalUsd": usage_usd(run, items, settings, now),
        "chargedEventCounts": {"apify-actor-start": 1, "apify-default-dataset-item": items},
    }


