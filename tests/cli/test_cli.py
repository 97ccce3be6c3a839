import json
from pathlib import Path

import numpy as np
import pytest

from conftest import random_performance
from tatumflow import read_midi, write_midi
from tatumflow.cli.main import main


@pytest.fixture
def one_midi(tmp_path):
    return write_midi(random_performance(np.random.default_rng(0), 120), tmp_path / "in.mid")


def test_validate_json_and_exit_code(tmp_path, one_midi, capsys):
    bad = tmp_path / "bad.mid"
    bad.write_bytes(b"RIFF....")
    write_midi(random_performance(np.random.default_rng(1), 3, span=0.2), tmp_path / "short.mid")
    rc = main(["validate", str(tmp_path), "--json"])
    rep = json.loads(capsys.readouterr().out)
    assert rc == 1 and rep["files"] == 3 and rep["ok"] == 1
    by = {r["path"].split("/")[-1]: r for r in rep["results"]}
    assert set(by["in.mid"]) == {"path", "ok", "reason", "seconds", "notes"}
    assert by["bad.mid"]["reason"].startswith("not a MIDI file")
    assert "too short" in by["short.mid"]["reason"]
    assert main(["validate", str(one_midi)]) == 0
    assert "1 files: 1 ok" in capsys.readouterr().out


def test_tokenize_detokenize_round_trip(tmp_path, one_midi, capsys):
    assert main(["tokenize", str(one_midi), "--out", str(tmp_path / "ids.npy")]) == 0
    assert main(["detokenize", str(tmp_path / "ids.npy"), "--out", str(tmp_path / "back.mid")]) == 0
    a, b = read_midi(one_midi), read_midi(tmp_path / "back.mid")
    assert len(a) == len(b)
    assert main(["tokenize", str(one_midi), "--names"]) == 0
    assert capsys.readouterr().out.split()[-3:][-1] == "EOS"


def test_vocab_prepare_inspect_pianoroll(tmp_path, one_midi, capsys):
    assert main(["vocab", "--json"]) == 0
    v = json.loads(capsys.readouterr().out)
    assert v["size"] == 715 and v["tokens"][713] == "SUSTAIN_ON"
    assert main(["prepare", str(tmp_path), "--out", str(tmp_path / "store"), "--workers", "1"]) == 0
    assert main(["inspect", str(tmp_path / "store"), "--json"]) == 0
    out = capsys.readouterr().out
    st = json.loads(out[out.index("{"):])
    assert st["files"] == 1 and st["tokens_per_note"] > 2
    assert main(["pianoroll", str(one_midi), "--out", str(tmp_path / "r.png")]) == 0
    assert (tmp_path / "r.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("argv,msg", [
    (["inspect", "/nonexistent/store"], "argument store: /nonexistent/store: no such folder"),
    (["tokenize", "/nonexistent.mid"], "argument file: /nonexistent.mid: no such file"),
    (["prepare", "/nonexistent", "--out", "/tmp/x"], "no such file or folder"),
    (["validate", "/nonexistent"], "no such file"),
    (["corpus", "export", "nope"], "unknown built-in corpus"),
])
def test_bad_input_gives_one_line_error(argv, msg, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert msg in err and "\n" not in err and "Traceback" not in err


def test_help_on_every_command(capsys):
    for cmd in ["validate", "corpus", "prepare", "inspect", "vocab", "tokenize", "detokenize", "pianoroll", "demo"]:
        assert main([cmd, "--help"]) == 0
    assert "usage: tatumflow" in capsys.readouterr().out


def test_generate_rejects_what_the_checkpoints_family_cannot_do(tmp_path, capsys):
    fix = Path(__file__).resolve().parents[1] / "fixtures"
    rnn, tf = str(fix / "music_rnn_v1"), str(fix / "tatumflow_v1")
    out = ["--out", str(tmp_path / "x.mid"), "--seconds", "1"]
    for argv, msg in [([rnn, "--chords", "Dm7"], "--chords applies to tatumflow"),
                      ([rnn, "--mode", "style-transfer"], "only continues prompts"),
                      ([tf, "--live"], "--live applies to music_rnn"),
                      ([tf, "--mode", "nope"], "unknown TatumFlow mode 'nope'"),
                      ([tf, "--mode", "style-transfer"], "needs --prompt")]:
        assert main(["generate", "--checkpoint", *argv, *out]) == 2, argv
        err = capsys.readouterr().err.strip()
        assert msg in err and "\n" not in err, (argv, err)
    assert main(["generate", "--checkpoint", rnn, *out]) == 0 and (tmp_path / "x.mid").is_file()
