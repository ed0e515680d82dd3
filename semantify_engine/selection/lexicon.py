"""Synonyms and antonyms of descriptor words, offline.

The paper drops a descriptor that is a synonym or an antonym of one already chosen: two sliders "thin" and
"skinny" move the same thing, and "fat" and "thin" are one slider pulled two ways. The reference code asks
WordNet, which needs a corpus download (no network in Blender or on a build machine) and knows little of
multi-word body descriptors. Here a small lexicon written for the bundled vocabularies
(``semantify_engine/data/lexicon.json``) answers instead:

* a **synonym group** is pairwise synonymous ("thin", "skinny", "slim", "lean"); synonymy is *not* carried
  from group to group ("heavyset" is in the "fat" group and in the "stocky" group, yet "fat" and "stocky"
  stay unrelated), because near-synonyms chained together drift away from the first meaning;
* an **antonym pair** ("fat" / "thin") also makes the synonyms of one side antonyms of the other side
  ("chubby" / "skinny"), one step only;
* a **multi-word descriptor** is related to another with the same tail through its first word: "long legs" /
  "short legs" are antonyms because "long" / "short" are, "broad shoulders" / "wide shoulders" synonyms
  because "broad" / "wide" are. So "long arms" / "short arms" is judged right although neither is listed.

Words are compared after :func:`normalise` (lower case, hyphens and underscores as spaces), so
"nose sticking-out" and "Nose sticking out" are one word.

The lexicon also knows which words it **covers**: every word of the bundled vocabularies, vetted when the
lexicon was written. Between two covered words the lexicon's silence means "unrelated"; only for a pair with
a word outside it (a user's own word) does the descriptor selector fall back on CLIP text-embedding
similarity (:class:`~semantify_engine.selection.descriptors.DescriptorSelector`).

Pure Python, no numpy: the Blender add-on may import it while it registers.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Literal

from ..errors import LexiconError
from ..scoring.vocabulary import VOCABULARIES

LEXICON_PATH = Path(__file__).resolve().parent.parent / "data" / "lexicon.json"
LEXICON_FORMAT = "semantify-lexicon"
LEXICON_FORMAT_VERSION = 1

Relation = Literal["synonym", "antonym"]


def normalise(word: str) -> str:
    """The form words are compared in: lower case, ``-`` and ``_`` read as spaces, single spaces.

    Users type "nose sticking-out", "Nose sticking out" and "nose_sticking_out" for one descriptor.
    """
    return " ".join(str(word).lower().replace("-", " ").replace("_", " ").split())


@dataclass(frozen=True)
class Lexicon:
    """Synonym and antonym sets per normalised word, plus the words the lexicon vouches for.

    Build one with :meth:`from_groups` or :meth:`load`; the bundled one is :func:`default_lexicon`.
    """

    synonyms: Mapping[str, frozenset[str]]
    antonyms: Mapping[str, frozenset[str]]
    covered: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def from_groups(
        cls,
        synonym_groups: Iterable[Sequence[str]],
        antonym_pairs: Iterable[Sequence[str]],
        covered: Iterable[str] = (),
    ) -> Lexicon:
        """Expand synonym groups and antonym pairs into per-word sets (see the module docstring).

        Raises :class:`LexiconError` when a word ends up both synonym and antonym of another: such a
        lexicon would drop a descriptor for contradictory reasons, and it always is a typo.
        """
        synonyms: dict[str, set[str]] = defaultdict(set)
        for group in synonym_groups:
            members = {normalise(word) for word in group}
            for word in members:
                synonyms[word] |= members - {word}
        antonyms: dict[str, set[str]] = defaultdict(set)
        for pair in antonym_pairs:
            if len(pair) != 2:
                raise LexiconError(f"An antonym entry must be a pair of words, got {list(pair)!r}.")
            left, right = (normalise(word) for word in pair)
            left_side = {left} | synonyms.get(left, set())
            right_side = {right} | synonyms.get(right, set())
            for word in left_side:
                antonyms[word] |= right_side
            for word in right_side:
                antonyms[word] |= left_side
        lexicon = cls(
            synonyms={word: frozenset(others) for word, others in synonyms.items()},
            antonyms={word: frozenset(others) for word, others in antonyms.items()},
            covered=frozenset(normalise(word) for word in covered),
        )
        lexicon._check_consistent()
        return lexicon

    @classmethod
    def load(cls, path: Path = LEXICON_PATH, covered: Iterable[str] = ()) -> Lexicon:
        """Read a lexicon JSON file (format ``semantify-lexicon``, version 1)."""
        try:
            data: Any = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise LexiconError(f"Cannot read the lexicon file {path}: {error}") from error
        if not isinstance(data, dict) or data.get("format") != LEXICON_FORMAT:
            raise LexiconError(f"{path} is not a lexicon file (expected format '{LEXICON_FORMAT}').")
        if data.get("format_version") != LEXICON_FORMAT_VERSION:
            raise LexiconError(
                f"{path} has lexicon format version {data.get('format_version')!r}; this version of "
                f"Semantify reads version {LEXICON_FORMAT_VERSION}."
            )
        groups, pairs = data.get("synonyms", []), data.get("antonyms", [])
        if not _is_list_of_word_lists(groups) or not _is_list_of_word_lists(pairs):
            raise LexiconError(f"{path}: 'synonyms' and 'antonyms' must be lists of lists of words.")
        return cls.from_groups(groups, pairs, covered)

    def relation(self, first: str, second: str) -> Relation | None:
        """``"synonym"``, ``"antonym"`` or ``None`` for two descriptors; symmetric.

        The same word (after :func:`normalise`) counts as a synonym of itself. Multi-word descriptors with
        the same tail are related as their first words are.
        """
        first, second = normalise(first), normalise(second)
        if first == second:
            return "synonym"
        direct = self._direct(first, second)
        if direct is not None:
            return direct
        first_head, _, first_tail = first.partition(" ")
        second_head, _, second_tail = second.partition(" ")
        if first_tail and first_tail == second_tail:
            return self._direct(first_head, second_head)
        return None

    def knows(self, word: str) -> bool:
        """Whether the lexicon vouches for ``word``: it is listed, or covered (a vetted vocabulary word)."""
        word = normalise(word)
        return word in self.covered or word in self.synonyms or word in self.antonyms

    def synonyms_of(self, word: str) -> frozenset[str]:
        """Listed synonyms of ``word`` (normalised forms; no multi-word composition)."""
        return self.synonyms.get(normalise(word), frozenset())

    def antonyms_of(self, word: str) -> frozenset[str]:
        """Listed antonyms of ``word`` (normalised forms; no multi-word composition)."""
        return self.antonyms.get(normalise(word), frozenset())

    def _direct(self, first: str, second: str) -> Relation | None:
        if second in self.synonyms.get(first, ()):
            return "synonym"
        if second in self.antonyms.get(first, ()):
            return "antonym"
        return None

    def _check_consistent(self) -> None:
        for word, opposites in self.antonyms.items():
            if word in opposites:
                raise LexiconError(f"Lexicon: '{word}' is listed as its own antonym.")
            clash = opposites & self.synonyms.get(word, frozenset())
            if clash:
                raise LexiconError(
                    f"Lexicon: '{word}' has {sorted(clash)} as both synonyms and antonyms; fix the "
                    "synonym groups or antonym pairs."
                )


def _is_list_of_word_lists(value: object) -> bool:
    return isinstance(value, list) and all(
        isinstance(entry, list) and all(isinstance(word, str) for word in entry) for entry in value
    )


def vocabulary_words() -> frozenset[str]:
    """Every word of the bundled vocabularies, normalised: what the bundled lexicon was written for."""
    return frozenset(normalise(word) for words in VOCABULARIES.values() for word in words)


@cache
def default_lexicon() -> Lexicon:
    """The bundled lexicon, covering the bundled vocabularies; read once per process."""
    return Lexicon.load(LEXICON_PATH, covered=vocabulary_words())
