import numpy as np
import pytest

from conftest import random_performance
from tatumflow import Performance
from tatumflow.tokenizer import Augmentation, feasible_transpositions, note_dropout, time_stretch, transpose, velocity_scale


def test_transpose_handles_edges_without_wrapping():
    p = Performance.from_arrays([0, 1, 2], [1, 2, 3], [22, 60, 107], [80] * 3)
    assert list(transpose(p, 3).pitches) == [25, 63]          # 110 dropped, not wrapped to 26
    assert list(transpose(p, 3, out_of_range="octave").pitches) == [25, 63, 98]
    with pytest.raises(ValueError, match="outside"):
        transpose(p, -5, out_of_range="error")
    assert set(feasible_transpositions(p, 6)) == {-1, 0, 1}


def test_random_augmentation_invariants_and_purity():
    aug = Augmentation(dropout=0.1)
    for seed in range(10):
        p = random_performance(np.random.default_rng(seed), 200)
        before = p.notes.copy()
        q = aug(p, np.random.default_rng(seed))
        assert np.array_equal(p.notes, before)                     # input untouched
        assert q.pitches.min() >= 21 and q.pitches.max() <= 108
        assert 1 <= q.velocities.min() and q.velocities.max() <= 127
        assert 0 < len(q) <= len(p)
        assert q == aug(p, np.random.default_rng(seed))            # same seed, same output


def test_time_stretch_and_velocity_scale():
    p = Performance.from_arrays([1.0], [2.0], [60], [120], pedal_time=[0.5], pedal_value=[127])
    s = time_stretch(p, 1.1)
    assert s.onsets[0] == pytest.approx(1.1) and s.durations[0] == pytest.approx(1.1)
    assert s.pedals["time"][0] == pytest.approx(0.55)
    assert velocity_scale(p, 1.2).velocities[0] == 127           # clipped
    assert velocity_scale(p, 0.8).velocities[0] == 96
    with pytest.raises(ValueError):
        time_stretch(p, 0)


def test_note_dropout_rate():
    p = random_performance(np.random.default_rng(0), 2000, pedal=False)
    q = note_dropout(p, 0.25, np.random.default_rng(1))
    assert 0.70 < len(q) / len(p) < 0.80
    assert len(note_dropout(p.slice(0, 0.5), 0.99, np.random.default_rng(2))) >= 1
