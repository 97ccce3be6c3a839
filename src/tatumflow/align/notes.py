"""Performance-to-score alignment at the note level (symbolic, numpy only).

Both note lists are put in reading order (onset clusters, then pitch: chord notes
struck within 50 ms count as one chord, so a rolled or asynchronous chord keeps
the score's order). A Needleman-Wunsch alignment (monotone: no crossing
matches) then pairs them, where a pitch mismatch costs 1 (a wrong note) and
skipping a note 0.6 (a missing note, or an extra one: an ornament, a repeated
key). A second pass adds a timing term measured against the tempo map of the
first pass, so repeated figures are matched where they are played, not
wherever the pitches fit.

Each row of the dynamic program is computed at once: the left-to-right
dependency ``D[i, j] = min(T[j], D[i, j-1] + gap)`` is a running minimum of
``T[k] - gap k`` (``numpy.minimum.accumulate``), so a segment of a few hundred
notes aligns in milliseconds. Each pass looks only at a band of performed notes
around where each written note should sound: the first pass within a quarter
of the performance's span (15 s to 2 min) of one steady tempo, the second within
8 s of the first pass's tempo map. Costs are made row by row and only the move
taken in each cell of the band is kept (one byte), so time and memory grow with
the notes times the notes in the band, not with the square of the notes: a
10-minute piece of 4,800 notes aligns in 0.2 s (0.5 s without the band).

From the matched notes come a tempo curve (performed time of each score chord,
and the local tempo ratio between chords) and per-note deviations from it:
onset (against the local beat), velocity (against the score's), articulation
(played over written duration, at the local tempo) and chord asynchrony.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..performance import Performance

CHORD_GAP = 0.05     # seconds: performed notes closer than this are one chord
SUB = 1.0            # cost of pairing two different pitches (a wrong note)
GAP = 0.6            # cost of a score note not played, or a played note not in the score
TIME_WEIGHT = 0.5    # second pass: cost per second of distance from the first pass's tempo map (capped)
FIRST_BAND = 0.25           # first pass: pairs within this share of the performance's span ...
FIRST_BAND_S = (15.0, 120.0)  # ... (at least 15 s, at most 2 min) of where one steady tempo puts them
SECOND_BAND_S = 8.0         # second pass: pairs within 8 s of where the first pass's tempo map puts them


def _reading_order(onset: np.ndarray, pitch: np.ndarray, gap: float) -> tuple[np.ndarray, np.ndarray]:
    """Indices in reading order (chords in time, each from low to high) and each note's chord id."""
    o = np.argsort(onset, kind="stable")
    on = onset[o]
    chord = np.cumsum(np.concatenate(([True], np.diff(on) > gap))) - 1 if len(on) else np.zeros(0, np.int64)
    within = np.lexsort((pitch[o], chord))
    return o[within], chord[within]


def _band(expected: np.ndarray, onset: np.ndarray, half: float) -> tuple[np.ndarray, np.ndarray]:
    """Columns of each dynamic-programming row (``len(expected) + 1`` rows: row i pairs
    score note i - 1) that hold the performed notes within ``half`` seconds of where that
    score note is expected, as inclusive (lo, hi) bounds: non-decreasing, each row
    overlapping the one before it (so a path always exists), from (0, 0) to (n, m)."""
    n, m = len(expected), len(onset)
    when = np.maximum.accumulate(onset)  # reading order keeps chords together: onsets all but sorted
    e = np.concatenate((expected[:1], expected))
    hi = np.maximum.accumulate(np.minimum(np.searchsorted(when, e + half, side="right") + 1, m))
    hi[-1] = m
    lo = np.maximum.accumulate(np.searchsorted(when, e - half, side="left"))
    lo[0] = 0
    lo = np.minimum(lo, np.concatenate(([0], hi[:-1])))
    return lo.astype(np.int64), hi.astype(np.int64)


def _dp(n: int, m: int, row_cost: Callable[[int, int, int], np.ndarray], gap: float,
        lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Monotone alignment inside a band: row i of the dynamic program (i score notes read)
    spans columns ``lo[i]..hi[i]`` (performed notes read; see :func:`_band`), and
    ``row_cost(i, a, b)`` is the cost of pairing score note ``i`` with performed notes
    ``a..b-1``. Returns the (K, 2) diagonal moves (i, j). One row of costs and one byte
    per cell in the band (the move taken) are kept."""
    start = np.concatenate(([0], np.cumsum(hi - lo + 1)))
    move = np.empty(int(start[-1]), np.int8)  # 0 diag, 1 up (score note unplayed), 2 left (extra note)
    prev = gap * np.arange(lo[0], hi[0] + 1, dtype=np.float64)
    move[: start[1]] = 2
    move[0] = 0
    ramps = gap * np.arange(int((hi - lo).max()) + 1)
    for i in range(1, n + 1):
        a, b, pa, pb = lo[i], hi[i], lo[i - 1], hi[i - 1]
        best = np.full(b - a + 1, np.inf)
        best[: pb - a + 1] = prev[a - pa:] + gap  # up (the rows overlap: pa <= a <= pb <= b)
        mv = np.ones(b - a + 1, np.int8)
        d0, d1 = max(a, pa + 1) - a, min(b, pb + 1) - a + 1  # diagonal: column c from c - 1 above
        if d1 > d0:
            diag = prev[d0 + a - 1 - pa: d1 + a - 1 - pa] + row_cost(i - 1, d0 + a - 1, d1 + a - 1)
            take = diag <= best[d0:d1]
            mv[d0:d1][take] = 0
            best[d0:d1] = np.minimum(diag, best[d0:d1])
        ramp = ramps[: b - a + 1]
        row = ramp + np.minimum.accumulate(best - ramp)  # D[j] = min(best[j], D[j - 1] + gap)
        mv[row < best - 1e-12] = 2
        move[start[i]: start[i + 1]] = mv
        prev = row
    pairs = []
    i, j = n, m
    while i > 0 or j > 0:
        mv = move[start[i] + j - lo[i]]
        if mv == 0:
            pairs.append((i - 1, j - 1))
            i, j = i - 1, j - 1
        elif mv == 1:
            i -= 1
        else:
            j -= 1
    return np.array(pairs[::-1], np.int64).reshape(-1, 2)


#: Columns of :meth:`Alignment.note_deviations`.
NOTE_DEVIATIONS = ("matched", "onset", "velocity", "articulation", "local_tempo")


@dataclass
class Alignment:
    """Matched notes of a performance and its score, and what follows from them."""

    score: np.ndarray        # score notes in reading order (structured, Performance dtype)
    perf: np.ndarray         # performed notes in reading order
    score_chord: np.ndarray  # (n_score,) chord id of each score note
    pairs: np.ndarray        # (K, 2) indices (score, perf) of notes paired with the same pitch
    wrong: int               # pairs of different pitches (wrong notes)
    perf_index: np.ndarray   # (n_perf,) where each row of ``perf`` is in the performance's notes

    @property
    def match_rate(self) -> float:
        """Share of the score's notes played (with the right pitch)."""
        return len(self.pairs) / max(len(self.score), 1)

    @property
    def extra_rate(self) -> float:
        """Share of the performed notes that are not in the score."""
        return 1.0 - len(self.pairs) / max(len(self.perf), 1)

    def tempo_curve(self) -> tuple[np.ndarray, np.ndarray]:
        """(score time, performed time) of each score chord with a matched note, monotone
        (a chord played before the one written before it is left out)."""
        if not len(self.pairs):
            return np.zeros(0), np.zeros(0)
        s, p = self.pairs[:, 0], self.pairs[:, 1]
        chord = self.score_chord[s]
        _, inv = np.unique(chord, return_inverse=True)
        counts = np.bincount(inv)
        st = np.bincount(inv, self.score["onset"][s]) / counts
        # each chord's median performed onset: sort within chords, average the middle pair
        on = self.perf["onset"][p][np.lexsort((self.perf["onset"][p], inv))]
        first = np.concatenate(([0], np.cumsum(counts)[:-1]))
        pt = (on[first + (counts - 1) // 2] + on[first + counts // 2]) / 2
        keep = pt >= np.maximum.accumulate(pt)  # drop chords that run backwards
        return st[keep], pt[keep]

    def deviations(self) -> dict[str, np.ndarray]:
        """Per matched note: ``onset`` (s, from the local beat: the tempo curve smoothed over
        neighbouring chords), ``velocity`` (performed - written), ``articulation``
        (log2 of played / written duration at the local tempo), ``local_tempo`` (log2
        performed / written time at the note's local beat), and ``tempo_ratio``
        (log2 performed / written time between neighbouring chords, per chord)."""
        st, pt = self.tempo_curve()
        if len(st) < 3:
            z = np.zeros(0)
            return {"onset": z, "velocity": z, "articulation": z, "local_tempo": z, "tempo_ratio": z}
        s, p = self.pairs[:, 0], self.pairs[:, 1]
        son, pon = self.score["onset"][s], self.perf["onset"][p]
        # the local beat: performed time predicted from the two chords on each side
        k = np.clip(np.searchsorted(st, son), 2, len(st) - 2)
        lo, hi = st[k - 2], st[np.minimum(k + 1, len(st) - 1)]
        plo, phi = pt[k - 2], pt[np.minimum(k + 1, len(st) - 1)]
        slope = np.where(hi > lo, (phi - plo) / np.maximum(hi - lo, 1e-6), 1.0)
        beat = plo + (son - lo) * slope
        ratio = np.diff(pt) / np.maximum(np.diff(st), 1e-6)
        wdur = np.maximum(self.score["offset"][s] - son, 1e-3)
        pdur = np.maximum(self.perf["offset"][p] - pon, 1e-3)
        return {"onset": pon - beat,
                "velocity": self.perf["velocity"][p].astype(float) - self.score["velocity"][s].astype(float),
                "articulation": np.log2(pdur / (wdur * np.clip(slope, 0.25, 4.0))),
                "local_tempo": np.log2(np.clip(slope, 1 / 16, 16)),
                "tempo_ratio": np.log2(np.clip(ratio, 1 / 16, 16))}

    def note_deviations(self) -> np.ndarray:
        """``(performed notes, len(NOTE_DEVIATIONS))`` float32, in the performance's own
        note order: 1 where the note matched a written one, then its :meth:`deviations`
        (onset from the local beat in s, velocity - written velocity, articulation, and
        the local tempo relative to the passage's median). Zeros for notes not in the
        score, and for every deviation when too few chords matched to find a tempo."""
        out = np.zeros((len(self.perf), len(NOTE_DEVIATIONS)), np.float32)
        if not len(self.pairs):
            return out
        rows = self.perf_index[self.pairs[:, 1]]
        out[rows, 0] = 1.0
        d = self.deviations()
        if len(d["onset"]):
            out[rows, 1] = d["onset"]
            out[rows, 2] = d["velocity"]
            out[rows, 3] = d["articulation"]
            out[rows, 4] = d["local_tempo"] - np.median(d["local_tempo"])
        return out

    def chord_asynchrony(self) -> tuple[np.ndarray, np.ndarray]:
        """Per written chord with 2+ matched notes: the spread of its performed onsets (s)
        and how far its top note leads the others (s, > 0: the melody comes first)."""
        s, p = self.pairs[:, 0], self.pairs[:, 1]
        if not len(s):
            return np.zeros(0), np.zeros(0)
        chord = self.score_chord[s]
        order = np.argsort(chord, kind="stable")
        chord, s, p = chord[order], s[order], p[order]
        starts = np.flatnonzero(np.concatenate(([True], np.diff(chord) > 0)))
        sizes = np.diff(np.append(starts, len(chord)))
        on = self.perf["onset"][p]
        pitch = self.score["pitch"][s]
        group = np.repeat(np.arange(len(starts)), sizes)
        spread = np.maximum.reduceat(on, starts) - np.minimum.reduceat(on, starts)
        # the top note of each chord (the first, if two share the highest pitch)
        is_top = pitch == np.maximum.reduceat(pitch, starts)[group]
        is_top &= np.cumsum(is_top) - np.concatenate(([0], np.cumsum(is_top)))[starts][group] == 1
        top_on = on[is_top]
        lead = (np.add.reduceat(on, starts) - top_on) / np.maximum(sizes - 1, 1) - top_on
        chordal = sizes > 1
        return spread[chordal], lead[chordal]


def align(performance: Performance, score: Performance) -> Alignment:
    """Align a performance to its score (see the module's docstring)."""
    pn, sn = performance.notes, score.notes
    so, s_chord = _reading_order(sn["onset"], sn["pitch"], 1e-3)
    po, _ = _reading_order(pn["onset"], pn["pitch"], CHORD_GAP)
    S, P = sn[so], pn[po]
    if not len(S) or not len(P):
        return Alignment(S, P, s_chord, np.zeros((0, 2), np.int64), 0, po)
    sp, pp, pon = S["pitch"], P["pitch"], P["onset"]
    n, m = len(S), len(P)
    # first pass, by pitch alone, within a wide band around one steady tempo
    son = S["onset"]
    span_s, span_p = max(son[-1] - son[0], 1e-3), max(float(pon.max() - pon.min()), 1e-3)
    steady = pon.min() + (son - son[0]) * (span_p / span_s)
    lo, hi = _band(steady, pon, float(np.clip(FIRST_BAND * span_p, *FIRST_BAND_S)))
    pairs = _dp(n, m, lambda i, a, b: (pp[a:b] != sp[i]) * SUB, GAP, lo, hi)
    same = sp[pairs[:, 0]] == pp[pairs[:, 1]]
    first = Alignment(S, P, s_chord, pairs[same], int((~same).sum()), po)
    st, pt = first.tempo_curve()
    if len(st) >= 2:  # second pass: where each written note should sound by the first tempo map
        expected = np.interp(son, st, pt)
        lo, hi = _band(expected, pon, SECOND_BAND_S)
        pairs = _dp(n, m, lambda i, a, b: (pp[a:b] != sp[i]) * SUB
                    + TIME_WEIGHT * np.minimum(np.abs(pon[a:b] - expected[i]), 2.0), GAP, lo, hi)
        same = sp[pairs[:, 0]] == pp[pairs[:, 1]]
    return Alignment(S, P, s_chord, pairs[same], int((~same).sum()), po)
