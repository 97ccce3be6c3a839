"""The single Trainer, its config, EMA, checkpoints, LoRA and distributed helpers."""

from .checkpoint import CheckpointError, latest_checkpoint, load_checkpoint, save_checkpoint
from .config import ConfigError, TrainConfig, load_run_config
from .ema import EMA
from .lora import LoRALinear, apply_lora, load_adapter, lora_state_dict, save_adapter
from .trainer import Trainer, lr_at, param_groups

__all__ = [
    "Trainer", "TrainConfig", "EMA", "ConfigError", "CheckpointError", "load_run_config",
    "save_checkpoint", "load_checkpoint", "latest_checkpoint", "param_groups", "lr_at",
    "LoRALinear", "apply_lora", "save_adapter", "load_adapter", "lora_state_dict",
]
