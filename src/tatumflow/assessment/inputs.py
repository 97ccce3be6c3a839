"""Model inputs of a performance: a note sequence, a piano-roll image, and note rows.

* **Notes** — one row per note: pitch, velocity, log duration, log time since
  the previous onset, onset time, sustain-pedal depth at the onset; read against
  a score, also the note's deviations from it (whether it matched a written
  note, onset from the local beat, velocity against the written one,
  articulation, local tempo: :meth:`~tatumflow.align.Alignment.note_deviations`).
* **Piano roll** — a ``(3, 96, W)`` image on a ``FRAME_S`` grid over pitches
  ``ROLL_LOW .. ROLL_LOW + 95``: channel 0 the velocity of every sounding note,
  channel 1 the velocity at each onset frame, channel 2 the pedal depth (the
  same in every row). Sixteen-by-sixteen patches of it are the AST's tokens.
* **Note rows** — one row per note of what surrounds it (:func:`note_rows`,
  :data:`NOTE_ROW_NAMES`): the note itself, its chord, its neighbourhood over
  4, 16 and 64 notes, and read against a score its deviations and theirs; what
  ``note-boosting`` rates note by note.

All three are computed with vectorised numpy from a :class:`~tatumflow.performance.Performance`
(or its arrays); the first two over a window of time, so training crops and
transpositions are rendered on the fly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..errors import TatumFlowError
from ..performance import Performance

FRAME_S = 0.1       # piano-roll frame (seconds)
ROLL_LOW = 16       # lowest pitch row
ROLL_H = 96         # pitch rows (covers the piano's 21..108 with room to transpose)
NOTE_FEATURES = 6   # pitch, velocity, log duration, log IOI, onset (s), pedal at onset
SCORE_NOTE_FEATURES = 5  # matched, onset deviation, velocity deviation, articulation, local tempo
#: onset (s), velocity, articulation and local tempo (log2) deviations are divided by these
DEVIATION_SCALE = np.array([0.1, 32.0, 1.0, 0.25], np.float32)


@dataclass
class NoteArrays:
    """A performance as plain arrays sorted by onset (what the renderers read)."""

    onset: np.ndarray
    offset: np.ndarray
    pitch: np.ndarray
    velocity: np.ndarray
    pedal_time: np.ndarray
    pedal_value: np.ndarray
    score_dev: Optional[np.ndarray] = None  # (notes, SCORE_NOTE_FEATURES): read against a score

    @classmethod
    def of(cls, perf: Performance, score: Optional[Performance] = None, alignment=None) -> "NoteArrays":
        """The arrays of ``perf``; with ``score``, also each note's deviations from it
        (``alignment``: the two already aligned, :func:`~tatumflow.align.align`)."""
        n, p = perf.notes, perf.pedals
        dev = None
        if score is not None:
            from ..align import align

            dev = (alignment if alignment is not None else align(perf, score)).note_deviations()
        return cls(n["onset"].astype(np.float64), n["offset"].astype(np.float64), n["pitch"].astype(np.int64),
                   n["velocity"].astype(np.float64), p["time"].astype(np.float64), p["value"].astype(np.float64), dev)

    @property
    def start(self) -> float:
        return float(self.onset[0]) if len(self.onset) else 0.0

    @property
    def end(self) -> float:
        return float(self.offset.max()) if len(self.offset) else 0.0

    def pedal_at(self, t: np.ndarray) -> np.ndarray:
        """Pedal depth (0..127) in force at each time."""
        k = np.searchsorted(self.pedal_time, t, side="right") - 1
        return np.where(k >= 0, self.pedal_value[np.maximum(k, 0)], 0.0) if len(self.pedal_time) else np.zeros(len(t))


def note_matrix(a: NoteArrays, t0: float, max_notes: int, transpose: int = 0, score: bool = False
                ) -> tuple[np.ndarray, int]:
    """``(max_notes, NOTE_FEATURES)`` float32 rows of the notes from ``t0`` on
    (zero-padded) and the number of real rows. ``score``: followed by the
    ``SCORE_NOTE_FEATURES`` columns: matched, then the deviations over
    ``DEVIATION_SCALE`` (about their spread over PercePiano), clipped to +-3."""
    if score and a.score_dev is None:
        raise TatumFlowError("these note arrays were not read against a score (NoteArrays.of(perf, score))")
    i0 = int(np.searchsorted(a.onset, t0, side="left"))
    sl = slice(i0, i0 + max_notes)
    on = a.onset[sl]
    n = len(on)
    out = np.zeros((max_notes, NOTE_FEATURES + (SCORE_NOTE_FEATURES if score else 0)), np.float32)
    if n == 0:
        return out, 0
    prev = np.concatenate(([on[0]], on[:-1]))
    out[:n, 0] = np.clip(a.pitch[sl] + transpose, 0, 127)
    out[:n, 1] = a.velocity[sl] / 127.0
    out[:n, 2] = np.log2(np.maximum(a.offset[sl] - on, 1e-3)) / 4.0
    out[:n, 3] = np.log2(on - prev + 0.01) / 4.0
    out[:n, 4] = on - on[0]
    out[:n, 5] = a.pedal_at(on) / 127.0
    if score:
        d = a.score_dev[sl]
        out[:n, 6] = d[:, 0]
        out[:n, 7:] = np.clip(d[:, 1:] / DEVIATION_SCALE, -3, 3)
    return out, n


def render_roll(a: NoteArrays, t0: float, frames: int, transpose: int = 0, frame_s: float = FRAME_S) -> tuple[np.ndarray, int]:
    """``(3, ROLL_H, frames)`` uint8 piano roll of ``[t0, t0 + frames * frame_s)``
    and the number of frames that hold music (the rest is padding)."""
    img = np.zeros((3, ROLL_H, frames + 1), np.int32)
    span_end = min(frames, int(np.ceil((a.end - t0) / frame_s))) if len(a.onset) else 0
    if len(a.onset):
        s = np.floor((a.onset - t0) / frame_s).astype(np.int64)
        e = np.maximum(s + 1, np.ceil((a.offset - t0) / frame_s).astype(np.int64))
        row = a.pitch + transpose - ROLL_LOW
        keep = (e > 0) & (s < frames) & (row >= 0) & (row < ROLL_H)
        on = s[keep] >= 0  # the onset is inside the window (not a note held over from before)
        s, e, row, v = np.clip(s[keep], 0, frames), np.clip(e[keep], 0, frames), row[keep], a.velocity[keep].astype(np.int32)
        np.add.at(img[0], (row, s), v)
        np.add.at(img[0], (row, e), -v)
        img[0] = np.cumsum(img[0], axis=1)
        np.maximum.at(img[1], (row[on], s[on]), v[on])
    t = t0 + (np.arange(frames) + 0.5) * frame_s
    img[2, :, :frames] = a.pedal_at(t)[None, :].astype(np.int32)
    out = np.clip(img[:, :, :frames], 0, 127).astype(np.uint8)
    return out, max(int(span_end), 1)


#: Notes on each side of the running means and spreads of :func:`note_rows`.
NOTE_ROW_WINDOWS = (4, 16, 64)
_NOTE_ROW_SERIES = ("velocity", "pedal", "log_ioi", "log_duration")
_DEV_ROW_SERIES = ("onset_dev", "velocity_dev", "articulation", "local_tempo")


def note_row_names(score: bool) -> tuple[str, ...]:
    """The columns of :func:`note_rows` (``score``: with the deviations from the score)."""
    names = ["pitch", "velocity", "log_duration", "log_ioi", "pedal", "position", "velocity_vs_mean",
             "log_duration_vs_median", "pitch_vs_median", "chord_size", "chord_top", "velocity_vs_chord",
             "below_chord_top", "below_local_top", "above_local_bottom", "velocity_below_local_max", "velocity_step"]
    series = list(_NOTE_ROW_SERIES)
    if score:
        names += ["matched", *_DEV_ROW_SERIES, "onset_dev_step", "local_tempo_step"]
        series += _DEV_ROW_SERIES
    return tuple(names + [f"{s}_{stat}_{w}" for w in NOTE_ROW_WINDOWS for s in series for stat in ("mean", "sd")])


#: Columns of :func:`note_rows` without and with a score.
NOTE_ROW_NAMES = note_row_names(False)
SCORE_NOTE_ROW_NAMES = note_row_names(True)

CHORD_S = 0.03      # onsets this close to the previous one join its chord (note_rows)
_LOCAL = 8          # notes on each side for the local register and loudness (note_rows)


def _running(x: np.ndarray, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation of ``x`` over ``w`` notes on each side (fewer at the ends)."""
    n = len(x)
    i = np.arange(n)
    lo, hi = np.maximum(i - w, 0), np.minimum(i + w + 1, n)
    c1 = np.concatenate(([0.0], np.cumsum(x)))
    c2 = np.concatenate(([0.0], np.cumsum(x * x)))
    m = (c1[hi] - c1[lo]) / (hi - lo)
    return m, np.sqrt(np.maximum((c2[hi] - c2[lo]) / (hi - lo) - m * m, 0.0))


def _local_max(x: np.ndarray, w: int) -> np.ndarray:
    """Maximum of ``x`` over ``w`` notes on each side."""
    return np.lib.stride_tricks.sliding_window_view(np.pad(x, w, mode="edge"), 2 * w + 1).max(1)


def note_rows(a: NoteArrays, score: bool = False) -> np.ndarray:
    """``(notes, len(note_row_names(score)))`` float32: one row per note (onset order)
    of the note and its context. ``score``: also its deviations from the score
    (``a`` read against one, :meth:`NoteArrays.of`)."""
    if score and a.score_dev is None:
        raise TatumFlowError("these note arrays were not read against a score (NoteArrays.of(perf, score))")
    n = len(a.onset)
    if n == 0:
        return np.zeros((0, len(note_row_names(score))), np.float32)
    pitch, vel = a.pitch.astype(np.float64), a.velocity
    dur = np.log(np.maximum(a.offset - a.onset, 1e-3))
    ioi = np.log(np.maximum(np.diff(a.onset, prepend=a.onset[0]), 1e-3))
    ped = a.pedal_at(a.onset)
    chord = np.concatenate(([0], np.cumsum(np.diff(a.onset) > CHORD_S)))
    starts = np.flatnonzero(np.diff(chord, prepend=-1))
    size = np.bincount(chord).astype(np.float64)
    top = np.maximum.reduceat(pitch, starts)[chord]
    chord_vel = (np.bincount(chord, vel) / size)[chord]
    cols = [pitch, vel, dur, ioi, ped, (a.onset - a.onset[0]) / max(a.end - a.start, 1e-3), vel - vel.mean(),
            dur - np.median(dur), pitch - np.median(pitch), size[chord], (pitch == top).astype(np.float64),
            vel - chord_vel, top - pitch, _local_max(pitch, _LOCAL) - pitch, pitch + _local_max(-pitch, _LOCAL),
            vel - _local_max(vel, _LOCAL), np.diff(vel, prepend=vel[0])]
    series = [vel, ped, ioi, dur]
    if score:
        dev = a.score_dev.astype(np.float64)
        cols += [*dev.T, np.diff(dev[:, 1], prepend=dev[0, 1]), np.diff(dev[:, 4], prepend=dev[0, 4])]
        series += [dev[:, 1], dev[:, 2], dev[:, 3], dev[:, 4]]
    for w in NOTE_ROW_WINDOWS:
        for x in series:
            cols += _running(x, w)
    return np.stack(cols, 1).astype(np.float32)
