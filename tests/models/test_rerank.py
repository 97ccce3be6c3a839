"""Generate-then-judge: `generate --rerank N` keeps the candidate the named scorer likes best."""

import re

import numpy as np
import pytest

from conftest import REPO, random_performance
from tatumflow import read_midi, write_midi
from tatumflow.cli.main import main
from tatumflow.cli.commands import make_scorer
from tatumflow.generation.rerank import Scorer, new_part

FIX = REPO / "tests" / "fixtures"


@pytest.mark.parametrize("ckpt,by", [("tatumflow_v1", "style"), ("music_rnn_v1", "interpretation")])
def test_rerank_keeps_the_best_scored_candidate(ckpt, by, tmp_path, capsys):
    prompt = write_midi(random_performance(np.random.default_rng(3), 40, pedal=False, span=4.0), tmp_path / "p.mid")
    out = tmp_path / "best.mid"
    argv = ["generate", "--checkpoint", str(FIX / ckpt), "--prompt", str(prompt), "--seconds", "4",
            "--rerank", "3", "--rerank-by", by, "--seed", "5", "--out", str(out)]
    if ckpt == "tatumflow_v1":
        argv += ["--steps", "4"]
    assert main(argv) == 0
    lines = [x for x in capsys.readouterr().out.splitlines() if x.startswith("candidate")]
    assert len(lines) == 3 and [int(re.search(r"seed (\d+)", x).group(1)) for x in lines] == [5, 6, 7]
    scores = [float(re.search(r" (\S+?)(  <- kept)?$", x).group(1)) for x in lines]
    kept = [i for i, x in enumerate(lines) if x.endswith("<- kept")]
    assert kept == [int(np.argmax(scores))]
    # the file written is the kept candidate: the scorer gives it the printed score (up to MIDI's tick rounding)
    got = float(make_scorer(by)([new_part(read_midi(out), read_midi(prompt))])[0])
    assert got == pytest.approx(max(scores), rel=0.02, abs=1e-9)


def test_scorers_rank_music_and_refuse_unknown_names():
    from tatumflow.errors import TatumFlowError

    rng = np.random.default_rng(0)
    perfs = [random_performance(rng, 80, pedal=False, span=10.0) for _ in range(3)]
    for name in ("style", "interpretation", "music-making"):
        s = make_scorer(name)(perfs + [perfs[0].replace(notes=perfs[0].notes[:0])])
        assert np.isfinite(s[:3]).all() and s[3] == -np.inf  # an empty candidate never wins
    with pytest.raises(TatumFlowError, match="--rerank-by must be one of"):
        Scorer("loudness")
    with pytest.raises(TatumFlowError, match="needs the assessor"):
        Scorer("interpretation")
