"""Music-theory features of a NoteSet, written once for numpy and torch.

Each family function returns a ``(n_rows, D)`` array whose columns are named
in the matching ``*_NAMES`` list (with units in ``UNITS``). Conventions:

* an *onset cluster* is a run of notes whose onsets are at most
  ``CLUSTER_GAP`` (50 ms) apart (a chord, or one melody note);
* rates are per second of the piece (``NoteSet.end``);
* pieces with no notes get zeros (never NaN).
"""

from __future__ import annotations

import math

import numpy as np

from .notes import NoteSet

CLUSTER_GAP = 0.05
FRAME = 0.01  # seconds per frame of the onset-strength envelope
PC_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")

# Krumhansl & Kessler (1982) key profiles, C major and C minor.
KK_MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
KK_MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])
KEY_NAMES = tuple(f"{pc} major" for pc in PC_NAMES) + tuple(f"{pc} minor" for pc in PC_NAMES)

# Chord qualities as pitch-class sets above the root.
CHORD_QUALITIES = {
    "maj": (0, 4, 7), "min": (0, 3, 7), "dim": (0, 3, 6), "aug": (0, 4, 8),
    "sus2": (0, 2, 7), "sus4": (0, 5, 7), "6": (0, 4, 7, 9), "m6": (0, 3, 7, 9),
    "maj7": (0, 4, 7, 11), "7": (0, 4, 7, 10), "m7": (0, 3, 7, 10), "m7b5": (0, 3, 6, 10),
    "dim7": (0, 3, 6, 9),
}
QUALITY_NAMES = tuple(CHORD_QUALITIES)
N_QUAL = len(QUALITY_NAMES)


def key_profiles() -> np.ndarray:
    """(24, 12): the 12 rotations of the major profile, then of the minor one."""
    return np.stack([np.roll(KK_MAJOR, k) for k in range(12)] + [np.roll(KK_MINOR, k) for k in range(12)])


def chord_templates() -> np.ndarray:
    """(12 * N_QUAL, 12) binary templates; row ``root * N_QUAL + quality``."""
    t = np.zeros((12 * N_QUAL, 12))
    for root in range(12):
        for q, ivs in enumerate(CHORD_QUALITIES.values()):
            t[root * N_QUAL + q, [(root + i) % 12 for i in ivs]] = 1.0
    return t


# Constant tables, built once (backends convert them once per device via ``xp.const``).
_PROF = key_profiles()
PROFILES_CENTRED = _PROF - _PROF.mean(-1, keepdims=True)
PROFILES_NORM = np.sqrt((PROFILES_CENTRED**2).sum(-1))
_TMPL = chord_templates()
TEMPLATES_UNIT = _TMPL / np.linalg.norm(_TMPL, axis=1, keepdims=True)
# Identical pitch-class sets (C6 = Am7, Dm6 = Bm7b5, symmetric aug/dim7) are settled
# by quality, in the order a jazz reading prefers, then by root; the same in both backends.
QUALITY_PRIORITY = ("maj7", "m7", "7", "m7b5", "dim7", "maj", "min", "6", "m6", "sus4", "sus2", "dim", "aug")
_RANK = np.array([QUALITY_PRIORITY.index(q) for q in QUALITY_NAMES])
_PREFERENCE = np.repeat(np.arange(12), N_QUAL) + 12 * np.tile(_RANK, 12)  # lower is preferred


def _distinct_templates():
    """Of each set of identical templates keep the preferred one: (template ids, unit
    templates transposed (12, K), tie-break offsets (K,)). The tie-break (1e-9 per
    step of preference) settles exact ties between different sets the same way in
    both backends, whatever the rounding of their matrix products."""
    keep = {}
    for t in np.argsort(_PREFERENCE, kind="stable"):
        keep.setdefault(tuple(_TMPL[t]), int(t))
    ids = np.sort(np.array(list(keep.values())))
    return ids, np.ascontiguousarray(TEMPLATES_UNIT[ids].T), _PREFERENCE[ids] * 1e-9


TEMPLATE_IDS, TEMPLATES_DISTINCT_T, TEMPLATE_TIE_BREAK = _distinct_templates()


def _div(xp, a, b):
    return a / xp.maximum(b, 1e-12)


def _entropy_bits(xp, hist):
    """Entropy (bits) of each row of a non-negative (B, K) array (normalised here)."""
    return -xp.xlog2x(_div(xp, hist, hist.sum(-1)[:, None])).sum(-1)


def _hist(xp, row, idx, k: int, n_rows: int, weights=None):
    """(B, k) counts (or weight sums) of integer ``idx`` in 0..k-1 per row."""
    if weights is None:
        return xp.segment_count(row * k + idx, n_rows * k).reshape(n_rows, k)
    return xp.segment_sum(weights, row * k + idx, n_rows * k).reshape(n_rows, k)


def clusters(ns: NoteSet):
    """Onset clusters: (cluster id per note, and per cluster: row, onset, size,
    top pitch, max velocity)."""
    xp = ns.xp
    m = ns.n_notes
    new = xp.zeros(m, dtype=bool) if m else xp.zeros(0, dtype=bool)
    if m:
        new[0] = True
        new[1:] = (ns.row[1:] != ns.row[:-1]) | (ns.onset[1:] - ns.onset[:-1] > CLUSTER_GAP + 1e-9)
    cid = xp.cumsum(xp.to_int(new)) - 1
    c = int(cid[-1]) + 1 if m else 0
    row, onset = xp.compress(new, ns.row, ns.onset)
    return {
        "id": cid, "n": c, "row": row, "onset": onset,
        "size": xp.segment_count(cid, c),
        "top": xp.segment_max(ns.pitch, cid, c, -1),
        "vel": xp.segment_max(ns.velocity, cid, c, 0.0),
    }


# ---------------------------------------------------------------- harmony
HARMONY_NAMES = (
    [f"pcp.{p}" for p in PC_NAMES]
    + [f"key_corr.{k.replace(' ', '_')}" for k in KEY_NAMES]
    + ["key_confidence"]
    + [f"chord_type.{q}" for q in QUALITY_NAMES]
    + ["chorded_fraction", "chord_change_rate", "chord_type_entropy", "chord_root_entropy"]
)


def harmony(ns: NoteSet, *, window: float = 1.0):
    """Pitch-class profile (duration x velocity weighted), correlations with the 24
    Krumhansl-Kessler keys and the key confidence (best minus second best), and
    chords: per ``window`` seconds (by onset), the best of the 156 templates by
    cosine, when the window holds >= 3 pitch classes."""
    xp, B = ns.xp, ns.n_rows
    dur = ns.offset - ns.onset
    pc = ns.pitch % 12
    pcp = _hist(xp, ns.row, pc, 12, B, ns.velocity / 127.0 * dur)
    pcp = _div(xp, pcp, pcp.sum(-1)[:, None])
    pc_c = pcp - pcp.mean(-1)[:, None]
    corr = _div(xp, pc_c @ xp.const(PROFILES_CENTRED).T,
                xp.sqrt((pc_c**2).sum(-1))[:, None] * xp.const(PROFILES_NORM)[None, :])
    best, second = xp.topk2(corr)
    conf = best - second

    # Chords per window.
    n_win = xp.to_int(ns.end / window) + 1  # (B,); to_int truncates, = floor for x >= 0
    first = xp.cumsum(n_win) - n_win
    g = int(n_win.sum())
    wid = xp.take(first, ns.row) + xp.to_int(ns.onset / window)
    wpcp = xp.segment_sum(ns.velocity / 127.0 * xp.minimum(dur, window), wid * 12 + pc, g * 12).reshape(g, 12)
    chorded = (wpcp > 0).sum(-1) >= 3
    # windows are laid out row after row
    wc, c_rows = xp.compress(chorded, wpcp, _row_of(xp, n_win, g))
    wc = wc / xp.sqrt((wc**2).sum(-1))[:, None]  # unit rows: scores are cosines
    best_t = xp.argmax(wc @ xp.const(TEMPLATES_DISTINCT_T) - xp.const(TEMPLATE_TIE_BREAK)[None, :], 1)
    c_ids = xp.take(xp.const(TEMPLATE_IDS), best_t)
    qh = _hist(xp, c_rows, c_ids % N_QUAL, N_QUAL, B)
    rh = _hist(xp, c_rows, c_ids // N_QUAL, 12, B)
    n_ch = qh.sum(-1)
    change = (c_rows[1:] == c_rows[:-1]) & (c_ids[1:] != c_ids[:-1])
    changes = xp.segment_sum(xp.to_float(change), c_rows[1:], B) if c_ids.shape[0] > 1 else xp.zeros(B)
    return xp.concat_cols([
        pcp, corr, conf[:, None], _div(xp, qh, n_ch[:, None]),
        _div(xp, n_ch, xp.to_float(n_win))[:, None], _div(xp, changes, ns.end)[:, None],
        _entropy_bits(xp, qh)[:, None], _entropy_bits(xp, rh)[:, None],
    ])


def _row_of(xp, counts, total: int):
    """Row index of each of ``total`` items laid out row after row, ``counts`` per row."""
    starts = xp.zeros(total, dtype=xp.int)
    idx = (xp.cumsum(counts) - counts)[1:]
    starts[idx[idx < total]] += 1
    return xp.cumsum(starts)


# ---------------------------------------------------------------- melody
MELODY_NAMES = (
    [f"interval.{i:+d}" for i in range(-12, 13)]
    + ["contour.down", "contour.same", "contour.up", "skyline_range", "stepwise_ratio", "skyline_mean"]
)


def melody(ns: NoteSet, cl=None):
    """Skyline (top pitch of each onset cluster): interval histogram (-12..+12,
    larger leaps clipped), contour, range (semitones), stepwise ratio, mean pitch."""
    xp, B = ns.xp, ns.n_rows
    cl = cl or clusters(ns)
    top, crow = cl["top"], cl["row"]
    d, drow = xp.compress(crow[1:] == crow[:-1], top[1:] - top[:-1], crow[1:])
    ih = _hist(xp, drow, xp.clip(d, -12, 12) + 12, 25, B)  # clipping keeps the sign: contour and
    n_int = ih.sum(-1)[:, None]                            # steps are read from the histogram
    contour = xp.concat_cols([ih[:, :12].sum(-1)[:, None], ih[:, 12:13], ih[:, 13:].sum(-1)[:, None]])
    step = ih[:, 10] + ih[:, 11] + ih[:, 13] + ih[:, 14]
    hi = xp.segment_max(top, crow, B, -1)
    lo = xp.segment_min(top, crow, B, 10**6)
    n_cl = xp.segment_count(crow, B)
    rng = xp.where(n_cl > 0, xp.to_float(hi - lo), 0.0 * n_cl)
    mean = _div(xp, xp.row_sums([top], crow, B)[:, 0], n_cl)
    return xp.concat_cols([_div(xp, ih, n_int), _div(xp, contour, n_int), rng[:, None],
                           _div(xp, step, n_int[:, 0])[:, None], mean[:, None]])


# ---------------------------------------------------------------- rhythm
IOI_BINS = 12
IOI_LO, IOI_HI = math.log10(CLUSTER_GAP), math.log10(5.0)
RHYTHM_NAMES = (
    [f"log_ioi.{i}" for i in range(IOI_BINS)]
    + ["rhythmic_entropy", "note_density", "onset_density", "ioi_log2_std", "tempo_bpm",
       "beat_strength", "syncopation", "swing_ratio"]
)
MIN_LAG, MAX_LAG = 25, 150  # beat periods considered: 0.25 .. 1.5 s (40 .. 240 bpm)
# A broad preference for beat periods near 0.5 s (120 bpm), one octave wide.
TEMPO_PRIOR = np.exp(-0.5 * np.log2(np.arange(MIN_LAG, MAX_LAG + 1) / 50.0) ** 2)


def rhythm(ns: NoteSet, cl=None):
    """Inter-onset intervals between onset clusters (log histogram 50 ms..5 s,
    entropy, spread), densities, and a beat estimate from the autocorrelation of
    the onset-strength envelope (10 ms frames, integer velocities, so both
    backends agree exactly): tempo, beat strength (autocorrelation peak / energy),
    syncopation (share of above-average clusters off the beat) and swing ratio
    (mean position of off-beat eighths, as long:short)."""
    xp, B = ns.xp, ns.n_rows
    cl = cl or clusters(ns)
    con, crow, cvel = cl["onset"], cl["row"], cl["vel"]
    ioi, irow = xp.compress(crow[1:] == crow[:-1], con[1:] - con[:-1], crow[1:])
    l2 = xp.log2(xp.maximum(ioi, 1e-6))
    lg = l2 / math.log2(10)
    # truncation differs from floor only in (-1, 0), which the clip maps to bin 0 either way
    b = xp.clip(xp.to_int((lg - IOI_LO) / (IOI_HI - IOI_LO) * IOI_BINS), 0, IOI_BINS - 1)
    ih = _hist(xp, irow, b, IOI_BINS, B)
    n_ioi = ih.sum(-1)
    mom = _div(xp, xp.row_sums([l2, l2 * l2], irow, B), n_ioi[:, None])
    spread = xp.sqrt(xp.maximum(mom[:, 1] - mom[:, 0] ** 2, 0.0))
    n_notes = xp.segment_count(ns.row, B)
    n_cl = xp.segment_count(crow, B)

    # Beat: autocorrelation of the onset-strength envelope (cluster loudness at
    # 10 ms frames). Clusters are > 50 ms apart, so each lag's value is a sum over
    # pairs of clusters that far apart: no envelope is built, and integer
    # velocities keep it exact in both backends.
    frame = xp.to_int(con / FRAME + 0.5)
    gkey = crow * (1 << 32) + frame                      # sorted: rows, then time
    first = xp.searchsorted(gkey, gkey + MIN_LAG, "left")  # pairs (i, j): MIN_LAG <= lag <= MAX_LAG
    n_pair = xp.searchsorted(gkey, gkey + MAX_LAG, "right") - first
    start = first - (xp.cumsum(n_pair) - n_pair)
    i = xp.repeat(xp.arange(crow.shape[0]), n_pair)                       # first of each pair
    j = xp.arange(i.shape[0]) + xp.take(start, i)                         # its partner
    n_lags = MAX_LAG - MIN_LAG + 1
    bins = xp.take(crow * n_lags - frame - MIN_LAG, i) + xp.take(frame, j)  # row and lag
    ac = xp.segment_sum(xp.take(cvel, i) * xp.take(cvel, j), bins, B * n_lags).reshape(B, n_lags)
    vsum = xp.row_sums([cvel, cvel * cvel], crow, B)
    energy = vsum[:, 1]
    k = xp.argmax(ac * xp.const(TEMPO_PRIOR)[None, :], 1)
    period = k + MIN_LAG                                                   # (B,) frames
    strength = _div(xp, xp.take_along(ac, k), energy)
    # Beat phase: the offset (mod period) that collects the most onset strength.
    cper = xp.take(period, crow)
    ph_acc = xp.segment_sum(cvel, crow * MAX_LAG + frame % cper, B * MAX_LAG).reshape(B, MAX_LAG)
    phase = xp.argmax(ph_acc, 1)
    pos = xp.to_float((frame - xp.take(phase, crow)) % cper) / xp.to_float(cper)  # (C,) in [0,1)
    mean_vel = _div(xp, vsum[:, 0], n_cl)
    accent = cvel > xp.take(mean_vel, crow)
    off_beat = xp.minimum(pos, 1.0 - pos) > 0.125
    eighth = (pos >= 0.4) & (pos < 0.85)
    acc_s = xp.row_sums([accent & off_beat, accent, eighth, xp.where(eighth, pos, 0.0 * pos)], crow, B)
    sync = _div(xp, acc_s[:, 0], acc_s[:, 1])
    n8 = acc_s[:, 2]
    u = _div(xp, acc_s[:, 3], n8)
    swing = xp.where(n8 > 0, _div(xp, u, 1.0 - u), 1.0 + 0.0 * n8)
    has = n_cl > 1
    return xp.concat_cols([
        _div(xp, ih, n_ioi[:, None]), _entropy_bits(xp, ih)[:, None], _div(xp, n_notes, ns.end)[:, None],
        _div(xp, n_cl, ns.end)[:, None], spread[:, None],
        xp.where(has, 6000.0 / xp.to_float(period), 0.0 * n_cl)[:, None],
        xp.where(has, strength, 0.0 * n_cl)[:, None], sync[:, None], swing[:, None],
    ])


# ---------------------------------------------------------------- dynamics
DYNAMICS_NAMES = [f"velocity_hist.{i}" for i in range(8)] + [
    "velocity_mean", "velocity_std", "velocity_range", "accent_rate", "velocity_trend"]


def dynamics(ns: NoteSet):
    """Velocity histogram (8 bins of 16), mean, spread, range (max - min), accent
    rate (notes louder than mean + 1 std) and trend (least-squares slope, velocity
    units per minute)."""
    xp, B = ns.xp, ns.n_rows
    v, row = ns.velocity, ns.row
    vh = _hist(xp, row, xp.clip(xp.to_int(v) // 16, 0, 7), 8, B)
    n = vh.sum(-1)
    # Moments in one pass; times relative to each piece's first onset keep
    # E[t^2] - E[t]^2 well conditioned.
    t = (ns.onset - xp.take(xp.segment_min(ns.onset, row, B, 1e30), row)) / 60.0
    mom = _div(xp, xp.row_sums([v, v * v, t, t * t, t * v], row, B), n[:, None])
    mean, tm = mom[:, 0], mom[:, 2]
    std = xp.sqrt(xp.maximum(mom[:, 1] - mean * mean, 0.0))
    hi = xp.segment_max(v, row, B, 0.0)
    lo = xp.segment_min(v, row, B, 1e9)
    rng = xp.where(n > 0, hi - lo, 0.0 * n)
    acc = _div(xp, xp.row_sums([v > xp.take(mean + std, row)], row, B)[:, 0], n)
    cov = mom[:, 4] - tm * mean
    vt = xp.maximum(mom[:, 3] - tm * tm, 0.0)
    trend = xp.where(vt > 1e-12, _div(xp, cov, vt), 0.0 * n)
    return xp.concat_cols([_div(xp, vh, n[:, None]), mean[:, None], std[:, None], rng[:, None],
                           acc[:, None], trend[:, None]])


# ---------------------------------------------------------------- texture
TEXTURE_NAMES = [f"voicing_size.{i}" for i in range(1, 8)] + ["voicing_size.8+"] + [
    "voicing_size_mean", "polyphony", "pedal_fraction", "pedal_rate", "pitch_mean", "pitch_std", "pitch_range"]


def texture(ns: NoteSet, cl=None):
    """Voicing size (notes per onset cluster) histogram and mean, polyphony
    (mean number of sounding notes), pedal use (fraction of time down, presses per
    minute) and register (pitch mean, spread, range)."""
    xp, B = ns.xp, ns.n_rows
    cl = cl or clusters(ns)
    size, crow = cl["size"], cl["row"]
    sh = _hist(xp, crow, xp.clip(xp.to_int(size), 1, 8) - 1, 8, B)
    n_cl = sh.sum(-1)
    p = xp.to_float(ns.pitch)
    sums = xp.row_sums([ns.offset - ns.onset, p, p * p], ns.row, B)
    poly = _div(xp, sums[:, 0], ns.end)
    ped = _div(xp, xp.segment_sum(ns.ped_up - ns.ped_down, ns.ped_row, B), ns.end)
    presses = _div(xp, xp.segment_count(ns.ped_row, B), ns.end / 60.0)
    n = xp.segment_count(ns.row, B)
    pm = _div(xp, sums[:, 1], n)
    ps = xp.sqrt(xp.maximum(_div(xp, sums[:, 2], n) - pm * pm, 0.0))
    pr = xp.where(n > 0, xp.to_float(xp.segment_max(ns.pitch, ns.row, B, 0) - xp.segment_min(ns.pitch, ns.row, B, 127)), 0.0 * n)
    return xp.concat_cols([_div(xp, sh, n_cl[:, None]), _div(xp, xp.row_sums([size], crow, B)[:, 0], n_cl)[:, None],
                           poly[:, None], ped[:, None], presses[:, None], pm[:, None], ps[:, None], pr[:, None]])


FAMILIES = {
    "harmony": HARMONY_NAMES, "melody": MELODY_NAMES, "rhythm": RHYTHM_NAMES,
    "dynamics": DYNAMICS_NAMES, "texture": TEXTURE_NAMES,
}


def all_families(ns: NoteSet, *, window: float = 1.0) -> dict:
    cl = clusters(ns)
    return {
        "harmony": harmony(ns, window=window), "melody": melody(ns, cl), "rhythm": rhythm(ns, cl),
        "dynamics": dynamics(ns), "texture": texture(ns, cl),
    }
