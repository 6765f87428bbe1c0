"""Invented words for seeded games: names no memorised game shares.

Words are built from syllables drawn with a ``numpy`` generator, so the same seed always
gives the same names. :func:`invented_words` returns distinct words with distinct first
letters, so that a drawing can show each by its initial.
"""

from __future__ import annotations

import numpy as np

_ONSETS = ("b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "br", "dr", "gl", "kr", "pl", "st", "tr", "sk")
_VOWELS = ("a", "e", "i", "o", "u", "ai", "ou", "ea")
_CODAS = ("", "", "", "n", "r", "l", "sk", "m", "th")
#: Letters a drawing must not use for a piece: they mark empty cells or read as digits.
_RESERVED = set("oil")


def invented_word(rng: np.random.Generator, syllables: int = 2) -> str:
    """A pronounceable made-up word of ``syllables`` syllables, lower case."""
    parts = []
    for _ in range(syllables):
        parts.append(_ONSETS[rng.integers(len(_ONSETS))] + _VOWELS[rng.integers(len(_VOWELS))])
    return "".join(parts) + _CODAS[rng.integers(len(_CODAS))]


def invented_words(rng: np.random.Generator, n: int, syllables: int = 2) -> tuple[str, ...]:
    """``n`` distinct invented words with distinct first letters (none of ``o``, ``i``, ``l``)."""
    words: list[str] = []
    while len(words) < n:
        word = invented_word(rng, syllables)
        if word[0] in _RESERVED or any(w[0] == word[0] for w in words):
            continue
        words.append(word)
    return tuple(words)


def plural(word: str) -> str:
    """English-looking plural of an invented noun."""
    return word + ("es" if word.endswith(("s", "sk", "th", "z")) else "s")


def title(word: str) -> str:
    """``"zorvik"`` -> ``"Zorvik"``."""
    return word[:1].upper() + word[1:]


ORDINALS = ("first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth")
NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
                "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen", "twenty")


def number_word(n: int) -> str:
    """``3`` -> ``"three"`` (digits beyond twenty)."""
    return NUMBER_WORDS[n] if 0 <= n < len(NUMBER_WORDS) else str(n)
