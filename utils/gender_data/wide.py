"""Wide coverage for utils.gender: the WGND 2.0 name table and the ending model behind it.

Both are built by build_wide.py; both load on first use (importing this module reads nothing).

* ``wgnd_lookup(name)``: WGND's answer for a name that names.tsv.gz lacks and whose answer the
  model would not give by itself (see build_wide.py), as ``(gender, confidence)`` or None.
  Held as a sorted array of 32-bit hashes and a byte array of levels: about 5 bytes a name
  (2.9 M names, 5.6 MB on disk).
* ``ending_guess(name)``: the fallback for names no table holds: P(female) of the name's longest
  known ending (for as many women as men), its confidence mapped to the accuracy measured on
  held-out WGND names, women and men weighted alike.
"""
from __future__ import annotations

import array
import bisect
import gzip
import itertools
import os
import struct
import sys
import zlib

_DIR = os.path.dirname(os.path.abspath(__file__))
_LEVELS = 15
_K = 6
_CAL_BINS = 20

_hashes: array.array | None = None
_levels = b""
_answers: list[tuple[str, float]] = []
_endings: dict[str, float] = {}
prior_female = 0.5  # WGND's share of women's names; ending_pf is balanced to 0.5 already
_cal: list[float] = []


def load() -> None:
    """Read both files (about 0.25 s and 35 MB of RSS on the build machine); later calls do nothing."""
    global _hashes, _levels, _answers, _endings, prior_female, _cal
    if _hashes is not None:
        return
    with gzip.open(os.path.join(_DIR, "wgnd.bin.gz"), "rb") as fh:
        if fh.read(5) != b"WGND1":
            raise ValueError("wgnd.bin.gz: unknown format")
        (n,) = struct.unpack("<I", fh.read(4))
        purity_conf = struct.unpack(f"<{_LEVELS // 2 + 1}f", fh.read(4 * (_LEVELS // 2 + 1)))
        deltas = array.array("H")
        deltas.frombytes(fh.read(2 * n))
        _levels = fh.read()
    if sys.byteorder != "little":
        deltas.byteswap()
    _answers = [("female" if q / _LEVELS >= 0.5 else "male", round(purity_conf[abs(2 * q - _LEVELS) // 2], 4))
                for q in range(_LEVELS + 1)]
    with gzip.open(os.path.join(_DIR, "ngram.tsv.gz"), "rt", encoding="utf-8") as fh:
        for line in fh:
            key, value = line.rstrip("\n").split("\t")
            if key == "#prior":
                prior_female = float(value)
            elif key == "#cal":
                _cal = [float(x) for x in value.split()]
            else:
                _endings[key] = float(value)
    _hashes = array.array("I", itertools.accumulate(deltas))


def wgnd_lookup(name: str) -> tuple[str, float] | None:
    h = zlib.crc32(name.encode("utf-8"))
    i = bisect.bisect_left(_hashes, h)
    if i < len(_hashes) and _hashes[i] == h:
        return _answers[_levels[i]]
    return None


def ending_pf(name: str) -> float:
    """Uncalibrated P(female) of a single-word name from its longest known ending."""
    w = "^" + name
    for k in range(min(_K, len(w)), 0, -1):
        p = _endings.get(w[-k:])
        if p is not None:
            return p
    return 0.5


def ending_guess(name: str) -> tuple[str, float]:
    """(gender, calibrated confidence) of a single-word name from its endings."""
    p = ending_pf(name)
    conf = _cal[min(int((max(p, 1 - p) - 0.5) * 2 * _CAL_BINS), _CAL_BINS - 1)]
    return ("female" if p >= 0.5 else "male"), conf
