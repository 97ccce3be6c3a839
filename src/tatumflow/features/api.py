"""The numpy face: features of a Performance, as named values with units."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..performance import Performance
from . import core
from .notes import noteset_from_performances

UNITS = {
    "pcp": "fraction", "key_corr": "correlation", "key_confidence": "correlation",
    "chord_type": "fraction", "chorded_fraction": "fraction", "chord_change_rate": "changes/s",
    "chord_type_entropy": "bits", "chord_root_entropy": "bits", "interval": "fraction",
    "contour": "fraction", "skyline_range": "semitones", "stepwise_ratio": "fraction",
    "skyline_mean": "MIDI pitch", "log_ioi": "fraction", "rhythmic_entropy": "bits",
    "note_density": "notes/s", "onset_density": "onsets/s", "ioi_log2_std": "octaves",
    "tempo_bpm": "beats/min", "beat_strength": "ratio", "syncopation": "fraction",
    "swing_ratio": "ratio", "velocity_hist": "fraction", "velocity_mean": "velocity",
    "velocity_std": "velocity", "velocity_range": "velocity", "accent_rate": "fraction",
    "velocity_trend": "velocity/min", "voicing_size": "fraction", "voicing_size_mean": "notes",
    "polyphony": "notes", "pedal_fraction": "fraction", "pedal_rate": "presses/min",
    "pitch_mean": "MIDI pitch", "pitch_std": "semitones", "pitch_range": "semitones",
}


def unit_of(name: str) -> str:
    return UNITS[name.split(".")[0]]


@dataclass(frozen=True)
class Features:
    """Named feature values of one family for one piece."""

    family: str
    names: tuple[str, ...]
    values: np.ndarray

    def __getitem__(self, name: str) -> float:
        return float(self.values[self.names.index(name)])

    def as_dict(self) -> dict[str, float]:
        return {n: float(v) for n, v in zip(self.names, self.values)}

    def units(self) -> dict[str, str]:
        return {n: unit_of(n) for n in self.names}

    def __len__(self) -> int:
        return len(self.names)


def _family(fn, family: str, perf: Performance, **kw) -> Features:
    vals = fn(noteset_from_performances([perf]), **kw)[0]
    return Features(family, tuple(core.FAMILIES[family]), vals)


def harmony_features(perf: Performance, *, window: float = 1.0) -> Features:
    return _family(core.harmony, "harmony", perf, window=window)


def melody_features(perf: Performance) -> Features:
    return _family(core.melody, "melody", perf)


def rhythm_features(perf: Performance) -> Features:
    return _family(core.rhythm, "rhythm", perf)


def dynamics_features(perf: Performance) -> Features:
    return _family(core.dynamics, "dynamics", perf)


def texture_features(perf: Performance) -> Features:
    return _family(core.texture, "texture", perf)


def extract_features(perfs: "Performance | Sequence[Performance]", *, window: float = 1.0) -> dict[str, np.ndarray]:
    """Every family for one or many performances: ``{family: (n, D) array}``."""
    if isinstance(perfs, Performance):
        perfs = [perfs]
    return core.all_families(noteset_from_performances(list(perfs)), window=window)


def feature_vector(perfs: "Performance | Sequence[Performance]", *, window: float = 1.0) -> tuple[np.ndarray, list[str]]:
    """All families side by side: ``(n, D)`` and the ``D`` names (``family/name``)."""
    fams = extract_features(perfs, window=window)
    names = [f"{f}/{n}" for f in core.FAMILIES for n in core.FAMILIES[f]]
    return np.concatenate([fams[f] for f in core.FAMILIES], axis=1), names


def estimate_key(perf: Performance) -> tuple[str, float]:
    """The best of the 24 Krumhansl-Kessler keys and its confidence."""
    h = harmony_features(perf)
    corr = h.values[12:36]
    return core.KEY_NAMES[int(np.argmax(corr))], h["key_confidence"]


def chord_sequence(perf: Performance, *, window: float = 1.0) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """The chord of every ``window`` seconds (by onset) that holds >= 3 pitch classes,
    chosen as :func:`harmony_features` chooses it (best of the templates by cosine):
    ``(window start times, root pitch classes, quality names)``."""
    on, off = perf.notes["onset"], perf.notes["offset"]
    if not len(on):
        return np.empty(0), np.empty(0, dtype=int), []
    w = np.floor(on / window).astype(np.int64)
    n = int(w.max()) + 1
    weight = perf.notes["velocity"] / 127.0 * np.minimum(off - on, window)
    pcp = np.bincount(w * 12 + perf.notes["pitch"].astype(np.int64) % 12, weights=weight,
                      minlength=n * 12).reshape(n, 12)
    rows = np.flatnonzero((pcp > 0).sum(1) >= 3)
    x = pcp[rows] / np.linalg.norm(pcp[rows], axis=1, keepdims=True)
    best = core.TEMPLATE_IDS[np.argmax(x @ core.TEMPLATES_DISTINCT_T - core.TEMPLATE_TIE_BREAK[None], axis=1)]
    return rows * window, best // core.N_QUAL, [core.QUALITY_NAMES[q] for q in best % core.N_QUAL]


def pooled_voicings(perfs: Sequence[Performance], *, min_notes: int = 3) -> int:
    """Number of distinct voicings (interval structure above the bass, by onset
    cluster of >= ``min_notes`` distinct pitches) pooled over a set of pieces."""
    seen: set[tuple[int, ...]] = set()
    for p in perfs:
        ns = noteset_from_performances([p])
        cl = core.clusters(ns)
        cid = cl["id"]
        if not len(cid):
            continue
        order = np.lexsort((ns.pitch, cid))
        pit, c = ns.pitch[order], cid[order]
        starts = np.flatnonzero(np.concatenate(([True], c[1:] != c[:-1])))
        for a, b in zip(starts, np.append(starts[1:], len(c))):
            u = np.unique(pit[a:b])
            if len(u) >= min_notes:
                seen.add(tuple((u - u[0]).tolist()))
    return len(seen)
