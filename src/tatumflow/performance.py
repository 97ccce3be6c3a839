"""The one in-memory music type: a piano performance.

A :class:`Performance` holds notes (onset and offset in seconds, MIDI pitch,
velocity) and sustain-pedal (CC64) events in numpy structured arrays, plus a
small metadata dict. Instances are immutable: arrays are read-only views, and
every transformation returns a new object.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping

import numpy as np

NOTE_DTYPE = np.dtype(
    [("onset", "<f8"), ("offset", "<f8"), ("pitch", "<i2"), ("velocity", "<i2")]
)
PEDAL_DTYPE = np.dtype([("time", "<f8"), ("value", "<i2")])

#: CC64 values at or above this count as "pedal down" (General MIDI convention).
PEDAL_THRESHOLD = 64
#: No performance lasts longer: a file or performance spanning more is corrupt (memory stays bounded).
MAX_SPAN_SECONDS = 24 * 3600.0


def _readonly(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a)
    if a.flags.writeable:
        a = a.view()
        a.flags.writeable = False
    return a


def make_notes(onset, offset, pitch, velocity) -> np.ndarray:
    """Build a note array (sorted by onset, then pitch) from four 1-D sequences."""
    onset = np.asarray(onset, dtype=np.float64).reshape(-1)
    n = onset.shape[0]
    notes = np.empty(n, dtype=NOTE_DTYPE)
    notes["onset"] = onset
    notes["offset"] = np.asarray(offset, dtype=np.float64).reshape(-1)
    notes["pitch"] = np.asarray(pitch).reshape(-1)
    notes["velocity"] = np.asarray(velocity).reshape(-1)
    return notes


def make_pedals(time, value) -> np.ndarray:
    """Build a CC64 event array from times (s) and values (0..127)."""
    time = np.asarray(time, dtype=np.float64).reshape(-1)
    pedals = np.empty(time.shape[0], dtype=PEDAL_DTYPE)
    pedals["time"] = time
    pedals["value"] = np.asarray(value).reshape(-1)
    return pedals


def disjoint_same_pitch(pitch: np.ndarray, onset: np.ndarray, offset: np.ndarray,
                        velocity: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Make same-pitch notes disjoint; works in any time unit (seconds or steps).

    ``onset`` must be non-decreasing (as in a Performance). Notes of one pitch
    with the same onset merge into one (latest offset, loudest velocity); a note
    still sounding when its pitch is struck again ends at the new onset.
    Returns ``(keep, offset, velocity)``: ascending indices of the surviving
    notes and their new offsets and velocities. Costs one radix sort by pitch.
    """
    n = len(pitch)
    order = np.argsort(pitch, kind="stable")  # within a pitch: onset order
    p, on, off = pitch[order], onset[order], offset[order]
    same = p[1:] == p[:-1]
    dup = same & (on[1:] == on[:-1])
    cut = same & (on[1:] < off[:-1])
    if not (cut.any() or dup.any()):
        return np.arange(n), offset, velocity
    starts = np.flatnonzero(np.concatenate(([True], ~dup)))
    off_run = np.maximum.reduceat(off, starts)
    vel_run = np.maximum.reduceat(velocity[order], starts)
    on_run, p_run = on[starts], p[starts]
    c = np.flatnonzero((p_run[1:] == p_run[:-1]) & (on_run[1:] < off_run[:-1]))
    off_run[c] = on_run[c + 1]
    keep = order[starts]
    back = np.argsort(keep)
    return keep[back], off_run[back], vel_run[back]


def _sort_notes(notes: np.ndarray) -> np.ndarray:
    order = np.lexsort((notes["offset"], notes["pitch"], notes["onset"]))
    return notes[order]


@dataclass(frozen=True, eq=False)
class Performance:
    """Notes and sustain-pedal events of one piano performance, times in seconds.

    ``notes`` is a structured array with fields ``onset``, ``offset`` (float64 s),
    ``pitch`` and ``velocity`` (int16), sorted by onset then pitch.
    ``pedals`` holds raw CC64 events (``time`` s, ``value`` 0..127) sorted by time.
    """

    notes: np.ndarray
    pedals: np.ndarray = field(default_factory=lambda: np.empty(0, PEDAL_DTYPE))
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        notes = np.asarray(self.notes)
        pedals = np.asarray(self.pedals)
        if notes.dtype != NOTE_DTYPE:
            raise TypeError(f"notes must have dtype {NOTE_DTYPE}, got {notes.dtype}")
        if pedals.dtype != PEDAL_DTYPE:
            raise TypeError(f"pedals must have dtype {PEDAL_DTYPE}, got {pedals.dtype}")
        if notes.size and not np.all(np.diff(notes["onset"]) >= 0):
            notes = _sort_notes(notes)
        if pedals.size and not np.all(np.diff(pedals["time"]) >= 0):
            pedals = pedals[np.argsort(pedals["time"], kind="stable")]
        object.__setattr__(self, "notes", _readonly(notes))
        object.__setattr__(self, "pedals", _readonly(pedals))
        object.__setattr__(self, "metadata", MappingProxyType(dict(self.metadata)))

    # -- construction -----------------------------------------------------------------
    @classmethod
    def from_arrays(
        cls, onset, offset, pitch, velocity, *, pedal_time=(), pedal_value=(), metadata=None
    ) -> "Performance":
        return cls(
            make_notes(onset, offset, pitch, velocity),
            make_pedals(pedal_time, pedal_value),
            metadata or {},
        )

    @classmethod
    def empty(cls, metadata=None) -> "Performance":
        return cls(np.empty(0, NOTE_DTYPE), np.empty(0, PEDAL_DTYPE), metadata or {})

    def replace(self, *, notes=None, pedals=None, metadata=None) -> "Performance":
        """A copy with some parts replaced (metadata is merged, not replaced)."""
        meta = dict(self.metadata)
        if metadata:
            meta.update(metadata)
        return Performance(
            self.notes if notes is None else notes,
            self.pedals if pedals is None else pedals,
            meta,
        )

    # -- views ------------------------------------------------------------------------
    @property
    def onsets(self) -> np.ndarray:
        return self.notes["onset"]

    @property
    def offsets(self) -> np.ndarray:
        return self.notes["offset"]

    @property
    def pitches(self) -> np.ndarray:
        return self.notes["pitch"]

    @property
    def velocities(self) -> np.ndarray:
        return self.notes["velocity"]

    @property
    def durations(self) -> np.ndarray:
        return self.notes["offset"] - self.notes["onset"]

    def __len__(self) -> int:
        return int(self.notes.shape[0])

    @property
    def start(self) -> float:
        return float(self.notes["onset"][0]) if len(self) else 0.0

    @property
    def end(self) -> float:
        """Time of the last note offset or pedal event (0.0 when empty)."""
        ends = [0.0]
        if len(self):
            ends.append(float(self.notes["offset"].max()))
        if self.pedals.size:
            ends.append(float(self.pedals["time"][-1]))
        return max(ends)

    @property
    def duration(self) -> float:
        return self.end

    def pedal_intervals(self, threshold: int = PEDAL_THRESHOLD) -> np.ndarray:
        """Sustain intervals as an (K, 2) array of [down, up] times in seconds.

        The pedal counts as down while CC64 >= ``threshold``. A pedal still down at
        the end is released at :attr:`end`.
        """
        if not self.pedals.size:
            return np.empty((0, 2), dtype=np.float64)
        down = self.pedals["value"] >= threshold
        prev = np.concatenate(([False], down[:-1]))
        changes = down != prev
        times = self.pedals["time"][changes]
        states = down[changes]
        starts = times[states]
        ups = times[~states]
        if starts.size > ups.size:
            ups = np.append(ups, max(self.end, float(starts[-1])))
        return np.stack([starts, ups], axis=1)

    def slice(self, start: float, end: float, *, shift: bool = True) -> "Performance":
        """Notes whose onset lies in [start, end), offsets clipped to ``end``.

        Pedal state at ``start`` is carried in as an event at ``start``. With
        ``shift`` the result starts at time 0. Uses binary search: O(log n + k).
        """
        if end < start:
            raise ValueError(f"slice end {end} is before start {start}")
        on = self.notes["onset"]
        lo, hi = np.searchsorted(on, [start, end], side="left")
        notes = self.notes[lo:hi].copy()
        np.minimum(notes["offset"], end, out=notes["offset"])
        pt = self.pedals["time"]
        plo, phi = np.searchsorted(pt, [start, end], side="left")
        pedals = self.pedals[plo:phi]
        if plo > 0 and (phi == plo or pt[plo] > start):
            carried = self.pedals[plo - 1 : plo].copy()
            carried["time"] = start
            pedals = np.concatenate([carried, pedals])
        else:
            pedals = pedals.copy()
        if shift:
            notes["onset"] -= start
            notes["offset"] -= start
            pedals["time"] -= start
        return Performance(notes, pedals, self.metadata)

    def __repr__(self) -> str:
        src = self.metadata.get("source", "")
        return (
            f"Performance(notes={len(self)}, pedal_events={self.pedals.size}, "
            f"duration={self.end:.2f}s{', source=' + repr(src) if src else ''})"
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Performance):
            return NotImplemented
        return np.array_equal(self.notes, other.notes) and np.array_equal(
            self.pedals, other.pedals
        )

    __hash__ = None  # type: ignore[assignment]
