"""`tatumflow melody` verbs and `tatumflow models`, end to end, with their bad-input errors."""

import pytest

from conftest import tune
from tatumflow import read_midi, write_midi
from tatumflow.cli.main import main


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    d = tmp_path_factory.mktemp("melody_cli")
    for i in range(8):
        write_midi(tune(i), d / "loops" / f"l{i}.mid")
    import contextlib
    import io

    log = io.StringIO()
    with contextlib.redirect_stdout(log):
        assert main(["melody", "train", str(d / "loops"), "--out", str(d / "run"), "--epochs", "3"]) == 0
    (d / "train.log").write_text(log.getvalue())
    return d


def test_train_generate_encode_interpolate_bend(trained, capsys):
    d = trained
    out = (d / "train.log").read_text()
    assert "epoch 3: train loss" in out and "lr 1.00e-03" in out and "3.0 epochs" in out and "from 8 of 8 files" in out and (d / "run" / "best" / "model.safetensors").is_file()
    model = ["--model", str(d / "run" / "best")]
    assert main(["melody", "generate", *model, "--out", str(d / "g.mid"), "--count", "3", "--threshold", "0.3"]) == 0
    g = read_midi(d / "g.mid")
    assert len(g) > 0 and g.end <= 3 * 4.0 + 1e-6  # three 2-bar windows at 120 qpm
    assert main(["melody", "generate", *model, "--out", str(d / "z.mid"), "--z", "0.5,-1"]) == 0
    assert main(["melody", "encode", str(d / "loops" / "l0.mid"), str(d / "loops" / "l1.mid"), *model]) == 0
    lines = capsys.readouterr().out.strip().splitlines()[-2:]
    assert all(len(line.split(": ")[1].split()) == 2 for line in lines)
    assert main(["melody", "interpolate", str(d / "loops" / "l0.mid"), str(d / "loops" / "l1.mid"), *model,
                 "--steps", "4", "--out", str(d / "i.mid")]) == 0
    assert read_midi(d / "i.mid").end > 3 * 4.0  # four windows one after another
    assert main(["melody", "bend", *model, "--amount", "1.0", "--out", str(d / "b.mid")]) == 0
    assert "bent 10 decoder tensors" in capsys.readouterr().out  # the hidden layer and 4 heads
    assert main(["melody", "bend", *model, "--layers", "pitch,onset", "--out", str(d / "b2.mid")]) == 0
    assert "bent 4 decoder tensors" in capsys.readouterr().out
    assert main(["generate", "--checkpoint", str(d / "run" / "best"), "--out", str(d / "gen.mid"), "--count",
                 "2"]) == 0  # the family seam: `generate` drives a MelodyVAE checkpoint too


@pytest.mark.parametrize("argv,msg", [
    (["melody", "generate", "--out", "x.mid", "--threshold", "2"], "argument --threshold: 2 is out of range"),
    (["melody", "generate", "--z", "1"], "needs --out"),
    (["melody", "generate", "--z", "a,b", "--out", "x.mid"], "--z expects comma-separated numbers"),
    (["melody", "generate", "--z", "1", "--out", "x.mid"], "pad has 2 coordinates"),
    (["melody", "generate", "--count", "0", "--out", "x.mid"], "argument --count: 0 is out of range"),
    (["melody", "interpolate", "a.mid", "--out", "x.mid"], "needs two MIDI files"),
    (["melody", "bend", "--amount", "-1", "--out", "x.mid"], "argument --amount: -1 is out of range"),
    (["melody", "train", "/no/such/folder", "--epochs", "1"], "no such file or folder"),
    (["melody", "train", "--epochs", "0", "x"], "argument --epochs: 0 is out of range"),
    (["melody", "generate", "--model", "/no/model", "--out", "x.mid"], "not a checkpoint folder"),
])
def test_bad_values_are_one_line_errors(trained, argv, msg, capsys):
    if "--model" not in argv and argv[1] != "train":
        argv = argv + ["--model", str(trained / "run" / "best")]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert msg in err and "\n" not in err, err


def test_models_lists_the_shipped_models(capsys):
    import json

    assert main(["models", "--json"]) == 0
    cards = json.loads(capsys.readouterr().out)
    for c in cards:
        assert {"name", "family", "parameters", "data", "command", "training", "terms"} <= set(c)
    assert main(["models"]) == 0
