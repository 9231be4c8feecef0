"""Classify a chunk of followers, count them into the batch's tally, and store the kept ones.

A chunk is at most WRITE_CHUNK_SIZE (1000) followers; storing it is one idempotent
transaction (`utils/store/results.py`).
"""
from utils.gender import detect_genders
from utils.store.results import write_profiles


def process_chunk(engine, claim, followers, tally):
    """Infer genders for `followers`, count them into `tally`, store the kept ones.

    Returns the number of profiles that were new to the job.
    """
    guesses = detect_genders((f.full_name, f.username) for f in followers)
    kept = {}
    for follower, guess in zip(followers, guesses):
        gender = guess.gender if guess.confidence >= claim.min_confidence else "unknown"
        tally.scraped += 1
        setattr(tally, gender, getattr(tally, gender) + 1)
        if claim.target_gender not in ("any", gender):
            continue
        row = kept.get(follower.profile_id)
        if row is None:
            kept[follower.profile_id] = row = _row(follower, gender, guess.confidence)
        if follower.source and follower.source not in row["sources"]:
            row["sources"].append(follower.source)
    return write_profiles(engine, claim.job_id, list(kept.values()))


def _row(follower, gender, confidence):
    return {
        "profile_id": follower.profile_id, "username": follower.username, "full_name": follower.full_name,
        "gender": gender, "gender_confidence": round(confidence, 4), "is_private": follower.is_private,
        "is_verified": follower.is_verified, "profile_pic_url": follower.profile_pic_url, "sources": [],
    }
