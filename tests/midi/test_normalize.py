import numpy as np

from conftest import random_performance
from tatumflow import Performance
from tatumflow.midi import normalize, repair_overlaps, resolve_pedal


def test_overlap_repair():
    p = Performance.from_arrays([0.0, 0.5, 0.5, 2.0], [1.0, 0.8, 1.2, 3.0], [60, 60, 60, 62], [50, 90, 40, 70])
    r = repair_overlaps(p)
    n = r.notes[np.lexsort((r.onsets, r.pitches))]
    # first note cut at the re-strike; the two notes at 0.5 merge into the longest, loudest
    assert list(n["onset"]) == [0.0, 0.5, 2.0]
    assert list(n["offset"]) == [0.5, 1.2, 3.0]
    assert list(n["velocity"]) == [50, 90, 70]


def test_pedal_resolution_extends_and_restrike_cuts():
    p = Performance.from_arrays([0.0, 0.2, 1.0, 3.0], [0.5, 0.4, 1.2, 3.5], [60, 64, 60, 67], [80] * 4,
                                pedal_time=[0.3, 2.0], pedal_value=[127, 0])
    r = resolve_pedal(p)
    d = {(float(a), int(b)): float(c) for a, b, c in zip(r.onsets, r.pitches, r.offsets)}
    assert d[(0.0, 60)] == 1.0   # sustained until the same pitch is struck again
    assert d[(0.2, 64)] == 2.0   # sustained to the pedal release
    assert d[(1.0, 60)] == 2.0
    assert d[(3.0, 67)] == 3.5   # released after the pedal: unchanged
    assert r.pedals.size == p.pedals.size  # pedal events are kept


def test_idempotent_and_pure(rng):
    for seed in range(5):
        p = random_performance(np.random.default_rng(seed), 400)
        before = p.notes.copy(), p.pedals.copy()
        once = normalize(p)
        assert normalize(once) == once
        assert repair_overlaps(once) == once
        assert np.array_equal(p.notes, before[0]) and np.array_equal(p.pedals, before[1])
        # after repair no two same-pitch notes overlap
        n = once.notes[np.lexsort((once.onsets, once.pitches))]
        same = n["pitch"][1:] == n["pitch"][:-1]
        assert not np.any(same & (n["onset"][1:] < n["offset"][:-1]))
