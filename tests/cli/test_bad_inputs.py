"""Every command, bad input: exit 2 and one line naming the argument or file and the problem.

The matrix walks the kinds of bad input (missing, a folder for a file, a file for a
folder, empty, not MIDI, NaN, negative, zero, out of range, malformed override)
over every command in ``tatumflow --help``. Batch commands are checked apart: they
finish the good files, list the bad ones, and exit 1."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from conftest import random_performance
from tatumflow import write_midi
from tatumflow.cli.main import COMMANDS, main
from tatumflow.performance import Performance, make_notes, make_pedals

ROOT = Path(__file__).resolve().parents[2]
FIX = ROOT / "tests" / "fixtures"


@pytest.fixture(scope="module")
def env(tmp_path_factory, store):
    d = tmp_path_factory.mktemp("bad")
    write_midi(random_performance(np.random.default_rng(0), 80, span=8.0), d / "good.mid")
    write_midi(Performance(make_notes([], [], [], []), make_pedals([0.5, 2.0], [127, 0])), d / "pedal_only.mid")
    (d / "text.mid").write_text("this is not MIDI\n")
    (d / "empty.mid").write_bytes(b"")
    (d / "folder").mkdir()
    (d / "mididir").mkdir()
    shutil.copy(d / "good.mid", d / "mididir" / "good.mid")
    (d / "nomidi").mkdir()
    (d / "nomidi" / "readme.txt").write_text("no MIDI here")
    (d / "file.txt").write_text("a file\n")
    np.save(d / "empty.npy", np.zeros(0, np.int64))
    np.save(d / "float.npy", np.array([1.5, 2.0, 3.25]))
    (d / "judge.json").write_text(json.dumps({"target": "x"}))
    (d / "bad.json").write_text("{not json")
    (d / "bad_tok.json").write_text(json.dumps({"time_step_ms": "fast"}))
    (d / "index.csv").write_text("path,split\ngood.mid,train\n")
    paths = {k: str(d / v) for k, v in {
        "midi": "good.mid", "pedal": "pedal_only.mid", "text": "text.mid", "empty": "empty.mid",
        "dir": "folder", "mididir": "mididir", "nomidi": "nomidi", "file": "file.txt", "empty_npy": "empty.npy",
        "float_npy": "float.npy", "judge": "judge.json", "badjson": "bad.json", "badtok": "bad_tok.json",
        "csv": "index.csv", "out": "out"}.items()}
    paths.update(store=str(store), missing=str(d / "missing.mid"), rnn=str(FIX / "music_rnn_v1"),
                 tf=str(FIX / "tatumflow_v1"), config=str(ROOT / "configs" / "music_rnn_demo.yaml"))
    return paths


# (argv with {placeholders}, what the one line must say)
CASES = {
    "validate": [
        ("validate {missing}", "argument paths: {missing}: no such file or folder"),
        ("validate {midi} --min-seconds nan", "argument --min-seconds: 'nan' is not a finite number"),
        ("validate {midi} --min-seconds -1", "argument --min-seconds: -1 is out of range"),
        ("validate {midi} --min-notes 0", "argument --min-notes: 0 is out of range"),
        ("validate {midi} --max-seconds 0", "argument --max-seconds: 0 is out of range"),
        ("validate {midi} --min-seconds 5 --max-seconds 2", "min_seconds"),
        ("validate {nomidi}", "{nomidi}: no .mid/.midi files found"),
    ],
    "corpus": [
        ("corpus export nope", "unknown built-in corpus"),
        ("corpus export folk --out {file}", "argument --out: {file}: is a file, expected a folder"),
        ("corpus export folk --workers 0", "argument --workers: 0 is out of range"),
        ("corpus frobnicate", "invalid choice: 'frobnicate'"),
    ],
    "prepare": [
        ("prepare {missing} --out {out}", "no such file or folder"),
        ("prepare {dir} --out {file}", "argument --out: {file}: is a file, expected a folder"),
        ("prepare {dir} --out {out} --files-per-shard -1", "argument --files-per-shard: -1 is out of range"),
        ("prepare {dir} --out {out} --files-per-shard 0", "argument --files-per-shard: 0 is out of range"),
        ("prepare {dir} --out {out} --workers 0", "argument --workers: 0 is out of range"),
        ("prepare {dir} --out {out} --tokenizer {dir}", "argument --tokenizer: {dir}: is a folder"),
        ("prepare {dir} --out {out} --tokenizer {badjson}", "{badjson}: tokenizer config is not valid JSON"),
        ("prepare {nomidi} --out {out}", "{nomidi}: no .mid/.midi files found"),
    ],
    "inspect": [
        ("inspect {missing}", "no such folder"),
        ("inspect {file}", "argument store: {file}: is a file, expected a folder"),
        ("inspect {dir}", "not a token store"),
    ],
    "vocab": [
        ("vocab --tokenizer {dir}", "argument --tokenizer: {dir}: is a folder"),
        ("vocab --tokenizer {missing}", "no such file"),
        ("vocab --tokenizer {badjson}", "{badjson}: tokenizer config is not valid JSON"),
        ("vocab --tokenizer {badtok}", "time_step_ms must be an integer"),
        ("vocab --release sideways", "argument --release"),
    ],
    "tokenize": [
        ("tokenize {missing}", "no such file"),
        ("tokenize {dir}", "argument file: {dir}: is a folder"),
        ("tokenize {text}", "not a MIDI file"),
        ("tokenize {empty}", "file is empty"),
        ("tokenize {midi} --out {dir}", "argument --out: {dir}: is a folder"),
    ],
    "detokenize": [
        ("detokenize {missing} --out {out}.mid", "no such file"),
        ("detokenize {dir} --out {out}.mid", "argument ids: {dir}: is a folder"),
        ("detokenize {empty_npy} --out {out}.mid", "no token ids"),
        ("detokenize {float_npy} --out {out}.mid", "not whole numbers"),
        ("detokenize {text} --out {out}.mid", "{text}: expected whitespace-separated integer ids"),
        ("detokenize {empty_npy} --out {dir}", "argument --out: {dir}: is a folder"),
    ],
    "pianoroll": [
        ("pianoroll {missing} --out {out}.png", "no such file"),
        ("pianoroll {text} --out {out}.png", "not a MIDI file"),
        ("pianoroll {midi} --out {dir}", "argument --out: {dir}: is a folder"),
        ("pianoroll {midi} --out {out}.png --start 10 --end 5", "--end 5 must be after --start 10"),
        ("pianoroll {midi} --out {out}.png --start nan", "argument --start: 'nan' is not a finite number"),
        ("pianoroll {midi} --out {out}.png --start -1", "argument --start: -1 is out of range"),
    ],
    "render": [
        ("render {missing} --out {out}.wav", "argument file: {missing}: no such file"),
        ("render {text} --out {out}.wav", "not a MIDI file"),
        ("render {midi} --out {dir}", "argument --out: {dir}: is a folder"),
        ("render {midi} --out {out}.mp3", "unknown audio format '.mp3'"),
        ("render {midi} --out {out}.wav --sample-rate 1000", "argument --sample-rate: 1000 is out of range"),
        ("render {midi} --out {out}.wav --soundfont {missing}", "argument --soundfont: {missing}: no such file"),
        ("render {midi} --out {out}.wav --soundfont {text} --renderer soundfont", "not a usable SoundFont"),
        ("render {pedal} --out {out}.wav", "no notes"),
        ("render {midi} --out {out}.wav --renderer fm", "invalid choice: 'fm'"),
    ],
    "evaluate": [
        ("evaluate {missing} {dir} --out {out}", "no such file or folder"),
        ("evaluate {dir} {dir} --out {file}", "argument --out: {file}: is a file, expected a folder"),
        ("evaluate {mididir} {mididir} --out {out} --judge {judge}", "not a style judge"),
        ("evaluate {dir} {dir} --out {out} --judge {dir}", "argument --judge: {dir}: is a folder"),
        ("evaluate {dir} {dir} --out {out} --limit 0", "argument --limit: 0 is out of range"),
    ],
    "judge": [
        ("judge {missing}", "no such file"),
        ("judge {dir}", "argument index: {dir}: is a folder"),
        ("judge {csv} --out {dir}", "argument --out: {dir}: is a folder"),
        ("judge {text}", "needs a 'path' column"),
        ("judge {csv}", "no 'pianist' column"),
    ],
    "train": [
        ("train --config {dir}", "argument --config: {dir}: is a folder"),
        ("train --config {missing}", "no such file"),
        ("train --config {text}", "needs 'model' and 'train' sections"),
        ("train --config {config} --data {store} --out {out} train.max_steps=abc", "train.max_steps must be an integer"),
        ("train --config {config} --data {store} --out {out} train.lr=abc", "train.lr must be a finite number"),
        ("train --config {config} --data {store} --out {out} train.lr=.nan", "train.lr must be a finite number"),
        ("train --config {config} --data {store} --out {out} train=5", "train is a section"),
        ("train --config {config} --data {store} --out {out} train.batch_size=0", "train.batch_size must be >= 1"),
        ("train --config {config} --data {store} --out {out} model.seq_len=abc", "model.seq_len must be an integer"),
        ("train --config {config} --data {store} --out {out} nonsense", "is not KEY=VALUE"),
        ("train --config {config} --data {store} --out {out} train.nope=1", "unknown training keys"),
        ("train --config {config} --data {store} --out {file}", "argument --out: {file}: is a file, expected a folder"),
        ("train --config {config} --data {file} --out {out}", "argument --data: {file}: is a file, expected a folder"),
        ("train --config {config} --data {dir} --out {out}", "not a token store"),
    ],
    "generate": [
        ("generate --checkpoint {missing} --out {out}.mid", "not a checkpoint"),
        ("generate --checkpoint {file} --out {out}.mid", "not a checkpoint"),
        ("generate --checkpoint {rnn} --out {dir}", "argument --out: {dir}: is a folder"),
        ("generate --checkpoint {rnn} --out {out}.mid --seconds -5", "argument --seconds: -5 is out of range"),
        ("generate --checkpoint {rnn} --out {out}.mid --seconds 0", "argument --seconds: 0 is out of range"),
        ("generate --checkpoint {rnn} --out {out}.mid --seconds nan", "argument --seconds: 'nan' is not a finite"),
        ("generate --checkpoint {rnn} --out {out}.mid --temperature nan", "argument --temperature: 'nan'"),
        ("generate --checkpoint {rnn} --out {out}.mid --temperature 0", "argument --temperature: 0 is out of range"),
        ("generate --checkpoint {rnn} --out {out}.mid --seed -1", "argument --seed: -1 is out of range"),
        ("generate --checkpoint {rnn} --out {out}.mid --prompt {missing}", "argument --prompt: {missing}: no such file"),
        ("generate --checkpoint {rnn} --out {out}.mid --prompt {text}", "not a MIDI file"),
        ("generate --checkpoint {tf} --out {out}.mid --guidance nan", "argument --guidance: 'nan'"),
        ("generate --checkpoint {tf} --out {out}.mid --top-p 2", "argument --top-p: 2 is out of range"),
        ("generate --checkpoint {tf} --out {out}.mid --top-p 0", "argument --top-p: 0 is out of range"),
        ("generate --checkpoint {tf} --out {out}.mid --top-k 0", "argument --top-k: 0 is out of range"),
        ("generate --checkpoint {tf} --out {out}.mid --variations 0", "argument --variations: 0 is out of range"),
        ("generate --checkpoint {tf} --out {out}.mid --strength 1.5", "argument --strength: 1.5 is out of range"),
        ("generate --checkpoint {tf} --out {out}.mid --creativity -1", "argument --creativity: -1 is out of range"),
        ("generate --checkpoint {tf} --out {out}.mid --chroma-guidance -1", "argument --chroma-guidance: -1 is out of range"),
        ("generate --checkpoint {tf} --out {out}.mid --texture-guidance nan", "argument --texture-guidance: 'nan'"),
        ("generate --checkpoint {tf} --out {out}.mid --chroma-guidance 2", "needs a model with a control track"),
        ("generate --checkpoint {tf} --out {out}.mid --pianist-guidance -1", "argument --pianist-guidance: -1 is out"),
        ("generate --checkpoint {tf} --out {out}.mid --pianist 'Art Tatum'", "needs a model with the pianist control"),
        ("generate --checkpoint {tf} --out {out}.mid --steps 0", "argument --steps: 0 is out of range"),
        ("generate --checkpoint {tf} --out {out}.mid --style {dir}", "argument --style: {dir}: is a folder"),
        ("generate --checkpoint {tf} --out {out}.mid --mode edit-harmony --prompt {midi} --chords 'Dm7 Xq7'",
         "Xq7"),
        ("generate --checkpoint {tf} --out {out}.mid --mode interpolate --prompt {midi} --style {midi} --alphas 0,1.5",
         "--alphas: 1.5 is out of range (must be >= 0 and <= 1)"),
        ("generate --checkpoint {tf} --out {out}.mid --mode style-transfer --prompt {midi}", "needs --style"),
        ("generate --checkpoint {tf} --out {out}.mid --mode style-transfer --prompt {midi} --style {midi} "
         "--strength 0", "strength must be in (0, 1], got 0"),
        ("generate --checkpoint {tf} --model tatumflow_tatum --out {out}.mid", "not both"),
        ("generate --model nope --out {out}.mid", "nope: not a checkpoint folder, nor a shipped model"),
        ("generate --checkpoint {tf} --out {out}.mid --rerank 0", "argument --rerank: 0 is out of range"),
        ("generate --checkpoint {tf} --out {out}.mid --rerank-by loudness", "argument --rerank-by: invalid choice"),
        ("generate --checkpoint {tf} --out {out}.mid --mode improvise --prompt {midi} --rerank 2",
         "--rerank applies to modes with one output, not --mode improvise"),
        ("generate --checkpoint {rnn} --out {out}.mid --live --rerank 2", "drop --live"),
    ],
    "scorecard": [
        ("scorecard --data {csv} --where split=train --out {out}", "give the model to score as --checkpoint"),
        ("scorecard --checkpoint {missing} --data {csv} --where split=train --out {out}",
         "argument --checkpoint: {missing}: no such folder"),
        ("scorecard --model nope --data {csv} --where split=train --out {out}", "nope: not a checkpoint folder"),
        ("scorecard --model melody_vae_folk_2d --data {csv} --where split=train --out {out}",
         "a melody_vae model has no generation modes to score"),
        ("scorecard --checkpoint {tf} --data {missing} --where split=train --out {out}",
         "argument --data: {missing}: no such file or folder"),
        ("scorecard --checkpoint {tf} --data {csv} --out {out}", "--where is required"),
        ("scorecard --checkpoint {tf} --data {csv} --where split=nope --out {out}", "no file matches"),
        ("scorecard --checkpoint {tf} --data {csv} --where split=train --out {file}",
         "argument --out: {file}: is a file, expected a folder"),
        ("scorecard --checkpoint {tf} --data {csv} --where split=train --out {out} --seed -1",
         "argument --seed: -1 is out of range"),
        ("scorecard --checkpoint {tf} --baseline {file} --data {csv} --where split=train --out {out}",
         "not a checkpoint folder"),
    ],
    "models": [("models --bogus", "unrecognized arguments: --bogus")],
    "melody": [
        ("melody generate --model {missing} --out {out}.mid", "missing.mid"),
        ("melody generate --out {dir}", "--out {dir}: is a folder"),
        ("melody train --out {file}", "--out {file}: is a file"),
        ("melody generate --out {out}.mid --qpm nan", "argument --qpm: 'nan'"),
        ("melody encode {text}", "not a MIDI file"),
        ("melody serve --port 70000", "argument --port: 70000 is out of range"),
    ],
    "studio": [
        ("studio --port 0", "argument --port: 0 is out of range"),
        ("studio --port http", "argument --port: 'http' is not an integer"),
        ("studio --workspace {file}", "argument --workspace: {file}: is a file, expected a folder"),
        ("studio --checkpoint {missing}", "argument --checkpoint: {missing}: no such folder"),
        ("studio --soundfont {dir}", "argument --soundfont: {dir}: is a folder"),
    ],
    "live": [
        ("live --model {rnn} --silence 0", "argument --silence: 0 is out of range"),
        ("live --model {rnn} --bars 0", "argument --bars: 0 is out of range"),
        ("live --model {rnn} --qpm nan", "argument --qpm: 'nan' is not a finite number"),
        ("live --model {rnn} --answer-seconds -2", "argument --answer-seconds: -2 is out of range"),
    ],
    "assess": [
        ("assess {midi} --plot {dir}", "argument --plot: {dir}: is a folder"),
        ("assess {midi} --model {judge}", "not an assessor file"),
        ("assess {midi} --model {dir}", "argument --model: {dir}: is a folder"),
        ("assess {midi} --score {missing}", "argument --score: {missing}: no such file"),
        ("assess {midi} --score {text}", "not a MIDI file"),
    ],
    "assess-cv": [
        ("assess-cv --protocol excerpt --bootstrap -1", "argument --bootstrap: -1 is out of range"),
        ("assess-cv --protocol excerpt --seeds 0", "argument --seeds: 0 is out of range"),
        ("assess-cv --protocol excerpt --data {file}", "argument --data: {file}: is a file, expected a folder"),
        ("assess-cv --protocol excerpt --data {dir}", "PercePiano"),
        ("assess-cv --protocol nope", "argument --protocol"),
        ("assess-cv --protocol excerpt --out {dir}", "argument --out: {dir}: is a folder"),
    ],
    "demo": [
        ("demo --out {file}", "argument --out: {file}: is a file, expected a folder"),
        ("demo --workers 0", "argument --workers: 0 is out of range"),
        ("demo --train-seconds nan", "argument --train-seconds: 'nan'"),
        ("demo --melody-seconds -1", "argument --melody-seconds: -1 is out of range"),
    ],
}


def test_the_matrix_covers_every_command():
    assert set(CASES) == set(COMMANDS)


def _run(argv: str, env: dict, capsys) -> tuple[int, str]:
    import shlex

    rc = main([a.format(**env) for a in shlex.split(argv)])
    out = capsys.readouterr()
    return rc, out.err.strip()


@pytest.mark.parametrize("argv,expect", [c for cmd in CASES.values() for c in cmd],
                         ids=[c[0].split("{")[0].strip() + f"-{i}" for cmd in CASES.values() for i, c in enumerate(cmd)])
def test_bad_input_is_one_line_and_exit_2(argv, expect, env, capsys):
    rc, err = _run(argv, env, capsys)
    assert rc == 2, (rc, err)
    assert "\n" not in err and "Traceback" not in err, err
    assert err.startswith("tatumflow ") and expect.format(**env) in err, err


def test_batch_commands_finish_the_good_files_and_list_the_bad(env, tmp_path, capsys):
    d = tmp_path / "mixed"
    d.mkdir()
    for k in ("midi", "text", "empty", "pedal"):
        shutil.copy(env[k], d / Path(env[k]).name)
    # validate: every file judged, the bad ones with reasons, exit 1
    assert main(["validate", str(d), "--json"]) == 1
    rep = json.loads(capsys.readouterr().out)
    assert rep["files"] == 4 and rep["ok"] == 1
    # assess: the good file rated, the unreadable and the note-less listed, exit 1
    assert main(["assess", env["midi"], str(d / "text.mid"), str(d / "pedal_only.mid"), env["missing"],
                 "--json"]) == 1
    out = capsys.readouterr()
    rep = json.loads(out.out)
    assert [r["file"] for r in rep["results"]] == [env["midi"]]
    reasons = {Path(f["file"]).name: f["error"] for f in rep["failed"]}
    assert set(reasons) == {"text.mid", "pedal_only.mid", "missing.mid"}
    assert "no notes" in reasons["pedal_only.mid"] and "not a MIDI file" in reasons["text.mid"]
    # prepare: the good file stored, the bad ones in the manifest's failures, exit 1
    assert main(["prepare", str(d), "--out", str(tmp_path / "store"), "--workers", "1"]) == 1
    out = capsys.readouterr().out
    assert "1 files stored, 3 failed" in out
    # evaluate: both sets read what they can; the failures are reported, exit 1
    assert main(["evaluate", str(d), env["midi"], "--out", str(tmp_path / "rep")]) == 1
    rep = json.loads((tmp_path / "rep" / "report.json").read_text())
    assert rep["gen"]["pieces"] == 1 and len(rep["gen"]["failures"]) == 3


def test_a_52_byte_file_of_a_billion_seconds_is_rejected_fast_and_small(tmp_path, capsys):
    import resource
    import time

    from conftest import midi_file, tempo, track

    data = midi_file(0, 1, [track([(0, tempo(0xFFFFFF)), (0, b"\x90\x3c\x40"), (0x0FFFFFFF, b"\x80\x3c\x00")])])
    p = tmp_path / "long.mid"
    p.write_bytes(data)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    for cmd in (["tokenize", str(p)], ["assess", str(p)], ["validate", str(p)]):
        rc = main(cmd)
        out = capsys.readouterr()
        assert rc in (1, 2) and "absurd span" in out.out + out.err and "Traceback" not in out.err
    assert time.perf_counter() - t0 < 1.0
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0 < 100 * 1024  # KiB: under 100 MB more
