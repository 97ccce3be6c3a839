"""Pure, idempotent clean-ups of a Performance. Inputs are never mutated."""

from __future__ import annotations

import numpy as np

from ..performance import PEDAL_THRESHOLD, Performance, disjoint_same_pitch


def repair_overlaps(performance: Performance) -> Performance:
    """Make same-pitch notes disjoint.

    A note still sounding when the same pitch is struck again ends at the new
    onset; of several notes with the same pitch and onset only the longest is
    kept, with the loudest velocity among them.
    """
    notes = performance.notes
    if len(notes) < 2:
        return performance
    keep, new_off, new_vel = disjoint_same_pitch(
        notes["pitch"], notes["onset"], notes["offset"], notes["velocity"]
    )
    if len(keep) == len(notes) and np.array_equal(new_off, notes["offset"]):
        return performance
    out = notes[keep].copy()
    out["offset"] = new_off
    out["velocity"] = new_vel
    return performance.replace(notes=out)


def resolve_pedal(performance: Performance, *, threshold: int = PEDAL_THRESHOLD) -> Performance:
    """Extend notes released while the sustain pedal is down to the pedal release.

    A sustained note is cut short when the same pitch is struck again (the
    damper falls on re-striking). Pedal events are kept, so the result still
    plays the same on a piano that honours CC64.
    """
    intervals = performance.pedal_intervals(threshold)
    notes = performance.notes
    if not len(intervals) or not len(notes):
        return performance
    off = notes["offset"]
    k = np.searchsorted(intervals[:, 0], off, side="right") - 1
    kk = np.maximum(k, 0)
    inside = (k >= 0) & (off >= intervals[kk, 0]) & (off < intervals[kk, 1])
    if not inside.any():
        return repair_overlaps(performance)
    out = notes.copy()
    out["offset"] = np.where(inside, intervals[kk, 1], off)
    return repair_overlaps(performance.replace(notes=out))


def normalize(performance: Performance, *, pedal: bool = True, overlaps: bool = True) -> Performance:
    """Apply the chosen normalisations (pedal resolution, then overlap repair)."""
    if pedal:
        performance = resolve_pedal(performance)
    if overlaps:
        performance = repair_overlaps(performance)
    return performance
