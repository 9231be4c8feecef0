"""Readers of the data files of utils.gender (built by build.py); utils.gender calls them on
first use, so that importing it reads nothing."""
from __future__ import annotations

import gzip
import os

_DATA_DIR = os.path.dirname(os.path.abspath(__file__))

# evidence mass (build.py) of a well-attested given name: Luis 47, Mary 58, not Amer 7, Nazir 9
_COMMON_MASS = 20.0


def load_names() -> tuple[dict[str, tuple[str, float]], frozenset[str]]:
    """The dictionary, and the set of its well-attested single-word names."""
    table: dict[str, tuple[str, float]] = {}
    common: list[str] = []
    with gzip.open(os.path.join(_DATA_DIR, "names.tsv.gz"), "rt", encoding="utf-8") as fh:
        for line in fh:
            key, f, m = line.rstrip("\n").split("\t")
            f = float(f)
            m = float(m)
            pf = (f + 0.25) / (f + m + 0.5)
            if pf >= 0.5:
                table[key] = ("female", pf)
            else:
                table[key] = ("male", 1.0 - pf)
            if f + m >= _COMMON_MASS and " " not in key:
                common.append(key)
    return table, frozenset(common)


def load_surnames() -> dict[str, str]:
    out: dict[str, str] = {}
    with gzip.open(os.path.join(_DATA_DIR, "surnames.tsv.gz"), "rt", encoding="utf-8") as fh:
        for line in fh:
            key, g = line.rstrip("\n").split("\t")
            out[key] = "female" if g == "F" else "male"
    return out


def load_context() -> tuple[dict[str, dict[str, tuple[float, float]]], dict[str, tuple[str, ...]]]:
    """Country-dependent given names ({name: {country: (female, male)}}) and the countries each
    surname points to (utils/gender_data/context.tsv.gz, see build.py's write_context)."""
    names: dict[str, dict[str, tuple[float, float]]] = {}
    surnames: dict[str, tuple[str, ...]] = {}
    with gzip.open(os.path.join(_DATA_DIR, "context.tsv.gz"), "rt", encoding="utf-8") as fh:
        for line in fh:
            parts = line.rstrip("\n").split("\t")
            if parts[0].startswith("@"):
                surnames[parts[0][1:]] = tuple(parts[1].split(","))
            else:
                names.setdefault(parts[0], {})[parts[1]] = (float(parts[2]), float(parts[3]))
    return names, surnames


def load_family_names() -> frozenset[str]:
    with gzip.open(os.path.join(_DATA_DIR, "family_names.txt.gz"), "rt", encoding="utf-8") as fh:
        return frozenset(line.rstrip("\n") for line in fh)


def load_suffixes() -> dict[str, tuple[str, float]]:
    out: dict[str, tuple[str, float]] = {}
    with gzip.open(os.path.join(_DATA_DIR, "suffixes.tsv.gz"), "rt", encoding="utf-8") as fh:
        for line in fh:
            suf, g, purity, _n = line.rstrip("\n").split("\t")
            out[suf] = ("female" if g == "F" else "male", float(purity))
    return out


def passport(s: str) -> str:
    """Japanese romanisation without long vowels, as most people write their names (Kouta -> Kota)."""
    return s.replace("ou", "o").replace("uu", "u").replace("oo", "o")


def load_japanese():
    """Japanese-context names, endings and surnames. A passport spelling pools the evidence of
    every reading it may stand for: "Yuma" is Yuma (ゆま) or Yuuma (ゆうま)."""
    mass: dict[str, list[float]] = {}
    endings: dict[str, tuple[str, float]] = {}
    surnames: set[str] = set()
    with gzip.open(os.path.join(_DATA_DIR, "ja_names.tsv.gz"), "rt", encoding="utf-8") as fh:
        for line in fh:
            line = line.rstrip("\n")
            if line.startswith("@"):
                surnames.add(line[1:])
                surnames.add(passport(line[1:]))
                continue
            if line.startswith("#"):
                suf, g, purity, _n = line[1:].split("\t")
                endings[suf] = ("female" if g == "F" else "male", float(purity))
                continue
            key, f, m = line.split("\t")
            for spelling in {key, passport(key)}:
                acc = mass.setdefault(spelling, [0.0, 0.0])
                acc[0] += float(f)
                acc[1] += float(m)
    names: dict[str, tuple[str, float]] = {}
    for key, (f, m) in mass.items():
        pf = (f + 0.25) / (f + m + 0.5)
        names[key] = ("female", pf) if pf >= 0.5 else ("male", 1.0 - pf)
    return names, endings, surnames
