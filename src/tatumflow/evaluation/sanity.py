"""Controlled corruptions for checking that metrics see what they should."""

from __future__ import annotations

import numpy as np

from ..performance import Performance


def shuffle_pitches(perf: Performance, rng: np.random.Generator) -> Performance:
    """The same notes with their pitches permuted within the piece: rhythm, dynamics
    and pitch content (histogram) stay, pitch order and harmony are destroyed."""
    notes = perf.notes.copy()
    notes["pitch"] = rng.permutation(notes["pitch"])
    return perf.replace(notes=notes, metadata={"corruption": "shuffled pitches"})
