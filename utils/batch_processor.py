"""Classify a chunk of followers: infer each one's gender, count them, keep the target gender.

The kept rows are what `store.batches.store_chunk` writes (idempotently, with the chunk's
tally, in one transaction); a chunk is at most WRITE_CHUNK_SIZE (1000) followers.
"""
from utils.gender import detect_genders
from utils.store.batches import Tally


def classify(followers, target_gender, min_confidence):
    """(rows to keep, one per profile with its source accounts, the chunk's `Tally`)."""
    guesses = detect_genders((f.full_name, f.username) for f in followers)
    kept, tally = {}, Tally()
    for follower, guess in zip(followers, guesses):
        gender = guess.gender if guess.confidence >= min_confidence else "unknown"
        tally.scraped += 1
        setattr(tally, gender, getattr(tally, gender) + 1)
        if target_gender not in ("any", gender):
            continue
        row = kept.get(follower.profile_id)
        if row is None:
            kept[follower.profile_id] = row = _row(follower, gender, guess.confidence)
        if follower.source and follower.source not in row["sources"]:
            row["sources"].append(follower.source)
    return list(kept.values()), tally


def _row(follower, gender, confidence):
    return {
        "profile_id": follower.profile_id, "username": follower.username, "full_name": follower.full_name,
        "gender": gender, "gender_confidence": round(confidence, 4), "is_private": follower.is_private,
        "is_verified": follower.is_verified, "profile_pic_url": follower.profile_pic_url, "sources": [],
    }
