"""Chord symbols (``Dm7``, ``Bbmaj7``, ``F#m7b5``, ``G7/B``): the one chord vocabulary.

Every spelling maps to its intervals above the root and to the analysed quality
of :data:`~.core.CHORD_QUALITIES` it reduces to (what the harmony features can
report: ``"9"`` is heard as a ``"7"`` chord, ``"add9"`` as ``"maj"``)."""

from __future__ import annotations

import re

from ..errors import TatumFlowError
from .core import CHORD_QUALITIES

#: spelling -> (intervals above the root, analysed quality in CHORD_QUALITIES)
CHORD_SYMBOLS: dict[str, tuple[tuple[int, ...], str]] = {
    **{s: ((0, 4, 7), "maj") for s in ("", "maj", "M")},
    **{s: ((0, 3, 7), "min") for s in ("m", "min", "-")},
    **{s: ((0, 4, 7, 10), "7") for s in ("7", "dom7")},
    **{s: ((0, 4, 7, 11), "maj7") for s in ("maj7", "M7", "^7")},
    **{s: ((0, 3, 7, 10), "m7") for s in ("m7", "min7", "-7")},
    "mmaj7": ((0, 3, 7, 11), "min"),
    **{s: ((0, 3, 6, 10), "m7b5") for s in ("m7b5", "ø", "ø7")},
    **{s: ((0, 3, 6), "dim") for s in ("dim", "o")},
    **{s: ((0, 3, 6, 9), "dim7") for s in ("dim7", "o7")},
    **{s: ((0, 4, 8), "aug") for s in ("aug", "+")},
    "6": ((0, 4, 7, 9), "6"), "m6": ((0, 3, 7, 9), "m6"),
    **{s: ((0, 5, 7), "sus4") for s in ("sus", "sus4")},
    "sus2": ((0, 2, 7), "sus2"), "7sus4": ((0, 5, 7, 10), "sus4"),
    "9": ((0, 4, 7, 10, 14), "7"), "maj9": ((0, 4, 7, 11, 14), "maj7"), "m9": ((0, 3, 7, 10, 14), "m7"),
    "7b9": ((0, 4, 7, 10, 13), "7"), "7#9": ((0, 4, 7, 10, 15), "7"), "11": ((0, 4, 7, 10, 14, 17), "7"),
    "m11": ((0, 3, 7, 10, 14, 17), "m7"), "13": ((0, 4, 7, 10, 14, 21), "7"), "7#11": ((0, 4, 7, 10, 18), "7"),
    "add9": ((0, 4, 7, 14), "maj"),
}
assert all(q in CHORD_QUALITIES for _, q in CHORD_SYMBOLS.values())

_ROOTS = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}


def parse_chord(symbol: str) -> tuple[int, tuple[int, ...]]:
    """``"Dm7"`` -> (root pitch class 2, intervals (0, 3, 7, 10)); a slash bass is ignored."""
    m = re.fullmatch(r"([A-Ga-g])([#b]?)([^/]*)(?:/[A-Ga-g][#b]?)?", symbol.strip())
    if not m or m.group(3) not in CHORD_SYMBOLS:
        raise TatumFlowError(f"chord {symbol!r}: not a chord symbol this parser knows (root A-G, optional # or b, "
                             f"then one of {', '.join(q or 'maj' for q in CHORD_SYMBOLS)})")
    root = (_ROOTS[m.group(1).upper()] + {"#": 1, "b": -1, "": 0}[m.group(2)]) % 12
    return root, CHORD_SYMBOLS[m.group(3)][0]


def chord_quality(symbol: str) -> tuple[int, str]:
    """``"Dm9"`` -> (2, ``"m7"``): the root and the analysed quality the features report."""
    m = re.fullmatch(r"[A-Ga-g][#b]?([^/]*)(?:/.*)?", symbol.strip())
    root, _ = parse_chord(symbol)
    return root, CHORD_SYMBOLS[m.group(1)][1]


def progression_symbols(text: str) -> list[str]:
    """``"Dm7 G7 | Cmaj7"`` -> ``["Dm7", "G7", "Cmaj7"]`` (space, comma or bar separated),
    each checked by :func:`parse_chord`."""
    symbols = [s for s in re.split(r"[\s|,]+", text.strip()) if s]
    if not symbols:
        raise TatumFlowError("the chord progression is empty")
    for s in symbols:
        parse_chord(s)
    return symbols


def parse_progression(text: str) -> list[tuple[int, tuple[int, ...]]]:
    """``"Dm7 G7 | Cmaj7"`` -> one (root, intervals) per chord (space, comma or bar separated)."""
    return [parse_chord(s) for s in progression_symbols(text)]
