"""Checkpoints: the tokenizer config stored once and typed; old schemas upgraded on load."""

import json
import shutil
from pathlib import Path

import pytest
import torch

from tatumflow.pretrained import load_model
from tatumflow.tokenizer import TokenizerConfig
from tatumflow.training.checkpoint import CHECKPOINT_SCHEMA, CheckpointError, load_checkpoint, model_state

FIX = Path(__file__).resolve().parents[1] / "fixtures"


def test_schema_1_checkpoints_load_through_the_upgrade():
    old = json.loads((FIX / "tatumflow_v1" / "state.json").read_text())
    assert old["schema"] == 1 and "tokenizer" in old["model_config"] and "tokenizer_config" in old["run_info"]
    st = load_checkpoint(FIX / "tatumflow_v1")["state"]
    assert st["schema"] == CHECKPOINT_SCHEMA == 2
    assert st["tokenizer"] == {"config": TokenizerConfig().to_dict(), "hash": TokenizerConfig().hash}
    text = json.dumps(st)
    assert text.count('"velocity_bins"') == 1  # the tokenizer config once, not three times
    model, state = load_model(FIX / "tatumflow_v1")
    assert isinstance(model.config.tokenizer, TokenizerConfig) and model.config.tokenizer.hash == st["tokenizer"]["hash"]
    ms = model_state(model)  # saved as loaded (fields added since take their defaults)
    assert {k: ms[k] for k in ("family", "tokenizer")} == {k: state[k] for k in ("family", "tokenizer")}
    assert {k: ms["model_config"][k] for k in state["model_config"]} == state["model_config"]
    rnn, state = load_model(FIX / "music_rnn_v1")
    assert state["tokenizer"] is None and rnn.config.option == "C"


def test_tokenizer_is_checked_once_at_load(tmp_path):
    ck = shutil.copytree(FIX / "tatumflow_v1", tmp_path / "ck")
    st = json.loads((ck / "state.json").read_text())
    st["model_config"]["tokenizer"] = {**TokenizerConfig().to_dict(), "release": "duration"}  # another vocabulary
    (ck / "state.json").write_text(json.dumps(st))
    with pytest.raises(CheckpointError, match="tokens"):
        load_model(ck)
    st = load_checkpoint(FIX / "tatumflow_v1")["state"]
    st["tokenizer"]["hash"] = "0" * 16  # edited config: the stored hash no longer matches
    (ck / "state.json").write_text(json.dumps(st))
    with pytest.raises(CheckpointError, match="hash"):
        load_model(ck)
    st["schema"] = 99
    (ck / "state.json").write_text(json.dumps(st))
    with pytest.raises(CheckpointError, match="schema 99"):
        load_checkpoint(ck)


def test_sharded_weights_load_like_one_file(tmp_path):
    """A checkpoint written in shards under a per-file limit (the GPU recipe's transport)
    loads to the same tensors; a missing shard is an error, not a silently partial model."""
    from tatumflow.training.checkpoint import load_checkpoint, save_checkpoint

    g = torch.Generator().manual_seed(0)
    weights = {f"layer{i}.weight": torch.randn(64, 64, generator=g) for i in range(6)}  # 16 KB each
    save_checkpoint(tmp_path / "one", model_state=weights, state={"family": "x"}, ema_state=weights)
    save_checkpoint(tmp_path / "many", model_state=weights, state={"family": "x"}, ema_state=weights,
                    max_shard_bytes=40_000)
    shards = sorted((tmp_path / "many").glob("model-*.safetensors"))
    assert len(shards) == 3 and all(p.stat().st_size <= 40_000 for p in shards)
    one, many = load_checkpoint(tmp_path / "one"), load_checkpoint(tmp_path / "many")
    for part in ("model", "ema"):
        assert set(one[part]) == set(many[part])
        for k in one[part]:
            assert torch.equal(one[part][k], many[part][k])
    shards[1].unlink()
    with pytest.raises(CheckpointError, match="2 of the 3 model shards"):
        load_checkpoint(tmp_path / "many")
