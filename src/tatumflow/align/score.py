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
from .notes import Alignment, align

#: Bump when alignment or these features change what they compute (feature caches key on it).
SCORE_FEATURE_VERSION = 5
SCORE_FEATURE_NAMES = (
    "score/match_rate", "score/extra_rate", "score/wrong_rate",
    "score/onset_dev_abs_ms", "score/onset_dev_std_ms", "score/onset_dev_q90_ms",
    "score/tempo_log_std", "score/tempo_log_range", "score/tempo_trend", "score/tempo_final",
    "score/tempo_autocorr", "score/overall_speed",
    "score/velocity_dev_mean", "score/velocity_dev_std", "score/velocity_shape_corr",
    "score/articulation_median", "score/articulation_std", "score/articulation_legato_share",
    "score/chord_spread_ms", "score/chord_spread_std_ms", "score/melody_lead_ms",
    "score/pedal_per_written_chord",
    # tempo at two scales (chord to chord, over five chords) and the onsets' distance
    # from one steady tempo (rubato)
    "score/tempo_local_std", "score/tempo_phrase_std", "score/tempo_jitter", "score/ioi_log_std",
    "score/rubato_ms_std", "score/rubato_ms_max", "score/rubato_rel", "score/melody_onset_std_ms",
    # dynamics against the written ones, and the melody (each chord's top note) against the rest
    "score/velocity_range_ratio", "score/velocity_std_ratio",
    "score/velocity_dev_q10", "score/velocity_dev_median", "score/velocity_dev_q90",
    "score/melody_velocity_lead", "score/melody_velocity_lead_vs_written", "score/bass_velocity_dev",
    "score/melody_velocity_dev", "score/loudness_contour_range", "score/loudness_contour_corr",
    "score/loudness_step_corr", "score/accent_rate",
    # articulation by written length and in the melody
    "score/articulation_short", "score/articulation_long", "score/articulation_melody",
    "score/melody_overlap_ms", "score/melody_legato_share",
    # the sustain pedal against the written harmony
    "score/pedal_blur", "score/pedal_chord_coverage", "score/pedal_change_lag_ms",
    "score/pedal_per_harmony_change", "score/pedal_short_share", "score/pedal_length_vs_ioi",
)


def score_features(performance: Performance, score: Performance, alignment: Optional[Alignment] = None
                   ) -> np.ndarray:
    """The :data:`SCORE_FEATURE_NAMES` values of a performance against its score (``alignment``:
    the two already aligned, :func:`align`)."""
    a = alignment if alignment is not None else align(performance, score)
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
        f["score/velocity_shape_corr"] = _corr(sv, pv)  # do the dynamics follow the written ones?
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
    if len(d["onset"]):
        _shape_features(f, a, d, st, pt, iv)
    return np.array([v if np.isfinite(v) else 0.0 for v in f.values()], np.float64)


def _moving_average(x: np.ndarray, w: int) -> np.ndarray:
    if len(x) < w:
        return np.full(len(x), x.mean())
    pad = w // 2
    return np.convolve(np.pad(x, (pad, w - 1 - pad), mode="edge"), np.ones(w) / w, mode="valid")


def _corr(x: np.ndarray, y: np.ndarray) -> float:
    return float(np.corrcoef(x, y)[0, 1]) if len(x) >= 2 and x.std() > 0 and y.std() > 0 else 0.0


def _shape_features(f: dict, a, d: dict, st: np.ndarray, pt: np.ndarray, iv: np.ndarray) -> None:
    """Tempo at two scales, rubato, voicing, loudness shape, articulation by written
    length and voice, and the pedal against the written harmony (into ``f``)."""
    r = d["tempo_ratio"]
    if len(r) >= 6:
        smooth = _moving_average(r, 5)
        f["score/tempo_local_std"] = float((r - smooth).std())
        f["score/tempo_phrase_std"] = float(smooth.std())
        f["score/tempo_jitter"] = float(np.abs(np.diff(r)).mean())
    steady = pt - np.polyval(np.polyfit(st, pt, 1), st)  # onsets against one steady tempo
    f["score/rubato_ms_std"] = 1e3 * float(steady.std())
    f["score/rubato_ms_max"] = 1e3 * float(np.abs(steady).max())
    f["score/rubato_rel"] = float(steady.std() / max(pt[-1] - pt[0], 1e-3))
    ioi, wioi = np.diff(pt), np.diff(st)
    ok = wioi > 1e-3
    if ok.sum() >= 3:
        f["score/ioi_log_std"] = float(np.log2(np.maximum(ioi[ok], 1e-3) / wioi[ok]).std())

    s, p = a.pairs[:, 0], a.pairs[:, 1]
    sv, pv = a.score["velocity"][s].astype(float), a.perf["velocity"][p].astype(float)
    dv = pv - sv
    q = lambda x: np.quantile(x, 0.95) - np.quantile(x, 0.05)  # noqa: E731
    f["score/velocity_range_ratio"] = float(q(pv) / max(q(sv), 8.0))
    f["score/velocity_std_ratio"] = float(pv.std() / max(sv.std(), 4.0))
    f["score/velocity_dev_q10"], f["score/velocity_dev_median"], f["score/velocity_dev_q90"] = \
        map(float, np.quantile(dv, [0.1, 0.5, 0.9]))
    # matched notes by written chord, low to high: the top note is the melody, the lowest the bass
    order = np.lexsort((a.score["pitch"][s], a.score_chord[s]))
    chord = a.score_chord[s][order]
    starts = np.flatnonzero(np.r_[True, np.diff(chord) > 0])
    ends = np.r_[starts[1:], len(chord)] - 1
    group = np.repeat(np.arange(len(starts)), ends - starts + 1)
    size = ends - starts + 1
    pvo, svo = pv[order], sv[order]
    multi = size > 1
    if multi.any():
        lead = pvo[ends] - (np.add.reduceat(pvo, starts) - pvo[ends]) / np.maximum(size - 1, 1)
        wlead = svo[ends] - (np.add.reduceat(svo, starts) - svo[ends]) / np.maximum(size - 1, 1)
        f["score/melody_velocity_lead"] = float(lead[multi].mean())
        f["score/melody_velocity_lead_vs_written"] = float((lead - wlead)[multi].mean())
        f["score/bass_velocity_dev"] = float((pvo[starts] - svo[starts])[multi].mean() - dv.mean())
    f["score/melody_velocity_dev"] = float((pvo - svo)[ends].mean())
    loud = np.bincount(group, pvo) / size  # per written chord
    wloud = np.bincount(group, svo) / size
    if len(loud) >= 4:
        f["score/loudness_contour_range"] = float(np.ptp(_moving_average(loud, 5)))
        f["score/loudness_contour_corr"] = _corr(_moving_average(loud, 5), _moving_average(wloud, 5))
        f["score/loudness_step_corr"] = _corr(np.diff(loud), np.diff(wloud))
    f["score/accent_rate"] = float(np.mean(pvo > loud[group] + 15))

    art = d["articulation"]
    written = a.score["offset"][s] - a.score["onset"][s]
    short = written <= np.median(written)
    f["score/articulation_short"] = float(np.median(art[short])) if short.any() else 0.0
    f["score/articulation_long"] = float(np.median(art[~short])) if (~short).any() else 0.0
    top = order[ends]
    f["score/articulation_melody"] = float(np.median(art[top]))
    if len(top) >= 2:
        on, off = a.perf["onset"][p[top]], a.perf["offset"][p[top]]
        by_time = np.argsort(on, kind="stable")  # ties (one onset) in written order, on every CPU
        on, off = on[by_time], off[by_time]
        f["score/melody_overlap_ms"] = 1e3 * float(np.median(off[:-1] - on[1:]))
        f["score/melody_legato_share"] = float(np.mean(off[:-1] > on[1:]))
        f["score/melody_onset_std_ms"] = 1e3 * float(d["onset"][top].std())

    if not len(iv):
        return
    length = iv[:, 1] - iv[:, 0]
    f["score/pedal_short_share"] = float(np.mean(length < 0.3))
    if len(pt) >= 2:
        f["score/pedal_length_vs_ioi"] = float(np.median(length) / max(np.median(np.diff(pt)), 1e-2))
    if len(starts) < 2:
        return
    # each written chord when played (mean onset of its notes) and its pitch classes, in played order
    played = np.bincount(group, a.perf["onset"][p[order]]) / size
    pcs = np.zeros(len(starts), np.int64)
    np.bitwise_or.at(pcs, group, np.left_shift(1, a.score["pitch"][s][order].astype(np.int64) % 12))
    by_time = np.argsort(played, kind="stable")
    played, pcs = played[by_time], pcs[by_time]
    # sustain intervals are sorted and disjoint: the one that began last before t covers t or none does
    k = np.searchsorted(iv[:, 0], played + 0.05, side="right") - 1
    f["score/pedal_chord_coverage"] = float(np.mean((k >= 0) & (iv[np.maximum(k, 0), 1] > played + 0.05)))
    change = np.flatnonzero(pcs[1:] != pcs[:-1])  # harmony changes between neighbouring chords
    if len(change):
        k = np.searchsorted(iv[:, 0], played[change], side="right") - 1
        held = (k >= 0) & (iv[np.maximum(k, 0), 1] >= played[change + 1] + 0.05)  # one pedal across the change
        f["score/pedal_blur"] = float(held.mean())
        f["score/pedal_per_harmony_change"] = float(len(iv) / len(change))
    k = np.searchsorted(played, iv[:, 0] + 0.05, side="right") - 1  # the chord each pedal follows
    if (k >= 0).any():
        f["score/pedal_change_lag_ms"] = 1e3 * float(np.median(iv[k >= 0, 0] - played[k[k >= 0]]))


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
