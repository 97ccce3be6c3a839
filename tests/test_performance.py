import numpy as np
import pytest

from tatumflow import Performance
from tatumflow.performance import NOTE_DTYPE


def test_sorted_and_read_only():
    p = Performance.from_arrays([2.0, 1.0, 1.0], [3.0, 2.0, 1.5], [60, 64, 62], [80, 90, 70])
    assert list(p.onsets) == [1.0, 1.0, 2.0]
    assert list(p.pitches) == [62, 64, 60]  # onset, then pitch
    with pytest.raises(ValueError):
        p.notes["pitch"][0] = 1
    assert p.end == 3.0 and len(p) == 3


def test_rejects_wrong_dtype():
    with pytest.raises(TypeError, match="notes must have dtype"):
        Performance(np.zeros(3, dtype=[("x", "f8")]))


def test_slice_by_time_clips_and_carries_pedal():
    p = Performance.from_arrays([0.0, 1.0, 2.0, 3.0], [1.5, 2.5, 4.0, 3.2], [60, 61, 62, 63], [64] * 4,
                                pedal_time=[0.5, 1.8], pedal_value=[127, 0])
    s = p.slice(1.0, 3.0)
    assert list(s.pitches) == [61, 62]
    np.testing.assert_allclose(s.onsets, [0.0, 1.0])
    np.testing.assert_allclose(s.offsets, [1.5, 2.0])  # clipped to the window end
    # pedal was down at 1.0: the state is carried in at the window start
    np.testing.assert_allclose(s.pedal_intervals(), [[0.0, 0.8]])
    assert p.slice(1.0, 3.0, shift=False).onsets[0] == 1.0


def test_pedal_intervals_threshold_and_open_end():
    p = Performance.from_arrays([0], [10], [60], [80], pedal_time=[1, 2, 3, 4, 5], pedal_value=[100, 70, 10, 64, 127])
    np.testing.assert_allclose(p.pedal_intervals(), [[1, 3], [4, 10]])


def test_equality_and_empty():
    e = Performance.empty()
    assert len(e) == 0 and e.end == 0.0 and e.notes.dtype == NOTE_DTYPE
    a = Performance.from_arrays([0], [1], [60], [80])
    assert a == Performance.from_arrays([0], [1], [60], [80])
    assert a != Performance.from_arrays([0], [1], [61], [80])
