import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import run_python
from tiny_models import TinyData, TinyRegressor
from tatumflow.training import (
    EMA, CheckpointError, ConfigError, TrainConfig, Trainer, apply_lora, load_adapter, load_checkpoint,
    load_run_config, lr_at, param_groups, save_adapter,
)

REPO = Path(__file__).resolve().parents[2]


def cfg(**kw):
    base = dict(max_steps=8, batch_size=8, warmup_steps=2, lr=1e-2, save_every=1000, log_every=1,
                eval_every=4, eval_batches=2, tensorboard=False, device="cpu", seed=1)
    base.update(kw)
    return TrainConfig(**base)


def make(seed=0, dropout=0.3):
    torch.manual_seed(seed)
    return TinyRegressor(dropout=dropout)


def test_resume_is_bit_identical(tmp_path):
    c = cfg(ema_decay=0.9)
    a = Trainer(make(), c, TinyData(), TinyData(seed=1), out_dir=tmp_path / "a", progress=False)
    a.fit()
    b1 = Trainer(make(), c, TinyData(), TinyData(seed=1), out_dir=tmp_path / "b", progress=False)
    assert b1.fit(stop_after=3)["stop_reason"] == "stop_after"
    b2 = Trainer(make(seed=99), c, TinyData(), TinyData(seed=1), out_dir=tmp_path / "b", progress=False)
    b2.fit(resume=True)
    assert b2.step == a.step == 8
    for (k, va), vb in zip(a.model.state_dict().items(), b2.model.state_dict().values()):
        assert torch.equal(va, vb), k
    for k in a.ema.shadow:
        assert torch.equal(a.ema.shadow[k], b2.ema.shadow[k]), k
    assert [h["loss"] for h in a.history][3:] == [h["loss"] for h in b2.history]
    # every session of the run is on record, for the model card
    sessions = json.loads((tmp_path / "b" / "sessions.json").read_text())
    assert [(x["from_step"], x["to_step"], x["stop_reason"]) for x in sessions] == [(0, 3, "stop_after"),
                                                                                   (3, 8, "max_steps")]
    assert all(x["seconds"] >= 0 and "CPU" in x["hardware"] for x in sessions)


def test_gradient_accumulation_equals_one_big_batch(tmp_path):
    one = Trainer(make(dropout=0.0), cfg(max_steps=4), TinyData(), out_dir=tmp_path / "1", progress=False)
    two = Trainer(make(dropout=0.0), cfg(max_steps=4, grad_accum=2), TinyData(), out_dir=tmp_path / "2", progress=False)
    one.fit()
    two.fit()
    for va, vb in zip(one.model.state_dict().values(), two.model.state_dict().values()):
        torch.testing.assert_close(va, vb, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose([h["loss"] for h in one.history], [h["loss"] for h in two.history], rtol=1e-5)


def test_ddp_two_processes_match_one(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO / "src")}
    proc = run_python(["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                       str(REPO / "tests" / "training" / "ddp_worker.py"), str(tmp_path / "ddp")], env=env, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ddp = json.loads((tmp_path / "ddp" / "ddp.json").read_text())
    torch.manual_seed(0)
    single = Trainer(TinyRegressor(), TrainConfig(max_steps=6, batch_size=8, warmup_steps=2, lr=1e-2, save_every=1000,
                                                  log_every=1, tensorboard=False, device="cpu", seed=3),
                     TinyData(), out_dir=tmp_path / "one", progress=False)
    single.fit()
    np.testing.assert_allclose(ddp["loss"], [h["loss"] for h in single.history], rtol=1e-5, atol=1e-7)
    for k, v in single.model.state_dict().items():
        np.testing.assert_allclose(np.array(ddp["params"][k]), v.numpy(), rtol=1e-4, atol=1e-6)


def test_train_under_torchrun_joins_one_ddp_run(store, tmp_path):
    """`torchrun -m tatumflow.cli.main train` is one DDP run of 2 processes (each a
    half batch), not 2 single-process runs writing over each other; rank 0 reports."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO / "src")}
    out = tmp_path / "run"
    proc = run_python(["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                       "-m", "tatumflow.cli.main", "train", "--config", str(REPO / "configs" / "music_rnn_a.yaml"),
                       "--data", str(store), "--out", str(out), "train.max_steps=2", "train.batch_size=4",
                       "train.grad_accum=1", "train.eval_batches=1", "train.tensorboard=false",
                       "train.device=cpu"], env=env, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    reports = [line for line in proc.stdout.splitlines() if "steps in" in line]
    assert len(reports) == 1 and "2 processes" in reports[0], proc.stdout
    sessions = json.loads((out / "sessions.json").read_text())
    assert [s["world_size"] for s in sessions] == [2] and sessions[0]["to_step"] == 2


def test_a_world_without_torchrun_is_refused_in_one_line(monkeypatch):
    from tatumflow.training.distributed import process_group_from_env

    monkeypatch.setenv("WORLD_SIZE", "2")
    for k in ("RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(k, raising=False)
    with pytest.raises(ConfigError, match="WORLD_SIZE=2 but RANK, LOCAL_RANK, MASTER_ADDR, MASTER_PORT not set"):
        with process_group_from_env("cpu"):
            pass


def test_lora_trains_adapters_only_and_swaps(tmp_path):
    torch.manual_seed(0)
    base = TinyRegressor()
    base_state = {k: v.clone() for k, v in base.state_dict().items()}
    wrapped = apply_lora(base, r=2, targets=["hidden", "out"])
    assert wrapped == ["hidden", "out"]
    trainable = [n for n, p in base.named_parameters() if p.requires_grad]
    assert trainable and all(".lora_" in n for n in trainable)
    Trainer(base, cfg(max_steps=5, weight_decay=0.0), TinyData(), out_dir=tmp_path / "r", progress=False).fit()
    for k, v in base_state.items():
        key = k.replace("hidden.", "hidden.base.").replace("out.", "out.base.")
        assert torch.equal(base.state_dict()[key], v), k  # the base is frozen
    x = torch.arange(10)
    tuned = base(x).detach()
    save_adapter(base, tmp_path / "style_a", info={"style": "A"})
    torch.manual_seed(0)
    other = TinyRegressor()
    apply_lora(other, r=2, targets=["hidden", "out"])
    assert not torch.allclose(other(x), tuned)   # zero-initialised adapter = base output
    assert [p.name for p in tmp_path.glob("style_a*")] == ["style_a.safetensors"]  # one file, written atomically
    meta = load_adapter(other, tmp_path / "style_a")
    torch.testing.assert_close(other(x), tuned)
    assert meta["info"]["style"] == "A" and meta["r"] == 2
    bad = TinyRegressor()
    apply_lora(bad, r=2, targets=["hidden"])
    with pytest.raises(Exception, match="does not fit"):
        load_adapter(bad, tmp_path / "style_a")


def test_ema_swaps_in_and_out():
    m = make()
    ema = EMA(m, 0.5)
    before = {k: v.clone() for k, v in m.state_dict().items()}
    with torch.no_grad():
        for p in m.parameters():
            p.add_(1.0)
    ema.update(m)
    with ema.swapped_in(m):
        assert torch.allclose(m.hidden.weight, before["hidden.weight"] + 0.5)
    assert torch.allclose(m.hidden.weight, before["hidden.weight"] + 1.0)


def test_a_schedule_nobody_reads_is_an_error(tmp_path):
    for spec, msg in [({"kl_wieght": {"from": 0, "to": 1}}, "reads no scalar"),
                      ({"seq_len": {"from": 1, "to": 2}}, "reads no scalar"),          # the model's, not the data's
                      ({"seq_len": {"from": 1, "to": 2, "target": "optimizer"}}, "target must be")]:
        with pytest.raises(ConfigError, match=msg):
            Trainer(make(), cfg(schedules=spec), TinyData(), out_dir=tmp_path, progress=False)


def test_schedules_early_stopping_and_best(tmp_path):
    data = TinyData()
    c = cfg(max_steps=40, eval_every=2, lr=0.0, warmup_steps=1, min_lr_ratio=1.0,
            early_stopping_metric="val/loss", early_stopping_patience=2,
            schedules={"kl_weight": {"start": 0, "end": 10, "from": 0.0, "to": 1.0},
                       "seq_len": {"start": 0, "end": 4, "from": 10, "to": 20, "target": "data"}})
    tr = Trainer(make(dropout=0.0), c, data, TinyData(seed=2), out_dir=tmp_path, progress=False)
    out = tr.fit()
    assert out["stop_reason"] == "early_stopping" and out["steps"] == 6  # lr 0: no improvement after the first eval
    assert tr.model.scalars["kl_weight"] == pytest.approx(0.5)
    assert data.scalar_log[0] == ("seq_len", 10.0) and data.scalar_log[-1][1] == 20.0
    assert (tmp_path / "best" / "state.json").exists()
    rows = (tmp_path / "metrics.csv").read_text().splitlines()
    assert rows[0] == "step,metric,value" and any(",val/loss," in r for r in rows)


def test_checkpoints_are_complete_atomic_and_pruned(tmp_path, monkeypatch):
    tr = Trainer(make(), cfg(max_steps=6, save_every=2, keep_last=2), TinyData(), out_dir=tmp_path, progress=False)
    tr.fit()
    steps = sorted(p.name for p in tmp_path.glob("step-*"))
    assert steps == ["step-0000004", "step-0000006"]
    ck = load_checkpoint(tmp_path / "step-0000006")
    assert ck["state"]["trainer"]["step"] == 6 and ck["state"]["family"] == "tiny"
    assert ck["state"]["train_config"]["keep_last"] == 2
    import tatumflow.training.checkpoint as cm

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr("safetensors.torch.save_file", boom)
    with pytest.raises(OSError):
        cm.save_checkpoint(tmp_path / "broken", model_state=tr.model.state_dict(), state={})
    assert not (tmp_path / "broken").exists() and not list(tmp_path.glob(".broken*"))
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "state.json").write_text('{"schema": 99}')
    (tmp_path / "bad" / "model.safetensors").write_bytes(b"")
    with pytest.raises(CheckpointError, match="schema 99"):
        load_checkpoint(tmp_path / "bad")


def test_optimizer_groups_and_schedule():
    m = make()
    decay, no_decay = param_groups(m, 0.1)
    names = {id(p): n for n, p in m.named_parameters()}
    assert {names[id(p)] for p in decay["params"]} == {"hidden.weight", "out.weight"}
    assert "emb.weight" in {names[id(p)] for p in no_decay["params"]} and no_decay["weight_decay"] == 0.0
    c = TrainConfig(max_steps=100, warmup_steps=10, lr=1.0, min_lr_ratio=0.1)
    assert lr_at(0, c) == pytest.approx(0.1) and lr_at(9, c) == pytest.approx(1.0)
    assert lr_at(55, c) == pytest.approx(0.55) and lr_at(100, c) == pytest.approx(0.1)


def test_bf16_autocast_on_cpu(tmp_path):
    out = Trainer(make(), cfg(max_steps=2, precision="bf16"), TinyData(), out_dir=tmp_path, progress=False).fit()
    assert out["steps"] == 2
    with pytest.raises(ConfigError, match="fp16 needs CUDA"):
        Trainer(make(), cfg(precision="fp16"), TinyData(), out_dir=tmp_path, progress=False)


def test_bad_configs_are_rejected(tmp_path):
    with pytest.raises(ConfigError, match="unknown training keys"):
        TrainConfig.from_dict({"max_step": 3})
    with pytest.raises(ConfigError, match="multiple of grad_accum"):
        TrainConfig(batch_size=10, grad_accum=3)
    (tmp_path / "c.yaml").write_text("model: {family: music_rnn}\n")
    with pytest.raises(ConfigError, match="needs 'model' and 'train'"):
        load_run_config(tmp_path / "c.yaml")
    with pytest.raises(ConfigError, match="not found"):
        load_run_config(tmp_path / "missing.yaml")


def test_exponential_lr_whole_validation_set_restore_best_and_stop(tmp_path):
    c = cfg(lr_schedule="exponential", lr_decay=0.5, lr_decay_every=10, warmup_steps=0)
    assert [lr_at(s, c) for s in (0, 9, 10, 25)] == pytest.approx([1e-2, 1e-2, 5e-3, 2.5e-3])
    assert lr_at(99, cfg(lr_schedule="constant", warmup_steps=0)) == pytest.approx(1e-2)
    with pytest.raises(ConfigError, match="lr_schedule"):
        cfg(lr_schedule="linear")
    rows = []
    val = TinyData(n=10, seed=5)
    tr = Trainer(make(dropout=0.0), cfg(max_steps=30, eval_every=5, eval_batches=0, eval_batch_size=4,
                                        restore_best=True, lr=0.3, warmup_steps=0), TinyData(), val,
                 out_dir=tmp_path / "a", progress=False, on_row=rows.append, log=lambda s: None)
    whole = tr.evaluate()["val/mse"]  # batches of 4, 4 and 2, weighted by size
    with torch.no_grad():
        exact = float(((tr.model(val.tok) - val.y) ** 2).mean())
    assert whole == pytest.approx(exact, rel=1e-5)
    tr.fit()
    vals = [r["val/loss"] for r in rows if "val/loss" in r]
    assert len(vals) == 6 and any("train/loss" in r for r in rows)
    assert tr.evaluate()["val/loss"] == pytest.approx(min(vals), rel=1e-5)  # the best weights, not the last
    stopper = Trainer(make(), cfg(max_steps=1000), TinyData(), out_dir=tmp_path / "b", progress=False,
                      on_row=lambda r: stopper.request_stop() if r["step"] >= 3 else None)
    out = stopper.fit()
    assert out["stop_reason"] == "requested" and out["steps"] == 3



def test_an_evaluator_s_whole_set_metric_picks_the_best_weights_and_stops(tmp_path):
    """Without batched validation data, ``evaluator(model)`` gives the metrics (e.g.
    a Pearson r over a whole validation set): the best by it is kept, its
    plateau ends the run, and the model is evaluated with the EMA weights."""
    val = TinyData(n=12, seed=7)
    seen = []

    def neg_mse(model):
        assert not model.training
        with torch.no_grad():
            seen.append(-float(((model(val.tok) - val.y) ** 2).mean()))
        return {"neg_mse": seen[-1] if len(seen) < 4 else seen[-1] - 10.0}  # a plateau after the third

    tr = Trainer(make(dropout=0.0), cfg(max_steps=200, eval_every=5, best_metric="val/neg_mse",
                                        early_stopping_metric="val/neg_mse", early_stopping_mode="max",
                                        early_stopping_patience=2, restore_best=True, ema_decay=0.5),
                 TinyData(), None, out_dir=tmp_path / "a", progress=False, log=lambda s: None, evaluator=neg_mse)
    out = tr.fit()
    assert out["stop_reason"] == "early_stopping" and out["steps"] == 25 and len(seen) == 5
    assert out["best"] == pytest.approx(max(seen[:3]))
    with torch.no_grad():
        kept = -float(((tr.model(val.tok) - val.y) ** 2).mean())
    assert kept == pytest.approx(max(seen[:3]), rel=1e-5)  # the best evaluated (EMA) weights, restored


def test_a_crash_while_replacing_a_checkpoint_never_loses_it(tmp_path, monkeypatch):
    import tatumflow.training.checkpoint as cm

    model = make()
    cm.save_checkpoint(tmp_path / "best", model_state=model.state_dict(), state={"trainer": {"step": 1}})
    real_replace, calls = os.replace, []

    def crash_on_second(src, dst):  # the old folder moved aside, then the process dies
        calls.append((src, dst))
        if len(calls) == 2:
            raise KeyboardInterrupt
        real_replace(src, dst)

    monkeypatch.setattr(cm.os, "replace", crash_on_second)
    with pytest.raises(KeyboardInterrupt):
        cm.save_checkpoint(tmp_path / "best", model_state=model.state_dict(), state={"trainer": {"step": 2}})
    monkeypatch.undo()
    assert not (tmp_path / "best").exists() and (tmp_path / ".best.old").is_dir()
    assert not list(tmp_path.glob(".best.*.tmp"))  # the new, unfinished folder is gone
    (tmp_path / ".step-0000009.x1y2.tmp").mkdir()  # a stale temporary folder of a killed run
    assert sorted(cm.recover_run_dir(tmp_path)) == ["removed .step-0000009.x1y2.tmp", "restored best"]
    assert load_checkpoint(tmp_path / "best")["state"]["trainer"]["step"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best"]


def test_resume_after_a_crash_leaves_no_duplicate_metrics_rows(tmp_path):
    import csv
    import shutil

    c = cfg(max_steps=12, save_every=6, keep_last=3, eval_every=3)
    Trainer(make(), c, TinyData(), TinyData(seed=1), out_dir=tmp_path, progress=False).fit()
    shutil.rmtree(tmp_path / "step-0000012")  # killed after logging steps 7..12, before their checkpoint
    (tmp_path / ".step-0000012.abc.tmp").mkdir()
    Trainer(make(), c, TinyData(), TinyData(seed=1), out_dir=tmp_path, progress=False).fit(resume=True)
    with open(tmp_path / "metrics.csv", newline="") as fh:
        rows = list(csv.reader(fh))[1:]
    keys = [(r[0], r[1]) for r in rows]
    assert len(keys) == len(set(keys)) and max(int(r[0]) for r in rows) == 12
    assert {"7", "12"} <= {r[0] for r in rows}
    assert not list(tmp_path.glob(".*"))
