"""The assessor: data, protocols, metrics, the shipped model and its CLI."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from conftest import DATA, random_performance
from tatumflow.assessment import metrics
from tatumflow.assessment.data import DIMENSIONS, PercePiano, PercePianoError, parse_name
from tatumflow.assessment.protocols import (excerpt_protocol, paper_performer_protocol, paper_piece_protocol,
                                            performer_fold_ids, player_protocol)
from tatumflow.assessment.shipped import AssessorError, ForestAssessor, portable_features
from tatumflow.cli.main import main
from tatumflow.midi import write_midi


def test_parse_name():
    s = parse_name("Schubert_D935_no.3_4bars_12_1")
    assert (s.piece, s.bars, s.player, s.segment) == ("Schubert_D935_no.3", 4, "12", "1")
    assert s.excerpt == "Schubert_D935_no.3_4bars_1" and not s.is_score and s.composer == "Schubert"
    assert parse_name("Beethoven_WoO80_var3_8bars_Score2_2.mid").is_score
    with pytest.raises(PercePianoError, match="not a PercePiano segment name"):
        parse_name("my_take.mid")


def fake_data() -> PercePiano:
    """A PercePiano-shaped table: 2 pieces x excerpts x players, random ratings."""
    rng = np.random.default_rng(0)
    names = []
    for seg in range(1, 7):
        for player in ["1", "2", "3", "5", "6", "7", "8", "9", "10", "Score"]:
            names.append(f"Schubert_D960_mv3_8bars_{player}_{seg:02d}")
    for seg in range(1, 4):
        for player in ["1", "2", "3", "4", "7", "11", "14", "Score"]:
            names.append(f"Beethoven_WoO80_var{seg}_8bars_{player}_{seg}")
    names.sort()
    segs = [parse_name(n) for n in names]
    exc = np.array([s.excerpt for s in segs])
    return PercePiano(Path("."), names, rng.random((len(names), 19)), np.zeros((len(names), 19)), segs,
                      np.unique(exc, return_inverse=True)[1])


def _check_cv(proto, key):
    seen = np.concatenate([f.test for f in proto.folds])
    assert sorted(seen.tolist()) == list(range(len(key)))  # every segment tested exactly once
    for f in proto.folds:
        assert not set(key[f.train]) & set(key[f.test])


def test_grouped_protocols_never_split_a_group():
    d = fake_data()
    _check_cv(excerpt_protocol(d), d.take_group)
    _check_cv(player_protocol(d), np.where(d.is_score, "Score", d.players))


def test_paper_protocols():
    d = fake_data()
    fid = performer_fold_ids(d)
    beet = np.array([s.composer == "Beethoven" for s in d.segments])
    assert set(fid[beet & (d.players == "3")]) == {2}  # index of Beethoven player 3 in the list
    pp = paper_performer_protocol(d)
    test_players = {(s.composer, s.player) for s in np.array(d.segments)[pp.folds[0].test]}
    assert test_players == {("Schubert", "1"), ("Schubert", "2"), ("Beethoven", "2"), ("Beethoven", "3")}
    for f in pp.folds:
        assert not set(f.train) & set(f.test) and not set(f.train) & set(f.val)
    pc = paper_piece_protocol(d)
    test = pc.folds[0].test
    assert len(test) >= 0.15 * len(d)
    assert not set(d.excerpts[test]) & set(d.excerpts[pc.folds[0].train])
    import random

    state = random.getstate()
    assert paper_piece_protocol(d).folds[0].test.tolist() == test.tolist()  # deterministic
    assert random.getstate() == state  # and the caller's random module is left alone


def test_metrics():
    from sklearn.metrics import r2_score

    rng = np.random.default_rng(1)
    y = rng.random((60, 19))
    p = y + 0.3 * rng.standard_normal((60, 19))
    r = metrics.pearson_per_dim(y, p)
    assert np.allclose(r, [np.corrcoef(y[:, j], p[:, j])[0, 1] for j in range(19)])
    assert np.isclose(metrics.r2_per_dim(y, p).mean(), r2_score(y, p))
    groups = np.repeat(np.arange(6), 10)
    # Within-group r ignores group means: offsets per group do not change it ...
    shifted = p + 5.0 * groups[:, None]
    assert np.allclose(metrics.within_group_r(y, shifted, groups), metrics.within_group_r(y, p, groups))
    # ... and a prediction that is only the group mean has none.
    gm = np.stack([y[groups == g].mean(0) for g in groups])
    assert np.all(np.isnan(metrics.within_group_r(y, gm, groups)))
    ci = metrics.bootstrap_ci(y, p, groups.astype(str), groups, n=50)
    s = metrics.scores(y, p, groups.astype(str))
    assert ci["mean_r"][0] <= s["mean_r"] <= ci["mean_r"][1]
    cmp = metrics.paired_bootstrap(y, p, gm, groups.astype(str), groups, n=50)
    assert cmp["difference"] > 0 and cmp["ci95"][0] > 0


@pytest.mark.parametrize("name", ["extra-trees-per-dim", "boosting-per-dim"])
def test_per_rating_models_let_each_rating_split_on_its_own_feature(name):
    """18 loud ratings follow feature 1 and one quiet rating feature 0: the one forest
    for all ratings splits for the loud ones, a model per rating finds the quiet one's."""
    from tatumflow.assessment.baselines import make_classical

    rng = np.random.default_rng(0)
    X = rng.random((600, 40))
    Y = np.repeat(2.0 * X[:, [1]], 19, axis=1) + 0.3 * rng.standard_normal((600, 19))
    Y[:, 0] = 0.3 * X[:, 0] + 0.02 * rng.standard_normal(600)
    rows, test = np.arange(400), np.arange(400, 600)
    r = {n: metrics.pearson_per_dim(Y[test], make_classical(n).fit(X[rows], Y[rows]).predict(X[test]))[0]
         for n in (name, "extra-trees")}
    assert r[name] > 0.9 and r["extra-trees"] < 0.75


def test_exported_trees_equal_sklearn(tmp_path):
    """The shipped format reproduces scikit-learn's per-rating forests and boosted trees:
    each rating the mean of its forest and its boosting, the spread that of its forest's trees."""
    from sklearn.ensemble import ExtraTreesRegressor, HistGradientBoostingRegressor
    from sklearn.multioutput import MultiOutputRegressor

    rng = np.random.default_rng(2)
    X = rng.standard_normal((300, 7))
    Y = 0.5 + 0.1 * np.c_[X[:, :3], X[:, :3] ** 2, rng.random((300, 13))]
    et = MultiOutputRegressor(ExtraTreesRegressor(n_estimators=6, min_samples_leaf=3, random_state=0)).fit(X, Y)
    hgb = MultiOutputRegressor(HistGradientBoostingRegressor(max_iter=20, max_leaf_nodes=7, random_state=0)).fit(X, Y)
    fa = ForestAssessor.from_sklearn([et, hgb], [f"f{i}" for i in range(7)], {"model": "test"})
    back = ForestAssessor.load(fa.save(tmp_path / "a.npz"))
    Xt = portable_features(rng.standard_normal((50, 7)))  # what the assessor reads (float32 values)
    rating, spread = back.predict_with_spread(Xt)
    assert np.abs(rating - (et.predict(Xt) + hgb.predict(Xt)) / 2).max() < 1e-6
    trees = np.stack([[t.predict(Xt.astype(np.float32)) for t in f.estimators_] for f in et.estimators_])
    assert np.abs(spread - trees.std(1).T).max() < 1e-6 and spread.min() > 0
    assert np.abs(ForestAssessor.from_sklearn(et, back.feature_names).predict(Xt) - et.predict(Xt)).max() < 1e-6
    assert back.meta == {"model": "test"}
    r2, s2 = back.predict_with_spread(Xt, chunk=7)  # rows in chunks: the same numbers
    assert np.array_equal(r2, rating) and np.array_equal(s2, spread)
    with pytest.raises(ValueError, match="forest part"):
        ForestAssessor.from_sklearn(hgb, back.feature_names)
    # a file written before note trees existed (no on_notes, note_baseline, note_names) rates as it did
    z = np.load(tmp_path / "a.npz")
    np.savez(tmp_path / "before.npz", **{k: z[k] for k in z.files if "note" not in k})
    assert np.array_equal(ForestAssessor.load(tmp_path / "before.npz").predict(Xt), rating)
    np.savez(tmp_path / "old.npz", feature=np.zeros((2, 3)), names=np.array(["f0"]), meta=np.array("{}"))
    with pytest.raises(AssessorError, match="older format.*build_assessor"):
        ForestAssessor.load(tmp_path / "old.npz")


def test_another_cpus_last_bits_train_the_same_assessor():
    """Features that differ in their last bits, and noise up to 1e-11 where a feature is 0
    on this machine (as another CPU computes them), train the same shipped trees and rate alike."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((240, 6))
    X[:120, 2] = 0.0  # e.g. the timing spread of a deadpan performance
    X[:, 3] = np.round(X[:, 3] * 8) / 8  # exact binary fractions
    Y = rng.uniform(0.2, 0.9, (240, len(DIMENSIONS)))
    other = X * (1 + rng.choice([-2, -1, 1, 2], X.shape) * np.finfo(float).eps)
    other[:120, 2] = rng.choice([-1, 1], 120) * rng.uniform(1e-16, 1e-11, 120)
    assert np.array_equal(portable_features(X), portable_features(other))
    names = [f"f{i}" for i in range(6)]
    a, b = (ForestAssessor.train(x, Y, names, model="extra-trees-per-dim-compact")  # the forest part: seconds
            for x in (X, other))
    for k in ForestAssessor._ARRAYS:
        assert np.array_equal(getattr(a, k), getattr(b, k)), k
    assert np.array_equal(a.predict(X), a.predict(other))
    small = np.array([[3e-11, -1e-12, 2e-10, 0.1]])
    assert np.array_equal(portable_features(small), [[0.0, 0.0, np.float32(2e-10), np.float32(0.1)]])


@pytest.mark.parametrize("flags", [[], ["--score"]])
def test_the_build_script_reproduces_the_shipped_assessor(percepiano_midi, tmp_path, flags):
    from conftest import REPO, run_python

    from tatumflow.assessment.shipped import DEFAULT_MODEL, SCORE_MODEL

    out = tmp_path / "rebuilt.npz"  # on 2 cores about 20 s, 90 s with --score (its note trees)
    # The trees come out the same at any thread count (checked with 32 threads on 2 cores);
    # two keep the child from crowding a machine whose visible CPUs exceed its share.
    env = {**os.environ, "OMP_NUM_THREADS": "2", "OPENBLAS_NUM_THREADS": "2", "LOKY_MAX_CPU_COUNT": "2"}
    r = run_python([str(REPO / "scripts" / "build_assessor.py"), str(out), "--data", str(percepiano_midi.parent),
                    *flags], env=env, timeout=300, tries=2)
    assert r.returncode == 0, r.stderr[-2000:]
    assert out.read_bytes() == (SCORE_MODEL if flags else DEFAULT_MODEL).read_bytes()


def test_shipped_assessor_fits_these_features():
    """Fails when the features or note rows change without retraining the shipped models."""
    from tatumflow.assessment.features import performance_features
    from tatumflow.assessment.inputs import SCORE_NOTE_ROW_NAMES
    from tatumflow.assessment.shipped import MAX_NOTES_RATED, SCORE_MODEL

    fa = ForestAssessor.load()
    perfs = [random_performance(np.random.default_rng(i), 150) for i in range(3)]
    _, names = performance_features(perfs)
    assert fa.feature_names == names and not fa.reads_notes
    r = fa.assess(perfs)
    assert r.shape == (3, len(DIMENSIONS)) and np.all((r > 1 / 7 - 1e-6) & (r < 1 + 1e-6))
    assert np.ptp(r, axis=0).max() > 0  # different performances, different ratings
    aware = ForestAssessor.load(SCORE_MODEL)
    assert aware.reads_notes and aware.note_names == list(SCORE_NOTE_ROW_NAMES)
    # a long performance: the note trees rate MAX_NOTES_RATED of its notes, evenly spaced
    long = random_performance(np.random.default_rng(9), 3 * MAX_NOTES_RATED, span=600.0)
    X, rows, extra = aware.inputs(long, long)  # its own score
    assert extra["match_rate"] > 0.9 and len(rows) == len(long)
    every = np.linspace(0, len(rows) - 1, MAX_NOTES_RATED).round().astype(int)
    np.testing.assert_array_equal(aware._note_ratings([rows]), aware._note_ratings([rows[every]]))
    assert not np.array_equal(aware._note_ratings([rows]), aware._note_ratings([rows[:MAX_NOTES_RATED]]))
    assert np.all(np.isfinite(aware.predict(X, [rows])))


def test_cli_assess(tmp_path, capsys):
    f = tmp_path / "take.mid"
    write_midi(random_performance(np.random.default_rng(3), 120), f)
    rc = main(["assess", str(f), str(tmp_path / "missing.mid"), "--json", "--plot", str(tmp_path / "r.png")])
    assert rc == 1  # one file failed; the other was still rated
    out = json.loads(capsys.readouterr().out)
    assert out["failed"][0]["file"].endswith("missing.mid")
    ratings = out["results"][0]["ratings"]
    assert list(ratings) == list(DIMENSIONS) and all(1.0 <= v <= 7.0 for v in ratings.values())
    assert all(v > 0 for v in out["results"][0]["spread"].values())
    assert (tmp_path / "r.png").stat().st_size > 5000
    write_midi(random_performance(np.random.default_rng(4), 120, pedal=False, span=300.0), tmp_path / "dry.mid")
    assert main(["assess", str(tmp_path / "dry.mid")]) == 0
    text = capsys.readouterr().out
    assert "warning: unlike the training data: no sustain pedal" in text and "s long (training segments" in text


@pytest.mark.skipif(not (DATA / "percepiano").is_dir(), reason="PercePiano not available")
def test_real_percepiano_cv(tmp_path, capsys):
    from tatumflow.assessment.cv import format_cv, panel_ceiling, run_cv
    from tatumflow.assessment.data import load_percepiano

    d = load_percepiano(DATA / "percepiano")
    assert len(d) == 1189 and d.ratings.shape == (1189, 19)
    # 16-bar segments share a group with the 8-bar segments they contain.
    g = {e: gi for e, gi in zip(d.excerpts, d.take_group)}
    assert g["Schubert_D960_mv2_16bars_01"] == g["Schubert_D960_mv2_8bars_01"] == g["Schubert_D960_mv2_8bars_02"]
    assert g["Schubert_D960_mv2_8bars_01"] != g["Schubert_D960_mv2_8bars_03"]
    ridge = run_cv("ridge", "excerpt", data=d, bootstrap=0)
    mean = run_cv("mean", "excerpt", data=d, bootstrap=0)
    assert ridge.scores["mean_r"] > 0.5 and ridge.scores["within_excerpt_r"] > 0.3
    assert mean.scores["r2"] < 0.0 < ridge.scores["r2"]
    a = ridge.analysis
    assert len(a["hardest_dimensions"]) == 5 and len(a["top_features"]) == 15
    assert a["hardest_dimensions"][0]["r"] <= min(ridge.scores["per_dim"]["r"]) + 1e-12
    # Each rating beside the raters' own ceiling: timbre.bright-dark is the one the panel
    # hardly agrees on within a passage.
    ceil = a["rater_ceiling"]
    assert 0.85 < ceil["mean_r"] < 0.92 and ceil["mean_r"] == pytest.approx(np.mean(ceil["per_dim"]["r"]))
    k = DIMENSIONS.index("timbre.bright-dark")
    assert int(np.argmin(ceil["per_dim"]["within_excerpt_r"])) == k
    row = next(line for line in format_cv(ridge, "excerpt").splitlines() if line.startswith(DIMENSIONS[k]))
    assert row.split()[-2:] == [f"{ceil['per_dim']['r'][k]:.3f}", f"{ceil['per_dim']['within_excerpt_r'][k]:.3f}"]
    assert panel_ceiling(tmp_path) is None  # a folder without the raw ratings: no ceiling, no error
    assert main(["assess-cv", "--protocol", "paper-piece", "--model", "ridge", "--bootstrap", "0",
                 "--data", str(DATA / "percepiano"), "--out", str(tmp_path / "cv.json")]) == 0
    res = json.loads((tmp_path / "cv.json").read_text())
    assert res["protocol"] == "paper-piece" and len(res["folds"]) == 4
    assert not (tmp_path / "cv.json.folds").exists()  # the kept folds go once the result is written
    assert "fold 4/4: trained in" in capsys.readouterr().err  # progress as each fold finishes


@pytest.mark.skipif(not (DATA / "percepiano").is_dir(), reason="PercePiano not available")
def test_cv_resumes_from_kept_folds(tmp_path, monkeypatch):
    """An interrupted assess-cv loses only the fold it was training: finished folds
    are kept and reused, and only when the run is the same one."""
    from tatumflow.assessment import cv
    from tatumflow.assessment.data import load_percepiano

    d = load_percepiano(DATA / "percepiano")
    lines = []
    full = cv.run_cv("ridge", "excerpt", data=d, bootstrap=0, folds_dir=tmp_path / "f", log=lines.append)
    assert sorted(f.name for f in (tmp_path / "f").iterdir()) == [f"fold{i}.npz" for i in range(4)]
    assert all("trained in" in line for line in lines) and len(lines) == 4
    (tmp_path / "f" / "fold2.npz").unlink()  # as if the run stopped while training fold 3
    trained = []
    real_fit = cv.Ensemble.fit
    monkeypatch.setattr(cv.Ensemble, "fit", lambda self, *a, **k: trained.append(1) or real_fit(self, *a, **k))
    lines.clear()
    again = cv.run_cv("ridge", "excerpt", data=d, bootstrap=0, folds_dir=tmp_path / "f", log=lines.append)
    assert len(trained) == 1 and sum("kept in" in line for line in lines) == 3
    np.testing.assert_array_equal(again.predictions, full.predictions)
    assert again.scores["mean_r"] == full.scores["mean_r"]
    real_load = cv.FoldStore.load
    monkeypatch.setattr(cv.FoldStore, "load", lambda self, k, test: {**real_load(self, k, test), "seconds": 100.0})
    assert cv.run_cv("ridge", "excerpt", data=d, bootstrap=0, folds_dir=tmp_path / "f").seconds >= 400
    monkeypatch.setattr(cv.FoldStore, "load", real_load)  # (the time: every kept fold's when trained)
    trained.clear()
    cv.run_cv("ridge", "excerpt", data=d, bootstrap=0, score=True, folds_dir=tmp_path / "f")
    assert len(trained) == 4  # other features: nothing kept is reused
    (tmp_path / "f" / "fold0.npz").write_bytes(b"damaged")
    trained.clear()
    cv.run_cv("ridge", "excerpt", data=d, bootstrap=0, score=True, folds_dir=tmp_path / "f")
    assert len(trained) == 1
    cv.FoldStore.clear(tmp_path / "f")
    assert not (tmp_path / "f").exists()


@pytest.mark.skipif(not (DATA / "percepiano").is_dir(), reason="PercePiano not available")
def test_cv_folds_shared_between_processes(tmp_path, capsys):
    """`assess-cv --folds` trains only the folds named and keeps them; the same command
    without it trains the rest and scores the whole protocol, as one run would."""
    import json

    from tatumflow.cli.main import main

    base = ["assess-cv", "--protocol", "excerpt", "--model", "ridge", "--bootstrap", "0",
            "--data", str(DATA / "percepiano")]
    out = tmp_path / "cv.json"
    assert main(base + ["--out", str(out), "--folds", "2-3"]) == 0
    assert sorted(f.name for f in (tmp_path / "cv.json.folds").iterdir()) == ["fold1.npz", "fold2.npz"]
    assert not out.exists() and "kept folds 2, 3" in capsys.readouterr().out
    assert main(base + ["--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "fold 2/4: kept in" in err and "fold 3/4: kept in" in err and "fold 1/4: trained in" in err
    assert main(base + ["--out", str(tmp_path / "one.json")]) == 0
    assert json.loads(out.read_text())["scores"] == json.loads((tmp_path / "one.json").read_text())["scores"]
    assert main(base + ["--folds", "1"]) == 2  # nowhere to keep them
    assert main(base + ["--out", str(out), "--folds", "5"]) == 2  # excerpt has 4 folds
    assert main(base + ["--out", str(out), "--folds", "3-1"]) == 2
    err = capsys.readouterr().err
    assert "--folds needs --out" in err and "has folds 1-4, not 5" in err and "folds count from 1" in err


def test_takes_are_grouped_from_real_names_and_music_and_never_split(tmp_path):
    """A PercePiano-shaped folder: real segment names, MIDI whose 16-bar takes contain
    the 8-bar excerpts cut from them. The groups come from names + notes (not handed in)."""
    from tatumflow import Performance
    from tatumflow.assessment.data import LABELS_FILE, load_percepiano

    rng = np.random.default_rng(5)
    labels = {}

    def put(name, pitches):
        on = np.arange(len(pitches)) * 0.25
        write_midi(Performance.from_arrays(on, on + 0.2, pitches, np.full(len(pitches), 70)),
                   tmp_path / "midi" / f"{name}.mid")
        labels[name] = list(rng.random(19)) + [0]

    for player in ("1", "2", "3", "4", "5"):
        a, b, c = (rng.integers(40, 90, 32) for _ in range(3))
        put(f"Schubert_D960_mv2_16bars_{player}_01", np.concatenate([a, b]))
        put(f"Schubert_D960_mv2_8bars_{player}_01", a)
        put(f"Schubert_D960_mv2_8bars_{player}_02", b)
        put(f"Schubert_D960_mv2_8bars_{player}_03", c)  # not inside any 16-bar take
        put(f"Beethoven_WoO80_var1_8bars_{player}_1", rng.integers(40, 90, 32))
    (tmp_path / LABELS_FILE).write_text(json.dumps(labels))
    d = load_percepiano(tmp_path)
    g = dict(zip(d.excerpts, d.take_group))
    assert g["Schubert_D960_mv2_16bars_01"] == g["Schubert_D960_mv2_8bars_01"] == g["Schubert_D960_mv2_8bars_02"]
    assert len({g["Schubert_D960_mv2_8bars_01"], g["Schubert_D960_mv2_8bars_03"],
                g["Beethoven_WoO80_var1_8bars_1"]}) == 3
    _check_cv(excerpt_protocol(d, k=3), d.take_group)
    take = np.array([g["Schubert_D960_mv2_8bars_01"]] * len(d))
    for f in excerpt_protocol(d, k=3).folds:  # the 16-bar take and its 8-bar cuts sit on one side
        in_take = d.take_group == take
        assert not (in_take[f.train].any() and in_take[f.test].any())


@pytest.mark.skipif(not (DATA / "percepiano").is_dir(), reason="PercePiano not available")
def test_the_training_domain_is_measured_on_percepiano():
    from tatumflow.assessment.data import load_percepiano
    from tatumflow.assessment.shipped import TRAINING_DOMAIN, measure_domain

    d = load_percepiano(DATA / "percepiano", link_takes=False)
    got = measure_domain(d.performances())
    for k, v in TRAINING_DOMAIN.items():
        assert np.allclose(got[k], v, atol=1e-9), (k, got[k], v)


@pytest.mark.skipif(not (DATA / "percepiano").is_dir(), reason="PercePiano not available")
def test_the_score_match_floor_is_measured_on_percepiano():
    from tatumflow.assessment.cv import score_feature_matrix
    from tatumflow.assessment.data import load_percepiano
    from tatumflow.assessment.shipped import SCORE_MATCH_FLOOR

    S, names = score_feature_matrix(load_percepiano(DATA / "percepiano"))
    assert SCORE_MATCH_FLOOR == np.floor(np.percentile(S[:, names.index("score/match_rate")], 1) * 100) / 100


def test_repeated_passages_are_found_in_the_scores_and_never_split(tmp_path):
    """Real names, and a score per excerpt: excerpts 03 and 05 are the same music (a repeat
    under another number) — found by comparing the scores, kept on one side of every split."""
    from tatumflow import Performance
    from tatumflow.assessment.data import LABELS_FILE, load_percepiano, repeated_passages
    from tatumflow.assessment.protocols import piece_protocol, shared_music

    rng = np.random.default_rng(6)
    labels, music = {}, {s: rng.integers(40, 90, 24) for s in ("01", "02", "03", "04")}
    music["05"] = music["03"]

    def put(folder, name, pitches):
        on = np.arange(len(pitches)) * 0.25
        write_midi(Performance.from_arrays(on, on + 0.2, pitches, np.full(len(pitches), 70)),
                   tmp_path / folder / f"{name}.mid")

    for seg, pitches in music.items():
        put("score_midi", f"Schubert_D960_mv3_8bars_Score_{seg}", pitches)
        for player in ("1", "2", "3"):
            put("midi", f"Schubert_D960_mv3_8bars_{player}_{seg}", pitches)
            labels[f"Schubert_D960_mv3_8bars_{player}_{seg}"] = list(rng.random(19)) + [0]
    put("score_midi", "Beethoven_WoO80_var1_8bars_Score_1", music["03"])  # same notes, another piece
    for player in ("1", "2"):
        put("midi", f"Beethoven_WoO80_var1_8bars_{player}_1", music["03"])
        labels[f"Beethoven_WoO80_var1_8bars_{player}_1"] = list(rng.random(19)) + [0]
    (tmp_path / LABELS_FILE).write_text(json.dumps(labels))
    d = load_percepiano(tmp_path)
    assert [sorted(g) for g in repeated_passages(d)] == [["Schubert_D960_mv3_8bars_03", "Schubert_D960_mv3_8bars_05"]]
    g = dict(zip(d.excerpts, d.take_group))
    assert g["Schubert_D960_mv3_8bars_03"] == g["Schubert_D960_mv3_8bars_05"] != g["Beethoven_WoO80_var1_8bars_1"]
    for k in (2, 3, 4):
        _check_cv(excerpt_protocol(d, k=k), d.take_group)
        assert shared_music(d, excerpt_protocol(d, k=k))["sharing_music_with_training"] == 0
    pp = piece_protocol(d)
    assert len(pp.folds) == 2 and all(len(set(d.pieces[f.test])) == 1 for f in pp.folds)


def test_assess_with_a_score_uses_the_score_aware_assessor(tmp_path, capsys):
    from tatumflow import Performance

    rng = np.random.default_rng(8)
    on = np.arange(40) * 0.3
    pitch = rng.integers(50, 80, 40)
    score = write_midi(Performance.from_arrays(on, on + 0.25, pitch, [64] * 40), tmp_path / "score.mid")
    played = on * 1.1 + rng.normal(0, 0.02, 40)
    take = write_midi(Performance.from_arrays(played, played + 0.2, pitch, rng.integers(50, 90, 40)),
                      tmp_path / "take.mid")
    assert main(["assess", str(take), "--score", str(score), "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["model"]["score_aware"] is True and len(rep["results"][0]["ratings"]) == 19
    assert rep["results"][0]["score_match_rate"] == 1.0
    assert not any("score's notes" in w for w in rep["results"][0]["warnings"])
    # another score: few of its notes are found, and the output says so
    other = write_midi(Performance.from_arrays(on, on + 0.25, rng.integers(50, 80, 40), [64] * 40),
                       tmp_path / "other.mid")
    assert main(["assess", str(take), "--score", str(other)]) == 0
    text = capsys.readouterr().out
    assert "of the score's notes found in it" in text and f"is {other} the score it was played from?" in text
    from tatumflow.assessment.shipped import SCORE_MODEL

    assert main(["assess", str(take), "--model", str(SCORE_MODEL)]) == 2  # it needs the score
    assert "give --score" in capsys.readouterr().err


@pytest.mark.skipif(not (DATA / "percepiano").is_dir(), reason="PercePiano not available")
def test_rater_ceiling_and_the_published_splits_leak():
    from tatumflow.assessment.data import load_percepiano, rater_ceiling
    from tatumflow.assessment.protocols import get_protocol, shared_music

    c = rater_ceiling(DATA / "percepiano", splits=10)
    assert c["segments"] == 1202 and 0.85 < c["mean_r"] < 0.92 and 0.70 < c["within_excerpt_r"] < 0.80
    d = load_percepiano(DATA / "percepiano")
    assert shared_music(d, get_protocol("excerpt", d))["sharing_music_with_training"] == 0
    assert shared_music(d, get_protocol("piece", d))["sharing_music_with_training"] == 0
    leak = shared_music(d, get_protocol("paper-piece", d))
    assert leak["sharing_music_with_training"] > 50 and leak["test_segments"] > 150
