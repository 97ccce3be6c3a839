"""Seed 003's claim, measured: the new MelodyVAE recipe (batch 64, exponential LR
decay every 5 epochs, KL annealing over 10 epochs, early stopping after 15, dropout
0.2, onset weight 1.0, 6 transpositions) against the old one (batch 128, constant
LR, full KL from the start, no dropout, onset weight 0.75, 24 transpositions), on
the same data and seeds. Each run is its own process (clean peak memory).

    python benchmarks/melody_vae_recipes.py [--data folk] [--epochs 40] [--seeds 0,1]

Prints, per recipe: epochs and wall time to reach the old recipe's best validation
ELBO, the best and final validation ELBO, reconstruction accuracy (onset, pitch) of
the best model on the held-out windows, and peak RSS."""

import argparse
import json
import subprocess
import sys
import tempfile

RUN = r"""
import json, resource, sys, time
from tatumflow.server.melody import train_melody
from tatumflow.models.melody_vae import load_melodies
from tatumflow.models.melody_vae.data import split_windows
from tatumflow.models.melody_vae.evaluate import melody_metrics
data, recipe, epochs, seed, out, voice = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], sys.argv[6]
stamps = []
t0 = time.perf_counter()
model, s = train_melody(data, out, recipe=recipe, epochs=epochs, seed=seed, voice=voice, progress=False,
                        on_row=lambda r: stamps.append((r["step"], time.perf_counter() - t0, r["val/elbo"]))
                        if "val/elbo" in r else None)
w, _ = load_melodies(data, model.config, voice=voice)
m = melody_metrics(model, split_windows(w)[1], seed=seed)
print(json.dumps({"recipe": recipe, "seed": seed, "spe": s["steps_per_epoch"], "epochs": s["epochs"],
                  "stop": s["stop_reason"], "seconds": s["seconds"], "load_seconds": s["load_seconds"],
                  "curve": stamps, "best": s["best"], "metrics": m,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument("--data", default="folk")
ap.add_argument("--epochs", type=int, default=40)
ap.add_argument("--seeds", default="0")
ap.add_argument("--voice", default="mono")
args = ap.parse_args()

results = []
for seed in map(int, args.seeds.split(",")):
    for recipe in ("old", "new"):
        with tempfile.TemporaryDirectory() as out:
            r = subprocess.run([sys.executable, "-c", RUN, args.data, recipe, str(args.epochs), str(seed), out,
                                args.voice], capture_output=True, text=True)
        if r.returncode:
            sys.exit(r.stderr[-3000:])
        results.append(json.loads(r.stdout.strip().splitlines()[-1]))
        print(f"# {recipe} seed {seed}: {results[-1]['epochs']:.1f} epochs ({results[-1]['stop']}), "
              f"{results[-1]['seconds']:.0f}s", file=sys.stderr)

print("| recipe | seed | epochs run | epochs to old best | seconds to old best | best val ELBO | final val ELBO "
      "| onset acc | pitch acc | KL | peak RSS MB |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for seed in sorted({r["seed"] for r in results}):
    old = next(r for r in results if r["seed"] == seed and r["recipe"] == "old")
    for r in (x for x in results if x["seed"] == seed):
        hit = next(((step / r["spe"], t) for step, t, v in r["curve"] if v <= old["best"]), None)
        m = r["metrics"]
        print(f"| {r['recipe']} | {seed} | {r['epochs']:.1f} | {hit[0]:.0f} | {hit[1]:.0f} |" if hit else
              f"| {r['recipe']} | {seed} | {r['epochs']:.1f} | not reached | — |", end="")
        print(f" {r['best']:.4f} | {r['curve'][-1][2]:.4f} | {m['onset_accuracy']:.3f} | {m['pitch_accuracy']:.3f} "
              f"| {m['kl']:.2f} | {r['peak_rss_mb']:.0f} |")
print(json.dumps(results), file=open(tempfile.gettempdir() + "/melody_vae_recipes.json", "w"))
