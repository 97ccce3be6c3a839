"""`tatumflow scorecard --quick` on a tiny model and data it has never seen: the card's shape."""

import json
import math
from pathlib import Path

import numpy as np
import pytest

from conftest import tune
from tatumflow import write_midi
from tatumflow.cli.main import main
from tatumflow.errors import TatumFlowError
from tatumflow.performance import Performance

FIX = Path(__file__).resolve().parent / "fixtures"


def piece(seed: int, bars: int = 36) -> Performance:
    """A melody over a left-hand chord per bar (so every second holds >= 3 pitch classes)."""
    m = tune(seed, bars=bars)
    bar = np.arange(bars) * 2.0
    root = 36 + np.random.default_rng(seed).integers(0, 12, bars)
    on = np.concatenate([m.notes["onset"], np.repeat(bar, 3)])
    off = np.concatenate([m.notes["offset"], np.repeat(bar + 1.9, 3)])
    pit = np.concatenate([m.notes["pitch"], (root[:, None] + [0, 4, 7]).ravel()])
    return Performance.from_arrays(on, off, pit, np.full(len(on), 70))


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("scorecard_data")
    rows = ["path,pianist,split"]
    for i, (who, split) in enumerate([("A", "test"), ("A", "test"), ("A", "val"), ("B", "test"), ("B", "test")]):
        write_midi(piece(i), d / f"{i}.mid")
        rows.append(f"{i}.mid,{who},{split}")
    (d / "index.csv").write_text("\n".join(rows) + "\n")
    return d / "index.csv"


def test_quick_scorecard_writes_every_mode(data, tmp_path, capsys):
    out = tmp_path / "card"
    rc = main(["scorecard", "--checkpoint", str(FIX / "tatumflow_v1"), "--baseline", str(FIX / "music_rnn_v1"),
               "--data", str(data), "--where", "pianist=A", "--where", "split=test", "--contrast-where", "split=test",
               "--out", str(out), "--quick", "--steps", "4", "--guidance", "1.5"])
    printed = capsys.readouterr().out
    assert rc == 0
    card = json.loads((out / "scorecard.json").read_text())
    m = card["modes"]
    for mode, keys in {
        "continuation": ["mean_oa", "p_target", "bits_per_note", "density_ratio_tail", "longest_note"],
        "unconditional": ["mean_oa", "p_target", "diversity"],
        "style_transfer": ["p_target_source", "p_target_by_strength", "chroma_by_strength"],
        "edit_harmony": ["root_accuracy", "chord_accuracy", "root_accuracy_source", "rhythm_correlation"],
        "interpolate": ["monotonicity", "endpoints_closer_to_own_source", "p_target_by_alpha", "monotonicity_ci95",
                        "p_target_mean_curve_spearman"],
        "improvise": ["distance_by_creativity", "diversity_by_creativity", "key_correlation_by_creativity"],
    }.items():
        assert set(keys) <= set(m[mode]), (mode, sorted(m[mode]))
    assert list(m["style_transfer"]["p_target_by_strength"]) == ["0.25", "0.5", "0.75", "1"]
    assert list(m["improvise"]["distance_by_creativity"]) == ["0", "0.5", "1"]
    assert set(m["interpolate"]["monotonicity"]) == {"p_target", "density", "voicing_size", "register", "texture_mean"}
    for k, (lo, hi) in m["interpolate"]["monotonicity_ci95"].items():  # one pair: the interval is the value
        assert lo == pytest.approx(m["interpolate"]["monotonicity"][k]) == hi
    # one pair: its P curve is the mean curve
    assert m["interpolate"]["p_target_mean_curve_spearman"] == pytest.approx(m["interpolate"]["monotonicity"]["p_target"])
    assert card["steps"] == 4 and card["guidance"] == 1.5 and m["continuation"]["prompts"] == 4 and m["continuation"]["grammar_errors"] == 0
    assert 0 < m["continuation"]["bits_per_note"] < 60
    # generate-then-judge: the judge's favourite of 2 candidates per prompt scores at least the plain P(target)
    assert m["continuation"]["rerank_n"] == 2
    assert m["continuation"]["rerank_p_target"] >= m["continuation"]["p_target"] - 1e-9
    assert 0 <= m["continuation"]["rerank_mean_oa"] <= 1
    assert m["edit_harmony"]["with_chord_bias"]["chord_bias"] > 0  # the model alone, then nudged to the chords
    for v in list(m["style_transfer"]["chroma_by_strength"].values()) + [m["edit_harmony"]["root_accuracy"],
                                                                          m["edit_harmony"]["with_chord_bias"]
                                                                          ["root_accuracy"]]:
        assert 0.0 <= v <= 1.0
    # the real-vs-real reference comes from the val piece of the same pianist
    assert card["data"]["reference_where"] == {"pianist": "A", "split": "val"}
    assert math.isfinite(card["real"]["continuation"]["p_target"])
    # the Music RNN baseline on the modes it shares
    (base,) = card["baselines"].values()
    assert base["model"]["family"] == "music_rnn" and set(base["modes"]) == {"continuation"}
    assert base["modes"]["continuation"]["bits_per_note"] > 0
    assert [t["key"] for t in card["targets"]][0] == "continuation.density_ratio_tail"
    assert all(t["met"] in (True, False) for t in card["targets"])
    # the report and the music
    md = (out / "scorecard.md").read_text()
    assert "| continuation | P(target) |" in md and "controls.png" in md and (out / "controls.png").stat().st_size
    assert len(list((out / "midi").glob("continuation_*.mid"))) == 4
    assert len(list((out / "midi").glob("interpolate_00_a*.mid"))) == 5
    assert "| mode | measure | tatumflow_v1 | music_rnn_v1 | real |" in printed and "targets met:" in printed


def test_scorecard_needs_pieces_long_enough(tmp_path):
    from tatumflow.scorecard import scorecard

    write_midi(tune(0, bars=4), tmp_path / "short.mid")
    (tmp_path / "index.csv").write_text("path,split\nshort.mid,test\n")
    with pytest.raises(TatumFlowError, match="no target piece has a 10 s prompt and 20 s after it"):
        scorecard(FIX / "tatumflow_v1", tmp_path / "index.csv", tmp_path / "out", where={"split": "test"},
                  quick=True, echo=lambda m: None)


def test_a_decoder_only_model_is_scored_on_its_own_modes(data, tmp_path):
    """The plain causal-transformer baseline as the card's model: continuation and
    unconditional only (no plan to steer), with the same keys."""
    import torch

    from tatumflow.models.tatumflow import TatumFlow, preset
    from tatumflow.scorecard import scorecard
    from tatumflow.training.checkpoint import model_state, save_checkpoint

    torch.manual_seed(0)
    m = TatumFlow(preset("tiny", seq_len=128, decoder_only=True, dec_layers=1))
    ck = save_checkpoint(tmp_path / "plain", model_state=m.state_dict(), state={**model_state(m), "run_info": {}})
    card = scorecard(ck, data, tmp_path / "card", where={"pianist": "A", "split": "test"}, quick=True,
                     echo=lambda msg: None)
    assert set(card["modes"]) == {"continuation", "unconditional"}
    assert card["modes"]["continuation"]["bits_per_note"] > 0 and card["modes"]["continuation"]["grammar_errors"] == 0
