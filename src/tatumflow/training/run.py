"""`tatumflow train`: a run from a YAML preset, a token store and overrides."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import torch

from ..errors import TatumFlowError
from ..utils import cache_dir
from .config import ConfigError, TrainConfig, load_run_config
from .trainer import Trainer


def default_store(corpus: str = "chorales") -> Path:
    """The built-in corpus as a token store in the cache (prepared once)."""
    from ..data import prepare_store

    out = cache_dir() / "stores" / corpus
    if not (out / "manifest.json").exists():
        prepare_store(corpus, out)
    return out


def build(cfg: dict, store: "str | os.PathLike"):
    """Model, train and validation datasets for a run config."""
    from ..models import REGISTRY

    model_cfg = dict(cfg["model"])
    family = model_cfg.pop("family", None)
    if family not in REGISTRY:
        raise ConfigError(f"model.family must be one of {sorted(REGISTRY)}, got {family!r}")
    cfg_cls, model_cls = REGISTRY[family]
    if family == "tatumflow":  # a preset, then the store's tokenizer (the model must read its tokens)
        from ..data import TokenStore
        from ..models.tatumflow import PRESETS

        name = model_cfg.pop("preset", None)
        if name is not None and name not in PRESETS:
            raise ConfigError(f"model.preset must be one of {sorted(PRESETS)}, got {name!r}")
        tok = TokenStore(store).tokenizer_config
        from ..tokenizer import PerformanceTokenizer

        model_cfg = {**(PRESETS[name] if name else {}), **model_cfg,
                     "vocab_size": PerformanceTokenizer(tok).vocab_size, "tokenizer": tok.to_dict()}
    try:
        mcfg = cfg_cls(**model_cfg)
    except (TypeError, TatumFlowError) as exc:
        raise ConfigError(f"model section: {exc}") from None
    seed = int(cfg["train"].get("seed", 0))
    torch.manual_seed(seed)
    model = model_cls(mcfg)
    if family == "music_rnn":
        from ..models.music_rnn import NoteWindowDataset

        train = NoteWindowDataset(store, split="train", seq_len=mcfg.seq_len)
        val = NoteWindowDataset(store, split="val", seq_len=mcfg.seq_len)
    elif family == "tatumflow":
        from ..data.dataset import TokenWindowDataset
        from ..tokenizer.augment import Augmentation

        data_cfg = dict(cfg.get("data") or {})
        aug = data_cfg.get("augment")
        augment = Augmentation(**{k: tuple(v) if isinstance(v, list) else v for k, v in aug.items()}) if aug else None
        train = TokenWindowDataset(store, split=data_cfg.get("train_split", "train"), seq_len=mcfg.seq_len,
                                   augment=augment, seed=seed)
        val = TokenWindowDataset(store, split=data_cfg.get("val_split", "val"), seq_len=mcfg.seq_len, seed=seed + 1)
    else:  # pragma: no cover - every registered family is handled above
        raise ConfigError(f"no data pipeline for family {family!r}")
    return model, train, val


def _prepare_finetune(model, spec: Optional[dict]) -> bool:
    """Start from a base checkpoint; with ``lora`` freeze it and train adapters only.

    ``finetune: {base: runs/x/best, lora: {r: 8, alpha: 16, targets: [pitch, dense.0]}}``
    """
    if not spec:
        return False
    from .checkpoint import load_checkpoint
    from .lora import apply_lora

    if "base" not in spec:
        raise ConfigError("finetune needs 'base': the checkpoint to start from")
    ck = load_checkpoint(spec["base"])
    if ck["state"].get("family") != model.family or ck["state"].get("model_config") != model.config.to_dict():
        raise ConfigError(f"finetune base {spec['base']} is a {ck['state'].get('family')} with config "
                          f"{ck['state'].get('model_config')}, not this run's model {model.config.to_dict()}")
    model.load_state_dict(ck["ema"] if ck["ema"] is not None else ck["model"], strict=False)
    if spec.get("lora"):
        lo = dict(spec["lora"])
        apply_lora(model, r=int(lo.get("r", 8)), alpha=float(lo.get("alpha", 16.0)),
                   dropout=float(lo.get("dropout", 0.0)), targets=lo.get("targets"))
        return True
    return False


def train_from_config(config: "str | os.PathLike", *, data: Optional["str | os.PathLike"] = None,
                      out: Optional["str | os.PathLike"] = None, overrides: Optional[list[str]] = None,
                      resume: bool = False, progress: bool = True) -> dict:
    cfg = load_run_config(config, overrides)
    store = Path(data) if data else (Path(cfg["data"]["store"]) if cfg.get("data", {}).get("store") else default_store())
    if not (store / "manifest.json").exists():
        raise TatumFlowError(f"{store}: not a token store; run `tatumflow prepare` first")
    tcfg = TrainConfig.from_dict(cfg["train"])
    model, train, val = build(cfg, store)
    out = Path(out or cfg.get("out") or f"runs/{Path(config).stem}")
    lora = _prepare_finetune(model, cfg.get("finetune"))
    trainer = Trainer(model, tcfg, train, val, out_dir=out, progress=progress,
                      run_info={"config": str(config), "store": str(store), "overrides": overrides or [],
                                "tokenizer_config": getattr(train, "tokenizer_config", None),
                                "finetune": cfg.get("finetune")})
    summary = trainer.fit(resume=resume)
    if lora:
        from .lora import save_adapter

        summary["adapter"] = str(save_adapter(model, out / "adapter", info={"base": cfg["finetune"]["base"],
                                                                            "store": str(store)}))
    summary["out"] = str(out)
    summary["params"] = sum(p.numel() for p in model.parameters())
    if val is not None:
        summary["val"] = trainer.evaluate()
    summary["train_windows"] = len(train)
    summary["batch_size"] = tcfg.batch_size
    try:
        import resource

        summary["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB
    except ImportError:  # pragma: no cover - not on Windows
        summary["peak_rss_mb"] = float("nan")
    return summary
