"""Candidate descriptor words per model kind: the paper's lists, and a few more that users ask for.

The descriptor selection later keeps a handful of these; a dataset scores all of them (scoring a word
against cached image embeddings costs microseconds, so a generous list costs nothing).
"""

from __future__ import annotations

from ..errors import SemantifyError

BODY_WORDS = (
    # BodyTalk / SHAPY attribute list used by the reference code
    "fat", "thin", "muscular", "tall", "short", "petite", "small", "big", "broad shoulders",
    "narrow waist", "long legs", "short legs", "long torso", "short torso", "long neck", "hourglass",
    "pear shaped", "rectangular", "masculine", "feminine", "skinny", "curvy", "heavyset", "lean",
    "proportioned", "sporty", "built", "round apple",
    # additions
    "slim", "stocky", "athletic", "chubby", "lanky", "wide hips", "pregnant",
)  # fmt: skip

HEAD_SHAPE_WORDS = (
    "fat", "thin", "long neck", "big forehead", "nose sticking-out", "ears sticking-out", "small chin",
    "long head", "chubby cheeks", "big head",
    # additions
    "round face", "square jaw", "narrow face", "wide face", "high cheekbones", "big nose",
)  # fmt: skip

EXPRESSION_WORDS = (
    "happy", "sad", "angry", "surprised", "disgusted", "fearful", "neutral", "smiling", "serious",
    "pensive", "confused", "bored", "sleepy", "tired", "excited", "relaxed", "calm", "nervous", "worried",
    "scared", "open mouth", "raise eyebrows", "open eyes", "smile",
    # additions
    "winking", "pouting", "frowning", "laughing", "shouting", "squinting",
)  # fmt: skip

ANIMAL_WORDS = ("hippo", "donkey", "horse", "cow", "lion", "cat", "dog")

VOCABULARIES: dict[str, tuple[str, ...]] = {
    "body": BODY_WORDS,
    "hand": ("big", "small", "long fingers", "short fingers", "thin", "fat"),
    "head-shape": HEAD_SHAPE_WORDS,
    "face-expression": EXPRESSION_WORDS,
    "animal": ANIMAL_WORDS,
    "custom": BODY_WORDS,
}


def vocabulary_for(kind: str) -> tuple[str, ...]:
    """The default candidate words for a model kind."""
    try:
        return VOCABULARIES[kind]
    except KeyError as error:
        raise SemantifyError(
            f"No default vocabulary for model kind '{kind}'; pass {{words}}.", parameters=("words",)
        ) from error


def parse_words(text: str) -> tuple[str, ...]:
    """``"fat, tall,broad shoulders"`` -> words, stripped, in order, without duplicates or blanks."""
    words: list[str] = []
    for word in (part.strip() for part in text.split(",")):
        if word and word not in words:
            words.append(word)
    if not words:
        raise SemantifyError(f"No descriptor words in '{text}'; separate words with commas.")
    return tuple(words)
