"""Neural assessors: their inputs, training through the Trainer, SSAST pretraining, ensembles."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

from conftest import random_performance
from tatumflow.assessment.cv import Ensemble
from tatumflow.assessment.inputs import (DEVIATION_SCALE, NOTE_FEATURES, ROLL_LOW, SCORE_NOTE_FEATURES, NoteArrays,
                                         note_matrix, render_roll)
from tatumflow.assessment.neural import (AssessorNetConfig, NeuralModel, PerceptualAssessor, SegmentDataset,
                                         load_encoder, predict_segments, pretrain_ssast)
from tatumflow.errors import TatumFlowError
from tatumflow.performance import Performance


def two_notes() -> NoteArrays:
    return NoteArrays.of(Performance.from_arrays([1.0, 2.0], [1.55, 2.1], [60, 64], [100, 50],
                                                 pedal_time=[0.5, 1.5], pedal_value=[127, 0]))


def test_render_roll_places_notes_onsets_and_pedal():
    img, frames = render_roll(two_notes(), 0.0, 32)
    assert img.shape == (3, 96, 32) and img.dtype == np.uint8 and frames == 21
    r = 60 - ROLL_LOW
    assert (img[0, r, 10:16] == 100).all() and img[0, r, 9] == 0 and img[0, r, 16] == 0
    assert np.flatnonzero(img[1, r]).tolist() == [10] and img[1, r, 10] == 100
    assert (img[0, 64 - ROLL_LOW, 20] == 50) and img[0].sum() == 100 * 6 + 50 * 1
    assert (img[2, :, 5:15] == 127).all() and not img[2, :, 15:].any() and not img[2, :, :5].any()
    up, _ = render_roll(two_notes(), 0.0, 32, transpose=2)
    assert (up[:, 2:] == img[:, :-2]).all()
    late, fr = render_roll(two_notes(), 1.2, 32)  # a window starting inside the first note
    assert (late[0, r, 0:4] == 100).all() and not late[1, r].any() and fr == 9


def test_note_matrix():
    m, n = note_matrix(two_notes(), 0.0, 4)
    assert n == 2 and m.shape == (4, 6) and not m[2:].any()
    assert m[:2, 0].tolist() == [60, 64] and np.allclose(m[:2, 1], [100 / 127, 50 / 127])
    assert np.isclose(m[1, 3], np.log2(1.01) / 4) and np.allclose(m[:2, 4], [0.0, 1.0])
    assert np.allclose(m[:2, 5], [1.0, 0.0])  # pedal down at the first onset, up at the second
    m2, n2 = note_matrix(two_notes(), 1.5, 4, transpose=-3)
    assert n2 == 1 and m2[0, 0] == 61


def _synthetic(n: int, seed: int):
    """Performances whose 'ratings' follow their loudness and their tempo."""
    rng = np.random.default_rng(seed)
    perfs, Y = [], []
    for i in range(n):
        p = random_performance(rng, int(rng.integers(60, 200)), span=float(rng.uniform(8, 40)))
        gain = rng.uniform(0.3, 1.0)
        p = p.replace(notes=p.notes.copy())
        notes = p.notes.copy()
        notes["velocity"] = np.maximum(1, (notes["velocity"] * gain)).astype(notes["velocity"].dtype)
        p = p.replace(notes=notes)
        density = len(p) / max(p.end - p.start, 1)
        y = np.full(19, 0.5)
        y[:10] = 0.2 + 0.6 * gain
        y[10:] = np.clip(density / 20.0, 0, 1)
        perfs.append(p)
        Y.append(y + 0.01 * rng.standard_normal(19))
    return [NoteArrays.of(p) for p in perfs], np.array(Y)


def test_chunked_rating_is_the_mean_over_windows():
    arrays, Y = _synthetic(4, 0)
    cfg = AssessorNetConfig(input="notes", d_model=32, n_layers=1, n_heads=2, max_notes=32)
    model = PerceptualAssessor(cfg).eval()
    rows = np.arange(4)
    ds = SegmentDataset(arrays, rows, cfg, chunks=True)
    assert all(len(ds._chunk_starts(a)) >= len(a.onset) // 32 for a in arrays)  # whole segments covered
    got = predict_segments(model, arrays, rows)
    from torch.utils.data import default_collate

    with torch.no_grad():
        each = model(default_collate([ds[i] for i in range(len(ds))])).numpy()
    owner = np.array([r for r, _ in ds.items])
    assert np.allclose(got, [each[owner == r].mean(0) for r in rows], atol=1e-5)
    # Training items are deterministic in (seed, index): a resumed run sees the same data.
    a = SegmentDataset(arrays, rows, cfg, Y, repeats=3, transpose=2, seed=5)
    b = SegmentDataset(arrays, rows, cfg, Y, repeats=3, transpose=2, seed=5)
    assert all(torch.equal(a[i]["notes"], b[i]["notes"]) for i in range(len(a)))


@pytest.mark.parametrize("name", ["hybrid", "note-transformer"])
def test_neural_assessor_learns_held_out_ratings(name):
    """Trained through the Trainer on 48 synthetic takes, it rates 16 unseen ones:
    the loudness-driven dimensions must follow the true loudness."""
    arrays, Y = _synthetic(64, 1)
    X = np.stack([[a.velocity.mean(), len(a.onset) / max(a.end - a.start, 1)] for a in arrays])
    torch.manual_seed(0)
    train, test = np.arange(48), np.arange(48, 64)
    small = {"steps": 150, "batch_size": 16, "lr": 2e-3, "ema": 0.9, "net": {"d_model": 32, "n_layers": 1, "n_heads": 2}}
    m = NeuralModel(name, arrays, seed=0, recipe=small).fit(X[train], Y[train], train)
    p = m.predict(X[test], test)
    assert p.shape == (16, 19)
    r = np.corrcoef(p[:, 0], Y[test, 0])[0, 1]
    assert r > 0.8, r


def test_ssast_pretraining_learns_and_transfers(tmp_path):
    arrays, _ = _synthetic(12, 2)
    res = pretrain_ssast(tmp_path / "ssast", steps=60, arrays=arrays, progress=False, seed=0)
    assert res["steps"] == 60
    with open(tmp_path / "ssast" / "metrics.csv") as fh:
        loss = [float(r["value"]) for r in csv.DictReader(fh) if r["metric"] == "train/loss"]
    assert loss[-1] < 0.7 * loss[0], loss
    model = PerceptualAssessor(AssessorNetConfig(input="roll"))
    load_encoder(model, tmp_path / "ssast" / "final")
    from tatumflow.training.checkpoint import load_checkpoint

    ema = load_checkpoint(tmp_path / "ssast" / "final")["ema"]
    assert torch.equal(model.roll.embed.weight, ema["roll.embed.weight"])
    with pytest.raises(Exception, match="no piano-roll encoder"):
        load_encoder(PerceptualAssessor(AssessorNetConfig(input="notes")), tmp_path / "ssast" / "final")


def test_ensemble_averages_models_and_seeds():
    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((80, 5)), rng.random((80, 19))
    rows, test = np.arange(60), np.arange(60, 80)
    blend = Ensemble("ridge+mean").fit(X, Y, rows).predict(X, test)
    from tatumflow.assessment.baselines import make_classical

    parts = [make_classical(n).fit(X[rows], Y[rows]).predict(X[test]) for n in ("ridge", "mean")]
    assert np.allclose(blend, np.mean(parts, 0))
    seeds = Ensemble("extra-trees-per-dim-compact", seed=0, seeds=2)
    assert [m.seed for m in seeds.members] == [0, 1]


def test_neural_assessor_stops_early_on_its_validation_part_by_mean_r():
    """The validation part is whole groups of the training rows; training keeps the
    weights of the best mean r there (recomputed on the fitted model) and stops
    once it no longer improves; a protocol's own validation rows are used as given."""
    from tatumflow.assessment.metrics import pearson_per_dim

    arrays, Y = _synthetic(64, 3)
    X = np.zeros((64, 2))
    groups = np.arange(64) // 4  # 16 "excerpts" of 4 takes
    rows = np.arange(48)
    small = {"steps": 2000, "eval_every": 20, "patience": 2, "val_share": 0.25, "batch_size": 16, "lr": 3e-3,
             "ema": 0.9, "net": {"d_model": 32, "n_layers": 1, "n_heads": 2}}
    m = NeuralModel("note-transformer", arrays, seed=0, recipe=small, groups=groups)
    part = m.validation_part(rows)
    assert part.sum() == 12 and all(len(set(part[groups[rows] == g])) == 1 for g in range(12))
    m.fit(X[rows], Y[rows], rows)
    f = m.fit_info
    assert f["stop_reason"] == "early_stopping" and f["steps"] < 2000
    assert f["train_segments"] == 36 and f["val_segments"] == 12
    r = pearson_per_dim(Y[rows[part]], m.predict(X[rows[part]], rows[part])).mean()
    assert r == pytest.approx(f["val_mean_r"], abs=1e-4) and r > 0.3
    given = np.arange(48) >= 40  # e.g. paper-performer's validation performers
    m2 = NeuralModel("note-transformer", arrays, seed=0, recipe={**small, "steps": 40}, groups=groups)
    m2.fit(X[rows], Y[rows], rows, val=given)
    assert m2.fit_info["val_segments"] == 8 and m2.fit_info["train_segments"] == 40


def test_sizes_and_the_ssast_objectives():
    from tatumflow.assessment.neural import recipe_for

    assert [AssessorNetConfig(**recipe_for(n)[1].net).d_model for n in ("ast", "ast@0.2m", "ast@2m", "ast@8m")] == \
        [64, 64, 192, 384]
    with pytest.raises(ValueError, match="unknown assessor size"):
        recipe_for("ast@3m")
    with pytest.raises(ValueError, match="unknown neural assessor"):
        recipe_for("wavenet@2m")
    arrays, _ = _synthetic(6, 4)
    cfg = AssessorNetConfig(input="roll", mask_ratio=0.15, d_model=32, n_layers=1, n_heads=2, roll_frames=64)
    torch.manual_seed(0)
    model = PerceptualAssessor(cfg)
    from torch.utils.data import default_collate

    from tatumflow.assessment.neural import WindowDataset

    batch = default_collate([WindowDataset(arrays, cfg, length=8)[i] for i in range(8)])
    out = model.training_step(batch)
    m = out.metrics
    assert {"masked_mse", "masked_nce", "masked_acc"} <= set(m) and out.n_items > 0
    assert float(out.loss.detach()) == pytest.approx(m["masked_nce"] + 10.0 * m["masked_mse"], rel=1e-4)
    fine = AssessorNetConfig(input="roll", frame_s=0.025, roll_frames=64)
    img = SegmentDataset(arrays, np.arange(1), fine)[0]["roll"]
    coarse = SegmentDataset(arrays, np.arange(1), AssessorNetConfig(input="roll", roll_frames=64))[0]["roll"]
    assert img.shape == coarse.shape and not torch.equal(img, coarse)  # 25 ms frames: another picture
    assert AssessorNetConfig(**recipe_for("ast-fine@2m")[1].net).frame_s == 0.025
    # A chord played together and one rolled over 60 ms: one picture at 100 ms frames, two at 25 ms.
    together = NoteArrays.of(Performance.from_arrays([1.0] * 3, [1.5] * 3, [60, 64, 67], [80] * 3))
    rolled = NoteArrays.of(Performance.from_arrays([1.0, 1.03, 1.06], [1.5] * 3, [60, 64, 67], [80] * 3))
    assert np.array_equal(render_roll(together, 0.0, 64)[0], render_roll(rolled, 0.0, 64)[0])
    assert not np.array_equal(render_roll(together, 0.0, 64, frame_s=0.025)[0],
                              render_roll(rolled, 0.0, 64, frame_s=0.025)[0])


def test_kept_fold_carries_the_neural_fit(tmp_path):
    """A neural fold kept by assess-cv comes back with its stopping record."""
    from tatumflow.assessment.cv import FoldStore

    arrays, Y = _synthetic(24, 1)
    X = np.zeros((24, 2))
    small = {"steps": 20, "batch_size": 8, "eval_every": 10, "net": {"d_model": 32, "n_layers": 1, "n_heads": 2}}
    m = NeuralModel("note-transformer", arrays, seed=0, recipe=small).fit(X[:20], Y[:20], np.arange(20))
    test = np.arange(20, 24)
    p = m.predict(X[test], test)
    store = FoldStore(tmp_path, "run")
    store.save(0, test, p, None, [m.fit_info], 1.5)
    kept = store.load(0, test)
    assert kept["fits"] == [m.fit_info] and kept["importances"] is None and np.array_equal(kept["pred"], p)
    assert store.load(0, test[:2]) is None and FoldStore(tmp_path, "other run").load(0, test) is None


def test_neural_fit_killed_midway_resumes_from_its_run_folder(tmp_path, monkeypatch):
    """A fit given a run folder checkpoints after every evaluation; killed there, a
    new fit resumes and ends with the predictions, stopping record and (the killed
    part counted) training time of an uninterrupted one; keeping the fold removes
    the folder."""
    from tatumflow.assessment.cv import FoldStore
    from tatumflow.training.trainer import Trainer

    arrays, Y = _synthetic(40, 5)
    X = np.zeros((40, 2))
    rows, test = np.arange(32), np.arange(32, 40)
    small = {"steps": 60, "eval_every": 10, "patience": 50, "val_share": 0.25, "batch_size": 8, "lr": 3e-3,
             "ema": 0.9, "net": {"d_model": 32, "n_layers": 1, "n_heads": 2}}
    whole = NeuralModel("note-transformer", arrays, seed=0, recipe=small).fit(X[rows], Y[rows], rows)

    store = FoldStore(tmp_path, "run")
    run = store.run_dir(0, test)
    real_fit = Trainer.fit

    def killed(self, resume=False, **kw):  # the process dies after the checkpoint at step 30
        real_fit(self, resume, stop_after=30)
        raise KeyboardInterrupt

    monkeypatch.setattr(Trainer, "fit", killed)
    with pytest.raises(KeyboardInterrupt):
        NeuralModel("note-transformer", arrays, seed=0, recipe=small, run_dir=run).fit(X[rows], Y[rows], rows)
    assert (run / "step-0000030").is_dir()
    monkeypatch.setattr(Trainer, "fit", real_fit)
    again = NeuralModel("note-transformer", arrays, seed=0, recipe=small, run_dir=run).fit(X[rows], Y[rows], rows)
    assert again.fit_info == whole.fit_info and again.fit_info["steps"] == 60
    assert np.array_equal(again.predict(X[test], test), whole.predict(X[test], test))
    sessions = json.loads((run / "sessions.json").read_text())
    assert [x["from_step"] for x in sessions] == [0, 30] and again.earlier_seconds > 0
    store.save(0, test, again.predict(X[test], test), None, [again.fit_info], 1.0)
    assert not run.exists() and store.load(0, test) is not None


def _played_from_scores(n: int, seed: int, pieces: int = 16):
    """Performances of written pieces whose written dynamics differ widely (piece ``i %
    pieces``), each played louder or softer than written by its own amount: the 'ratings'
    are that amount."""
    rng = np.random.default_rng(seed)
    scores = []
    for _ in range(pieces):
        on = np.repeat(0.5 + 0.5 * np.arange(40), 2)
        pitch = np.ravel(np.c_[rng.integers(40, 60, 40), rng.integers(64, 84, 40)])
        level = rng.uniform(35, 95)
        scores.append(Performance.from_arrays(on, on + 0.4, pitch, (level + rng.uniform(-10, 10, 80)).astype(int)))
    arrays, Y = [], []
    for i in range(n):
        s = scores[i % pieces]
        gain = float(rng.uniform(-15, 15))
        n_ = s.notes
        on = n_["onset"] * 1.1 + rng.normal(0, 0.01, len(n_))
        order = np.lexsort((n_["pitch"], on))
        perf = Performance.from_arrays(on[order], on[order] + 0.4, n_["pitch"][order],
                                       np.clip(n_["velocity"][order] + gain, 1, 127).astype(int))
        arrays.append(NoteArrays.of(perf, s))
        Y.append(np.full(19, 0.5 + gain / 40) + 0.01 * rng.standard_normal(19))
    return arrays, np.array(Y)


def test_note_matrix_reads_the_score_deviations():
    arrays, _ = _played_from_scores(2, 0)
    m, n = note_matrix(arrays[0], 0.0, 100, score=True)
    assert m.shape == (100, NOTE_FEATURES + SCORE_NOTE_FEATURES) and n == 80
    assert (m[:n, 6] == 1).all() and not m[n:].any()  # every note matched, padding empty
    gain = arrays[0].score_dev[:, 2]
    assert np.allclose(m[:n, 8], np.clip(gain / DEVIATION_SCALE[1], -3, 3)) and np.ptp(gain) < 1
    assert np.array_equal(m[:n, :6], note_matrix(arrays[0], 0.0, 100)[0][:n])  # the plain columns unchanged
    with pytest.raises(TatumFlowError, match="score"):
        note_matrix(two_notes(), 0.0, 4, score=True)


def test_reading_the_score_finds_what_the_notes_alone_hide():
    """Played against written dynamics that differ from piece to piece, how much louder than
    written is in the score deviations: the network that reads them learns it on pieces it
    never heard, the one that sees only the notes far less."""
    arrays, Y = _played_from_scores(64, 2)
    X = np.zeros((64, 1))
    piece = np.arange(64) % 16
    train, test = np.flatnonzero(piece < 12), np.flatnonzero(piece >= 12)
    small = {"steps": 150, "batch_size": 16, "lr": 2e-3, "ema": 0.9, "val_share": 0,
             "net": {"d_model": 32, "n_layers": 1, "n_heads": 2}}
    r = {}
    for name in ("note-transformer-score", "note-transformer"):
        m = NeuralModel(name, arrays, seed=0, recipe=small).fit(X[train], Y[train], train)
        r[name] = np.corrcoef(m.predict(X[test], test)[:, 0], Y[test, 0])[0, 1]
    assert r["note-transformer-score"] > 0.8 and r["note-transformer-score"] > r["note-transformer"] + 0.2, r
