"""Loading models: rebuild any family's model from a checkpoint folder alone.

(Shipped weights and their model cards will live here too; ``--model NAME``.)"""

from __future__ import annotations

import os

from ..errors import TatumFlowError
from ..models.registry import FAMILIES
from ..training.checkpoint import CheckpointError, load_checkpoint, tokenizer_config
from ..training.lora import apply_lora


def load_model(path: "str | os.PathLike", *, ema: bool = True):
    """``(model in eval mode, checkpoint state)``: the family's config rebuilt from
    ``state.json`` (the tokenizer config typed and checked against the model's
    vocabulary once, here), LoRA adapters re-applied for a LoRA fine-tune, then
    the weights (the EMA weights when present and ``ema``)."""
    ck = load_checkpoint(path)
    state = ck["state"]
    family = FAMILIES.get(state.get("family"))
    if family is None:
        raise CheckpointError(f"{path}: unknown model family {state.get('family')!r} (known: {sorted(FAMILIES)})")
    try:
        cfg = family.config_class.from_dict(state["model_config"], tokenizer=tokenizer_config(state, path))
    except CheckpointError:
        raise
    except (TypeError, ValueError, TatumFlowError) as exc:
        raise CheckpointError(f"{path}: the model config does not fit this TatumFlow ({exc})") from None
    model = family.model_class(cfg)
    lora = ((state.get("run_info") or {}).get("finetune") or {}).get("lora")
    if lora:  # a LoRA fine-tune: rebuild the adapters before loading
        apply_lora(model, r=int(lora.get("r", 8)), alpha=float(lora.get("alpha", 16.0)), targets=lora.get("targets"))
    model.load_state_dict(ck["model"])
    if ema and ck["ema"] is not None:
        model.load_state_dict(ck["ema"], strict=False)
    return model.eval(), state


__all__ = ["load_model"]
