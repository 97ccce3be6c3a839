"""Rating note by note: each note's row of context and the boosting that reads them."""

from __future__ import annotations

import numpy as np
import pytest

from tatumflow.assessment.baselines import NoteBoosting
from tatumflow.assessment.cv import Ensemble, make_model
from tatumflow.assessment.inputs import (NOTE_ROW_NAMES, NOTE_ROW_WINDOWS, SCORE_NOTE_ROW_NAMES, NoteArrays,
                                         note_rows)
from tatumflow.errors import TatumFlowError
from tatumflow.performance import Performance


def chord_then_note(score: Performance | None = None) -> NoteArrays:
    """A rolled three-note chord (onsets 10 ms apart) and, a second later, one note."""
    perf = Performance.from_arrays([1.0, 1.01, 1.02, 2.0], [1.5, 1.5, 1.5, 3.0], [60, 64, 67, 72], [40, 50, 90, 70])
    return NoteArrays.of(perf, score)


def test_note_rows_read_each_note_its_chord_and_its_neighbours():
    a = chord_then_note()
    rows = note_rows(a)
    assert rows.shape == (4, len(NOTE_ROW_NAMES)) and rows.dtype == np.float32
    col = {n: rows[:, i] for i, n in enumerate(NOTE_ROW_NAMES)}
    assert col["chord_size"].tolist() == [3, 3, 3, 1]
    assert col["chord_top"].tolist() == [0, 0, 1, 1]
    assert col["below_chord_top"].tolist() == [7, 3, 0, 0]
    assert col["velocity_vs_chord"][2] == pytest.approx(90 - 60)
    assert col["position"].tolist() == pytest.approx([0, 0.01 / 2, 0.02 / 2, 1 / 2])
    assert col["log_duration"][3] == pytest.approx(0.0)  # 1 s
    assert col["velocity_mean_4"].tolist() == pytest.approx([62.5] * 4)  # the window holds all four
    assert col["velocity_sd_4"][0] == pytest.approx(np.std([40, 50, 90, 70]), rel=1e-5)
    assert col["below_local_top"].tolist() == [12, 8, 5, 0]
    with pytest.raises(TatumFlowError, match="score"):
        note_rows(a, score=True)
    assert note_rows(NoteArrays.of(Performance.from_arrays([], [], [], []))).shape == (0, len(NOTE_ROW_NAMES))


def test_note_rows_against_a_score_add_the_deviations():
    written = Performance.from_arrays([0.0, 0.0, 0.0, 1.0], [0.5, 0.5, 0.5, 1.5], [60, 64, 67, 72], [64, 64, 64, 64])
    a = chord_then_note(written)
    rows = note_rows(a, score=True)
    assert rows.shape == (4, len(SCORE_NOTE_ROW_NAMES))
    plain = len(NOTE_ROW_NAMES) - 4 * len(NOTE_ROW_WINDOWS) * 2  # the columns before the running statistics
    np.testing.assert_array_equal(rows[:, :plain], note_rows(a)[:, :plain])
    col = {n: rows[:, i] for i, n in enumerate(SCORE_NOTE_ROW_NAMES)}
    assert col["matched"].tolist() == [1, 1, 1, 1]
    np.testing.assert_allclose(col["velocity_dev"], a.score_dev[:, 2])


def _played(n: int, seed: int, pieces: int = 12):
    """Segments of written pieces whose written loudness differs widely, each played
    louder or softer than written by its own amount and more or less detached: rating
    0 is how much louder than written, rating 1 how legato (played / written length)."""
    rng = np.random.default_rng(seed)
    scores = []
    for _ in range(pieces):
        on = np.repeat(0.5 * np.arange(30), 2)
        pitch = np.ravel(np.c_[rng.integers(40, 60, 30), rng.integers(64, 84, 30)])
        level = rng.uniform(30, 100)
        scores.append(Performance.from_arrays(on, on + 0.45, pitch, (level + rng.uniform(-8, 8, 60)).astype(int)))
    arrays, Y = [], []
    for i in range(n):
        s = scores[i % pieces].notes
        gain, legato = float(rng.uniform(-10, 10)), float(rng.uniform(0.3, 1.0))
        on = s["onset"] * 1.1 + rng.normal(0, 0.01, len(s))
        order = np.lexsort((s["pitch"], on))
        perf = Performance.from_arrays(on[order], on[order] + 0.5 * legato, s["pitch"][order],
                                       np.clip(s["velocity"][order] + gain, 1, 127).astype(int))
        arrays.append(NoteArrays.of(perf, scores[i % pieces]))
        Y.append([0.5 + gain / 20, legato])
    return arrays, np.array(Y)


def test_note_boosting_learns_held_out_pieces_and_the_score_helps():
    """On pieces it never heard, note-boosting orders how legato each segment is from the
    notes alone; how much louder than written only with the score's deviations."""
    arrays, Y = _played(96, 0)
    piece = np.arange(96) % 12
    train, test = np.flatnonzero(piece < 6), np.flatnonzero(piece >= 6)
    X = np.zeros((96, 1))
    r = {}
    for score in (False, True):
        m = NoteBoosting(arrays, seed=0, score=score).fit(X[train], Y[train], train)
        p = m.predict(X[test], test)
        assert p.shape == (len(test), 2)
        r[score] = [np.corrcoef(p[:, j], Y[test, j])[0, 1] for j in range(2)]
    assert r[False][1] > 0.9 and r[True][1] > 0.9, r  # legato: in the notes themselves
    assert r[True][0] > 0.9 and r[True][0] > r[False][0] + 0.3, r  # louder than written: needs the score


def test_note_boosting_is_reproducible_and_rates_an_empty_segment_at_the_mean():
    arrays, Y = _played(24, 1)
    arrays.append(NoteArrays.of(Performance.from_arrays([], [], [], [])))
    rows = np.arange(24)
    X = np.zeros((25, 1))
    a = NoteBoosting(arrays, seed=3).fit(X[rows], Y, rows).predict(X[[24, 5]], np.array([24, 5]))
    b = NoteBoosting(arrays, seed=3).fit(X[rows], Y, rows).predict(X[[24, 5]], np.array([24, 5]))
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(a[0], Y.mean(0))
    assert not np.allclose(a[1], Y.mean(0))


def test_note_boosting_in_a_blend_and_without_notes():
    arrays, Y = _played(24, 2)
    X = np.c_[Y[:, 1] + 0.01 * np.random.default_rng(0).standard_normal(24)]  # a feature the ridge reads
    rows, test = np.arange(16), np.arange(16, 24)
    blend = Ensemble("ridge+note-boosting", arrays=arrays, score=True).fit(X, Y, rows)
    ridge = make_model("ridge").fit(X[rows], Y[rows])
    notes = NoteBoosting(arrays, score=True).fit(X[rows], Y[rows], rows)
    np.testing.assert_allclose(blend.predict(X, test), (ridge.predict(X[test]) + notes.predict(X[test], test)) / 2)
    with pytest.raises(ValueError, match="note arrays"):
        make_model("note-boosting")


def test_the_shipped_format_rates_note_by_note_as_note_boosting_does(tmp_path):
    """Exported into the shipped assessor beside per-rating forests and boosting, the note
    trees rate each performance as :class:`NoteBoosting` does, a third of each rating;
    the file keeps them, and without note rows the assessor says what it needs."""
    from sklearn.ensemble import ExtraTreesRegressor, HistGradientBoostingRegressor
    from sklearn.multioutput import MultiOutputRegressor

    from tatumflow.assessment.data import DIMENSIONS
    from tatumflow.assessment.shipped import NOTE_NEAR_ZERO, AssessorError, ForestAssessor, portable_features

    arrays, Y2 = _played(36, 4)
    Y = np.tile(Y2, (1, 10))[:, :len(DIMENSIONS)]
    rng = np.random.default_rng(0)
    X = portable_features(np.c_[Y2[:, 1] + 0.1 * rng.standard_normal(36), rng.standard_normal((36, 3))])
    rows, test = np.arange(24), np.arange(24, 36)
    et = MultiOutputRegressor(ExtraTreesRegressor(n_estimators=4, min_samples_leaf=3, random_state=0))
    hgb = MultiOutputRegressor(HistGradientBoostingRegressor(max_iter=10, max_leaf_nodes=5, random_state=0))
    et, hgb = et.fit(X[rows], Y[rows]), hgb.fit(X[rows], Y[rows])
    nb = NoteBoosting(arrays, score=True, portable=True).fit(X[rows], Y[rows], rows)
    fa = ForestAssessor.from_sklearn([et, hgb, nb], ["a", "b", "c", "d"], {"model": "test"}, SCORE_NOTE_ROW_NAMES)
    back = ForestAssessor.load(fa.save(tmp_path / "a.npz"))
    assert back.reads_notes and back.note_names == list(SCORE_NOTE_ROW_NAMES)
    notes = [note_rows(arrays[i], score=True) for i in test]
    rating, spread = back.predict_with_spread(X[test], notes, chunk=5, block=7)  # 5 rows, 7 notes at a time
    want = (et.predict(X[test]) + hgb.predict(X[test]) + nb.predict(X[test], test)) / 3
    np.testing.assert_allclose(rating, want, atol=1e-6)
    assert spread.min() > 0 and np.ptp(rating[:, 1]) > 0.1  # the legato rating still moves
    # the rows it rates are portable: the noise of a constant window's spread is 0
    assert np.array_equal(portable_features(np.float32([[3e-7, -2e-6, 0.25]]), NOTE_NEAR_ZERO), [[0.0, 0.0, 0.25]])
    with pytest.raises(AssessorError, match="note rows"):
        back.predict(X[test])
    with pytest.raises(AssessorError, match="columns"):
        back.predict(X[test][:1], [notes[0][:, :5]])
