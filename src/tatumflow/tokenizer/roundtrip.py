"""Measure how faithfully a tokenizer round-trips a performance."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from ..midi.normalize import repair_overlaps
from ..performance import Performance, disjoint_same_pitch
from .tokenizer import PerformanceTokenizer, velocity_to_bin


@dataclass
class RoundTripReport:
    notes_in: int
    notes_out: int
    max_onset_error: float     # seconds
    max_offset_error: float    # seconds, over notes at least one time step long
    short_notes: int           # notes shorter than one step: lengthened to one step
    max_short_offset_error: float  # seconds, over those short notes (< one step)
    velocity_bin_mismatches: int
    merged_restrikes: int      # same-pitch strikes within one time step (note_off mode)
    pedal_intervals_in: int
    pedal_intervals_out: int
    max_pedal_error: float     # seconds (a press shorter than a step: its down time only)
    short_pedals: int          # presses shorter than one step: lengthened to one step
    decode_errors: int

    @property
    def ok(self) -> bool:
        return (
            self.notes_in == self.notes_out
            and self.velocity_bin_mismatches == 0
            and np.isfinite(self.max_onset_error) and np.isfinite(self.max_offset_error)
            and self.pedal_intervals_in == self.pedal_intervals_out
            and self.decode_errors == 0
        )

    def to_dict(self) -> dict:
        return asdict(self)


def _by_pitch(p: Performance) -> np.ndarray:
    n = p.notes
    return n[np.lexsort((n["onset"], n["pitch"]))]


def roundtrip_report(performance: Performance, tokenizer: PerformanceTokenizer) -> RoundTripReport:
    """Encode, decode and compare with the representable input.

    The reference is the input restricted to the tokenizer's pitch range with
    same-pitch overlaps repaired (in ``note_off`` mode two sounding notes of one
    pitch cannot be told apart, on a piano or in tokens). Notes are matched per
    pitch in time order. Two strikes of one key that fall in the same time step
    cannot be told apart in ``note_off`` mode: the tokenizer keeps the longer,
    and the report counts them as ``merged_restrikes``.
    """
    c = tokenizer.config
    ref = performance
    inr = (ref.pitches >= c.pitch_min) & (ref.pitches <= c.pitch_max)
    if not inr.all():
        ref = ref.replace(notes=ref.notes[inr])
    merged = 0
    if c.release == "note_off":
        ref = repair_overlaps(ref)
        q_on = np.rint(ref.onsets / c.time_step).astype(np.int64)
        q_off = np.maximum(np.rint(ref.offsets / c.time_step).astype(np.int64), q_on + 1)
        keep, _, vel = disjoint_same_pitch(ref.pitches, q_on, q_off, ref.velocities)
        merged = len(ref) - len(keep)
        if merged:
            kept = ref.notes[keep].copy()
            kept["velocity"] = vel
            ref = repair_overlaps(ref.replace(notes=kept))
    out, rep = tokenizer.decode(tokenizer.encode(ref), return_report=True)
    a, b = _by_pitch(ref), _by_pitch(out)
    n = min(len(a), len(b))
    same = len(a) == len(b) and np.array_equal(a["pitch"], b["pitch"])
    if same and n:
        on_err = float(np.abs(a["onset"] - b["onset"]).max())
        err = np.abs(a["offset"] - b["offset"])
        step = c.time_step
        short = np.rint(a["offset"] / step) <= np.rint(a["onset"] / step)
        n_short = int(short.sum())
        off_err = float(err[~short].max()) if (~short).any() else 0.0
        short_err = float(err[short].max()) if n_short else 0.0
        bins = c.velocity_bins
        vmis = int((velocity_to_bin(a["velocity"], bins) != velocity_to_bin(b["velocity"], bins)).sum())
    else:
        on_err = off_err = short_err = float("inf") if n else 0.0
        n_short = 0
        vmis = abs(len(a) - len(b))
    pa, pb = ref.pedal_intervals(), out.pedal_intervals()
    short_ped = 0
    if c.sustain and len(pa) == len(pb):
        err = np.abs(pa - pb)
        short_p = np.rint(pa[:, 1] / c.time_step) <= np.rint(pa[:, 0] / c.time_step)
        short_ped = int(short_p.sum())
        err[short_p, 1] = 0.0
        ped_err = float(err.max()) if len(pa) else 0.0
    else:
        ped_err = float("inf") if c.sustain else 0.0
    return RoundTripReport(
        notes_in=len(a), notes_out=len(b), max_onset_error=on_err, max_offset_error=off_err, short_notes=n_short, max_short_offset_error=short_err,
        velocity_bin_mismatches=vmis, merged_restrikes=merged, pedal_intervals_in=len(pa), pedal_intervals_out=len(pb),
        max_pedal_error=ped_err, short_pedals=short_ped, decode_errors=rep.total,
    )
