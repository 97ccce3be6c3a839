"""The models shipped in the package: every one loads by name and generates; cards are complete."""

import pytest
import torch

from tatumflow import read_midi
from tatumflow.cli.main import main
from conftest import REPO
from tatumflow.pretrained import DEFAULTS, PLAIN_BASELINE, default_model, load_model, resolve, shipped_models
from tatumflow.training.checkpoint import CheckpointError

CARDS = shipped_models()
GENERATORS = sorted({*DEFAULTS.values(), PLAIN_BASELINE})


def test_the_package_ships_models_with_cards():
    assert {c["name"] for c in CARDS} >= {"melody_vae_folk_2d", "melody_vae_folk_16d", *GENERATORS}
    for c in CARDS:
        assert {"name", "family", "parameters", "data", "command", "training", "terms"} <= set(c)
    melody = sum(c["size_bytes"] for c in CARDS if c["family"] == "melody_vae")
    assert melody <= 5e6, melody
    generators = sum(c["size_bytes"] for c in CARDS if c["family"] in DEFAULTS)
    assert generators <= 25e6, generators
    with pytest.raises(CheckpointError, match="shipped"):
        resolve("no_such_model")


@pytest.mark.parametrize("name", GENERATORS)
def test_the_shipped_generators_cards_say_how_they_were_made_and_how_they_score(name):
    c = next(c for c in CARDS if c["name"] == name)
    assert c["family"] in DEFAULTS and c["parameters"] > 50_000 and "PiJAMA" in c["terms"]
    phases = c["training"]["phases"]
    assert len(phases) >= 2 and all(p["finetune"]["base"] for p in phases[1:])  # pretrained, then adapted
    for p in phases:  # each phase's exact command, with a config in the repository
        assert p["command"].startswith("tatumflow train --config configs/") and p["steps"] > 0
        assert (REPO / p["config"]).is_file()
    files = [d["files"]["train"] for d in c["data"]]
    assert files[0] == 2081 and 77 in files[1:] and set(files) == {2081, 77}  # PiJAMA train, then Art Tatum's
    assert (REPO / c["command"].split()[-1]).is_file()  # the script that rebuilds it
    card = c["scorecard"]
    assert card["where"] == {"pianist": "Art Tatum", "split": "test"}
    assert 0 <= card["continuation.mean_oa"] <= 1 and card["continuation.bits_per_note"] > 0


@pytest.mark.parametrize("name", [c["name"] for c in CARDS])
def test_every_shipped_model_loads_by_name_and_generates(name, tmp_path):
    out = tmp_path / f"{name}.mid"
    family = next(c["family"] for c in CARDS if c["name"] == name)
    extra = ["--mode", "unconditional", "--steps", "10"] if family == "tatumflow" else []
    assert main(["generate", "--model", name, "--out", str(out), "--seconds", "3", *extra]) == 0
    assert len(read_midi(out)) > 0


def test_generate_without_a_model_plays_the_best_shipped_model_for_the_mode(tmp_path, capsys):
    """Every mode: the control-track transformer with the pianist control (chosen on the
    val album over the plain transformer, which ships as the baseline)."""
    assert default_model("tatumflow") == "control_tatum"
    assert load_model("control_tatum")[0].config.pianists == ("Art Tatum",)
    assert default_model("music_rnn") == "music_rnn_tatum"
    assert load_model(PLAIN_BASELINE)[0].config.decoder_only
    out = tmp_path / "x.mid"
    assert main(["generate", "--mode", "unconditional", "--seconds", "4", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "unconditional" in printed and "the shipped control_tatum" in printed
    perf = read_midi(out)
    assert len(perf) > 10 and perf.end > 2.0


def test_models_lists_every_shipped_model_with_its_card(capsys):
    import json

    assert main(["models", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert {m["name"] for m in listed} == {c["name"] for c in CARDS}
    assert all(m["size_bytes"] > 0 and m["summary"] for m in listed)


def test_the_shipped_pad_moves_the_music():
    from tatumflow.models.melody_vae import decode

    model, _ = load_model("melody_vae_folk_2d")
    grid = torch.tensor([[x, y] for x in (-1.5, 0.0, 1.5) for y in (-1.5, 0.0, 1.5)])
    melodies = decode(model, grid, threshold=0.4)
    distinct = {tuple(m.notes["pitch"].tolist()) + tuple(m.notes["onset"].round(3).tolist()) for m in melodies}
    assert len(distinct) >= 6  # nine pad positions, (almost) nine different melodies


def _control_writes(seconds=8, **asked):
    """The shipped control_tatum's writes (seeds 0 and 1) of ``ControlPlan.flat(seconds,
    **asked)``, as Art Tatum and as another pianist: {who: [two Performances]}."""
    from tatumflow.models.tatumflow import GenerationPipeline
    from tatumflow.models.tatumflow.controls import ControlPlan

    pipe = GenerationPipeline(load_model("control_tatum")[0])
    assert pipe.model.config.control_count and pipe.model.config.control_tally
    plan, out = ControlPlan.flat(seconds, **asked), {}
    for who in ("Art Tatum", "another"):
        pipe.pianist = who
        out[who] = [pipe.write_plan(plan, seconds, seed=s).performance for s in (0, 1)]
    return out


def test_the_shipped_control_model_plays_the_density_it_is_asked_for():
    """The count control: told a plan asking for n onsets each second, the shipped
    control_tatum plays about n, as Art Tatum and as another pianist (before it,
    the Art Tatum class played 5 a second where 3 were asked)."""
    import numpy as np

    for n in (3, 12):
        for who, outs in _control_writes(density=n).items():
            played = np.mean([len(o) / 8 for o in outs])
            assert abs(played / n - 1) < 0.25, (who, n, played)


def test_the_shipped_control_model_plays_the_voicing_and_register_it_is_asked_for():
    """The tally control: told a plan asking for 1.3 or 3 notes per onset cluster in
    the register of pitch 55 or 70 (8 onsets a second), the shipped control_tatum plays
    them, as Art Tatum and as another pianist: within 0.3 notes per cluster and 1.5
    semitones (mean of two seeds). Before it, the count model strayed 2.5 semitones
    (another pianist asked for 3-note clusters at 70 played 67.5)."""
    import numpy as np

    from tatumflow.evaluation import controls as C

    for v in (1.3, 3.0):
        for reg in (55.0, 70.0):
            for who, outs in _control_writes(density=8, register=reg, voicing=v).items():
                voicing = np.mean([C.TEXTURE["voicing_size"](o) for o in outs])
                register = np.mean([C.TEXTURE["register"](o) for o in outs])
                assert abs(voicing - v) < 0.3 and abs(register - reg) < 1.5, (who, v, reg, voicing, register)
