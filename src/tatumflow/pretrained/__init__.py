"""Models: rebuild any family's model from a checkpoint folder alone, or by the name
of a model shipped in the package (``weights/<name>/``: safetensors, ``state.json``,
and a model card ``card.json``); ``tatumflow models`` lists them."""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..errors import TatumFlowError
from ..models.registry import FAMILIES
from ..training.checkpoint import CheckpointError, load_checkpoint, tokenizer_config
from ..training.lora import apply_lora

SHIPPED = Path(__file__).resolve().parent / "weights"


def shipped_models() -> list[dict]:
    """The model cards of the models in the package, by name."""
    cards = []
    for d in sorted(SHIPPED.glob("*/card.json")):
        card = json.loads(d.read_text())
        card["size_bytes"] = sum(p.stat().st_size for p in d.parent.iterdir() if p.is_file())
        cards.append(card)
    return cards


# The shipped model each family uses when none is named (``generate`` without --checkpoint):
# for TatumFlow, in every mode, the control-track transformer. On the Art Tatum val album it meets
# 10 of the controls issue's 11 targets to the latent TatumFlow's 3, and, told only who plays, it
# continues better than the plain transformer (P 0.828 vs 0.796, mean OA 0.857 vs 0.843, 8.84 vs
# 9.42 bits/note) and plays more like Art Tatum unprompted (P 0.805 vs 0.639) (README, Shipped
# generators). The plain transformer (``transformer_tatum``) ships as the baseline.
DEFAULTS = {"tatumflow": "control_tatum", "music_rnn": "music_rnn_tatum"}
PLAIN_BASELINE = "transformer_tatum"  # the plain causal transformer, shipped to compare against


def default_model(family: str) -> str:
    """The name of ``family``'s default shipped model (an error naming the fix when
    absent)."""
    name = DEFAULTS.get(family)
    if name is None or not (SHIPPED / name / "state.json").exists():
        raise CheckpointError(f"no shipped {family} model in this installation; give --checkpoint DIR "
                              f"(shipped: {', '.join(c['name'] for c in shipped_models()) or 'none'})")
    return name


def resolve(path_or_name: "str | os.PathLike") -> Path:
    """A checkpoint folder: the path itself, or the shipped model of that name."""
    p = Path(path_or_name)
    if (p / "state.json").exists():
        return p
    if (SHIPPED / str(path_or_name) / "state.json").exists() and "/" not in str(path_or_name):
        return SHIPPED / str(path_or_name)
    names = ", ".join(c["name"] for c in shipped_models()) or "none"
    raise CheckpointError(f"{path_or_name}: not a checkpoint folder, nor a shipped model (shipped: {names})")


def load_model(path_or_name: "str | os.PathLike", *, ema: bool = True):
    """``(model in eval mode, checkpoint state)``: the family's config rebuilt from
    ``state.json`` (the tokenizer config typed and checked against the model's
    vocabulary once, here), LoRA adapters re-applied for a LoRA fine-tune, then
    the weights (the EMA weights when present and ``ema``)."""
    path = resolve(path_or_name)
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
    model.load_state_dict(ck["model"])  # shipped weights may be fp16: copied into the fp32 parameters
    if ema and ck["ema"] is not None:
        model.load_state_dict(ck["ema"], strict=False)
    return model.eval(), state


__all__ = ["load_model", "shipped_models", "resolve", "default_model", "DEFAULTS", "PLAIN_BASELINE", "SHIPPED"]
