"""Objective metrics of one piece, and of a pair of pieces (numpy, no torch).

Every metric takes a :class:`Performance` (plus keyword-only parameters) and
returns a value whose name and unit are listed in :data:`METRIC_UNITS`.
Where a metric shares MusPy's definition (pitch-class entropy, pitches used,
scale consistency, polyphony, pitch range) it computes the same number, in
continuous time instead of on a tick grid.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from ..features import core
from ..features.notes import noteset_from_performances
from ..performance import Performance

EPS = 1e-12
MAJOR_SCALE = np.array([0, 2, 4, 5, 7, 9, 11])
MINOR_SCALE = np.array([0, 2, 3, 5, 7, 8, 10])
GROOVE_BINS = 24  # onset positions per beat

METRIC_UNITS = {
    "pitch_class_histogram": "fraction (12)", "pitch_class_transition": "fraction (12x12)",
    "note_density": "notes/s", "mean_ioi": "s", "unique_pitches": "pitches",
    "pitch_class_entropy": "bits", "scale_consistency": "fraction", "polyphony": "notes",
    "pitch_range": "semitones", "groove_pattern": "fraction (24)", "groove_consistency": "fraction",
    "self_similarity": "cosine", "grammar_errors_per_1k": "errors/1000 tokens",
}


def pitch_class_histogram(perf: Performance) -> np.ndarray:
    """Share of notes in each pitch class (note counts, as MusPy)."""
    h = np.bincount(perf.pitches % 12, minlength=12).astype(np.float64)
    return h / max(h.sum(), EPS)


def pitch_class_transition(perf: Performance) -> np.ndarray:
    """(12, 12) transition shares between successive notes (onset order)."""
    pc = perf.pitches.astype(np.int64) % 12
    m = np.bincount(pc[:-1] * 12 + pc[1:], minlength=144).astype(np.float64).reshape(12, 12)
    return m / max(m.sum(), EPS)


def note_density(perf: Performance) -> float:
    return len(perf) / perf.end if perf.end > 0 else 0.0


def mean_ioi(perf: Performance, *, _cl=None) -> float:
    """Mean time between successive onset clusters (chords count once)."""
    cl = _cl if _cl is not None else core.clusters(noteset_from_performances([perf]))
    on = cl["onset"]
    return float(np.diff(on).mean()) if len(on) > 1 else 0.0


def unique_pitches(perf: Performance) -> int:
    return int(np.unique(perf.pitches).size)


def pitch_class_entropy(perf: Performance) -> float:
    h = pitch_class_histogram(perf)
    h = h[h > 0]
    return float(-(h * np.log2(h)).sum())


def scale_consistency(perf: Performance) -> float:
    """Largest share of notes inside one of the 24 major/minor scales."""
    if not len(perf):
        return float("nan")
    counts = np.bincount(perf.pitches % 12, minlength=12)
    best = 0
    for scale in (MAJOR_SCALE, MINOR_SCALE):
        for root in range(12):
            best = max(best, counts[(scale + root) % 12].sum())
    return float(best / len(perf))


def polyphony(perf: Performance) -> float:
    """Mean number of distinct sounding pitches while at least one sounds."""
    if not len(perf):
        return float("nan")
    from ..midi.normalize import repair_overlaps

    p = repair_overlaps(perf)  # distinct pitches: a pitch sounds at most once
    on, off = p.onsets, p.offsets
    order = np.argsort(on, kind="stable")
    on, off = on[order], off[order]
    reach = np.maximum.accumulate(off)
    prev = np.concatenate(([-np.inf], reach[:-1]))
    covered = float(np.where(off > prev, off - np.maximum(on, prev), 0.0).sum())  # union length
    return float((off - on).sum() / covered) if covered > 0 else float("nan")


def pitch_range(perf: Performance) -> int:
    return int(perf.pitches.max() - perf.pitches.min()) if len(perf) else 0


def _grid(perf: Performance):
    """Onset clusters and the estimated beat (period s, phase s), computed once."""
    ns = noteset_from_performances([perf])
    cl = core.clusters(ns)
    if cl["n"] < 2:
        return cl, None
    frame = np.floor(cl["onset"] / core.FRAME + 0.5).astype(np.int64)
    r = core.rhythm(ns, cl)[0]
    bpm = r[core.RHYTHM_NAMES.index("tempo_bpm")]
    period = int(round(6000.0 / bpm)) if bpm > 0 else 50
    acc = np.bincount(frame % period, weights=cl["vel"], minlength=period)
    return cl, (period * core.FRAME, int(np.argmax(acc)) * core.FRAME)


def groove_pattern(perf: Performance, *, bins: int = GROOVE_BINS, _precomputed=None) -> np.ndarray:
    """Histogram of onset-cluster positions within the estimated beat."""
    cl, beat = _precomputed or _grid(perf)
    if beat is None:
        return np.zeros(bins)
    period, phase = beat
    pos = ((cl["onset"] - phase) / period) % 1.0
    h = np.bincount(np.minimum((pos * bins).astype(np.int64), bins - 1), minlength=bins).astype(float)
    return h / h.sum()


def groove_consistency(perf: Performance, *, bins: int = GROOVE_BINS, beats_per_bar: int = 4,
                       _precomputed=None) -> float:
    """1 - mean Hamming distance between the onset patterns of successive bars
    (bars of ``beats_per_bar`` estimated beats, ``bins`` slots per beat), as in
    MusPy's groove consistency but on the estimated beat grid."""
    cl, beat = _precomputed or _grid(perf)
    if beat is None:
        return float("nan")
    period, phase = beat
    slot = np.floor((cl["onset"] - phase) / period * bins).astype(np.int64)
    slot -= slot.min()
    per_bar = bins * beats_per_bar
    bar, pos = slot // per_bar, slot % per_bar
    n_bars = int(bar.max()) + 1
    if n_bars < 2:
        return float("nan")
    grid = np.zeros((n_bars, per_bar), dtype=bool)
    grid[bar, pos] = True
    return float(1.0 - np.mean(np.abs(grid[1:].astype(int) - grid[:-1].astype(int)).sum(1) / per_bar))


def self_similarity(perf: Performance, *, segment: float = 4.0) -> float:
    """Structural repetition: for each ``segment``-second span, its highest cosine
    similarity (pitch-class and onset-position profile) to any non-adjacent span,
    averaged. 1 means every span recurs; near 0 means nothing does."""
    if perf.end <= 3 * segment or not len(perf):
        return float("nan")
    n_seg = int(perf.end // segment) + 1
    seg = np.minimum((perf.onsets // segment).astype(np.int64), n_seg - 1)
    pc = perf.pitches.astype(np.int64) % 12
    pos = np.minimum(((perf.onsets % segment) / segment * 16).astype(np.int64), 15)
    feat = np.zeros((n_seg, 28))
    np.add.at(feat, (seg, pc), perf.velocities / 127.0)
    np.add.at(feat, (seg, 12 + pos), 1.0)
    norm = np.linalg.norm(feat, axis=1)
    live = norm > 0
    f = feat[live] / norm[live, None]
    idx = np.flatnonzero(live)
    if len(f) < 3:
        return float("nan")
    sim = f @ f.T
    near = np.abs(idx[:, None] - idx[None, :]) <= 1
    sim[near] = -np.inf
    best = np.max(sim, axis=1)
    ok = np.isfinite(best)  # a span whose live spans are all its neighbours has nothing to recur in
    return float(best[ok].mean()) if ok.any() else float("nan")


def grammar_errors_per_1k(ids: np.ndarray, tokenizer) -> float:
    ids = np.asarray(ids).reshape(-1)
    return 1000.0 * tokenizer.grammar_errors(ids) / max(ids.size, 1)


def piece_metrics(perf: Performance, *, ids: Optional[np.ndarray] = None, tokenizer=None) -> dict:
    """Every per-piece metric of one performance (token validity when ids are given)."""
    grid = _grid(perf)  # onset clusters and beat, shared by the timing metrics
    out = {
        "pitch_class_histogram": pitch_class_histogram(perf),
        "pitch_class_transition": pitch_class_transition(perf),
        "note_density": note_density(perf),
        "mean_ioi": mean_ioi(perf, _cl=grid[0]),
        "unique_pitches": unique_pitches(perf),
        "pitch_class_entropy": pitch_class_entropy(perf),
        "scale_consistency": scale_consistency(perf),
        "polyphony": polyphony(perf),
        "pitch_range": pitch_range(perf),
        "groove_pattern": groove_pattern(perf, _precomputed=grid),
        "groove_consistency": groove_consistency(perf, _precomputed=grid),
        "self_similarity": self_similarity(perf),
    }
    if ids is not None and tokenizer is not None:
        out["grammar_errors_per_1k"] = grammar_errors_per_1k(ids, tokenizer)
    return out


# ---------------------------------------------------------------- pairwise
def pitch_class_kl(p: Performance, q: Performance, *, alpha: float = 1e-3) -> float:
    """KL(P || Q) of pitch-class histograms, both smoothed with ``alpha``, in bits."""
    a = pitch_class_histogram(p) + alpha
    b = pitch_class_histogram(q) + alpha
    a, b = a / a.sum(), b / b.sum()
    return float((a * np.log2(a / b)).sum())


def transition_cosine(p: Performance, q: Performance) -> float:
    a, b = pitch_class_transition(p).ravel(), pitch_class_transition(q).ravel()
    return float(a @ b / max(np.linalg.norm(a) * np.linalg.norm(b), EPS))


def groove_similarity(p: Performance, q: Performance) -> float:
    """Cosine similarity of the two pieces' within-beat onset-position histograms."""
    a, b = groove_pattern(p), groove_pattern(q)
    return float(a @ b / max(np.linalg.norm(a) * np.linalg.norm(b), EPS))
