"""Gender inference from Instagram display names and usernames.

Interim version built directly on gender-guesser; the "Gender inference" issue deepens it.
"""
from dataclasses import dataclass
from typing import Iterable

import gender_guesser.detector

# Profiles below this confidence count as "unknown" unless a job sets `minConfidence`.
DEFAULT_MIN_CONFIDENCE = 0.0

_detector = gender_guesser.detector.Detector(case_sensitive=False)
_ANSWERS = {
    "male": ("male", 0.95),
    "female": ("female", 0.95),
    "mostly_male": ("male", 0.75),
    "mostly_female": ("female", 0.75),
}


@dataclass(frozen=True, slots=True)
class GenderGuess:
    gender: str  # "male" | "female" | "unknown"
    confidence: float
    source: str


UNKNOWN = GenderGuess("unknown", 0.0, "none")


def detect_gender(full_name: str, username: str = "") -> GenderGuess:
    for word in (full_name or "").split():
        answer = _ANSWERS.get(_detector.get_gender(word.strip(".,!").title()))
        if answer:
            return GenderGuess(answer[0], answer[1], "full_name")
    return UNKNOWN


def detect_genders(people: Iterable[tuple[str, str]]) -> list[GenderGuess]:
    """Batch form for the worker's hot path: (full_name, username) pairs in, guesses out."""
    return [detect_gender(full_name, username) for full_name, username in people]
