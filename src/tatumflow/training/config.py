"""Training configuration: one dataclass, read from YAML presets with overrides."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Optional

from ..errors import TatumFlowError
from ..utils import check_field_types


class ConfigError(TatumFlowError, ValueError):
    """A configuration file or override is invalid."""


@dataclass
class TrainConfig:
    """Everything the Trainer owns. Steps count optimiser updates."""

    max_steps: int = 1000
    batch_size: int = 32                 # global batch per optimiser step (before accumulation split)
    grad_accum: int = 1                  # micro-batches per optimiser step
    lr: float = 1e-3
    min_lr_ratio: float = 0.1            # cosine decays to lr * min_lr_ratio
    warmup_steps: int = 100
    lr_schedule: str = "cosine"          # cosine (to lr * min_lr_ratio) | exponential | constant, after warm-up
    lr_decay: float = 0.5                # exponential: lr x lr_decay every lr_decay_every steps
    lr_decay_every: int = 1000
    weight_decay: float = 0.01           # not applied to norms, biases, embeddings
    betas: tuple[float, float] = (0.9, 0.99)
    grad_clip: float = 1.0               # 0 disables clipping
    precision: str = "fp32"              # fp32 | bf16 | fp16 (fp16 on CUDA only, with a grad scaler)
    ema_decay: float = 0.0               # 0 disables EMA
    eval_every: int = 200
    eval_batches: int = 20               # 0: the whole validation set, in order
    eval_batch_size: Optional[int] = None  # default: the training micro-batch
    save_every: int = 500
    keep_last: int = 2
    log_every: int = 20
    seed: int = 0
    device: str = "auto"                 # auto | cpu | cuda | cuda:N | mps
    compile: bool = False
    gradient_checkpointing: bool = False
    num_workers: int = 0
    early_stopping_metric: Optional[str] = None   # e.g. "val/loss"
    early_stopping_patience: int = 5              # evaluations without improvement
    early_stopping_mode: str = "min"
    best_metric: str = "val/loss"
    restore_best: bool = False           # end with the best evaluated weights, not the last
    tensorboard: bool = True
    max_seconds: Optional[float] = None  # stop (and checkpoint) after this wall time
    schedules: dict = field(default_factory=dict)  # name -> {start, end, from, to} scalar ramps

    def __post_init__(self) -> None:
        check_field_types(self, ConfigError, prefix="train.")
        for k in ("max_steps", "batch_size", "eval_every", "save_every", "keep_last", "log_every",
                  "early_stopping_patience"):
            if getattr(self, k) < 1:
                raise ConfigError(f"train.{k} must be >= 1, got {getattr(self, k)}")
        for k in ("warmup_steps", "seed", "num_workers", "grad_clip", "weight_decay"):
            if getattr(self, k) < 0:
                raise ConfigError(f"train.{k} must be >= 0, got {getattr(self, k)}")
        if not self.lr >= 0 or not 0 <= self.min_lr_ratio <= 1:
            raise ConfigError(f"train.lr must be >= 0 and min_lr_ratio in [0, 1], got {self.lr}, {self.min_lr_ratio}")
        if self.max_seconds is not None and not self.max_seconds > 0:
            raise ConfigError(f"train.max_seconds must be > 0, got {self.max_seconds}")
        if self.grad_accum < 1 or self.batch_size % self.grad_accum:
            raise ConfigError(f"batch_size {self.batch_size} must be a multiple of grad_accum {self.grad_accum}")
        if self.precision not in ("fp32", "bf16", "fp16"):
            raise ConfigError(f"precision must be fp32, bf16 or fp16, got {self.precision!r}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ConfigError(f"ema_decay must be in [0, 1), got {self.ema_decay}")
        if self.lr_schedule not in ("cosine", "exponential", "constant"):
            raise ConfigError(f"lr_schedule must be cosine, exponential or constant, got {self.lr_schedule!r}")
        if not 0.0 < self.lr_decay <= 1.0 or self.lr_decay_every < 1:
            raise ConfigError(f"lr_decay must be in (0, 1] and lr_decay_every >= 1, got {self.lr_decay}, "
                              f"{self.lr_decay_every}")
        if self.eval_batches < 0 or (self.eval_batch_size is not None and self.eval_batch_size < 1):
            raise ConfigError(f"eval_batches must be >= 0 and eval_batch_size >= 1, got {self.eval_batches}, "
                              f"{self.eval_batch_size}")
        if self.early_stopping_mode not in ("min", "max"):
            raise ConfigError(f"early_stopping_mode must be min or max, got {self.early_stopping_mode!r}")
        self.betas = tuple(self.betas)  # YAML gives lists

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["betas"] = list(self.betas)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainConfig":
        if not isinstance(d, dict):
            raise ConfigError(f"the train section must be a mapping of settings, got {d!r}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"unknown training keys {unknown}; known: {sorted(known)}")
        return cls(**d)


def parse_override(text: str) -> tuple[list[str], Any]:
    """``a.b=value`` -> (["a", "b"], value parsed as YAML)."""
    import yaml

    if "=" not in text:
        raise ConfigError(f"override {text!r} is not KEY=VALUE")
    key, raw = text.split("=", 1)
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        raise ConfigError(f"override {text!r}: value is not valid YAML ({exc})") from None
    return key.strip().split("."), value


def load_run_config(path: "str | Path", overrides: Optional[list[str]] = None) -> dict[str, Any]:
    """A run config: a YAML mapping with ``model`` (incl. ``family``), ``train``
    and optional ``data`` sections, with ``key.sub=value`` overrides applied."""
    import yaml

    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: config file not found")
    try:
        cfg = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from None
    if not isinstance(cfg, dict) or "model" not in cfg or "train" not in cfg:
        raise ConfigError(f"{path}: needs 'model' and 'train' sections")
    for ov in overrides or []:
        keys, value = parse_override(ov)
        node = cfg
        for k in keys[:-1]:
            node = node.setdefault(k, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {ov!r}: {k} is not a section")
        if isinstance(node.get(keys[-1]), dict) and not isinstance(value, dict):
            raise ConfigError(f"override {ov!r}: {'.'.join(keys)} is a section; set {'.'.join(keys)}.KEY=VALUE")
        node[keys[-1]] = value
    for name in ("model", "train", "data", "finetune"):
        if cfg.get(name) is not None and not isinstance(cfg[name], dict):
            raise ConfigError(f"{path}: the {name} section must be a mapping, got {cfg[name]!r}")
    return cfg
