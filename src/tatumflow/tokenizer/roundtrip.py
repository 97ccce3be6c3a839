"""Measure how faithfully a tokenizer round-trips a performance."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from ..midi.normalize import repair_overlaps
from ..performance import Performance
from .tokenizer import PerformanceTokenizer, velocity_to_bin


@dataclass
class RoundTripReport:
    notes_in: int
    notes_out: int
    max_onset_error: float     # seconds
    max_offset_error: float    # seconds
    velocity_bin_mismatches: int
    pedal_intervals_in: int
    pedal_intervals_out: int
    max_pedal_error: float     # seconds
    decode_errors: int

    @property
    def ok(self) -> bool:
        return (
            self.notes_in == self.notes_out
            and self.velocity_bin_mismatches == 0
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
    pitch in time order.
    """
    c = tokenizer.config
    ref = performance
    inr = (ref.pitches >= c.pitch_min) & (ref.pitches <= c.pitch_max)
    if not inr.all():
        ref = ref.replace(notes=ref.notes[inr])
    if c.release == "note_off":
        ref = repair_overlaps(ref)
    out, rep = tokenizer.decode(tokenizer.encode(ref), return_report=True)
    a, b = _by_pitch(ref), _by_pitch(out)
    n = min(len(a), len(b))
    same = len(a) == len(b) and np.array_equal(a["pitch"], b["pitch"])
    if same and n:
        on_err = float(np.abs(a["onset"] - b["onset"]).max())
        off_err = float(np.abs(a["offset"] - b["offset"]).max())
        bins = c.velocity_bins
        vmis = int((velocity_to_bin(a["velocity"], bins) != velocity_to_bin(b["velocity"], bins)).sum())
    else:
        on_err = off_err = float("inf") if n else 0.0
        vmis = abs(len(a) - len(b))
    pa, pb = ref.pedal_intervals(), out.pedal_intervals()
    if c.sustain and len(pa) == len(pb):
        ped_err = float(np.abs(pa - pb).max()) if len(pa) else 0.0
    else:
        ped_err = float("inf") if c.sustain else 0.0
    return RoundTripReport(
        notes_in=len(a), notes_out=len(b), max_onset_error=on_err, max_offset_error=off_err,
        velocity_bin_mismatches=vmis, pedal_intervals_in=len(pa), pedal_intervals_out=len(pb),
        max_pedal_error=ped_err, decode_errors=rep.total,
    )
