"""Deterministic synthetic Instagram followers: the data the emulated actors return.

Public API (tests use it to compute what the emulator must serve):

* `normalize_username(raw)`: "@Nike " / "https://instagram.com/nike/" -> "nike".
* `follower_count(username) -> int`: followers an actor can list for the account. Most accounts have
  thousands to millions, some only a few dozen. A username starting with `empty`, `private` or `missing` has 0
  (the actors say why for the last two, see server.py).
* `followers(username, limit, start=0) -> list[Follower]`: followers number start .. start+limit-1,
  always in the same order; never more than `follower_count(username) - start`.

Everything is derived from blake2b hashes of the username and the position, never from Python's
randomised `hash()`, so it is stable across processes and runs. One follower in `POOL_STRIDE` comes
from a shared pool of `POOL_SIZE` people (about 14 %), each account walking the pool in its own
order, so accounts share followers and a shared person has the same id, username and full name
everywhere. Ids are unique: pool people have 9-digit ids, the others 11 to 17 digits. Usernames are
only unique with high probability (use `id` as the identity).
"""
from __future__ import annotations

import bisect
import hashlib
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from itertools import accumulate
from typing import NamedTuple

from . import names
from .names import Culture

# Accounts with nothing to list: empty ones, private ones and ones that do not exist.
NO_FOLLOWERS = ("empty", "private", "missing")
POOL_SIZE = 1009  # prime, so every multiplier 1..POOL_SIZE-1 walks the whole pool
POOL_STRIDE = 7
DEFAULT_AVATAR = ("https://scontent.cdninstagram.com/v/t51.2885-19/"
                  "44884218_345707102882519_2446069589734326272_n.jpg")


class Follower(NamedTuple):
    """One follower as the generator made it (a NamedTuple: cheap to build on the serving hot path)."""

    id: str
    username: str
    full_name: str
    is_private: bool
    is_verified: bool
    profile_pic_url: str
    intended_gender: str | None  # generator's ground truth: None for brands, couples and empty names
    culture: str | None  # names.Culture.code, None for brands and empty names
    shared: bool  # drawn from the shared pool


class _Dice:
    """Draws numbers from a blake2b digest of the seed, extended with further digests when used up."""

    __slots__ = ("_seed", "_n", "_round")

    def __init__(self, seed: str):
        self._seed = seed.encode()
        self._round = 0
        self._n = self._digest()

    def _digest(self) -> int:
        self._round += 1
        digest = hashlib.blake2b(self._seed, digest_size=64, salt=self._round.to_bytes(16, "big"))
        return int.from_bytes(digest.digest(), "big")

    def below(self, k: int) -> int:
        if self._n < k << 32:
            self._n = (self._n << 512) | self._digest()
        self._n, r = divmod(self._n, k)
        return r

    def chance(self, p: float) -> bool:
        """True with probability p (to 1/1000); inlined rather than calling below(): it is the hot path."""
        if self._n < 1 << 48:
            self._n = (self._n << 512) | self._digest()
        self._n, r = divmod(self._n, 1000)
        return r < p * 1000

    def pick(self, seq):
        return seq[self.below(len(seq))]


_CULTURE_CUMULATIVE = tuple(accumulate(c.weight for c in names.CULTURES))


def _pick_culture(dice: _Dice) -> Culture:
    return names.CULTURES[bisect.bisect_right(_CULTURE_CUMULATIVE, dice.below(_CULTURE_CUMULATIVE[-1]))]


# --------------------------------------------------------------------------- text helpers

_FOLD = str.maketrans({"ł": "l", "Ł": "L", "ı": "i", "đ": "d", "Đ": "D", "ß": "ss", "ø": "o", "Ø": "O",
                       "æ": "ae", "Æ": "AE", "œ": "oe"})


@lru_cache(maxsize=1 << 16)
def fold(text: str) -> str:
    """Drop diacritics the way people type without them: "Łukasz Wójcik" -> "Lukasz Wojcik"."""
    if text.isascii():
        return text
    decomposed = unicodedata.normalize("NFKD", text.translate(_FOLD))
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


@lru_cache(maxsize=1 << 12)
def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", fold(text).lower())


def _alphabet(upper: int, lower: int, exceptions: str = "") -> dict[int, str]:
    """Translation table onto a Unicode mathematical alphabet; `exceptions` = "C=ℂ H=ℍ ..."."""
    table = {ord("A") + i: chr(upper + i) for i in range(26)}
    table.update({ord("a") + i: chr(lower + i) for i in range(26)})
    table.update({ord(pair[0]): pair[2] for pair in exceptions.split()})
    return table


_FANCY = (
    _alphabet(0x1D400, 0x1D41A),  # bold
    _alphabet(0x1D4D0, 0x1D4EA),  # bold script: 𝓙𝓮𝓼𝓼𝓲𝓬𝓪
    _alphabet(0x1D538, 0x1D552, "C=ℂ H=ℍ N=ℕ P=ℙ Q=ℚ R=ℝ Z=ℤ"),  # double-struck
    _alphabet(0x1D56C, 0x1D586),  # bold fraktur
    _alphabet(0x1D670, 0x1D68A),  # monospace
    str.maketrans(dict(zip("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ",
                           "ᴀʙᴄᴅᴇꜰɢʜɪᴊᴋʟᴍɴᴏᴘǫʀsᴛᴜᴠᴡxʏᴢ" * 2))),  # small caps
)

def _nn(d: int) -> str:
    return f"{d % 100:02d}"


def _yy(d: int) -> str:
    """A birth year's last two digits, 70 .. 09."""
    return f"{(d // 100 % 40 + 70) % 100:02d}"


def _n4(d: int) -> str:
    return str(d // 10**4 % 9000 + 1000)


# Username patterns over slugs g (given), s (surname), w/v (handle words) and d (random digits); plain
# lambdas because formatting them is on the serving hot path.
_HANDLES = (
    lambda g, s, d: f"{g}.{s}{_nn(d)}", lambda g, s, d: f"{g}{s}_", lambda g, s, d: f"the_real_{g}",
    lambda g, s, d: f"{g}_{s}", lambda g, s, d: f"{g}.{s}", lambda g, s, d: f"{g}{s}{_yy(d)}",
    lambda g, s, d: f"_{g}.{s}_", lambda g, s, d: f"{s}.{g}", lambda g, s, d: f"{g}_{s[:1]}",
    lambda g, s, d: f"{g[:1]}{s}{_nn(d)}", lambda g, s, d: f"its.{g}.{s}", lambda g, s, d: f"{g}.{s}.official",
    lambda g, s, d: f"{g}{s}{_n4(d)}", lambda g, s, d: f"x.{g}.{s}.x", lambda g, s, d: f"{g}{s}",
    lambda g, s, d: f"{g}__{s}{_nn(d)}", lambda g, s, d: f"iam{g}{s}", lambda g, s, d: f"{g}.{s}_{_yy(d)}",
)
_GIVEN_ONLY_HANDLES = (
    lambda g, s, d: f"{g}{_nn(d)}", lambda g, s, d: f"the_real_{g}", lambda g, s, d: f"{g}_{_n4(d)}",
    lambda g, s, d: f"its{g}{_yy(d)}", lambda g, s, d: f"{g}.{g[-1:] * 2}", lambda g, s, d: f"_{g}_{_nn(d)}",
)
_WORD_HANDLES = (
    lambda w, v, d: f"{w}{v}{_nn(d)}", lambda w, v, d: f"user{_n4(d)}{_nn(d)}", lambda w, v, d: f"{w}_{v}",
    lambda w, v, d: f"{w}.{_n4(d)}", lambda w, v, d: f"_{w}{v}_",
)


def _handle(dice: _Dice, templates: tuple, first: str, second: str) -> str:
    return dice.pick(templates)(first, second, dice.below(10**8))[:30].rstrip(".")


# --------------------------------------------------------------------------- one person


def _display_name(dice: _Dice, culture: Culture, gender: str) -> tuple[str, str, str]:
    """Returns (display name, romanised given name, romanised surname) before decoration."""
    given = dice.pick(culture.male if gender == "male" else culture.female)
    family = dice.pick(culture.surnames)
    surname = family.male if gender == "male" else family.female
    if dice.chance(0.12):
        return (given.native if dice.chance(culture.native_share) else given.latin), given.latin, ""
    if dice.chance(culture.native_share):
        if culture.family_first:
            return surname.native + culture.native_joiner + given.native, given.latin, surname.latin
        return f"{given.native} {surname.native}", given.latin, surname.latin
    if culture.code == "es" and dice.chance(0.3):
        return f"{given.latin} {surname.latin} {dice.pick(culture.surnames).male.latin}", given.latin, surname.latin
    return f"{given.latin} {surname.latin}", given.latin, surname.latin


def _restyle(dice: _Dice, name: str) -> str:
    """Case and font games; only on Latin-script names (fancy alphabets have no Cyrillic or CJK)."""
    if not fold(name).isascii():
        return name
    roll = dice.below(100)
    if roll < 8:
        return name.lower()
    if roll < 15:
        return name.upper()
    if roll < 21:
        return fold(name).translate(dice.pick(_FANCY))
    if roll < 22:
        return " ".join(fold(name).upper().replace(" ", ""))
    if roll < 36:
        return fold(name)
    return name


def _decorate(dice: _Dice, name: str, culture: Culture, gender: str | None) -> str:
    """Emoji, flags and bios around the name, as Instagram users write them."""
    if dice.chance(0.15):
        emoji = dice.pick(names.GENDERED_EMOJI[gender] if gender and dice.chance(0.3) else names.DECOR_EMOJI)
        place = dice.below(3)
        name = f"{emoji} {name}" if place == 0 else f"{name} {emoji}" if place == 1 else f"{emoji}{name}{emoji}"
    if dice.chance(0.06):
        flag = dice.pick(culture.flags)
        name = f"{flag} {name}" if dice.chance(0.5) else f"{name} {flag}"
    if dice.chance(0.07):
        bio = dice.pick(names.GENDERED_BIOS[gender] if gender and dice.chance(0.3) else names.BIOS)
        name = f"{name} | {bio}"
    return name


def _person(dice: _Dice) -> tuple[str, str, str | None, str]:
    """Returns (full_name, username, intended_gender, culture code) for a private individual."""
    culture = _pick_culture(dice)
    gender = dice.pick(("male", "female"))
    name, given, surname = _display_name(dice, culture, gender)
    handle = _handle(dice, _HANDLES if surname else _GIVEN_ONLY_HANDLES, _slug(given), _slug(surname))
    if dice.chance(0.02):
        partner_gender = "female" if gender == "male" else "male"
        partner = dice.pick(culture.female if partner_gender == "female" else culture.male)
        joiner = names.COUPLE_JOINERS.get(culture.code, " & ")
        return _decorate(dice, f"{given}{joiner}{partner.latin}", culture, None), handle, None, culture.code
    if dice.chance(0.03):
        name = f"{dice.pick(names.HONORIFICS[gender] + names.HONORIFICS[None])} {name}"
    return _decorate(dice, _restyle(dice, name), culture, gender), handle, gender, culture.code


def _brand(dice: _Dice) -> tuple[str, str]:
    template = dice.pick(names.BRAND_TEMPLATES)
    name = re.sub(r"\{(\w+)\}", lambda m: dice.pick(names.BRAND_PARTS[m.group(1)]), template)
    suffix = dice.pick(("", "_official", ".official", "_", f"{dice.below(100)}", ".store", "hq"))
    return name, (_slug(name) + suffix)[:30]


def _profile_pic_url(dice: _Dice, follower_id: str) -> str:
    if dice.chance(0.05):
        return DEFAULT_AVATAR
    picture = f"{follower_id}_{dice.below(10**15)}_n.jpg"
    return f"https://scontent.cdninstagram.com/v/t51.2885-19/{picture}?stp=dst-jpg_s150x150"


def _make_follower(dice: _Dice, follower_id: str, shared: bool) -> Follower:
    kind = dice.below(100)
    brand = 10 <= kind < 14
    if kind < 10:
        words = dice.pick(names.HANDLE_WORDS), dice.pick(names.HANDLE_WORDS)
        full_name, username, gender, culture = "", _handle(dice, _WORD_HANDLES, *words), None, None
    elif brand:
        (full_name, username), gender, culture = _brand(dice), None, None
    else:
        full_name, username, gender, culture = _person(dice)
    return Follower(
        id=follower_id, username=username, full_name=full_name,
        is_private=dice.chance(0.02 if brand else 0.28), is_verified=dice.chance(0.10 if brand else 0.01),
        profile_pic_url=_profile_pic_url(dice, follower_id), intended_gender=gender, culture=culture, shared=shared)


@lru_cache(maxsize=None)
def _pool_follower(index: int) -> Follower:
    return _make_follower(_Dice(f"\x00pool\x00{index}"), str(173_000_000 + index * 611_953), shared=True)


def _own_follower(username: str, position: int) -> Follower:
    dice = _Dice(f"{username}\x00{position}")
    return _make_follower(dice, str(10**10 + dice.below(9 * 10**16)), shared=False)


# --------------------------------------------------------------------------- accounts

_URL_PREFIX = re.compile(r"^(https?://)?(www\.)?instagram\.com/", re.IGNORECASE)


def normalize_username(raw: str) -> str:
    return _URL_PREFIX.sub("", raw.strip()).strip("/").lstrip("@").lower()


@dataclass(frozen=True, slots=True)
class _Account:
    count: int
    pool_offset: int
    pool_step: int
    pool_start: int


# Follower-count tiers (low, high) and their cumulative shares in percent: 8 % small accounts.
_TIERS = ((20, 1_000), (1_000, 100_000), (100_000, 10**7), (10**7, 5 * 10**8))
_TIER_SHARES = (8, 58, 93)


@lru_cache(maxsize=65536)
def _account(username: str) -> _Account:
    dice = _Dice(f"{username}\x00account")
    offset, step, start = dice.below(POOL_STRIDE), dice.below(POOL_SIZE - 1) + 1, dice.below(POOL_SIZE)
    if username.startswith(NO_FOLLOWERS):
        return _Account(0, offset, step, start)
    tier = bisect.bisect_right(_TIER_SHARES, dice.below(100))
    low, high = _TIERS[tier]
    count = int(low * (high / low) ** (dice.below(1_000_000) / 1_000_000))  # log-uniform within the tier
    return _Account(count, offset, step, start)


def follower_count(username: str) -> int:
    return _account(normalize_username(username)).count


def _follower_at(username: str, account: _Account, position: int) -> Follower:
    slot, rest = divmod(position + account.pool_offset, POOL_STRIDE)
    if rest == 0 and slot < POOL_SIZE:
        return _pool_follower((account.pool_start + slot * account.pool_step) % POOL_SIZE)
    return _own_follower(username, position)


def followers(username: str, limit: int, start: int = 0) -> list[Follower]:
    username = normalize_username(username)
    account = _account(username)
    stop = min(account.count, start + max(limit, 0))
    return [_follower_at(username, account, position) for position in range(start, stop)]
