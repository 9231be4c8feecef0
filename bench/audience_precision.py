"""Who a job that keeps women keeps, on an emulated Instagram audience: the emulator's followers
(decorated display names and usernames, many cultures, brands and couples among them) of a
set of accounts, with the generator's own ground truth. Prints the precision (kept profiles
that are women) and recall (women that are kept) of utils.gender at DEFAULT_MIN_CONFIDENCE,
against plain gender-guesser on the display name's first token.

    bench/audience_precision.py [--accounts 40 --per-account 500]
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import gender_guesser.detector  # noqa: E402

from apify_emulator import followers  # noqa: E402
from utils.gender import DEFAULT_MIN_CONFIDENCE, detect_genders  # noqa: E402


def audience(accounts, per_account):
    people = {}
    for index in range(accounts):
        for follower in followers(f"audience_{index}", per_account):
            people[follower.id] = follower
    return list(people.values())


def scores(kept, truth):
    """(precision, recall) of keeping women."""
    women = sum(g == "female" for g in truth)
    hits = sum(k and g == "female" for k, g in zip(kept, truth))
    return hits / max(1, sum(kept)), hits / max(1, women)


def plain_guesser(people):
    detector = gender_guesser.detector.Detector()
    first = [(p.full_name.split() or [""])[0] for p in people]
    return [detector.get_gender(name) in ("female", "mostly_female") for name in first]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", type=int, default=40)
    parser.add_argument("--per-account", type=int, default=500)
    args = parser.parse_args()
    people = audience(args.accounts, args.per_account)
    truth = [p.intended_gender for p in people]
    guesses = detect_genders((p.full_name, p.username) for p in people)
    ours = [g.gender == "female" and g.confidence >= DEFAULT_MIN_CONFIDENCE for g in guesses]
    print(f"{len(people):,} distinct followers of {args.accounts} emulated accounts; "
          f"{sum(g == 'female' for g in truth):,} women by the generator's ground truth")
    for label, kept in (("utils.gender", ours), ("gender-guesser, first token", plain_guesser(people))):
        precision, recall = scores(kept, truth)
        print(f"{label:<30} keeps {sum(kept):>6,}: precision {precision:.3f}, recall {recall:.3f}")


if __name__ == "__main__":
    main()
