"""The models shipped in the package: every one loads by name and generates; cards are complete."""

import pytest
import torch

from tatumflow import read_midi
from tatumflow.cli.main import main
from tatumflow.pretrained import load_model, resolve, shipped_models
from tatumflow.training.checkpoint import CheckpointError

CARDS = shipped_models()


def test_the_package_ships_models_with_cards():
    assert {c["name"] for c in CARDS} >= {"melody_vae_folk_2d", "melody_vae_folk_16d"}
    for c in CARDS:
        assert {"name", "family", "parameters", "data", "command", "training", "metrics_val", "terms"} <= set(c)
    melody = sum(c["size_bytes"] for c in CARDS if c["family"] == "melody_vae")
    assert melody <= 5e6, melody
    with pytest.raises(CheckpointError, match="shipped"):
        resolve("no_such_model")


@pytest.mark.parametrize("name", [c["name"] for c in CARDS])
def test_every_shipped_model_loads_by_name_and_generates(name, tmp_path):
    out = tmp_path / f"{name}.mid"
    assert main(["generate", "--checkpoint", name, "--out", str(out), "--seconds", "3"]) == 0
    assert len(read_midi(out)) > 0


def test_the_shipped_pad_moves_the_music():
    from tatumflow.models.melody_vae import decode

    model, _ = load_model("melody_vae_folk_2d")
    grid = torch.tensor([[x, y] for x in (-1.5, 0.0, 1.5) for y in (-1.5, 0.0, 1.5)])
    melodies = decode(model, grid, threshold=0.4)
    distinct = {tuple(m.notes["pitch"].tolist()) + tuple(m.notes["onset"].round(3).tolist()) for m in melodies}
    assert len(distinct) >= 6  # nine pad positions, (almost) nine different melodies
