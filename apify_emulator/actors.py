"""The emulated account's actors: how each one is asked for followers (its input) and what its
dataset rows look like, as the real actors answer (see server.py's docstring for the table)."""
from __future__ import annotations

import random
import string
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable

from .followers import Follower, normalize_username

USER_ID = "EmuLatorUser00001"
NO_LIMIT = 999_999_999_999
TERMINAL = ("SUCCEEDED", "FAILED", "TIMED-OUT", "ABORTED")
_ID_ALPHABET = string.ascii_letters + string.digits
_id_random = random.SystemRandom()


def new_id() -> str:
    """17-character alphanumeric id, like Apify's."""
    return "".join(_id_random.choices(_ID_ALPHABET, k=17))


def iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class ApiError(Exception):
    def __init__(self, status: int, type_: str, message: str):
        super().__init__(message)
        self.status, self.type, self.message = status, type_, message




@dataclass(frozen=True)
class ActorProfile:
    actor_id: str  # "user/name"
    usernames_key: str
    limit_key: str
    item: Callable[[Follower, str], dict]
    fixed_input: tuple[tuple[str, str], ...] = ()  # (key, required value) when the key is present
    # What the actor writes for a private or missing account (None: nothing at all).
    error_item: Callable[[str, str], dict] | None = None
    run_cap: int | None = None  # followers per account per run, continued by a token in OUTPUT
    continuation_key: str | None = None  # input key taking that token (or a resume cursor)
    cursor_item: Callable[[str, str], dict] | None = None  # a cursor-only row where a list was cut

    @property
    def act_id(self) -> str:
        """A stable 17-character id derived from the name (a real actor has a random one)."""
        letters = "".join(ch for ch in self.actor_id.title() if ch.isalnum())
        return (letters * 2)[:17]


def _flat_item(f: Follower, source_key: str, source: str) -> dict:
    return {"id": f.id, "username": f.username, "full_name": f.full_name, "is_private": f.is_private,
            "is_verified": f.is_verified, "profile_pic_url": f.profile_pic_url, source_key: source}


def _plain_item(f: Follower, _source: str) -> dict:
    """The default actor's row: nothing says whose follower it is."""
    return {"id": f.id, "username": f.username, "full_name": f.full_name, "is_private": f.is_private,
            "is_verified": f.is_verified, "profile_pic_url": f.profile_pic_url}


def _apify_error(username: str, kind: str) -> dict:
    return {"error": "private_account" if kind == "private" else "not_found", "sourceUsername": username,
            "errorDescription": "The profile is private" if kind == "private" else "The profile does not exist"}


PROFILES = {profile.actor_id: profile for profile in (
    ActorProfile("datadoping/instagram-followers-scraper", "usernames", "max_count", _plain_item),
    ActorProfile("scraping_solutions/instagram-scraper-followers-following-no-cookies", "Account", "resultsLimit",
                 lambda f, source: {**_flat_item(f, "username_scrape", source), "type": "Followers"},
                 fixed_input=(("dataToScrape", "Followers"),), run_cap=1000, continuation_key="continuationToken"),
    ActorProfile("apify/instagram-followers-following-scraper", "usernames", "resultsLimit",
                 lambda f, source: {"userId": f.id, "username": f.username, "fullName": f.full_name,
                                    "type": "FOLLOWER", "sourceUsername": source, "isVerified": f.is_verified,
                                    "isPrivate": f.is_private, "profilePicUrl": f.profile_pic_url},
                 fixed_input=(("dataToScrape", "followers"),), error_item=_apify_error),
    ActorProfile("thenetaji/instagram-followers-followings-scraper", "username", "maxItem",
                 lambda f, source: {**_flat_item(f, "source_username", source), "enriched": False},
                 fixed_input=(("type", "followers"),), continuation_key="resumeCursor",
                 cursor_item=lambda source, cursor: {"source_username": source, "resumeCursor": cursor}),
    ActorProfile("memo23/instagram-followers-scraper", "usernames", "maxItems",
                 lambda f, source: {"sourceUsername": source, "user": {
                     "pk": f.id, "username": f.username, "fullName": f.full_name, "isPrivate": f.is_private,
                     "isVerified": f.is_verified, "profilePicUrl": f.profile_pic_url}}),
)}


def find_profile(actor_id: str) -> ActorProfile:
    profile = PROFILES.get(actor_id.replace("~", "/"))
    if profile is None:
        raise ApiError(404, "actor-not-found", f"Actor {actor_id} was not found")
    return profile


def parse_input(profile: ActorProfile, run_input: object) -> tuple[list[str], int]:
    """(usernames, per-account limit) from the actor input, or 400 invalid-input."""
    if not isinstance(run_input, dict):
        raise ApiError(400, "invalid-input", "Invalid input: the input must be a JSON object")
    usernames, limit = run_input.get(profile.usernames_key), run_input.get(profile.limit_key)
    if not isinstance(usernames, list) or not usernames or not all(isinstance(u, str) and u.strip() for u in usernames):
        raise ApiError(400, "invalid-input", f"Invalid input: field input.{profile.usernames_key} is required "
                                             "and must be a non-empty array of usernames")
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ApiError(400, "invalid-input", f"Invalid input: field input.{profile.limit_key} must be an integer >= 1")
    for key, value in profile.fixed_input:
        if run_input.get(key, value) != value:
            raise ApiError(400, "invalid-input", f"Invalid input: the emulator only serves {key}={value!r}")
    return [normalize_username(u) for u in usernames], limit


