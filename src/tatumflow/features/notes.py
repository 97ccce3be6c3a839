"""A batch of performances as flat note arrays, the input of every feature."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from ..performance import Performance
from .backend import NumpyBackend


@dataclass
class NoteSet:
    """Notes of ``n_rows`` pieces, flat and sorted by (row, onset, pitch, offset).

    ``end`` is each piece's length in seconds (last note offset or pedal event);
    pedal presses are flat too (``ped_row``, ``ped_down``, ``ped_up``).
    """

    xp: Any
    n_rows: int
    row: Any
    onset: Any
    offset: Any
    pitch: Any
    velocity: Any
    end: Any
    ped_row: Any
    ped_down: Any
    ped_up: Any

    @property
    def n_notes(self) -> int:
        return int(self.row.shape[0])


def noteset_from_performances(perfs: Sequence[Performance]) -> NoteSet:
    """The numpy NoteSet of one or more performances."""
    rows, on, off, pitch, vel, end = [], [], [], [], [], []
    prow, pd, pu = [], [], []
    for i, p in enumerate(perfs):
        n = p.notes
        rows.append(np.full(len(n), i, np.int64))
        on.append(n["onset"])
        off.append(n["offset"])
        pitch.append(n["pitch"].astype(np.int64))
        vel.append(n["velocity"].astype(np.float64))
        end.append(p.end)
        iv = p.pedal_intervals()
        prow.append(np.full(len(iv), i, np.int64))
        pd.append(iv[:, 0])
        pu.append(iv[:, 1])
    return NoteSet(
        NumpyBackend, len(perfs), np.concatenate(rows), np.concatenate(on), np.concatenate(off),
        np.concatenate(pitch), np.concatenate(vel), np.asarray(end, np.float64),
        np.concatenate(prow), np.concatenate(pd), np.concatenate(pu),
    )
