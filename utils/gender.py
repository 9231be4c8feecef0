"""Gender inference from Instagram display names and usernames, offline.

(One module of some 600 lines: the steps below share the cleaned tokens and the tables and
read best in order; the tables' readers and word lists live in utils/gender_data/.)

Pipeline for one profile (``detect_gender(full_name, username)``):

1. Clean the display name: NFKC (fancy Unicode letters -> plain), small caps and similar
   look-alikes mapped, emoji / flags / symbols / digits dropped, a bio after ``|``, `` - ``,
   ``•`` ... cut off, bracketed nicknames removed, case folded.
2. Reject what is not one person: brand and page words (official, store, shop, club, fans,
   news, ...) and couples / groups (``John & Mary``, ``Maria e João``, ``The Smiths``,
   ``... family``, a heart between a woman's and a man's given name: ``Ana ❤ Luis``) ->
   ``unknown`` (source ``not_person`` / ``group``). Any other heart is decoration.
3. Honorifics are skipped; gendered ones (Mr, Mrs, Ms, Miss, Sr., Sra., Herr, Frau, ...)
   are kept as evidence (source ``title``). Initials and suffixes (Jr, PhD) are skipped.
   ``Last, First`` is turned round.
4. The given name is looked up in the dictionary (utils/gender_data/names.tsv.gz, built by
   utils/gender_data/build.py from gender-guesser's nam_dict, Faker's per-locale first
   names and Israel's CBS baby names): compound names first (``Maria José``,
   ``Jean-Pierre``), then the first token, diacritics kept then stripped, Cyrillic / Greek
   transliterated when the native spelling is missing. A later token (middle name) counts
   with a discount. ``mostly`` and ambiguous names keep their lower confidence. A name that
   reads as Japanese (a Japanese surname, or both words Japanese morae) is looked up in the
   Japanese-context table first (utils/gender_data/ja_names.tsv.gz: nam_dict's Japan column,
   Faker ja_JP, gimei), where Kenta or Yuma are men's names whatever they are elsewhere.
   Where a name's gender depends on the country (Andrea, Jean, Nicola), the countries the
   surname points to decide (utils/gender_data/context.tsv.gz): Andrea Rossi is a man.
   Names the dictionary lacks are looked up in WGND 2.0 (utils/gender_data/wgnd.bin.gz, 2.7 M
   names; source ``wgnd``), also joined when written apart (``Min-jun``, ``Xiao Ling Wang``).
5. Surname morphology (Slavic -ova/-ová/-ska/-ská vs -ov/-ski/-ský, Lithuanian
   -ienė/-aitė/-ytė, Icelandic -dóttir, Greek -poulou/-idou, Cyrillic -ова/-ская, ...) and
   Faker's gendered surname lists decide when the given name is unknown or ambiguous
   (source ``surname``). Failing those, an ending model trained on WGND guesses, with the
   confidence measured on held-out names (utils/gender_data/ngram.tsv.gz; source ``model``).
6. Username fallback when the display name gives nothing: split on ``.``, ``_``, digits and
   camelCase, then segment run-together handles (``johnsmith92`` -> john) against the
   dictionary, with lower confidence (source ``username``).

``confidence`` is the estimated probability that ``gender`` is right. The pipeline counts
a profile as ``unknown`` when its confidence is below the job's ``minConfidence``
(default ``DEFAULT_MIN_CONFIDENCE``, chosen with bench/gender_eval.py).

Importing this module reads no table (the web process imports it for DEFAULT_MIN_CONFIDENCE);
the first ``detect_gender(s)`` call loads them all: ~0.45 s, +68 MB of RSS (47 MB more than the
tables before WGND; bench/gender_eval.py measures it, "table load").
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from typing import Iterable

from utils.gender_data import tables, wide
from utils.gender_data.words import (
    TITLES as _TITLES,
    SUFFIXES as _SUFFIXES,
    BRAND as _BRAND,
    GROUP_WORDS as _GROUP_WORDS,
    VIET_SURNAMES as _VIET_SURNAMES,
    ASIAN_SURNAMES as _ASIAN_SURNAMES,
    CONJ as _CONJ,
)

# Chosen on bench/gender_eval.py. First 0.65 (14,500 people, 7 sets: US, BR, FR, ES, DK, DK Muslim-background,
# JP: 1.8 in 100 assigned wrong). With WGND and the ending model, on 17,600 people (+ India, Iran, Turkey):
# 0.75 keeps 2.9 in 100 assigned wrong pooled (1.5 over the first 7 sets) with 5.6 in 100 unknown; 0.65
# would leave 3.5 wrong. India (8), Iran (8) and Turkey (20, rare names drawn uniformly) stay over 3.
DEFAULT_MIN_CONFIDENCE = 0.75


@dataclass(frozen=True, slots=True)
class GenderGuess:
    gender: str  # "male" | "female" | "unknown"
    confidence: float
    source: str


UNKNOWN = GenderGuess("unknown", 0.0, "none")
_NOT_PERSON = GenderGuess("unknown", 0.0, "not_person")
_GROUP = GenderGuess("unknown", 0.0, "group")


# below this a name is "ambiguous": no gender is returned from it alone
_DECIDE = 0.6


_NAMES: dict[str, tuple[str, float]] = {}
_JA_NAMES: dict[str, tuple[str, float]] = {}
_JA_ENDINGS: dict[str, tuple[str, float]] = {}
_JA_SURNAMES: set[str] = set()
_SUFFIX_TABLE: dict[str, tuple[str, float]] = {}
_SURNAMES: dict[str, str] = {}
_FAMILY_NAMES: frozenset[str] = frozenset()  # words mostly used as surnames (Smith, Martin)
_COMMON_GIVEN: frozenset[str] = frozenset()  # well-attested given names (tables.load_names)
_CONTEXT_NAMES: dict[str, dict[str, tuple[float, float]]] = {}  # Andrea: {"IT": (0.0, 11.3)}
_SURNAME_COUNTRIES: dict[str, tuple[str, ...]] = {}  # rossi: ("BE", "FI", "FR", "IT", "LU")
_COMPOUND_HEADS: frozenset[str] = frozenset()  # first words of compound names ("maria" of "maria jose")
_loaded = False


def _load() -> None:
    """Read every table on first use, so that importing this module (the web process does, for
    DEFAULT_MIN_CONFIDENCE) reads nothing."""
    global _NAMES, _JA_NAMES, _JA_ENDINGS, _JA_SURNAMES, _SUFFIX_TABLE, _SURNAMES, _FAMILY_NAMES, _COMPOUND_HEADS
    global _COMMON_GIVEN, _CONTEXT_NAMES, _SURNAME_COUNTRIES, _loaded
    if _loaded:
        return
    _NAMES, _COMMON_GIVEN = tables.load_names()
    _JA_NAMES, _JA_ENDINGS, _JA_SURNAMES = tables.load_japanese()
    _SUFFIX_TABLE = tables.load_suffixes()
    _SURNAMES = tables.load_surnames()
    _FAMILY_NAMES = tables.load_family_names()
    _CONTEXT_NAMES, _SURNAME_COUNTRIES = tables.load_context()
    _COMPOUND_HEADS = frozenset(key.split(" ", 1)[0] for key in _NAMES if " " in key)
    wide.load()
    _loaded = True

# --------------------------------------------------------------------------- unicode helpers
_SMALL_CAPS = str.maketrans({
    "ᴀ": "a", "ʙ": "b", "ᴄ": "c", "ᴅ": "d", "ᴇ": "e", "ꜰ": "f", "ɢ": "g", "ʜ": "h", "ɪ": "i",
    "ᴊ": "j", "ᴋ": "k", "ʟ": "l", "ᴍ": "m", "ɴ": "n", "ᴏ": "o", "ᴘ": "p", "ǫ": "q", "ʀ": "r",
    "ꜱ": "s", "ᴛ": "t", "ᴜ": "u", "ᴠ": "v", "ᴡ": "w", "ʏ": "y", "ᴢ": "z", "ı": "i",
    "ａ": "a", "ɑ": "a", "ℓ": "l", "ø": "o", "ß": "ss", "ł": "l", "đ": "d", "æ": "ae", "œ": "oe",
    "ð": "d", "þ": "th", "’": "'", "`": "'", "ʼ": "'",
})
_CYR = str.maketrans({
    "а": "a", "б": "b", "в": "v", "г": "g", "д": "d", "е": "e", "ё": "e", "ж": "zh", "з": "z",
    "и": "i", "й": "y", "к": "k", "л": "l", "м": "m", "н": "n", "о": "o", "п": "p", "р": "r",
    "с": "s", "т": "t", "у": "u", "ф": "f", "х": "kh", "ц": "ts", "ч": "ch", "ш": "sh", "щ": "shch",
    "ъ": "", "ы": "y", "ь": "", "э": "e", "ю": "yu", "я": "ya", "є": "ye", "і": "i", "ї": "yi",
    "ґ": "g", "ј": "j", "љ": "lj", "њ": "nj", "ћ": "c", "ђ": "dj", "џ": "dz", "ѓ": "gj", "ќ": "kj",
    "ѕ": "dz", "ў": "u",
})
_GRK = str.maketrans({
    "α": "a", "β": "v", "γ": "g", "δ": "d", "ε": "e", "ζ": "z", "η": "i", "θ": "th", "ι": "i",
    "κ": "k", "λ": "l", "μ": "m", "ν": "n", "ξ": "x", "ο": "o", "π": "p", "ρ": "r", "σ": "s",
    "ς": "s", "τ": "t", "υ": "y", "φ": "f", "χ": "ch", "ψ": "ps", "ω": "o",
})

# a "word": a letter, then letters, combining marks (Indic, Thai, Hebrew, Arabic vowel signs)
# or inner apostrophes / hyphens
_MARKS = "\u0300-\u036f\u0483-\u0489\u0591-\u05c7\u0610-\u061a\u064b-\u065f\u0670\u06d6-\u06ed" \
         "\u0900-\u0dff\u0e31\u0e34-\u0e3a\u0e47-\u0e4e\u0eb1\u0eb4-\u0ebc\u0ec8-\u0ecd\u1000-\u109f" \
         "\u17b4-\u17d3\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\u3099\u309a\ufe20-\ufe2f"
_WORD = re.compile(rf"[^\W\d_][^\W\d_{_MARKS}]*(?:[{_MARKS}]+[^\W\d_]*)*(?:['-][^\W\d_][^\W\d_{_MARKS}]*(?:[{_MARKS}]+[^\W\d_]*)*)*")
# a bio separator: " - ", " / ", a bar or bullet, a comma, three spaces
_BIO_CUT = re.compile(r"[|•·●◦▪►»«‣⁃│┃/\\,;]|\s(?:[-–—~:/]\s|\s{2,})")
# what _WORD matches in a folded ASCII string, with a cheaper pattern
_ASCII_WORD = re.compile(r"[a-z]+(?:['-][a-z]+)*")
_BRACKETS = re.compile(r"[(\[{（【][^)\]}）】]*[)\]}）】]?")
_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])")
_USER_SPLIT = re.compile(r"[^\W\d_]+")


# any character _SMALL_CAPS maps: translating is slow, searching is not
_LOOKALIKE = re.compile("[" + "".join(re.escape(chr(c)) for c in _SMALL_CAPS) + "]")


def _plain_letters(s: str) -> str:
    return s.translate(_SMALL_CAPS) if _LOOKALIKE.search(s) else s


def _fold(s: str) -> str:
    if not s.isascii():
        s = _plain_letters(unicodedata.normalize("NFKC", s))
    return s.casefold()


def _strip_marks(s: str) -> str:
    if s.isascii():
        return s
    return _plain_letters("".join(ch for ch in unicodedata.normalize("NFD", s) if not unicodedata.combining(ch)))


# --------------------------------------------------------------------------- lookups
@lru_cache(maxsize=262144)
def _lookup(token: str) -> tuple[str, float] | None:
    """Dictionary answer for one folded name (single word or 'maria jose')."""
    hit = _NAMES.get(token)
    if hit is not None:
        return hit
    if not token.isascii():
        plain = _strip_marks(token)
        hit = _NAMES.get(plain)
        if hit is not None:
            return hit
        if any("\u0400" <= ch <= "\u04ff" for ch in token):
            hit = _NAMES.get(token.translate(_CYR))
        elif any("\u0370" <= ch <= "\u03ff" for ch in token):
            hit = _NAMES.get(_strip_marks(token).translate(_GRK))
        if hit is not None:
            return hit[0], hit[1] * 0.95
    if "'" in token:
        return _lookup(token.replace("'", ""))
    return None


@lru_cache(maxsize=262144)
def _wgnd(token: str) -> tuple[str, float] | None:
    """WGND 2.0's answer (utils/gender_data/wide.py) for a name the dictionary lacks."""
    hit = wide.wgnd_lookup(token)
    if hit is None and not token.isascii():
        hit = wide.wgnd_lookup(_strip_marks(token))
    return hit


@lru_cache(maxsize=65536)
def _in_country_of(given: str, surname: str) -> tuple[str, float] | None:
    """The given name's gender pooled over the countries the surname points to (nam_dict's
    per-country frequencies), for names whose gender depends on the country: Andrea Rossi,
    Italy, a man; Jean Smith, English-speaking countries, a woman; Jan Nielsen, Scandinavia."""
    countries = _SURNAME_COUNTRIES.get(surname)
    if countries is None:
        return None
    per = _CONTEXT_NAMES[given]
    f = m = 0.0
    for cc in countries:
        fm = per.get(cc)
        if fm is not None:
            f += fm[0]
            m += fm[1]
    if f + m == 0.0:
        return None
    pf = (f + 0.25) / (f + m + 0.5)
    return ("female", pf) if pf >= 0.5 else ("male", 1.0 - pf)


def _sure(hit: tuple[str, float] | None) -> tuple[str, float] | None:
    """`hit` if it decides a gender, else None (so that a wider source may be asked)."""
    return hit if hit is not None and hit[1] >= _DECIDE else None


@lru_cache(maxsize=65536)
def _east_asian_pair(a: str, b: str) -> bool:
    """Whether two short words are one given name written apart ("min jun" for Minjun): WGND
    knows them joined, and the first is not itself a confident name of the dictionary."""
    own = _lookup(a)
    return (own is None or own[1] < 0.8) and _wgnd(a + b) is not None


@lru_cache(maxsize=131072)
def _model_guess(token: str) -> tuple[str, float] | None:
    """The ending model's answer for a given name of 3+ letters that no table holds."""
    if len(token) < 3 or not token.isalpha():
        return None
    return wide.ending_guess(token)


_F_SUFFIX = (
    "ova", "eva", "ová", "evá", "ská", "cká", "ska", "cka", "dzka", "ovna", "evna", "ichna",
    "ienė", "iene", "aitė", "aite", "ytė", "yte", "iūtė", "iute", "utė", "dóttir", "dottir",
    "poulou", "idou", "akou", "opoulou", "ová", "ina",
    "ова", "ева", "ёва", "ина", "ына", "ская", "цкая", "ская", "овна", "евна",
    "ου",
)
_M_SUFFIX = (
    "ov", "ev", "ski", "cki", "dzki", "sky", "ský", "cký", "ovich", "evich", "ovych", "poulos",
    "idis", "akis", "opoulos", "ов", "ев", "ёв", "ин", "ын", "ский", "цкий", "ович", "евич",
    "ος", "ης", "ας",
)
_F_EXCEPT = {"casanova", "villanova", "terranova", "nova", "neva", "geneva", "eva", "ina", "messina",
             "medina", "molina", "marina", "regina", "christina", "tina", "karina", "ova", "ska",
             "lucina", "carolina", "paulina", "catalina", "sabina", "angelina", "ester", "saldanha",
             "mina", "lina", "nina", "dina", "sina", "china", "santina", "fortina", "cortina", "lesina",
             "bettina", "martina", "urbina", "farina", "serafina", "ruvina", "savina", "petrina"}


@lru_cache(maxsize=131072)
def _ending_guess(token: str) -> tuple[str, float] | None:
    """Gender from the ending of a Latin-script given name missing from the dictionary."""
    plain = _strip_marks(token)
    if len(plain) < 4 or not plain.isascii() or not plain.isalpha():
        return None
    for n in (4, 3, 2):
        hit = _SUFFIX_TABLE.get(plain[-n:])
        if hit is not None and len(plain) > n + 1:
            return hit[0], round(min(0.85, hit[1] - 0.1), 4)
    return None


@lru_cache(maxsize=131072)
def _surname_signal(token: str) -> tuple[str, float] | None:
    if len(token) < 4:
        return None
    g = _SURNAMES.get(token)
    if g is not None:
        as_given = _NAMES.get(token)
        if as_given is not None and as_given[0] != g:
            return None  # "Rosa", a woman's name, on Faker's list of men's surnames
        return g, 0.85
    if token in _F_EXCEPT or token in _NAMES:
        # a surname that is also a given name (Marina, Nova...) says nothing
        return None
    plain = _strip_marks(token)
    if token.endswith(_F_SUFFIX) or plain.endswith(_F_SUFFIX):
        if token.endswith(("ina", "ина", "ына")) or plain.endswith("ina"):
            # Russian -ina is female (Pushkina) but Italian/Spanish -ina is not: only trust it
            # in Cyrillic, or for -kina/-shina/-tina-like Slavic stems
            if not any("\u0400" <= ch <= "\u04ff" for ch in token) and not plain.endswith(("kina", "shina", "zina", "ovina", "lina", "rina")):
                return None
            return "female", 0.8
        return "female", 0.88
    if token.endswith(_M_SUFFIX) or plain.endswith(_M_SUFFIX):
        if token.endswith(("ин", "ын")):
            return "male", 0.75
        return "male", 0.85
    return None


# a romanised Japanese word: morae only (ka, shi, tsu, kyo, n, geminates, long vowels)
_JA_MORAE = re.compile(r"(?:(?:[kgsztdnhbpmr]y?|sh|ch|ts|j|f|y|w)?[aiueo]|n|(?<=[aiueo])(?=[kstp]{2}))+")
_JA_DONT = ("si", "ti", "tu", "hu", "zi", "di", "du", "wi", "we", "wu", "yi", "ye")


@lru_cache(maxsize=65536)
def _reads_japanese(word: str) -> bool:
    return len(word) >= 4 and word.isascii() and _JA_MORAE.fullmatch(word) is not None \
        and not any(x in word for x in _JA_DONT)


@lru_cache(maxsize=65536)
def _japanese_given(given: str, surname: str) -> tuple[str, float] | None:
    """Gender of a given name read in Japanese context: the surname is a known Japanese
    surname, or both words are Japanese morae and the given name is a Japanese name that the
    general dictionary does not confidently give the other gender (Juan Moreno is a man, although
    Juan is also a Japanese woman's name and Moreno reads as Japanese morae).
    None when the name does not read as Japanese or Japanese data says nothing."""
    hit = _JA_NAMES.get(given)
    if surname not in _JA_SURNAMES:
        if hit is None or surname in _NAMES or not _reads_japanese(surname) or not _reads_japanese(given):
            return None
        elsewhere = _lookup(given)
        if elsewhere is not None and elsewhere[0] != hit[0] and elsewhere[1] >= 0.8:
            return None
    if hit is not None:
        return hit if hit[1] >= _DECIDE else None
    if not _reads_japanese(given):
        return None
    for n in (4, 3, 2, 1):
        end = _JA_ENDINGS.get(given[-n:])
        if end is not None and len(given) > n + 1:
            return end[0], round(min(0.85, end[1] - 0.1), 4)
    return None


@lru_cache(maxsize=131072)
def _may_start_compound(word: str) -> bool:
    """Whether a compound name can start with `word` however _lookup respells it (kept or
    stripped diacritics, transliterated, apostrophes dropped); False spares the lookup."""
    for w in {word, word.replace("'", "")}:
        plain = _strip_marks(w)
        for spelling in (w, plain, w.translate(_CYR), plain.translate(_GRK)):
            if spelling in _COMPOUND_HEADS:
                return True
    return False


@lru_cache(maxsize=16384)
def _answer(gender: str, confidence: float, source: str) -> GenderGuess:
    """One shared GenderGuess per answer, its confidence rounded to 4 places."""
    return GenderGuess(gender, round(confidence, 4), source)


# --------------------------------------------------------------------------- core
def _decide_tokens(tokens: list[str]) -> GenderGuess | None:
    """Gender from the cleaned tokens of one display-name segment, or None."""
    title_gender = None
    while len(tokens) > 1 and tokens[0] in _TITLES:
        title_gender = title_gender or _TITLES[tokens[0]]
        tokens = tokens[1:]
    # drop initials and suffixes
    toks = [t for t in tokens if len(t) > 1 and t not in _SUFFIXES]
    if not toks:
        if title_gender:
            return _answer(title_gender, 0.9, "title")
        return None

    best: tuple[str, float] | None = None
    src = "full_name"
    first = toks[0]
    initials_first = len(tokens[0]) == 1
    if len(toks) == 2 and not initials_first and (
            toks[1] in _JA_SURNAMES or first in _JA_NAMES or first in _JA_SURNAMES):
        # Japanese names: Kanta, Yuma, Taiga are men's names in Japan whatever they are elsewhere
        ja = _japanese_given(toks[0], toks[1])
        if ja is None and toks[0] in _JA_SURNAMES:
            ja = _japanese_given(toks[1], toks[0])  # surname first: "Tanaka Yuki"
        if ja is not None:
            if title_gender:
                return _answer(title_gender, 0.9 if ja[0] == title_gender else 0.8, "title")
            return _answer(ja[0], ja[1], "full_name")
    if len(toks) >= 2 and first in _ASIAN_SURNAMES:
        # surname-first order (Kim Minji, Nguyen Thi Lan, Wang Fang)
        second = toks[1]
        if first in _VIET_SURNAMES and second in ("thi", "thị"):
            return _answer("female", 0.93, "full_name")
        if first in _VIET_SURNAMES and second in ("van", "văn"):
            return _answer("male", 0.9, "full_name")
        own = _lookup(first)
        if own is None or own[1] < 0.8 or (len(toks) >= 3 and _east_asian_pair(second, toks[2])):
            hit = (_sure(_lookup(" ".join(toks[1:3]))) or _wgnd("".join(toks[1:3]))) if len(toks) >= 3 else None
            hit = hit or _sure(_lookup(second.replace("-", " "))) or _wgnd(second.replace("-", "")) \
                or _lookup(second.split("-", 1)[0])
            if hit is not None and hit[1] >= _DECIDE:
                return _answer(hit[0], hit[1] * 0.9, src)
    # compound given names: "maria jose", "jean pierre", "ana carolina"
    if "-" in first:
        best = _sure(_lookup(first.replace("-", " ")))
        if best is None:
            best = _wgnd(first.replace("-", ""))  # Min-jun, Xiao-ling
            src = "wgnd" if best is not None else src
        if best is None:
            best = _lookup(first.split("-", 1)[0])
    elif len(toks) >= 3 and len(first) <= 5 and len(toks[1]) <= 5 and _east_asian_pair(first, toks[1]):
        best = _wgnd(first + toks[1])  # a two-syllable given name written apart: Xiao Ling Wang
        src = "wgnd"
    else:
        if len(toks) >= 2 and _may_start_compound(first):
            hit = _lookup(first + " " + toks[1])
            if hit is not None and hit[1] >= _DECIDE:
                best = hit
        if best is None:
            best = _lookup(first)
        if best is None:
            best = _wgnd(first)
            src = "wgnd" if best is not None else src
        elif len(toks) >= 2 and first in _CONTEXT_NAMES:
            best = _sure(_in_country_of(first, toks[-1])) or best
    if best is None and not initials_first and len(toks) >= 2:
        # a given name missing from the dictionary: its ending (Cristiane, Jailson), unless
        # the surname says otherwise
        end = _ending_guess(first)
        if end is not None:
            sur = _surname_signal(toks[-1])
            if sur is None or sur[0] == end[0]:
                return _answer(end[0], end[1], "full_name")
    if best is not None and initials_first:
        # "J. R. Smith": the word after initials is usually the surname
        best = (best[0], best[1] * 0.75)
    if (best is None or best[1] < _DECIDE) and len(toks) >= 3:
        # a middle name ("Xyz Maria Souza"), discounted
        hit = _lookup(toks[1].split("-", 1)[0])
        if hit is not None and hit[1] >= 0.8:
            if best is None or best[0] == hit[0] or best[1] < 0.55:
                best = (hit[0], hit[1] * 0.85)

    if title_gender:
        if best is None or best[0] == title_gender:
            return GenderGuess(title_gender, max(0.9, best[1] if best else 0.0), "title")
        return _answer(title_gender, 0.8, "title")

    if best is not None and best[1] >= _DECIDE:
        # a confident given name; a disagreeing gendered surname lowers confidence
        if len(toks) >= 2:
            sur = _surname_signal(toks[-1])
            if sur is not None:
                if sur[0] == best[0]:
                    return _answer(best[0], max(best[1], sur[1]), src)
                if best[1] < 0.8 or src == "wgnd":
                    # WGND's rare names rest on few records: a gendered surname outweighs them
                    return _answer(sur[0], sur[1] - 0.05, "surname")
                return _answer(best[0], best[1] - 0.15, src)
        return _answer(best[0], best[1], src)

    # unknown or ambiguous given name: surname morphology
    if len(toks) >= 2 or best is None:
        for t in reversed(toks[1:] if len(toks) >= 2 else toks):
            sur = _surname_signal(t)
            if sur is not None:
                conf = sur[1]
                if best is not None and best[0] == sur[0]:
                    conf = min(0.95, conf + 0.05)
                return GenderGuess(sur[0], conf, "surname")
    if best is not None:
        return _answer(best[0] if best[1] >= 0.55 else "unknown", best[1], src)
    if not initials_first:
        # in no table and no gendered surname (Oluwaseun...): the ending model, with the
        # confidence measured on names it was not trained on
        guess = _model_guess(first)
        if guess is not None:
            return _answer(guess[0] if guess[1] >= 0.55 else "unknown", guess[1], "model")
    return None


# hearts, the most common emoji of display names; one marks a couple only between two given names
_HEARTS = re.compile("[❤♥♡❣\U0001F493-\U0001F49F\U0001F5A4\U0001F90D\U0001F90E\U0001F9E1\U0001FA75-\U0001FA77]")


def _heart_between_names(segment: str, words) -> bool:
    """"Ana ❤ Luis" is a couple; "John Okafor ❤️", "❤️ John" or "Maria ❤ Lopez" are one person.
    Many surnames are also given names, so only a woman's and a man's name either side of the
    heart make a couple, the second a well-attested given name and not mostly a surname
    ("Angela ❤ Martin" is one woman, and so is "Sara ❤ Nazir")."""
    parts = _HEARTS.split(segment)
    for left, right in zip(parts, parts[1:]):
        lt, rt = words(left), words(right)
        if lt and rt and rt[0] in _COMMON_GIVEN and rt[0] not in _FAMILY_NAMES:
            a, b = _lookup(lt[-1]), _lookup(rt[0])
            if a is not None and b is not None and a[1] >= 0.8 and b[1] >= 0.8 and a[0] != b[0]:
                return True
    return False


def _is_group(segment: str, tokens: list[str], words) -> bool:
    if len(tokens) < 2:
        return False
    if "&" in segment or "+" in segment:
        return True
    if not segment.isascii() and _HEARTS.search(segment) and _heart_between_names(segment, words):
        return True
    if not _GROUP_WORDS.isdisjoint(tokens):
        return True
    if not _CONJ.isdisjoint(tokens):
        # "Ana e Pedro": a conjunction between two confident given names
        for i in range(1, len(tokens) - 1):
            if tokens[i] in _CONJ:
                a = _lookup(tokens[i - 1])
                b = _lookup(tokens[i + 1])
                if a is not None and b is not None and a[1] >= 0.8 and b[1] >= 0.8:
                    return True
    return tokens[0] == "the" and tokens[-1].endswith("s")


def _from_full_name(full_name: str) -> GenderGuess | None:
    s = _fold(full_name)
    if not s.strip():
        return None
    if not s.isascii() or "(" in s or "[" in s or "{" in s:
        s = _BRACKETS.sub(" ", s)
    words = _ASCII_WORD.findall if s.isascii() else _WORD.findall
    # "Last, First": one comma between a surname and a given name
    if s.count(",") == 1:
        left, right = s.split(",", 1)
        lt, rt = words(left), words(right)
        if len(lt) == 1 and 1 <= len(rt) <= 2:
            rh = _lookup(rt[0])
            if rh is not None and rh[1] >= _DECIDE:
                s = right + " " + left
    for segment in _BIO_CUT.split(s):
        tokens = words(segment)
        if not tokens:
            continue
        if not _BRAND.isdisjoint(tokens):
            return _NOT_PERSON
        if _is_group(segment, tokens, words):
            return _GROUP
        return _decide_tokens(tokens)
    return None


def _from_username(username: str) -> GenderGuess | None:
    u = unicodedata.normalize("NFKC", username) if not username.isascii() else username
    u = _CAMEL.sub(" ", u)
    parts = [p for p in _USER_SPLIT.findall(_fold(u)) if p]
    if not parts:
        return None
    if any(p in _BRAND for p in parts):
        return _NOT_PERSON
    for p in parts[:3]:
        if p in ("its", "im", "the", "real", "mr", "mrs", "ms", "miss", "iam", "hey", "hi", "x", "xx", "xo"):
            continue
        if len(p) < 2:
            continue
        hit = _lookup(p)
        if hit is not None and hit[1] >= 0.7 and len(p) >= 3:
            return _answer(hit[0], hit[1] * 0.9, "username")
        hit = _wgnd(p) if len(p) >= 4 else None
        if hit is not None and hit[1] >= 0.8:
            return _answer(hit[0], hit[1] * 0.85, "username")  # oluwaseun.adeyemi
        # run-together handle: longest dictionary prefix of at least 3 letters
        if len(p) >= 5:
            for n in range(min(len(p) - 2, 12), 2, -1):
                hit = _lookup(p[:n])
                if hit is not None and hit[1] >= 0.85:
                    return _answer(hit[0], hit[1] * 0.8, "username")
        break
    return None


@lru_cache(maxsize=65536)
def _detect(full_name: str, username: str) -> GenderGuess:
    g = _from_full_name(full_name) if full_name else None
    if g is not None and (g.gender != "unknown" or g.source in ("not_person", "group")):
        return g
    if username:
        u = _from_username(username)
        if u is not None and (u.gender != "unknown" or g is None):
            if u.source == "not_person" and g is not None:
                return g
            return u
    return g if g is not None else UNKNOWN


def detect_gender(full_name: str, username: str = "") -> GenderGuess:
    """Best guess of a profile's gender from its display name, else its username. Never raises."""
    _load()
    try:
        if not isinstance(full_name, str):
            full_name = "" if full_name is None else str(full_name)
        if not isinstance(username, str):
            username = "" if username is None else str(username)
        return _detect(full_name[:200], username[:100])
    except Exception:  # pragma: no cover - defensive: inference must never break a job
        return UNKNOWN


def detect_genders(people: Iterable[tuple[str, str]]) -> list[GenderGuess]:
    """Batch form for the worker's hot path: (full_name, username) pairs in, guesses out."""
    _load()
    out: list[GenderGuess] = []
    append = out.append
    detect = _detect
    for full_name, username in people:
        if type(full_name) is str and type(username) is str:
            try:
                append(detect(full_name[:200], username[:100]))
                continue
            except Exception:  # pragma: no cover - same guarantee as detect_gender
                append(UNKNOWN)
                continue
        append(detect_gender(full_name, username))
    return out
