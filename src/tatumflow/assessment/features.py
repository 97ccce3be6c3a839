"""Hand-crafted performance features: how a passage is played, not what is played.

The theory families of :mod:`tatumflow.features` (harmony, melody, rhythm,
dynamics, texture) are joined by expressive-performance measures a listener
hears as timing, articulation, touch, pedalling and balance:

* timing: inter-onset intervals between onset clusters (mean, spread, local
  tempo variation, the largest slow-downs), chord asynchrony;
* articulation: note length against the next onset (legato overlap, staccato
  share), log-duration spread;
* dynamics: velocity quantiles, melody-over-accompaniment balance, velocity
  change between successive clusters;
* pedalling: time down, presses per second, press length, share of notes
  sounding under the pedal, half-pedal depth;
* texture: register spread, simultaneous notes.

Every value is computed per performance with vectorised numpy.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..features import core
from ..features.api import feature_vector
from ..performance import Performance

PERFORMANCE_NAMES = (
    "timing/ioi_mean", "timing/ioi_cv", "timing/log_ioi_std", "timing/tempo_change_std",
    "timing/tempo_change_abs", "timing/slowdown_max", "timing/ioi_q90_over_q50", "timing/asynchrony_ms",
    "timing/asynchrony_std_ms", "timing/duration_s", "timing/onsets_per_s", "timing/first_last_ioi_ratio",
    "articulation/overlap_ratio_mean", "articulation/legato_share", "articulation/staccato_share",
    "articulation/log_duration_mean", "articulation/log_duration_std", "articulation/duration_over_ioi_median",
    "dynamics/velocity_q10", "dynamics/velocity_q50", "dynamics/velocity_q90", "dynamics/melody_balance",
    "dynamics/cluster_velocity_change", "dynamics/velocity_autocorr", "dynamics/bass_velocity",
    "dynamics/loud_share", "dynamics/soft_share",
    "pedal/down_fraction", "pedal/presses_per_s", "pedal/press_mean_s", "pedal/notes_under_pedal",
    "pedal/depth_mean", "pedal/half_pedal_share", "pedal/changes_per_onset",
    "texture/pitch_q10", "texture/pitch_q90", "texture/notes_per_onset", "texture/max_simultaneous",
)


def _safe(x: float) -> float:
    return float(x) if np.isfinite(x) else 0.0


def expressive_features(perf: Performance) -> np.ndarray:
    """The :data:`PERFORMANCE_NAMES` values of one performance (zeros where undefined)."""
    n = perf.notes
    out = np.zeros(len(PERFORMANCE_NAMES))
    if len(n) < 2:
        return out
    on, off = n["onset"], n["offset"]
    pitch, vel = n["pitch"].astype(np.float64), n["velocity"].astype(np.float64)
    dur = np.maximum(off - on, 1e-3)
    # Onset clusters (chords) 50 ms apart.
    new = np.concatenate(([True], np.diff(on) > core.CLUSTER_GAP))
    cid = np.cumsum(new) - 1
    c_on = on[new]  # each cluster's first onset
    c_last = np.maximum.reduceat(on, np.flatnonzero(new))
    c_top = np.maximum.reduceat(pitch, np.flatnonzero(new))
    c_vel = np.maximum.reduceat(vel, np.flatnonzero(new))
    sizes = np.bincount(cid)
    ioi = np.diff(c_on)
    ioi = ioi[ioi > 0]
    f = {}
    if len(ioi) >= 2:
        lio = np.log2(ioi)
        f["timing/ioi_mean"] = ioi.mean()
        f["timing/ioi_cv"] = ioi.std() / ioi.mean()
        f["timing/log_ioi_std"] = lio.std()
        dl = np.diff(lio)
        f["timing/tempo_change_std"] = dl.std()
        f["timing/tempo_change_abs"] = np.abs(dl).mean()
        f["timing/slowdown_max"] = dl.max()
        f["timing/ioi_q90_over_q50"] = np.quantile(ioi, 0.9) / max(np.median(ioi), 1e-3)
        k = max(1, len(ioi) // 8)
        f["timing/first_last_ioi_ratio"] = np.log2(ioi[-k:].mean() / ioi[:k].mean())
    chord = sizes[cid] > 1
    spread = (c_last - c_on)[sizes > 1]
    f["timing/asynchrony_ms"] = 1e3 * spread.mean() if len(spread) else 0.0
    f["timing/asynchrony_std_ms"] = 1e3 * spread.std() if len(spread) else 0.0
    length = max(perf.end - perf.start, 1e-3)
    f["timing/duration_s"] = length
    f["timing/onsets_per_s"] = len(c_on) / length
    # Articulation: each note's length against the time to the next cluster onset.
    nxt = np.searchsorted(c_on, on + core.CLUSTER_GAP, side="right")
    has_next = nxt < len(c_on)
    gap = np.where(has_next, c_on[np.minimum(nxt, len(c_on) - 1)] - on, np.nan)
    ratio = (dur / gap)[has_next & (gap > 0)]
    if len(ratio):
        f["articulation/overlap_ratio_mean"] = np.mean(np.minimum(ratio, 4.0))
        f["articulation/legato_share"] = np.mean(ratio >= 1.0)
        f["articulation/staccato_share"] = np.mean(ratio < 0.5)
        f["articulation/duration_over_ioi_median"] = np.median(ratio)
    ld = np.log2(dur)
    f["articulation/log_duration_mean"] = ld.mean()
    f["articulation/log_duration_std"] = ld.std()
    # Dynamics.
    q = np.quantile(vel, [0.1, 0.5, 0.9])
    f["dynamics/velocity_q10"], f["dynamics/velocity_q50"], f["dynamics/velocity_q90"] = q
    top = pitch == c_top[cid]
    others = chord & ~top
    f["dynamics/melody_balance"] = vel[top & chord].mean() - vel[others].mean() if others.any() else 0.0
    if len(c_vel) > 2:
        dv = np.diff(c_vel)
        f["dynamics/cluster_velocity_change"] = np.abs(dv).mean()
        a, b = c_vel[:-1] - c_vel.mean(), c_vel[1:] - c_vel.mean()
        f["dynamics/velocity_autocorr"] = (a * b).sum() / max((a * a).sum(), 1e-9)
    bass = pitch < 55
    f["dynamics/bass_velocity"] = vel[bass].mean() - vel.mean() if bass.any() else 0.0
    f["dynamics/loud_share"] = np.mean(vel >= 90)
    f["dynamics/soft_share"] = np.mean(vel <= 40)
    # Pedal.
    iv = perf.pedal_intervals()
    if len(iv):
        down = np.clip(iv[:, 1] - iv[:, 0], 0, None)
        f["pedal/down_fraction"] = down.sum() / length
        f["pedal/presses_per_s"] = len(iv) / length
        f["pedal/press_mean_s"] = down.mean()
        k = np.searchsorted(iv[:, 0], on, side="right") - 1
        under = (k >= 0) & (on < iv[np.maximum(k, 0), 1])
        f["pedal/notes_under_pedal"] = under.mean()
        f["pedal/changes_per_onset"] = len(iv) / len(c_on)
    ped = perf.pedals
    if len(ped):
        val = ped["value"].astype(np.float64)
        f["pedal/depth_mean"] = val.mean() / 127.0
        f["pedal/half_pedal_share"] = np.mean((val > 20) & (val < 100))
    # Texture.
    f["texture/pitch_q10"], f["texture/pitch_q90"] = np.quantile(pitch, [0.1, 0.9])
    f["texture/notes_per_onset"] = len(n) / len(c_on)
    ev = np.concatenate([np.ones(len(on)), -np.ones(len(off))])
    t = np.concatenate([on, off])
    order = np.lexsort((ev, t))  # offsets before onsets at the same time
    f["texture/max_simultaneous"] = np.cumsum(ev[order]).max()
    for i, name in enumerate(PERFORMANCE_NAMES):
        out[i] = _safe(f.get(name, 0.0))
    return out


def performance_features(perfs: Sequence[Performance]) -> tuple[np.ndarray, list[str]]:
    """``(n, D)`` hand-crafted features of each performance and their ``D`` names:
    the theory families of :mod:`tatumflow.features` followed by :data:`PERFORMANCE_NAMES`."""
    theory, names = feature_vector(list(perfs))
    expressive = np.stack([expressive_features(p) for p in perfs]) if perfs else np.zeros((0, len(PERFORMANCE_NAMES)))
    return np.concatenate([theory, expressive], axis=1), names + list(PERFORMANCE_NAMES)
