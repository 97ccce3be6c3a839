"""Train a MelodyVAE with seed 003's recipe and ship it in the package with its model card.

    python scripts/train_melody_vae.py --name melody_vae_folk_2d --z-dim 2 [--data folk] [--epochs 40]

Trains into runs/<name>/ (resumable checkpoints there), measures the best model on
the held-out (val) melodies, and writes src/tatumflow/pretrained/weights/<name>/:
fp16 safetensors, state.json (the checkpoint's configs) and card.json."""

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import torch

from tatumflow.models.melody_vae import load_melodies
from tatumflow.models.melody_vae.data import split_windows
from tatumflow.models.melody_vae.evaluate import melody_metrics
from tatumflow.pretrained import SHIPPED
from tatumflow.server.melody import RECIPES, train_melody
from tatumflow.training.checkpoint import model_state, save_checkpoint
from tatumflow.utils import write_json_atomic

TERMS = {"folk": "Essen folk-song collection (ABC by Seymour Schlien) as bundled with music21: permission for "
                 "non-commercial distribution and use; legal status unclear (music21 corpus licence.txt)."}

ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument("--name", required=True)
ap.add_argument("--data", default="folk")
ap.add_argument("--z-dim", type=int, default=2)
ap.add_argument("--free-bits", type=float, default=0.0, help="nats per latent dimension the KL does not charge")
ap.add_argument("--epochs", type=int, default=40)
ap.add_argument("--voice", default="mono")
ap.add_argument("--seed", type=int, default=0)
args = ap.parse_args()

run = Path("runs") / args.name
t0 = time.time()
model, s = train_melody(args.data, run, recipe="new", epochs=args.epochs, seed=args.seed, voice=args.voice,
                        model={"z_dim": args.z_dim, "free_bits": args.free_bits})
seconds = time.time() - t0
windows, _ = load_melodies(args.data, model.config, voice=args.voice)
_, val = split_windows(windows)
metrics = melody_metrics(model, val, seed=args.seed)
out = SHIPPED / args.name
half = {k: v.half() if v.is_floating_point() else v for k, v in model.state_dict().items()}
state = {**model_state(model), "run_info": {"recipe": "new", "data": args.data, "voice": args.voice,
                                             "epochs": s["epochs"], "seed": args.seed}}
save_checkpoint(out, model_state=half, state=state)
card = {
    "name": args.name, "family": "melody_vae",
    "summary": f"MelodyVAE, {args.z_dim}-D latent, on {args.data} melodies (2 bars of 16ths)",
    "parameters": sum(p.numel() for p in model.parameters()), "weights": "fp16 safetensors",
    "config": model.config.to_dict(), "recipe": {"name": "new", **RECIPES["new"].__dict__},
    "data": {"source": args.data, "voice": args.voice, "train_windows": s["train_windows"],
             "val_windows": s["val_windows"], "files_used": s["report"]["used"], "files": s["report"]["files"],
             "split": "files' hash split (90/5/5): trained on train, early-stopped and measured on val"},
    "command": " ".join(["python", "scripts/train_melody_vae.py", *sys.argv[1:]]),
    "training": {"seconds": round(seconds), "epochs": round(s["epochs"], 2), "stop_reason": s["stop_reason"],
                 "best_val_elbo": s["best"], "hardware": f"{platform.machine()} CPU, {torch.get_num_threads()} threads"},
    "metrics_val": metrics,
    "terms": TERMS.get(args.data, "see the data's own licence"),
}
write_json_atomic(out / "card.json", card)
print(json.dumps(card, indent=1))
