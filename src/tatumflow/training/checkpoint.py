"""Checkpoints: safetensors for tensors, JSON for everything else; never pickle.

A checkpoint is a folder ``step-000123/`` holding ``model.safetensors``,
optionally ``ema.safetensors``, ``optimizer.safetensors`` and ``state.json``
(schema version, model family and config, the tokenizer config once with its
hash, training config, trainer state, optimiser hyper-parameters, RNG states).
It is written into a temporary folder and renamed, so a crash never leaves half
a checkpoint. Older schemas are read through ``upgrade_<n>`` functions, each
turning a schema-``n`` state into schema ``n + 1``.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch

from ..errors import TatumFlowError
from ..tokenizer import TokenizerConfig

CHECKPOINT_SCHEMA = 2


class CheckpointError(TatumFlowError):
    """A checkpoint is missing, incomplete or of an unknown schema."""


def model_state(model) -> dict[str, Any]:
    """The model's part of ``state.json``: family, config, and its tokenizer config
    (stored once, with its hash; ``None`` for a model that reads no tokens)."""
    cfg = getattr(model, "config", None)
    tok = getattr(cfg, "tokenizer", None)
    return {"family": getattr(model, "family", type(model).__name__),
            "model_config": cfg.to_dict() if cfg is not None else {},
            "tokenizer": None if tok is None else {"config": tok.to_dict(), "hash": tok.hash}}


def tokenizer_config(state: dict, where: "str | os.PathLike" = "checkpoint") -> Optional[TokenizerConfig]:
    """The checkpoint's typed tokenizer config, its stored hash verified."""
    t = state.get("tokenizer")
    if t is None:
        return None
    cfg = TokenizerConfig.from_dict(t["config"])
    if cfg.hash != t.get("hash"):
        raise CheckpointError(f"{where}: the tokenizer config's hash {cfg.hash} differs from the stored "
                              f"{t.get('hash')} (edited or corrupt state.json)")
    return cfg


def upgrade_1(state: dict) -> dict:
    """Schema 1 -> 2: the tokenizer config was kept three times (inside
    ``model_config``, as ``tokenizer_config`` and in ``run_info``) as an untyped
    dict; schema 2 keeps it once, with its hash. An empty one meant the default."""
    state = dict(state)
    mc = dict(state.get("model_config") or {})
    run_info = dict(state.get("run_info") or {})
    state.pop("tokenizer_config", None)  # the store's, a copy of the model's where the model reads tokens
    run_info.pop("tokenizer_config", None)
    if "tokenizer" in mc:  # a model that reads tokens (schema 1: TatumFlow); {} was the default config
        tok = mc.pop("tokenizer")
        cfg = TokenizerConfig.from_dict(tok) if tok else TokenizerConfig()
        state["tokenizer"] = {"config": cfg.to_dict(), "hash": cfg.hash}
    else:  # a model that reads notes (schema 1: the Music RNN)
        state["tokenizer"] = None
    state.update(model_config=mc, run_info=run_info, schema=2)
    return state


UPGRADES = {1: upgrade_1}


def _flatten_optimizer(opt_state: dict) -> tuple[dict[str, torch.Tensor], dict]:
    tensors, meta = {}, {"param_groups": opt_state["param_groups"], "state": {}}
    for pid, st in opt_state["state"].items():
        meta["state"][str(pid)] = {}
        for k, v in st.items():
            if torch.is_tensor(v):
                tensors[f"{pid}.{k}"] = v.detach().cpu().contiguous()
                meta["state"][str(pid)][k] = "__tensor__"
            else:
                meta["state"][str(pid)][k] = v
    return tensors, meta


def _unflatten_optimizer(tensors: dict[str, torch.Tensor], meta: dict) -> dict:
    state = {}
    for pid, st in meta["state"].items():
        state[int(pid)] = {k: (tensors[f"{pid}.{k}"] if v == "__tensor__" else v) for k, v in st.items()}
    return {"state": state, "param_groups": meta["param_groups"]}


def rng_state() -> tuple[dict[str, torch.Tensor], dict]:
    tensors = {"torch_cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"torch_cuda_{i}"] = s
    np_state = np.random.get_state()
    meta = {"numpy": [np_state[0], np_state[1].tolist(), *np_state[2:]]}
    return tensors, meta


def set_rng_state(tensors: dict[str, torch.Tensor], meta: dict) -> None:
    torch.set_rng_state(tensors["torch_cpu"])
    cuda = [tensors[k] for k in sorted(tensors) if k.startswith("torch_cuda_")]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda)
    n = meta["numpy"]
    np.random.set_state((n[0], np.array(n[1], dtype=np.uint32), *n[2:]))


def _save_tensors(tensors: dict, folder: Path, stem: str, max_bytes: Optional[int] = None) -> None:
    """``stem.safetensors``, or with ``max_bytes`` as many ``stem-0000k-of-0000n.safetensors``
    shards as keep each file under it (a tensor larger than that gets a shard of its own)."""
    from safetensors.torch import save_file

    tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    if max_bytes is None:
        save_file(tensors, str(folder / f"{stem}.safetensors"))
        return
    shards, cur, size = [], {}, 0
    for k, v in tensors.items():
        nb = v.numel() * v.element_size() + 1024  # the header's share, generously
        if cur and size + nb > max_bytes:
            shards.append(cur)
            cur, size = {}, 0
        cur[k], size = v, size + nb
    shards.append(cur)
    for i, shard in enumerate(shards, 1):
        save_file(shard, str(folder / f"{stem}-{i:05d}-of-{len(shards):05d}.safetensors"))


def _tensor_files(folder: Path, stem: str) -> list[Path]:
    """The file, or the complete set of shards, holding ``stem``'s tensors ([] if none)."""
    one = folder / f"{stem}.safetensors"
    if one.exists():
        return [one]
    shards = sorted(folder.glob(f"{stem}-[0-9][0-9][0-9][0-9][0-9]-of-[0-9][0-9][0-9][0-9][0-9].safetensors"))
    if not shards:
        return []
    n = int(shards[0].name[-17:-12])
    if len(shards) != n or any(int(p.name[-17:-12]) != n for p in shards):
        raise CheckpointError(f"{folder}: {len(shards)} of the {n} {stem} shards")
    return shards


def _load_tensors(folder: Path, stem: str) -> Optional[dict]:
    from safetensors.torch import load_file

    files = _tensor_files(folder, stem)
    if not files:
        return None
    out: dict = {}
    for p in files:
        out.update(load_file(str(p)))
    return out


def save_checkpoint(directory: "str | os.PathLike", *, model_state: dict, state: dict[str, Any],
                    ema_state: Optional[dict] = None, optimizer_state: Optional[dict] = None,
                    max_shard_bytes: Optional[int] = None) -> Path:
    """Write a checkpoint folder atomically: into a temporary folder, fsynced, then
    renamed into place. An existing folder of the same name is moved aside first and
    removed only once the new one is in place, so a crash at any point leaves the old
    checkpoint or the new one (:func:`recover_run_dir` puts a moved-aside one back).
    ``max_shard_bytes`` splits the weights into shards of at most that size (for
    transports with a per-file limit); :func:`load_checkpoint` reads either form."""
    from safetensors.torch import save_file

    from ..utils import fsync_path

    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", suffix=".tmp", dir=directory.parent))
    aside = directory.parent / f".{directory.name}.old"
    try:
        _save_tensors(model_state, tmp, "model", max_shard_bytes)
        if ema_state is not None:
            _save_tensors(ema_state, tmp, "ema", max_shard_bytes)
        full = {"schema": CHECKPOINT_SCHEMA, **state}
        if optimizer_state is not None:
            tensors, meta = _flatten_optimizer(optimizer_state)
            rng_t, rng_m = rng_state()
            tensors.update({f"rng.{k}": v for k, v in rng_t.items()})
            save_file(tensors, str(tmp / "optimizer.safetensors"))
            full["optimizer"] = meta
            full["rng"] = rng_m
        (tmp / "state.json").write_text(json.dumps(full, indent=1))
        for p in tmp.iterdir():
            os.chmod(p, 0o644)
            fsync_path(p)
        os.chmod(tmp, 0o755)
        fsync_path(tmp)
        if directory.exists():
            if aside.exists():
                shutil.rmtree(aside)
            os.replace(directory, aside)
        os.replace(tmp, directory)
        fsync_path(directory.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    shutil.rmtree(aside, ignore_errors=True)
    return directory


def recover_run_dir(run_dir: "str | os.PathLike") -> list[str]:
    """Clean up after a crash inside :func:`save_checkpoint`: a checkpoint moved aside
    (``.NAME.old``) whose replacement never arrived is put back; leftover temporary
    folders (``.NAME.*.tmp``, incomplete by construction) are removed. Returns what was done."""
    run_dir = Path(run_dir)
    done = []
    if not run_dir.is_dir():
        return done
    for p in sorted(run_dir.iterdir()):
        if not (p.name.startswith(".") and p.is_dir()):
            continue
        if p.name.endswith(".old"):
            target = run_dir / p.name[1:-4]
            if target.exists():
                shutil.rmtree(p, ignore_errors=True)
                done.append(f"removed {p.name}")
            else:
                os.replace(p, target)
                done.append(f"restored {target.name}")
        elif p.name.endswith(".tmp"):
            shutil.rmtree(p, ignore_errors=True)
            done.append(f"removed {p.name}")
    return done


def load_checkpoint(directory: "str | os.PathLike") -> dict[str, Any]:
    """``{"state": dict, "model": tensors, "ema": tensors|None, "optimizer": dict|None, "rng": ...}``."""
    from safetensors.torch import load_file

    d = Path(directory)
    if not (d / "state.json").exists() or not _tensor_files(d, "model"):
        raise CheckpointError(f"{d}: not a checkpoint (needs state.json and model.safetensors)")
    try:
        state = json.loads((d / "state.json").read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{d}/state.json: not JSON ({exc})") from None
    while state.get("schema") in UPGRADES:
        state = UPGRADES[state["schema"]](state)
    if state.get("schema") != CHECKPOINT_SCHEMA:
        raise CheckpointError(f"{d}: checkpoint schema {state.get('schema')} is not supported "
                              f"(this TatumFlow reads {', '.join(map(str, [*UPGRADES, CHECKPOINT_SCHEMA]))})")
    tokenizer_config(state, d)
    out = {"state": state, "model": _load_tensors(d, "model"), "ema": _load_tensors(d, "ema"),
           "optimizer": None, "rng": None}
    if (d / "optimizer.safetensors").exists() and "optimizer" in state:
        t = load_file(str(d / "optimizer.safetensors"))
        out["optimizer"] = _unflatten_optimizer({k: v for k, v in t.items() if not k.startswith("rng.")},
                                                state["optimizer"])
        out["rng"] = ({k[4:]: v for k, v in t.items() if k.startswith("rng.")}, state["rng"])
    return out


def latest_checkpoint(run_dir: "str | os.PathLike") -> Optional[Path]:
    steps = sorted(Path(run_dir).glob("step-*"), key=lambda p: p.name)
    return steps[-1] if steps else None


def prune_checkpoints(run_dir: "str | os.PathLike", keep_last: int) -> None:
    steps = sorted(Path(run_dir).glob("step-*"), key=lambda p: p.name)
    for old in steps[: max(0, len(steps) - keep_last)]:
        shutil.rmtree(old, ignore_errors=True)
