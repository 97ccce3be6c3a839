"""Ship a trained checkpoint in the package, with its model card.

    python scripts/ship_model.py --name tatumflow_tatum --checkpoint runs/tatumflow_tatum/best \
        --phase runs/tatumflow_pijama --phase runs/tatumflow_tatum \
        --summary "..." [--scorecard runs/card/scorecard.json] [--command "bash scripts/train_shipped.sh"]

Writes ``src/tatumflow/pretrained/weights/<name>/`` (or ``--out DIR``): the EMA weights in fp16
safetensors (a LoRA fine-tune's adapters merged into its weights, so the shipped
model is a plain one), ``state.json`` (the family's configs) and ``card.json``:
parameters, the data and split of every training phase, the exact command of each
phase (from its checkpoint's record) with its steps, wall time and hardware (from
the run's ``sessions.json``), the scorecard's numbers and the data's terms.
"""

import argparse
import functools
import json
import sys
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]
TERMS = {
    "pijama": "PiJAMA (Edwards, Dixon and Benetos, 'PiJAMA: Piano Jazz with Automatic MIDI Annotations', "
              "TISMIR 2023): research use; cite the paper. Weights trained on it inherit these terms.",
}
CARD_KEYS = ("continuation.mean_oa", "continuation.p_target", "continuation.bits_per_note",
             "continuation.density_ratio_tail", "continuation.longest_note", "continuation.rerank_n",
             "continuation.rerank_p_target", "continuation.rerank_mean_oa", "unconditional.p_target", "style_transfer.p_target_by_strength",
             "edit_harmony.root_accuracy", "edit_harmony.chord_accuracy", "interpolate.monotonicity",
             "interpolate.monotonicity_ci95",
             "improvise.distance_by_creativity")


def phase_record(run: Path) -> dict:
    """What one training phase was: its command (from the last checkpoint's run record),
    data, steps and wall time (from sessions.json)."""
    from tatumflow.data import TokenStore
    from tatumflow.training.checkpoint import latest_checkpoint

    last = latest_checkpoint(run)
    if last is None:
        sys.exit(f"ship_model: {run}: no checkpoint in the run folder")
    state = json.loads((last / "state.json").read_text())
    info = state.get("run_info") or {}
    sessions = json.loads((run / "sessions.json").read_text()) if (run / "sessions.json").exists() else []
    store = TokenStore(info["store"]) if info.get("store") else None
    data = None
    if store is not None:
        source = store.manifest["source"].replace(str(ROOT.parent / "shared" / "data"), "../shared/data")
        share = None
        if info.get("config") and (ROOT / info["config"]).is_file():  # the run's data section, overrides applied
            from tatumflow.training.config import load_run_config
            share = load_run_config(ROOT / info["config"], info.get("overrides") or []).get("data", {}).get("pianist_share")
        data = {"source": source, "files": {sp: int(len(store.indices(sp))) for sp in ("train", "val", "test")},
                "trained_on": "train" if share is None else
                f"train (the named pianists' share of the windows: data.pianist_share {share})",
                "validated_on": "val (checkpoint selection); test never read"}
    local = lambda x: str(x).replace(str(run.parent) + "/", "runs/")  # noqa: E731 (this machine's run folder)
    return {
        "run": run.name, "config": info.get("config"),
        "command": " ".join(["tatumflow train --config", str(info.get("config")), "--data STORE", f"--out runs/{run.name}",
                             *map(local, info.get("overrides") or [])]),
        "store": data["source"] if data else None,
        "finetune": json.loads(local(json.dumps(info.get("finetune")))), "data": data,
        "steps": int(state["trainer"]["step"]),
        "seconds": round(sum(s["seconds"] for s in sessions)) if sessions else None,
        "sessions": sessions,
    }


def plain_state(model, family) -> dict:
    """The model's weights with any LoRA adapters merged (a LoRALinear's ``weight``
    property is W + scale * B A), as a fresh model of the family names them."""
    fresh = family.model_class(model.config)
    get = lambda k: functools.reduce(getattr, k.split("."), model)  # noqa: E731
    return {k: get(k).detach().clone() for k in fresh.state_dict()}


def scorecard_numbers(path: Path) -> dict:
    doc = json.loads(path.read_text())
    d = doc["data"]
    out = {"command": "tatumflow scorecard --data " + d["source"].replace(str(ROOT.parent / "shared" / "data"),
                                                                          "../shared/data")
           + "".join(f' --where {k}="{v}"' for k, v in d["where"].items())
           + "".join(f' --contrast-where {k}="{v}"' for k, v in d["contrast_where"].items()),
           "where": d["where"], "prompts": d["prompts"], "target_pieces": len(d["target_pieces"]),
           "quick": doc["quick"], "seconds": doc["seconds"],
           "real_next_p_target": (doc.get("real") or {}).get("continuation", {}).get("p_target_real_next"),
           "real_reference_mean_oa": (doc.get("real") or {}).get("continuation", {}).get("mean_oa")}
    for key in CARD_KEYS:
        mode, k = key.split(".")
        v = doc["modes"].get(mode, {}).get(k)
        if v is not None:
            out[key] = v
    out["targets"] = {t["key"]: {"value": t["value"], "target": t["target"], "met": t["met"]}
                      for t in doc.get("targets", []) if t["met"] is not None}  # the modes this model has
    return out


def main() -> None:
    from tatumflow.models.registry import FAMILIES
    from tatumflow.pretrained import SHIPPED, load_model
    from tatumflow.training.checkpoint import model_state, save_checkpoint
    from tatumflow.utils import write_json_atomic

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--name", required=True)
    ap.add_argument("--checkpoint", type=Path, required=True)
    ap.add_argument("--phase", type=Path, action="append", default=[], help="each training phase's run folder")
    ap.add_argument("--phases-from", type=Path, help="a shipped model's card.json whose training phases come first "
                                                     "(the model this one was fine-tuned from)")
    ap.add_argument("--summary", required=True)
    ap.add_argument("--scorecard", type=Path, help="the model's scorecard.json (the held-out test album)")
    ap.add_argument("--val-scorecard", type=Path, help="its scorecard on the validation album (what selected it)")
    ap.add_argument("--command", default="bash scripts/train_shipped.sh", help="the command that rebuilds it")
    ap.add_argument("--data", default="pijama", choices=sorted(TERMS))
    ap.add_argument("--out", type=Path, help="write here instead of the package (default: weights/<name>/)")
    ap.add_argument("--max-shard-mb", type=float, help="split the weights into files of at most this size")
    args = ap.parse_args()

    model, state = load_model(args.checkpoint)
    family = FAMILIES[state["family"]]
    weights = {k: v.half() if v.is_floating_point() else v for k, v in plain_state(model, family).items()}
    phases = [phase_record(p) for p in args.phase]
    if args.phases_from:  # the earlier phases as that model's card recorded them (with their data)
        before = json.loads(args.phases_from.read_text())
        earlier = [dict(ph, data=d) for ph, d in zip(before["training"]["phases"], before["data"])]
        phases = earlier + phases
    out = args.out or SHIPPED / args.name
    save_checkpoint(out, model_state=weights, state={**model_state(model), "schema": state.get("schema", 2),
                                                     "run_info": {"shipped": args.name}},
                    max_shard_bytes=int(args.max_shard_mb * 2**20) if args.max_shard_mb else None)
    secs = [p["seconds"] for p in phases]
    card = {
        "name": args.name, "family": family.name, "summary": args.summary,
        "parameters": sum(p.numel() for p in family.model_class(model.config).parameters()),
        "weights": "fp16 safetensors (EMA weights; LoRA adapters merged)",
        "config": model.config.to_dict() if hasattr(model.config, "to_dict") else None,
        "data": [p.pop("data") for p in phases],
        "training": {"phases": phases, "seconds": sum(secs) if None not in secs else None,
                     "hardware": sorted({s["hardware"] for p in phases for s in p["sessions"]})},
        "command": args.command,
        "scorecard": scorecard_numbers(args.scorecard) if args.scorecard else None,
        "scorecard_val": scorecard_numbers(args.val_scorecard) if args.val_scorecard else None,
        "terms": TERMS[args.data],
    }
    write_json_atomic(out / "card.json", card)
    size = sum(p.stat().st_size for p in out.iterdir())
    print(f"{out}: {card['parameters']:,} parameters, {size / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
