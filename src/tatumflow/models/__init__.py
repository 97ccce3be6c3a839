"""Model families. The registry maps a family name to (config class, model class)."""

from .music_rnn import MusicRNN, MusicRNNConfig, NoteWindowDataset

from .tatumflow import TatumFlow, TatumFlowConfig

REGISTRY = {
    "music_rnn": (MusicRNNConfig, MusicRNN),
    "tatumflow": (TatumFlowConfig, TatumFlow),
}

__all__ = ["REGISTRY", "MusicRNN", "MusicRNNConfig", "NoteWindowDataset", "TatumFlow", "TatumFlowConfig",
           "from_checkpoint"]


def from_checkpoint(path, *, ema: bool = True):
    """Rebuild a model from a checkpoint folder alone (EMA weights when present)."""
    from ..training.checkpoint import CheckpointError, load_checkpoint

    ck = load_checkpoint(path)
    family = ck["state"].get("family")
    if family not in REGISTRY:
        raise CheckpointError(f"{path}: unknown model family {family!r} (known: {sorted(REGISTRY)})")
    cfg_cls, model_cls = REGISTRY[family]
    model = model_cls(cfg_cls(**ck["state"]["model_config"]))
    lora = ((ck["state"].get("run_info") or {}).get("finetune") or {}).get("lora")
    if lora:  # a LoRA fine-tune: rebuild the adapters before loading
        from ..training.lora import apply_lora

        apply_lora(model, r=int(lora.get("r", 8)), alpha=float(lora.get("alpha", 16.0)), targets=lora.get("targets"))
    model.load_state_dict(ck["model"])
    if ema and ck["ema"] is not None:
        model.load_state_dict(ck["ema"], strict=False)
    return model.eval(), ck["state"]
