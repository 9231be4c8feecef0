"""Classify a page of followers: of an actor's dataset (read through the actor's adapter, each
follower's gender inferred) or of a stored follower list (its genders as inferred then); count
them by batch and by input account, keep the target gender.

The resulting `Chunk` is what `store.batches.store_chunk` writes (idempotently, in one
transaction); a page is at most WRITE_CHUNK_SIZE (1000) items.
"""
from dataclasses import dataclass, field

from utils.actors import CursorRow, ErrorRow
from utils.gender import GenderGuess, detect_genders
from utils.scraper import Follower
from utils.store.batches import Tally


@dataclass
class Chunk:
    rows: list = field(default_factory=list)  # kept profiles, one per profile, with their source accounts
    tally: Tally = field(default_factory=Tally)
    by_account: dict = field(default_factory=dict)  # {account: Tally}
    errors: list = field(default_factory=list)  # ErrorRow
    cursors: dict = field(default_factory=dict)  # {account: the last cursor the actor emitted}
    listed: list = field(default_factory=list)  # [(account, row)]: every follower, for its account's list


def classify_items(adapter, items, accounts, target_gender, min_confidence):
    """A `Chunk` from raw dataset items."""
    read = [row for item in items for row in adapter.read(item, accounts)]
    chunk = classify([row for row in read if isinstance(row, Follower)], target_gender, min_confidence)
    chunk.errors = [row for row in read if isinstance(row, ErrorRow) and row.account]
    chunk.cursors = {row.account: row.cursor for row in read if isinstance(row, CursorRow) and row.account}
    return chunk


def classify_listed(rows, account, target_gender, min_confidence):
    """A `Chunk` from rows of `account`'s stored list (`store.lists.read`), which are listed already."""
    followers = [Follower(row.profile_id, row.username, row.full_name, row.is_private, row.is_verified,
                          row.profile_pic_url, account) for row in rows]
    guesses = [GenderGuess(row.gender, row.gender_confidence, "list") for row in rows]
    return classify(followers, target_gender, min_confidence, guesses, listing=False)


def classify(followers, target_gender, min_confidence, guesses=None, listing=True):
    """A `Chunk` from followers (and their gender guesses, inferred unless given): every one
    counted (and, `listing`, listed), the target gender kept."""
    if guesses is None:
        guesses = detect_genders((f.full_name, f.username) for f in followers)
    chunk, kept = Chunk(), {}
    for follower, guess in zip(followers, guesses):
        if listing and follower.source:
            # Unrounded: a job reading the list compares it with its own minConfidence.
            listed = {**_row(follower, guess.gender, 0), "gender_confidence": guess.confidence}
            chunk.listed.append((follower.source, listed))
        gender = guess.gender if guess.confidence >= min_confidence else "unknown"
        keep = target_gender in ("any", gender)
        for tally in (chunk.tally, *_account_tally(chunk, follower.source)):
            tally.scraped += 1
            setattr(tally, gender, getattr(tally, gender) + 1)
            tally.kept += keep
        if not keep:
            continue
        row = kept.get(follower.profile_id)
        if row is None:
            kept[follower.profile_id] = row = _row(follower, gender, guess.confidence)
        if follower.source and follower.source not in row["sources"]:
            row["sources"].append(follower.source)
    chunk.rows = list(kept.values())
    return chunk


def _account_tally(chunk, source):
    return (chunk.by_account.setdefault(source, Tally()),) if source else ()


def _row(follower, gender, confidence):
    return {
        "profile_id": follower.profile_id, "username": follower.username, "full_name": follower.full_name,
        "gender": gender, "gender_confidence": round(confidence, 4), "is_private": follower.is_private,
        "is_verified": follower.is_verified, "profile_pic_url": follower.profile_pic_url, "sources": [],
    }
