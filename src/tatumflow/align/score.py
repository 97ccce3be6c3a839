"""Score-relative features: how a passage was played against what is written.

Expressive ratings judge timing, dynamics, articulation and voicing relative to
the score; these features measure exactly those deviations from an
:class:`~tatumflow.align.notes.Alignment` (zeros where a measure is undefined,
e.g. no chords).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import numpy as np

from ..performance import Performance
from .notes import align

#: Bump when alignment or these features change what they compute (feature caches key on it).
SCORE_FEATURE_VERSION = 2
SCORE_FEATURE_NAMES = (
    "score/match_rate", "score/extra_rate", "score/wrong_rate",
    "score/onset_dev_abs_ms", "score/onset_dev_std_ms", "score/onset_dev_q90_ms",
    "score/tempo_log_std", "score/tempo_log_range", "score/tempo_trend", "score/tempo_final",
    "score/tempo_autocorr", "score/overall_speed",
    "score/velocity_dev_mean", "score/velocity_dev_std", "score/velocity_shape_corr",
    "score/articulation_median", "score/articulation_std", "score/articulation_legato_share",
    "score/chord_spread_ms", "score/chord_spread_std_ms", "score/melody_lead_ms",
    "score/pedal_per_written_chord",
)


def score_features(performance: Performance, score: Performance) -> np.ndarray:
    """The :data:`SCORE_FEATURE_NAMES` values of a performance against its score."""
    a = align(performance, score)
    f = dict.fromkeys(SCORE_FEATURE_NAMES, 0.0)
    f["score/match_rate"], f["score/extra_rate"] = a.match_rate, a.extra_rate
    f["score/wrong_rate"] = a.wrong / max(len(a.score), 1)
    d = a.deviations()
    if len(d["onset"]):
        ms = 1e3 * d["onset"]
        f["score/onset_dev_abs_ms"] = float(np.mean(np.abs(ms)))
        f["score/onset_dev_std_ms"] = float(np.std(ms))
        f["score/onset_dev_q90_ms"] = float(np.quantile(np.abs(ms), 0.9))
        f["score/velocity_dev_mean"] = float(d["velocity"].mean())
        f["score/velocity_dev_std"] = float(d["velocity"].std())
        f["score/articulation_median"] = float(np.median(d["articulation"]))
        f["score/articulation_std"] = float(d["articulation"].std())
        f["score/articulation_legato_share"] = float(np.mean(d["articulation"] > 0))
        sv = a.score["velocity"][a.pairs[:, 0]].astype(float)
        pv = a.perf["velocity"][a.pairs[:, 1]].astype(float)
        if sv.std() > 0 and pv.std() > 0:  # do the dynamics follow the written ones?
            f["score/velocity_shape_corr"] = float(np.corrcoef(sv, pv)[0, 1])
    r = d["tempo_ratio"]
    if len(r) >= 3:
        f["score/tempo_log_std"] = float(r.std())
        f["score/tempo_log_range"] = float(np.quantile(r, 0.95) - np.quantile(r, 0.05))
        x = np.linspace(-1, 1, len(r))
        f["score/tempo_trend"] = float(np.polyfit(x, r, 1)[0])
        tail = max(1, len(r) // 5)
        f["score/tempo_final"] = float(r[-tail:].mean() - r.mean())  # > 0: slower at the end
        c = r - r.mean()
        f["score/tempo_autocorr"] = float((c[:-1] * c[1:]).sum() / max((c * c).sum(), 1e-12))
    st, pt = a.tempo_curve()
    if len(st) >= 2 and st[-1] > st[0]:
        f["score/overall_speed"] = float(np.log2((pt[-1] - pt[0]) / (st[-1] - st[0]) + 1e-9))
    spread, lead = a.chord_asynchrony()
    if len(spread):
        f["score/chord_spread_ms"] = float(1e3 * spread.mean())
        f["score/chord_spread_std_ms"] = float(1e3 * spread.std())
        f["score/melody_lead_ms"] = float(1e3 * lead.mean())
    chords = len(np.unique(a.score_chord)) if len(a.score_chord) else 0
    iv = performance.pedal_intervals()
    f["score/pedal_per_written_chord"] = len(iv) / max(chords, 1)
    return np.array([v if np.isfinite(v) else 0.0 for v in f.values()], np.float64)


def score_for_segment(root: "str | os.PathLike", name: str) -> Optional[Path]:
    """The score MIDI of a PercePiano segment ``<piece>_<N>bars_<player>_<segment>``:
    ``score_midi/<piece>_<N>bars_Score_<segment>.mid`` (or ``Score2``), if present."""
    name = Path(name).name
    parts = (name[:-4] if name.endswith(".mid") else name).split("_")  # not .stem: "D935_no.3" has a dot
    head, seg = "_".join(parts[:-2]), parts[-1]
    for tag in ("Score", "Score2"):
        p = Path(root) / "score_midi" / f"{head}_{tag}_{seg}.mid"
        if p.is_file():
            return p
    return None
