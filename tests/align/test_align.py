"""Performance-to-score alignment: robust to wrong, missing and extra notes, tempo and rubato;
the deviations it reports are the ones put in."""

import numpy as np
import pytest

from tatumflow import Performance
from tatumflow.align import SCORE_FEATURE_NAMES, align, score_features
from tatumflow.align.notes import NOTE_DEVIATIONS


def score_piece(rng, n_chords=60):
    """A score: a melody over chords, 0.5 s per chord at its own tempo."""
    on, off, pitch, vel = [], [], [], []
    for c in range(n_chords):
        t = 0.5 * c
        for p in sorted({int(rng.integers(40, 56)), int(rng.integers(56, 70)), int(rng.integers(72, 84))}):
            on.append(t), off.append(t + 0.45), pitch.append(p), vel.append(64)
    return Performance.from_arrays(on, off, pitch, vel)


def perform(score, rng, *, stretch=1.25, jitter=0.015, drop=0, extra=0, wrong=0):
    """Play the score: slower by ``stretch`` with rubato, jittered; drop, add and miss-hit notes.
    Returns the performance and, per performed note, the index of its score note (-1: extra)."""
    n = score.notes
    t = n["onset"] * stretch + 0.15 * np.sin(n["onset"] / 3.0)  # tempo varies along the piece
    on = t + rng.normal(0, jitter, len(n))
    keep = np.ones(len(n), bool)
    keep[rng.choice(len(n), drop, replace=False)] = False
    pitch = n["pitch"].copy()
    bad = rng.choice(np.flatnonzero(keep), wrong, replace=False)
    pitch[bad] += 1
    src = np.flatnonzero(keep)
    ons, offs, pits = list(on[keep]), list(on[keep] + 0.4 * stretch), list(pitch[keep])
    vel = list(np.clip(n["velocity"][keep] + 10, 1, 127))
    origin = list(np.where(np.isin(src, bad), -2, src))
    for k in range(extra):  # grace notes a semitone off, just before a score note
        j = int(rng.integers(0, len(src)))
        ons.append(on[src[j]] - 0.06), offs.append(on[src[j]] - 0.01), pits.append(int(pitch[src[j]]) + 2)
        vel.append(50), origin.append(-1)
    perf = Performance.from_arrays(ons, offs, pits, vel)
    order = np.lexsort((pits, ons))
    return perf, np.array(origin)[order]


def _correct(a, perf, s, origin):
    """Share of the alignment's pairs that join a performed note to the score note it came from."""
    src = s.notes[np.lexsort((s.notes["pitch"], s.notes["onset"]))]
    # ``origin`` is in (onset, pitch) order, the order of ``perf.notes``
    key = {(float(o), int(p)): k for k, (o, p) in enumerate(zip(perf.notes["onset"], perf.notes["pitch"]))}
    ok = 0
    for i, j in a.pairs:
        o = origin[key[(float(a.perf["onset"][j]), int(a.perf["pitch"][j]))]]
        ok += o >= 0 and src[o]["onset"] == a.score["onset"][i] and src[o]["pitch"] == a.score["pitch"][i]
    return ok / max(len(a.pairs), 1)


def test_identity():
    s = score_piece(np.random.default_rng(0))
    a = align(s, s)
    assert a.match_rate == 1.0 and a.extra_rate == 0.0 and a.wrong == 0
    d = a.deviations()
    assert np.allclose(d["onset"], 0, atol=1e-9) and np.allclose(d["velocity"], 0)
    assert np.allclose(d["tempo_ratio"], 0, atol=1e-9) and np.allclose(d["articulation"], 0, atol=1e-9)


def test_robust_to_wrong_missing_and_extra_notes_and_rubato():
    rng = np.random.default_rng(1)
    s = score_piece(rng)
    perf, origin = perform(s, rng, drop=12, extra=15, wrong=4)
    a = align(perf, s)
    n = len(s)
    assert a.match_rate == pytest.approx((n - 12 - 4) / n, abs=0.02)
    assert a.extra_rate == pytest.approx(1 - (n - 16) / len(perf), abs=0.02)
    assert _correct(a, perf, s, origin) > 0.98  # each pair joins a performed note to its score note
    d = a.deviations()
    st, pt = a.tempo_curve()
    assert np.median(np.diff(pt) / np.diff(st)) == pytest.approx(1.25, rel=0.08)  # the stretch
    assert np.median(d["velocity"]) == pytest.approx(10, abs=0.5)
    assert 0.008 < np.std(d["onset"]) < 0.03  # the jitter (15 ms), not the tempo


def test_note_deviations_are_in_the_performances_own_note_order():
    """Each performed note gets its own deviations back, in the performance's (onset, pitch)
    order, not the alignment's reading order: extra notes unmatched, the played notes 10
    louder than written, a melody note played 30 ms before its chord (so first in onset
    order, last in reading order) shows its lead, the local tempo follows the tempo wave."""
    rng = np.random.default_rng(4)
    s = score_piece(rng)
    perf, origin = perform(s, rng, stretch=1.0, jitter=0.0, extra=10)
    n = perf.notes
    top = np.append(np.diff(n["onset"]) > 0, True)  # the top note of its chord
    lead = int(np.flatnonzero((origin >= 0) & top)[30])
    on = n["onset"].copy()
    on[lead] -= 0.03
    order = np.lexsort((n["pitch"], on))
    perf = Performance.from_arrays(on[order], n["offset"][order], n["pitch"][order], n["velocity"][order])
    origin, lead = origin[order], int(np.flatnonzero(order == lead)[0])
    assert perf.notes["pitch"][lead] > perf.notes["pitch"][lead + 1]  # ahead of the notes below it
    dev = align(perf, s).note_deviations()
    assert dev.shape == (len(perf), len(NOTE_DEVIATIONS)) and dev.dtype == np.float32
    m = origin >= 0
    assert (dev[~m, 0] == 0).all() and (dev[m, 0] == 1).all()
    assert np.allclose(dev[m, 2], 10)
    assert dev[lead, 1] == pytest.approx(-0.03, abs=0.005)
    assert np.abs(dev[m & (np.arange(len(perf)) != lead), 1]).max() < 0.01
    # the local tempo follows the performance's tempo wave (``perform``: t + 0.15 sin(t / 3))
    wave = np.log2(1 + 0.05 * np.cos(s.notes["onset"][origin[m]] / 3))
    assert np.corrcoef(dev[m, 4], wave)[0, 1] > 0.95


def test_a_long_performance_aligns_in_a_band():
    """Twenty minutes of music: both passes look only near where each note should sound, so the
    work and memory follow the notes (not notes x notes), and the alignment is as good."""
    from tatumflow.align.notes import FIRST_BAND, FIRST_BAND_S, SECOND_BAND_S, _band

    rng = np.random.default_rng(11)
    s = score_piece(rng, n_chords=2400)
    perf, origin = perform(s, rng, drop=40, extra=40, wrong=10)
    a = align(perf, s)
    assert a.match_rate > 0.97 and _correct(a, perf, s, origin) > 0.98
    son, pon = np.sort(s.notes["onset"]), a.perf["onset"]
    steady = pon.min() + (son - son[0]) * np.ptp(pon) / np.ptp(son)
    for half in (np.clip(FIRST_BAND * np.ptp(pon), *FIRST_BAND_S), SECOND_BAND_S):
        lo, hi = _band(steady, pon, half)
        assert (hi - lo + 1).sum() < 0.2 * len(son) * len(pon)


def test_an_unwritten_passage_is_skipped():
    """Half a minute played that is not in the score (an improvised break) leaves the rest aligned."""
    rng = np.random.default_rng(12)
    s = score_piece(rng, n_chords=240)
    perf, origin = perform(s, rng)
    n = perf.notes
    later = n["onset"] > 0.5 * n["onset"].max()
    t0 = float(n["onset"][later].min())
    k = 90
    brk = (t0 + np.sort(rng.uniform(0, 30, k)), rng.integers(40, 90, k))
    on = np.concatenate((n["onset"] + 30 * later, brk[0]))
    perf2 = Performance.from_arrays(on, on + 0.3, np.concatenate((n["pitch"], brk[1])),
                                    np.full(len(on), 64))
    order = np.lexsort((np.concatenate((n["pitch"], brk[1])), on))
    origin2 = np.concatenate((origin, np.full(k, -1)))[order]
    a = align(perf2, s)
    assert a.match_rate > 0.97 and _correct(a, perf2, s, origin2) > 0.97


def test_chord_asynchrony_and_melody_lead():
    on, off, pitch = [], [], []
    for c in range(10):
        for p in (48, 60, 72):
            on.append(c * 0.5), off.append(c * 0.5 + 0.4), pitch.append(p)
    s = Performance.from_arrays(on, off, pitch, [64] * 30)
    lead = np.where(np.array(pitch) == 72, -0.03, 0.0)  # the melody 30 ms ahead of its chord
    p = Performance.from_arrays(np.array(on) + lead + 0.03, np.array(off) + 0.03, pitch, [64] * 30)
    spread, melody = align(p, s).chord_asynchrony()
    assert np.allclose(spread, 0.03, atol=1e-6) and np.allclose(melody, 0.03, atol=1e-6)
    f = dict(zip(SCORE_FEATURE_NAMES, score_features(p, s)))
    assert f["score/melody_lead_ms"] == pytest.approx(30, abs=0.1) and f["score/match_rate"] == 1.0


def test_score_features_see_what_was_changed():
    rng = np.random.default_rng(2)
    s = score_piece(rng)
    steady, _ = perform(s, np.random.default_rng(3), stretch=1.0, jitter=0.005)
    loose, _ = perform(s, np.random.default_rng(3), stretch=1.0, jitter=0.05)
    a = dict(zip(SCORE_FEATURE_NAMES, score_features(steady, s)))
    b = dict(zip(SCORE_FEATURE_NAMES, score_features(loose, s)))
    assert b["score/onset_dev_std_ms"] > 3 * a["score/onset_dev_std_ms"]
    assert a["score/velocity_dev_mean"] == pytest.approx(10, abs=0.5)
    assert len(score_features(steady, s)) == len(SCORE_FEATURE_NAMES)


def _with(perf, *, onset=None, velocity=None, pedal_time=(), pedal_value=()):
    n = perf.notes
    on = n["onset"] if onset is None else onset
    return Performance.from_arrays(on, on + (n["offset"] - n["onset"]), n["pitch"],
                                   n["velocity"] if velocity is None else velocity,
                                   pedal_time=pedal_time, pedal_value=pedal_value)


def test_tempo_at_two_scales_and_rubato():
    """A slow tempo wave is phrase-level tempo and rubato; chord-to-chord jitter is local tempo."""
    s = score_piece(np.random.default_rng(5))
    on = s.notes["onset"]
    steady = _with(s)
    wave = _with(s, onset=on + 0.4 * np.sin(2 * np.pi * on / 15.0))  # one slow swell of the beat
    chords = np.unique(on)
    shake = np.random.default_rng(6).normal(0, 0.04, len(chords))
    jitter = _with(s, onset=on + shake[np.searchsorted(chords, on)])  # whole chords early or late
    f = {k: dict(zip(SCORE_FEATURE_NAMES, score_features(p, s))) for k, p in
         (("steady", steady), ("wave", wave), ("jitter", jitter))}
    assert f["steady"]["score/rubato_ms_std"] < 1 and f["steady"]["score/tempo_phrase_std"] < 1e-3
    assert f["wave"]["score/rubato_ms_std"] > 200 and f["wave"]["score/rubato_ms_max"] > 300
    assert f["wave"]["score/tempo_phrase_std"] > 2 * f["wave"]["score/tempo_local_std"]
    assert f["jitter"]["score/tempo_local_std"] > 2 * f["jitter"]["score/tempo_phrase_std"]
    assert f["jitter"]["score/tempo_jitter"] > 3 * f["wave"]["score/tempo_jitter"]


def test_voicing_and_loudness_against_the_written_dynamics():
    s = score_piece(np.random.default_rng(7))
    n = s.notes
    top = n["pitch"] >= 72  # score_piece's melody register
    sung = _with(s, velocity=np.where(top, 90, 60))
    flat = _with(s, velocity=np.full(len(n), 70))
    swell = _with(s, velocity=(60 + 30 * np.sin(np.pi * n["onset"] / n["onset"].max())).astype(int))
    f = {k: dict(zip(SCORE_FEATURE_NAMES, score_features(p, s))) for k, p in
         (("sung", sung), ("flat", flat), ("swell", swell))}
    assert f["sung"]["score/melody_velocity_lead"] == pytest.approx(30, abs=0.5)
    assert f["sung"]["score/melody_velocity_dev"] == pytest.approx(26, abs=0.5)  # 90 against the written 64
    assert f["flat"]["score/melody_velocity_lead"] == pytest.approx(0, abs=1e-9)
    assert f["swell"]["score/loudness_contour_range"] > 20 > f["flat"]["score/loudness_contour_range"]
    assert f["swell"]["score/velocity_range_ratio"] > 2 * f["flat"]["score/velocity_range_ratio"]


def test_pedal_against_the_written_harmony():
    """One pedal held over every chord change blurs; a pedal changed just after each chord does not."""
    s = score_piece(np.random.default_rng(8), n_chords=20)  # a new chord (new pitches) every 0.5 s
    end = float(s.notes["offset"].max())
    blurred = _with(s, pedal_time=[0.0, end], pedal_value=[127, 0])
    t = 0.5 * np.arange(20)
    clean = _with(s, pedal_time=np.c_[t + 0.03, t + 0.45].ravel(), pedal_value=np.tile([127, 0], 20))
    late = _with(s, pedal_time=np.c_[t + 0.2, t + 0.45].ravel(), pedal_value=np.tile([127, 0], 20))
    f = {k: dict(zip(SCORE_FEATURE_NAMES, score_features(p, s))) for k, p in (("blurred", blurred), ("clean", clean), ("late", late))}
    assert f["blurred"]["score/pedal_blur"] == 1.0 and f["clean"]["score/pedal_blur"] == 0.0
    assert f["clean"]["score/pedal_change_lag_ms"] == pytest.approx(30, abs=1)
    assert f["late"]["score/pedal_change_lag_ms"] == pytest.approx(200, abs=1)
    assert f["clean"]["score/pedal_per_harmony_change"] > 0.9 > f["blurred"]["score/pedal_per_harmony_change"]
    # down 50 ms after each chord starts: held, or caught in time; not when pressed 200 ms late
    assert f["clean"]["score/pedal_chord_coverage"] == f["blurred"]["score/pedal_chord_coverage"] == 1.0
    assert f["late"]["score/pedal_chord_coverage"] == 0.0
