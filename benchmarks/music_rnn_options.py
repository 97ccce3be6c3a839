"""Music RNN options A-D with the same data and budget (seed 004's table, measured).

    python benchmarks/music_rnn_options.py --store STORE [--steps 1500] [--out runs/rnn_options]

STORE: a token store of PiJAMA (train split for training, val split for scores),
e.g. ``tatumflow prepare ../shared/data/pijama/index.csv --out stores/pijama``.
Each option trains in its own process (so peak memory is its own), then
continues a val-split prompt for 30 s to measure the realtime factor (B cannot).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

CODE = r"""
import json, sys, numpy as np
from tatumflow.models.registry import FAMILIES
from tatumflow.training.run import train_from_config
s = train_from_config(sys.argv[1], families=FAMILIES, data=sys.argv[2], out=sys.argv[3], progress=False,
                      overrides=[f"train.max_steps={sys.argv[4]}", "train.eval_batches=60", "train.eval_every=100000"])
rf = None
if "option: B" not in open(sys.argv[1]).read():
    from tatumflow.data import TokenStore
    from tatumflow.models.music_rnn import generate_from_prompt
    from tatumflow.pretrained import load_model
    store = TokenStore(sys.argv[2])
    i = int(store.indices("val")[0])
    prompt = store.tokenizer().decode(store.tokens(i)).slice(0, 10.0)
    model, _ = load_model(s["checkpoint"])
    rf = generate_from_prompt(model, prompt, 30.0, sys.argv[3] + "/sample.mid")["realtime_factor"]
s["realtime_factor"] = rf
print("RESULT " + json.dumps(s))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--store", required=True)
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--out", default="runs/rnn_options")
    args = ap.parse_args()
    configs = Path(__file__).resolve().parents[1] / "configs"
    rows = []
    for opt in "abcd":
        out = f"{args.out}/{opt}"
        proc = subprocess.run([sys.executable, "-c", CODE, str(configs / f"music_rnn_{opt}.yaml"), args.store, out,
                               str(args.steps)], capture_output=True, text=True)
        line = [l for l in proc.stdout.splitlines() if l.startswith("RESULT ")]
        if proc.returncode or not line:
            print(f"option {opt.upper()} failed:\n{proc.stderr[-2000:]}")
            continue
        s = json.loads(line[0][7:])
        steps_per_s = s["steps"] / s["seconds"]
        epoch_steps = s["train_windows"] / s["batch_size"]
        rows.append((opt.upper(), s["params"], epoch_steps / steps_per_s, s["seconds"], s["peak_rss_mb"],
                     s["val"]["val/pitch_accuracy"], s["val"]["val/bits_per_note"], s["realtime_factor"]))
        print(f"option {opt.upper()} done", file=sys.stderr)
    print(f"{args.steps} steps x batch 64 windows of 50 notes each, PiJAMA train split; val split scores "
          f"(60 batches x 64 windows: the note after each window)")
    print("| option | parameters | s / epoch (extrapolated) | train s | peak RSS MB | val pitch accuracy | val bits/note | realtime factor |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        rf = "n/a (bidirectional)" if r[7] is None else f"{r[7]:.0f}x"
        print(f"| {r[0]} | {r[1]:,} | {r[2]:,.0f} | {r[3]:.0f} | {r[4]:.0f} | {r[5]:.3f} | {r[6]:.2f} | {rf} |")


if __name__ == "__main__":
    main()
