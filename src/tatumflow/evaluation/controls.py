"""What the generation scorecard measures of each control: symbolic, numpy only.

Every function takes Performances (times in seconds from 0) and returns plain
numbers, so the same measure is applied to generated and to real music.

* content kept: :func:`chroma_cosine` (per ``hop``-second pitch-class profile),
  :func:`rhythm_correlation` (onset-count curves);
* harmony followed: :func:`chord_accuracy` (the chord of every second, as the
  harmony features pick it, against the requested progression);
* key kept: :func:`key_correlation` (the 24 Krumhansl-Kessler key correlations);
* degeneration: :func:`tail_density`, :func:`longest_note`;
* sets: :func:`diversity`, :func:`spearman`.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from ..features import chord_quality, chord_sequence, harmony_features
from ..performance import Performance


def chroma_frames(perf: Performance, n: int, *, hop: float = 2.0) -> np.ndarray:
    """(n, 12) pitch-class weight (velocity x duration within the frame) of each
    ``hop``-second frame, by onset."""
    nt = perf.notes
    f = np.floor(nt["onset"] / hop).astype(np.int64)
    ok = f < n
    w = nt["velocity"][ok] / 127.0 * np.minimum(nt["offset"][ok] - nt["onset"][ok], hop)
    idx = f[ok] * 12 + nt["pitch"][ok].astype(np.int64) % 12
    return np.bincount(idx, weights=w, minlength=n * 12).reshape(n, 12)


def chroma_cosine(a: Performance, b: Performance, *, hop: float = 2.0) -> float:
    """Mean cosine of the per-frame pitch-class profiles of ``a`` and ``b`` over the
    frames where either sounds (a frame where only one sounds counts 0)."""
    n = int(np.ceil(max(a.end, b.end, hop) / hop))
    x, y = chroma_frames(a, n, hop=hop), chroma_frames(b, n, hop=hop)
    nx, ny = np.linalg.norm(x, axis=1), np.linalg.norm(y, axis=1)
    live = (nx > 0) | (ny > 0)
    if not live.any():
        return float("nan")
    cos = (x * y).sum(1) / np.maximum(nx * ny, 1e-12)
    return float(cos[live].mean())


def onset_curve(perf: Performance, n: int, *, hop: float = 0.5) -> np.ndarray:
    f = np.floor(perf.notes["onset"] / hop).astype(np.int64)
    return np.bincount(f[f < n], minlength=n).astype(float)


def rhythm_correlation(a: Performance, b: Performance, *, hop: float = 0.5) -> float:
    """Pearson correlation of the onset counts per ``hop`` seconds over the shorter
    of the two (0 when either curve is flat)."""
    n = int(np.floor(min(a.end, b.end) / hop))
    if n < 3:
        return 0.0
    x, y = onset_curve(a, n, hop=hop), onset_curve(b, n, hop=hop)
    if x.std() == 0 or y.std() == 0:
        return 0.0
    return float(np.corrcoef(x, y)[0, 1])


def requested_chords(progression: Sequence[str], times: np.ndarray, duration: float) -> tuple[np.ndarray, list[str]]:
    """The chord asked for at each of ``times``: the progression spread evenly over
    ``duration`` seconds. Returns (root pitch classes, analysed qualities)."""
    k = len(progression)
    i = np.clip((np.asarray(times) / max(duration, 1e-9) * k).astype(int), 0, k - 1)
    rq = [chord_quality(progression[j]) for j in i]
    return np.array([r for r, _ in rq], dtype=int), [q for _, q in rq]


def chord_accuracy(perf: Performance, progression: Sequence[str], *, duration: Optional[float] = None,
                   window: float = 1.0) -> dict:
    """How often the chord heard in each ``window`` (>= 3 pitch classes) has the
    requested root, and root and quality (``progression`` spread over ``duration``,
    default the piece's end)."""
    t, roots, quals = chord_sequence(perf, window=window)
    if not len(t):
        return {"root_accuracy": 0.0, "chord_accuracy": 0.0, "windows": 0}
    want_r, want_q = requested_chords(progression, t + window / 2, duration or perf.end)
    root_ok = roots == want_r
    chord_ok = root_ok & (np.array(quals) == np.array(want_q))
    return {"root_accuracy": float(root_ok.mean()), "chord_accuracy": float(chord_ok.mean()), "windows": int(len(t))}


def key_correlation(a: Performance, b: Performance) -> float:
    """Pearson correlation of the two pieces' 24 key correlations (1: the same key
    profile)."""
    ka, kb = (harmony_features(p).values[12:36] for p in (a, b))
    if ka.std() == 0 or kb.std() == 0:
        return 0.0
    return float(np.corrcoef(ka, kb)[0, 1])


def tail_density(perf: Performance, end: float, *, tail: float = 5.0) -> float:
    """Onsets per second in the last ``tail`` seconds before ``end``."""
    on = perf.notes["onset"]
    return float(((on >= end - tail) & (on < end)).sum() / tail)


def longest_note(perf: Performance) -> float:
    return float((perf.notes["offset"] - perf.notes["onset"]).max()) if len(perf) else 0.0


def diversity(x: np.ndarray, scale: np.ndarray) -> float:
    """Mean pairwise Euclidean distance between the rows of ``x`` (pieces x
    features), each feature divided by ``scale`` (e.g. the real set's spread)."""
    x = np.asarray(x, float) / np.where(scale > 0, scale, 1.0)
    if len(x) < 2:
        return float("nan")
    d = np.sqrt(((x[:, None] - x[None]) ** 2).sum(-1))
    return float(d[np.triu_indices(len(x), 1)].mean())


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman rank correlation (ties averaged); 0 when either side is constant."""
    from scipy.stats import rankdata

    rx, ry = rankdata(x), rankdata(y)
    if rx.std() == 0 or ry.std() == 0:
        return 0.0
    return float(np.corrcoef(rx, ry)[0, 1])


#: Texture features the interpolation is read on: name -> function of a Performance.
TEXTURE = {
    "density": lambda p: len(p) / max(p.end, 1e-9),
    "voicing_size": lambda p: float(np.mean(np.bincount(np.unique(np.round(p.notes["onset"] / 0.05),
                                                                   return_inverse=True)[1]))) if len(p) else 0.0,
    "register": lambda p: float(p.notes["pitch"].mean()) if len(p) else 0.0,
}
