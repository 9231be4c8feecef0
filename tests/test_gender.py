"""Tests for utils.gender: one group per bullet of issue 3's "What it must handle"."""
import pytest
from hypothesis import given, settings, strategies as st

from utils.gender import DEFAULT_MIN_CONFIDENCE, GenderGuess, detect_gender, detect_genders


def g(full_name, username=""):
    return detect_gender(full_name, username)


def assigned(guess, threshold=DEFAULT_MIN_CONFIDENCE):
    return guess.gender if guess.confidence >= threshold else "unknown"


# -- Unicode: NFKC, emoji, flags, symbols, case, diacritics, Cyrillic / Greek, any script
@pytest.mark.parametrize("name,expected", [
    ("📸 Ana Souza 🇧🇷", "female"),
    ("𝓙𝓮𝓼𝓼𝓲𝓬𝓪", "female"),             # math script letters -> NFKC
    ("𝐌𝐚𝐫𝐜𝐨𝐬 𝐒𝐢𝐥𝐯𝐚", "male"),            # math bold
    ("ｊｏｈｎ　ｓｍｉｔｈ", "male"),        # fullwidth
    ("ᴊᴇssɪᴄᴀ ʟᴏᴘᴇᴢ", "female"),           # small caps
    ("MARIA JOSÉ", "female"),
    ("maria jose", "female"),             # diacritics removed
    ("Zoë ✨💖", "female"),
    ("★ Björn ★", "male"),
    ("Иван Петров", "male"),              # Cyrillic
    ("Мария Иванова", "female"),
    ("Γιώργος Παπαδόπουλος", "male"),     # Greek
    ("Ελένη", "female"),
    ("יוסף כהן", "male"),                  # Hebrew (Israel CBS data)
    ("שרה לוי", "female"),
])
def test_unicode(name, expected):
    assert assigned(g(name)) == expected


def test_unknown_scripts_do_not_crash():
    for s in ["𓀀𓁐", "﷽", "ꦲꦤ", "\u200d\u200d", "\ud7ff", "🇧🇷🇧🇷", "🏳️‍🌈", "ﷺ", "\x00\x01", "ᚠᚢᚦ"]:
        out = g(s, s)
        assert out.gender in ("male", "female", "unknown")


# -- name extraction: honorifics (gendered ones used), initials, bios, compounds, "Last, First"
@pytest.mark.parametrize("name,expected,source", [
    ("Dr. Ahmed", "male", None),
    ("Prof. Anna Schmidt", "female", None),
    ("Mr. Lee", "male", "title"),
    ("Mrs. Jean Smith", "female", "title"),
    ("Ms Taylor", "female", "title"),
    ("Miss Jordan", "female", "title"),
    ("Sr. García", "male", "title"),
    ("Sra. López", "female", "title"),
    ("Herr Müller", "male", "title"),
    ("Frau Schmidt", "female", "title"),
    ("J. R. R. Tolkien Anna", None, None),
    ("A. Kowalska", "female", "surname"),
    ("Ana Souza | Photographer 📍SP", "female", None),
    ("Carlos Mendes - Personal Trainer", "male", None),
    ("Jean-Pierre Dupont", "male", None),
    ("Anne-Marie Martin", "female", None),
    ("Maria José", "female", None),
    ("José Maria Silva", "male", None),
    ("Smith, John", "male", None),
    ("Johnson, Emily", "female", None),
])
def test_name_extraction(name, expected, source):
    out = g(name)
    if expected is not None:
        assert assigned(out) == expected, out
    if source is not None:
        assert out.source == source, out


# -- not a person: brands, pages, couples, groups
@pytest.mark.parametrize("name", [
    "Pizza Palace Official", "Nike Store", "Ana Shop", "Real Madrid Fans", "Brasil News",
    "John & Mary", "Ana + Pedro", "Maria e João", "The Smiths", "Familia Souza", "Twins Ana and Bia",
])
def test_not_a_person(name):
    out = g(name, "maria.lopez92")
    assert out.gender == "unknown", out
    assert out.source in ("not_person", "group")


# -- username fallback: split on . _ digits camelCase; segment run-together handles
@pytest.mark.parametrize("username,given,expected", [
    ("maria.lopez92", "Maria", "female"),
    ("johnsmith_", "John", "male"),
    ("johnsmith92", "John", "male"),
    ("MariaLopez", "Maria", "female"),
    ("__carlos_99", "Carlos", "male"),
    ("jessicaalves", "Jessica", "female"),
])
def test_username_fallback(username, given, expected):
    out = g("", username)
    assert out.gender == expected and out.source == "username", out
    # lower confidence than the same name written in the display name
    assert out.confidence < g(given).confidence


def test_username_not_used_when_display_name_decides():
    assert g("Maria Souza", "johnsmith").gender == "female"
    assert g("🌸✨", "johnsmith").gender == "male"


# -- surname morphology as a secondary signal
@pytest.mark.parametrize("name,expected", [
    ("Sasha Ivanova", "female"),
    ("Sasha Ivanov", "male"),
    ("Xyz Novotná", "female"),
    ("Xyz Kowalski", "male"),
    ("Xyz Jankauskienė", "female"),
    ("Xyz Kazlauskaitė", "female"),
    ("Xyz Jónsdóttir", "female"),
    ("Xyz Papadopoulou", "female"),
    ("Женя Смирнова", "female"),
])
def test_surname_morphology(name, expected):
    out = g(name)
    assert out.gender == expected, out


# -- gender-guesser's mostly_* and andy map to confidences, not certainty
def test_mostly_and_andy_are_not_certain():
    john, jordan, kim = g("John"), g("Jordan"), g("Kim")
    assert john.gender == "male" and john.confidence > 0.9
    assert jordan.gender == "male" and 0.55 < jordan.confidence < 0.9   # mostly_male
    assert kim.confidence < DEFAULT_MIN_CONFIDENCE                      # andy
    assert assigned(kim) == "unknown"


def test_batch_matches_single_and_interface():
    people = [("Ana Souza", ""), ("", "johnsmith92"), ("Pizza Palace Official", ""), ("", "")]
    out = detect_genders(people)
    assert out == [detect_gender(*p) for p in people]
    assert all(isinstance(x, GenderGuess) for x in out)
    assert 0.0 <= DEFAULT_MIN_CONFIDENCE <= 1.0


def test_non_string_inputs_do_not_raise():
    assert detect_gender(None, None).gender == "unknown"  # type: ignore[arg-type]
    assert detect_gender(123, 4.5).gender == "unknown"    # type: ignore[arg-type]


@settings(max_examples=400, deadline=None)
@given(st.text(), st.text())
def test_never_raises_on_arbitrary_unicode(full_name, username):
    out = detect_gender(full_name, username)
    assert out.gender in ("male", "female", "unknown")
    assert 0.0 <= out.confidence <= 1.0
    assert isinstance(out.source, str)


def test_japanese_names_read_in_japanese_context():
    # -a / -ya endings are women's names in much of Europe; in Japan these are men's names
    assert detect_gender("Kenta Tanaka").gender == "male"
    assert detect_gender("Tanaka Kenta").gender == "male"       # surname first
    assert detect_gender("Takuya Suzuki").gender == "male"
    assert detect_gender("Yumi Sato").gender == "female"
    # and the Japanese reading does not leak onto European names
    assert detect_gender("Maria Romero").gender == "female"
    assert detect_gender("Mario Moretti").gender == "male"


def test_surname_list_does_not_override_a_given_name_of_the_other_gender():
    from utils.gender import _surname_signal

    detect_gender("Ana")  # loads the tables
    assert _surname_signal("rosa") is None  # a woman's name, also on a list of men's surnames
    assert detect_gender("Ana da Rosa").gender == "female"


def test_batch_accepts_non_strings():
    out = detect_genders([("Ana Souza", ""), (None, "johnsmith")])  # type: ignore[list-item]
    assert out[0].gender == "female" and out[1].gender == "male"


def test_japanese_context_from_common_surnames_and_not_from_morae_alone():
    # surnames from gimei's list of common Japanese surnames give the Japanese reading
    assert assigned(detect_gender("Haruto Nakano")) == "male"
    assert assigned(detect_gender("Mei Kikuchi")) == "female"
    # a surname that merely reads as Japanese morae does not override a confident name:
    # Juan is also a Japanese woman's name (樹杏), Moreno reads mo-re-no
    assert assigned(detect_gender("Juan Moreno")) == "male"


# -- hearts: among the most common emoji of display names; only one between two given names is a couple
HEARTS = ["❤", "❤️", "♥", "♥️", "💕", "💖", "🖤"]


@pytest.mark.parametrize("heart", HEARTS)
@pytest.mark.parametrize("name,expected", [("John Okafor", "male"), ("Maria Lopez", "female")])
@pytest.mark.parametrize("where", ["start", "end", "middle", "glued"])
def test_a_heart_does_not_make_a_couple(heart, name, expected, where):
    first, last = name.split()
    decorated = {"start": f"{heart} {name}", "end": f"{name} {heart}",
                 "middle": f"{first} {heart} {last}", "glued": f"{heart}{name}{heart}"}[where]
    out = g(decorated)
    assert out.source != "group" and assigned(out) == expected, (decorated, out)
    assert out == g(name)


@pytest.mark.parametrize("heart", HEARTS)
def test_a_heart_between_two_given_names_is_a_couple(heart):
    for couple in (f"Ana {heart} Luis", f"Ana{heart}Luis", f"John {heart} Mary"):
        out = g(couple, "maria.lopez92")
        assert out.gender == "unknown" and out.source == "group", (couple, out)
    # a surname that is also a given name of the same gender: one person
    assert assigned(g(f"Pranav {heart} Travis")) == "male"


def test_importing_loads_no_table():
    import subprocess
    import sys

    code = ("import utils.gender as G; assert G.DEFAULT_MIN_CONFIDENCE; "
            "assert not G._loaded and not G._NAMES and G.wide._hashes is None; "
            "G.detect_gender('Ana'); assert G._loaded and G.wide._hashes is not None")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_ending_model_is_calibrated_on_names_it_never_saw():
    """bench/gender_data/fallback_holdout.tsv.gz: WGND names held out of the model's counts and
    of its calibration (utils/gender_data/build_wide.py). Stated confidence must match accuracy."""
    import gzip
    import os

    from utils.gender_data import wide

    detect_gender("Ana")  # loads the tables
    path = os.path.join(os.path.dirname(__file__), "..", "bench", "gender_data", "fallback_holdout.tsv.gz")
    bins: dict[int, list[float]] = {}
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        next(fh)
        for line in fh:
            name, pf = line.rstrip("\n").split("\t")
            gender, conf = wide.ending_guess(name)
            female = float(pf) >= 0.5
            right = (gender == "female") == female
            # the model speaks for as many women as men: weigh the held-out names so
            w = 0.5 / wide.prior_female if female else 0.5 / (1 - wide.prior_female)
            b = bins.setdefault(int(conf * 10), [0, 0.0, 0, 0])
            b[0] += w
            b[1] += w * conf
            b[2] += w * right
            b[3] += 1
    n = sum(b[0] for b in bins.values())
    assert sum(b[3] for b in bins.values()) > 10000
    ece = sum(abs(b[1] - b[2]) for b in bins.values()) / n  # expected calibration error
    assert ece < 0.02, bins
    for k, (m, conf_sum, right, count) in bins.items():
        if count >= 500:
            assert abs(conf_sum / m - right / m) < 0.04, (k, count, conf_sum / m, right / m)
    sure = [b for k, b in bins.items() if k >= 9]
    assert sum(b[2] for b in sure) / sum(b[0] for b in sure) > 0.9


# -- country context from the surname, where the data say a given name's gender depends on it
@pytest.mark.parametrize("name,expected", [
    ("Andrea Rossi", "male"),     # Italy (nam_dict's Italy column, Faker it_IT)
    ("Andrea Smith", "female"),   # a woman's name elsewhere
    ("Nicola Rossi", "male"),
    ("Nicola Smith", "female"),
    ("Jean Dupont", "male"),      # France
    ("Jean Smith", "female"),     # English-speaking countries
])
def test_country_of_the_surname_decides_country_dependent_names(name, expected):
    assert g(name).gender == expected, g(name)  # Jean Smith: 0.70, under the default threshold


@pytest.mark.xfail(strict=True, reason="no reachable open data lists Tunde as a man's name: nam_dict has "
                   "Hungarian Tünde (female), WGND 2.0 pools 'tunde' to 0.993 female, Faker yo_NG lists "
                   "only Yetunde (female); needs a Nigerian given-name source with sex")
def test_tunde_is_a_yoruba_mans_name():
    assert assigned(g("Tunde Uzor")) == "male"
