"""Data augmentation as pure functions of a Performance and an explicit RNG."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from ..performance import Performance

PIANO_LOW, PIANO_HIGH = 21, 108
OutOfRange = Literal["drop", "octave", "error"]


def transpose(performance: Performance, semitones: int, *, low: int = PIANO_LOW,
              high: int = PIANO_HIGH, out_of_range: OutOfRange = "drop") -> Performance:
    """Shift every pitch by ``semitones``.

    Notes pushed outside ``low..high`` are dropped (``"drop"``), moved back by
    whole octaves (``"octave"``), or raise ``ValueError`` (``"error"``). They
    are never wrapped around the keyboard.
    """
    notes = performance.notes.copy()
    p = notes["pitch"].astype(np.int64) + int(semitones)
    bad = (p < low) | (p > high)
    if bad.any():
        if out_of_range == "error":
            raise ValueError(f"transposing by {semitones} puts {int(bad.sum())} notes outside {low}..{high}")
        if out_of_range == "octave":
            while True:
                lo, hi = p < low, p > high
                if not (lo.any() or hi.any()):
                    break
                p = np.where(lo, p + 12, np.where(hi, p - 12, p))
        elif out_of_range == "drop":
            notes, p = notes[~bad], p[~bad]
        else:
            raise ValueError(f"unknown out_of_range policy {out_of_range!r}")
    notes["pitch"] = p
    return performance.replace(notes=notes)


def feasible_transpositions(performance: Performance, max_semitones: int = 6, *,
                            low: int = PIANO_LOW, high: int = PIANO_HIGH) -> np.ndarray:
    """Shifts in -max..max that keep every note inside ``low..high``."""
    shifts = np.arange(-max_semitones, max_semitones + 1)
    if not len(performance):
        return shifts
    pmin, pmax = int(performance.pitches.min()), int(performance.pitches.max())
    ok = (pmin + shifts >= low) & (pmax + shifts <= high)
    return shifts[ok] if ok.any() else np.array([0])


def time_stretch(performance: Performance, factor: float) -> Performance:
    """Scale every time (notes and pedal) by ``factor`` (> 0)."""
    if not factor > 0:
        raise ValueError(f"time-stretch factor must be > 0, got {factor}")
    notes = performance.notes.copy()
    notes["onset"] *= factor
    notes["offset"] *= factor
    pedals = performance.pedals.copy()
    pedals["time"] *= factor
    return performance.replace(notes=notes, pedals=pedals)


def velocity_scale(performance: Performance, factor: float) -> Performance:
    """Multiply velocities by ``factor``, rounded and clipped to 1..127."""
    if not factor > 0:
        raise ValueError(f"velocity factor must be > 0, got {factor}")
    notes = performance.notes.copy()
    notes["velocity"] = np.clip(np.rint(notes["velocity"] * factor), 1, 127)
    return performance.replace(notes=notes)


def note_dropout(performance: Performance, p: float, rng: np.random.Generator) -> Performance:
    """Remove each note independently with probability ``p`` (at least one note stays)."""
    if not 0 <= p < 1:
        raise ValueError(f"dropout probability must be in [0, 1), got {p}")
    n = len(performance)
    if n == 0 or p == 0:
        return performance
    keep = rng.random(n) >= p
    if not keep.any():
        keep[rng.integers(n)] = True
    return performance.replace(notes=performance.notes[keep])


@dataclass(frozen=True)
class Augmentation:
    """Random augmentation with the ranges of the seed's recipe; call with an RNG."""

    max_transpose: int = 6
    stretch: tuple[float, float] = (0.9, 1.1)
    velocity: tuple[float, float] = (0.8, 1.2)
    dropout: float = 0.0

    def __call__(self, performance: Performance, rng: np.random.Generator) -> Performance:
        out = performance
        if self.max_transpose:
            out = transpose(out, int(rng.choice(feasible_transpositions(out, self.max_transpose))))
        if self.stretch != (1.0, 1.0):
            out = time_stretch(out, float(rng.uniform(*self.stretch)))
        if self.velocity != (1.0, 1.0):
            out = velocity_scale(out, float(rng.uniform(*self.velocity)))
        if self.dropout:
            out = note_dropout(out, self.dropout, rng)
        return out
