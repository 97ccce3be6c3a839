"""A TatumFlow run's config and datasets from a token store."""

from __future__ import annotations

from typing import Any, Mapping

from ...data import TokenStore
from ...data.dataset import TokenWindowDataset
from ...errors import TatumFlowError
from ...tokenizer import PerformanceTokenizer
from ...tokenizer.augment import Augmentation
from .model import PRESETS, TatumFlowConfig


def build_config(section: Mapping[str, Any], store) -> TatumFlowConfig:
    """A preset, overridden by the YAML ``model`` section, reading the store's tokens."""
    section = dict(section)
    name = section.pop("preset", None)
    if name is not None and name not in PRESETS:
        raise TatumFlowError(f"model.preset must be one of {sorted(PRESETS)}, got {name!r}")
    tok = TokenStore(store).tokenizer_config
    return TatumFlowConfig(**{**(PRESETS[name] if name else {}), **section,
                              "vocab_size": PerformanceTokenizer(tok).vocab_size, "tokenizer": tok})


def datasets(store, cfg: TatumFlowConfig, data: Mapping[str, Any], seed: int):
    """Token windows of ``seq_len`` (train: ``data.train_split``, optionally augmented; with the
    pianist control, each window's pianist, ``data.pianist_share`` of them by the named pianists)."""
    aug = data.get("augment")
    augment = Augmentation(**{k: tuple(v) if isinstance(v, list) else v for k, v in aug.items()}) if aug else None
    labels = cfg.pianists or None  # the pianist control's classes, read from the store's pianist column
    share = data.get("pianist_share")
    if share is not None and not cfg.pianists:
        raise TatumFlowError("data.pianist_share needs model.pianists (the pianist control)")
    if share is not None and not 0.0 <= float(share) <= 1.0:
        raise TatumFlowError(f"data.pianist_share must be in [0, 1], got {share}")
    train = TokenWindowDataset(store, split=data.get("train_split", "train"), seq_len=cfg.seq_len,
                               augment=augment, seed=seed, labels=labels, label_share=share)
    val = TokenWindowDataset(store, split=data.get("val_split", "val"), seq_len=cfg.seq_len, seed=seed + 1,
                             labels=labels)
    return train, val
