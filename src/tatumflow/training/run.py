"""`tatumflow train`: a run from a YAML preset, a token store and overrides.

The families come in as an argument (``models.registry.FAMILIES``): training
knows no family by name."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping, Optional

from ..errors import TatumFlowError
from ..models.protocol import Family
from ..utils import cache_dir, seeded_torch
from .config import ConfigError, TrainConfig, load_run_config
from .distributed import process_group_from_env
from .trainer import Trainer


def default_store(corpus: str = "chorales") -> Path:
    """The built-in corpus as a token store in the cache (prepared once)."""
    from ..data import prepare_store

    out = cache_dir() / "stores" / corpus
    if not (out / "manifest.json").exists():
        prepare_store(corpus, out)
    return out


def build(cfg: dict, store: "str | os.PathLike", families: Mapping[str, Family]):
    """Model, train and validation datasets for a run config. The model's
    initial weights come from ``train.seed`` without touching the caller's
    random state."""
    section = dict(cfg["model"])
    name = section.pop("family", None)
    if name not in families:
        raise ConfigError(f"model.family must be one of {sorted(families)}, got {name!r}")
    family = families[name]
    try:
        mcfg = family.build_config(section, store)
    except (TypeError, TatumFlowError) as exc:
        raise ConfigError(f"model section: {exc}") from None
    seed = int(cfg["train"].get("seed", 0))
    with seeded_torch(seed):
        model = family.model_class(mcfg)
    train, val = family.datasets(store, mcfg, dict(cfg.get("data") or {}), seed)
    return model, train, val


def _prepare_finetune(model, spec: Optional[dict]) -> bool:
    """Start from a base checkpoint; with ``lora`` freeze it and train adapters only.

    ``finetune: {base: runs/x/best, lora: {r: 8, alpha: 16, targets: [pitch, dense.0]}}``
    """
    if not spec:
        return False
    from .checkpoint import load_checkpoint, model_state
    from .lora import apply_lora

    if "base" not in spec:
        raise ConfigError("finetune needs 'base': the checkpoint to start from")
    ck = load_checkpoint(spec["base"])
    mine = model_state(model)
    theirs = dict(ck["state"])
    try:  # the base's config as this code reads it (fields added since it was saved take their defaults)
        theirs["model_config"] = type(model.config).from_dict(theirs.get("model_config") or {},
                                                              tokenizer=model.config.tokenizer).to_dict()
    except (TypeError, ValueError, TatumFlowError):  # not this family's config: the comparison below says so
        pass
    mine = dict(mine)
    free = getattr(type(model.config), "FINETUNE_FREE", ())  # fields that may differ from the base's
    if isinstance(theirs.get("model_config"), dict):
        mine["model_config"] = {k: v for k, v in mine["model_config"].items() if k not in free}
        theirs["model_config"] = {k: v for k, v in theirs["model_config"].items() if k not in free}
    if any(theirs.get(k) != mine[k] for k in ("family", "model_config", "tokenizer")):
        raise ConfigError(f"finetune base {spec['base']} is a {ck['state'].get('family')} with config "
                          f"{ck['state'].get('model_config')}, not this run's model {mine['model_config']}")
    model.load_state_dict(ck["ema"] if ck["ema"] is not None else ck["model"], strict=False)
    if spec.get("lora"):
        lo = dict(spec["lora"])
        apply_lora(model, r=int(lo.get("r", 8)), alpha=float(lo.get("alpha", 16.0)),
                   dropout=float(lo.get("dropout", 0.0)), targets=lo.get("targets"))
        return True
    return False


def train_from_config(config: "str | os.PathLike", *, families: Mapping[str, Family],
                      data: Optional["str | os.PathLike"] = None, out: Optional["str | os.PathLike"] = None,
                      overrides: Optional[list[str]] = None, resume: bool = False, progress: bool = True) -> dict:
    """Train the run ``config`` describes; returns a summary (steps, time, checkpoint, validation)."""
    cfg = load_run_config(config, overrides)
    store = Path(data) if data else (Path(cfg["data"]["store"]) if cfg.get("data", {}).get("store") else default_store())
    if not (store / "manifest.json").exists():
        raise TatumFlowError(f"{store}: not a token store; run `tatumflow prepare` first")
    tcfg = TrainConfig.from_dict(cfg["train"])
    model, train, val = build(cfg, store, families)
    out = Path(out or cfg.get("out") or f"runs/{Path(config).stem}")
    lora = _prepare_finetune(model, cfg.get("finetune"))
    with process_group_from_env(tcfg.device):  # under torchrun: one process of a DDP run
        trainer = Trainer(model, tcfg, train, val, out_dir=out, progress=progress,
                          run_info={"config": str(config), "store": str(store), "overrides": overrides or [],
                                    "finetune": cfg.get("finetune")})
        summary = trainer.fit(resume=resume)
        summary["rank"], summary["world_size"] = trainer.rank, trainer.world
        if val is not None:
            summary["val"] = trainer.evaluate()
    if lora and trainer.rank == 0:
        from .lora import save_adapter

        summary["adapter"] = str(save_adapter(model, out / "adapter", info={"base": cfg["finetune"]["base"],
                                                                            "store": str(store)}))
    summary["out"] = str(out)
    summary["params"] = sum(p.numel() for p in model.parameters())
    summary["train_windows"] = len(train)
    summary["batch_size"] = tcfg.batch_size
    try:
        import resource

        summary["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB
    except ImportError:  # pragma: no cover - not on Windows
        summary["peak_rss_mb"] = float("nan")
    return summary
