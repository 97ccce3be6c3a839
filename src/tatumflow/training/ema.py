"""Exponential moving average of a model's weights."""

from __future__ import annotations

import contextlib

import torch
from torch import nn


class EMA:
    """Shadow copy of the floating-point parameters and buffers, updated after
    each optimiser step: ``shadow = decay * shadow + (1 - decay) * weight``."""

    def __init__(self, model: nn.Module, decay: float):
        self.decay = decay
        self.shadow = {k: v.detach().clone() for k, v in model.state_dict().items() if v.dtype.is_floating_point}

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        for k, v in model.state_dict().items():
            if k in self.shadow:
                self.shadow[k].lerp_(v.detach(), 1.0 - self.decay)

    @contextlib.contextmanager
    def swapped_in(self, model: nn.Module):
        """Temporarily load the EMA weights (for validation and sampling)."""
        saved = {k: v.detach().clone() for k, v in model.state_dict().items() if k in self.shadow}
        model.load_state_dict(self.shadow, strict=False)
        try:
            yield model
        finally:
            model.load_state_dict(saved, strict=False)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return dict(self.shadow)

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        for k, v in state.items():
            self.shadow[k].copy_(v)
