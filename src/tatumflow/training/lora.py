"""LoRA adapters: small trainable low-rank updates on a frozen base model.

``apply_lora`` wraps chosen ``nn.Linear`` layers; only the adapters train.
``save_adapter`` writes the adapters alone (one safetensors file, settings in its
metadata); ``load_adapter`` puts a saved adapter onto the same base, so styles
can be swapped in place.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Iterable, Optional

import torch
from torch import nn

from ..errors import TatumFlowError
from ..utils import atomic_path


class LoRALinear(nn.Module):
    """``base(x) + (alpha / r) * B(A(dropout(x)))`` with B initialised to zero."""

    def __init__(self, base: nn.Linear, r: int = 8, alpha: float = 16.0, dropout: float = 0.0):
        super().__init__()
        if r < 1:
            raise ValueError(f"LoRA rank must be >= 1, got {r}")
        self.base = base
        self.r, self.alpha = r, alpha
        self.scale = alpha / r
        self.lora_A = nn.Parameter(torch.empty(r, base.in_features))
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, r))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + (self.dropout(x) @ self.lora_A.T @ self.lora_B.T) * self.scale

    # Modules that read their projection's weight directly (nn.MultiheadAttention's
    # out_proj) get the adapted weight: W + (alpha / r) B A, without dropout.
    @property
    def weight(self) -> torch.Tensor:
        return self.base.weight + (self.lora_B @ self.lora_A) * self.scale

    @property
    def bias(self):
        return self.base.bias


def apply_lora(model: nn.Module, *, r: int = 8, alpha: float = 16.0, dropout: float = 0.0,
               targets: Optional[Iterable[str]] = None) -> list[str]:
    """Wrap the Linear layers whose qualified name ends with one of ``targets``
    (all Linear layers when None) and freeze everything else. Returns the names."""
    targets = list(targets) if targets is not None else None
    wrapped = []
    for name, module in list(model.named_modules()):
        for child_name, child in list(module.named_children()):
            full = f"{name}.{child_name}" if name else child_name
            if isinstance(child, nn.Linear) and (targets is None or any(full.endswith(t) for t in targets)):
                setattr(module, child_name, LoRALinear(child, r, alpha, dropout))
                wrapped.append(full)
    if not wrapped:
        raise TatumFlowError(f"no Linear layer matches LoRA targets {targets}")
    for n, p in model.named_parameters():
        p.requires_grad = ".lora_" in n
    return wrapped


def lora_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items() if ".lora_" in k}


def save_adapter(model: nn.Module, path: "str | os.PathLike", *, info: Optional[dict] = None) -> Path:
    """Write ``path.safetensors``: the adapter weights, with rank, alpha, layers and
    ``info`` in the file's metadata. One file, written atomically."""
    from safetensors.torch import save_file

    path = Path(path).with_suffix(".safetensors")
    state = lora_state_dict(model)
    if not state:
        raise TatumFlowError("model has no LoRA adapters to save")
    layers = sorted({k.rsplit(".lora_", 1)[0] for k in state})
    some = next(m for m in model.modules() if isinstance(m, LoRALinear))
    meta = {"format": 2, "r": some.r, "alpha": some.alpha, "layers": layers, "info": info or {}}
    with atomic_path(path) as tmp:
        save_file(state, str(tmp), metadata={"tatumflow_lora": json.dumps(meta)})
    return path


def load_adapter(model: nn.Module, path: "str | os.PathLike") -> dict:
    """Load adapter weights onto a model that already has matching LoRA layers
    (call :func:`apply_lora` with the saved rank first); returns the adapter's metadata."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    path = Path(path).with_suffix(".safetensors")
    if not path.is_file():
        raise TatumFlowError(f"{path}: no such adapter file")
    with safe_open(str(path), framework="pt") as fh:
        raw = (fh.metadata() or {}).get("tatumflow_lora")
    if raw is None:
        raise TatumFlowError(f"{path}: not a TatumFlow LoRA adapter (no metadata)")
    meta = json.loads(raw)
    state = load_file(str(path))
    own = lora_state_dict(model)
    missing = sorted(set(own) - set(state))
    extra = sorted(set(state) - set(own))
    if missing or extra:
        raise TatumFlowError(f"{path}: adapter does not fit this model (missing {missing[:3]}, unexpected {extra[:3]})")
    model.load_state_dict(state, strict=False)
    return meta
