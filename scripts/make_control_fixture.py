"""Build the control tests' fixture: a micro TatumFlow trained on a synthetic two-style corpus.

    python scripts/make_control_fixture.py tests/fixtures/tatumflow_controls [--steps 1500]
    python scripts/make_control_fixture.py tests/fixtures/tatumflow_control_track \
        --config configs/tatumflow_micro_control_track.yaml
    python scripts/make_control_fixture.py tests/fixtures/tatumflow_pianist_control \
        --config configs/tatumflow_micro_pianist_control.yaml

The corpus makes every control's effect easy to see, so a test can tell a
control that works from one that does not (tests/models/test_tatumflow_controls.py):

* two "pianists": *high* (eighth notes in the treble, loud, short) and *low*
  (quarter notes in the bass, soft, long): style transfer and interpolation
  should move register, density and loudness, and so should the pianist
  control (the index's ``pianist`` column);
* every piece follows a random chord progression (a chord per 2 s, maj7 / m7 /
  7 on a random root), the notes drawn from the chord's tones: edit-harmony
  should move the heard chords toward the requested ones.

Trains ``configs/tatumflow_micro_controls.yaml`` (about 0.3M parameters; a few
CPU minutes), or ``--config`` (the control-track decoder's fixture), and writes
the EMA weights (fp16) and the checkpoint's configs to the output folder. Deterministic for a given seed.
"""

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
QUALITIES = ("maj7", "m7", "7")


def chord_tones(root: int, quality: str, lo: int, hi: int) -> np.ndarray:
    from tatumflow.features import parse_chord

    pcs = {(root + i) % 12 for i in parse_chord("C" + quality)[1]}
    return np.array([p for p in range(lo, hi + 1) if p % 12 in pcs])


def piece(rng: np.random.Generator, style: str, seconds: float = 40.0):
    from tatumflow import Performance

    high = style == "high"
    step, dur, (lo, hi), vel = (0.25, 0.18, (72, 92), (90, 115)) if high else (0.5, 0.45, (36, 57), (35, 60))
    on, off, pit, v = [], [], [], []
    for c in range(int(seconds // 2)):
        root, q = int(rng.integers(0, 12)), str(rng.choice(QUALITIES))
        tones = chord_tones(root, q, lo, hi)
        block = chord_tones(root, q, 55 if high else 48, 70 if high else 62)[:4]
        t0 = 2.0 * c
        for p in block:  # the chord, struck at the change
            on.append(t0), off.append(t0 + (0.9 if high else 1.9)), pit.append(int(p)), v.append(int(rng.integers(*vel)))
        for k in range(int(2.0 / step)):
            t = t0 + k * step
            on.append(t), off.append(t + dur), pit.append(int(rng.choice(tones))), v.append(int(rng.integers(*vel)))
    return Performance.from_arrays(on, off, pit, v, metadata={"style": style})


def corpus(folder: Path, seed: int = 0, n: int = 64) -> Path:
    from tatumflow import write_midi

    rng = np.random.default_rng(seed)
    rows = ["path,pianist,split"]
    for i in range(n):
        style = "high" if i % 2 == 0 else "low"
        write_midi(piece(rng, style), folder / f"{style}_{i:02d}.mid")
        split = "train" if i < n - 12 else "val" if i < n - 4 else "test"
        rows.append(f"{style}_{i:02d}.mid,{style},{split}")
    (folder / "index.csv").write_text("\n".join(rows) + "\n")
    return folder / "index.csv"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--config", type=Path, default=ROOT / "configs" / "tatumflow_micro_controls.yaml")
    args = ap.parse_args()

    from tatumflow.data import prepare_store
    from tatumflow.models.registry import FAMILIES
    from tatumflow.pretrained import load_model
    from tatumflow.training.checkpoint import model_state, save_checkpoint
    from tatumflow.training.run import train_from_config

    torch.set_num_threads(1)
    tmp = Path(tempfile.mkdtemp(prefix="control_fixture."))
    try:
        index = corpus(tmp / "midi", args.seed)
        prepare_store(index, tmp / "store", workers=1, progress=False)
        t0 = time.time()
        s = train_from_config(args.config, families=FAMILIES,
                              data=tmp / "store", out=tmp / "run", progress=False,
                              overrides=[f"train.max_steps={args.steps}", f"train.seed={args.seed}"])
        model, state = load_model(tmp / "run" / "best")  # the EMA weights
        half = {k: v.half() if v.is_floating_point() else v for k, v in model.state_dict().items()}
        save_checkpoint(args.out, model_state=half, state={**model_state(model), "run_info": {
            "fixture": "scripts/make_control_fixture.py", "config": str(args.config.resolve().relative_to(ROOT)),
            "steps": s["steps"], "seed": args.seed,
            "seconds": round(time.time() - t0, 1), "val": s.get("val")}})
        print(f"{args.out}: {s['steps']} steps in {time.time() - t0:.0f}s, val {s.get('val')}", file=sys.stderr)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
