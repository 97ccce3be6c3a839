"""Does a control-track model play the texture it is asked for? (README "The count
control" and "The tally control".)

    python benchmarks/control_following.py [--model control_tatum] [--seconds 8] [--seeds 0,1,2] \\
        [--pianists "Art Tatum,another"]

Writes flat plans (``ControlPlan.flat``: every second asking the same texture, no
harmony) with ``write_plan`` and prints what was played against what was asked: density (onsets
per second, at voicing 1.5 notes per cluster and register 60), then voicing size
(notes per onset cluster) and register (mean pitch) together (at 8 onsets per
second), one number per seed, and the root-mean-square errors over every write.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from tatumflow.evaluation import controls as C
from tatumflow.models.tatumflow import GenerationPipeline
from tatumflow.models.tatumflow.controls import ControlPlan
from tatumflow.pretrained import load_model

DENSITIES = (3, 6, 10, 16)
VOICINGS = (1.3, 2.0, 3.0)
REGISTERS = (55.0, 70.0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="control_tatum", help="a shipped model's name or a checkpoint folder")
    ap.add_argument("--seconds", type=int, default=8)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--pianists", default="Art Tatum,another", help="who plays (the model's pianist control)")
    a = ap.parse_args()
    torch.set_num_threads(1)
    seeds = [int(s) for s in a.seeds.split(",")]
    pipe = GenerationPipeline(load_model(a.model)[0])
    if not pipe.controlled:
        raise SystemExit(f"--model {a.model}: not a control-track model")
    t0, S = time.perf_counter(), a.seconds
    err = {"density": [], "voicing": [], "register": []}
    for who in a.pianists.split(","):
        if pipe.model.config.pianists:
            pipe.pianist = who
        print(f"\n{who}: onsets asked per second -> played (seeds {a.seeds})")
        for n in DENSITIES:
            outs = [pipe.write_plan(ControlPlan.flat(S, density=n), S, seed=s).performance for s in seeds]
            played = [len(o) / S for o in outs]
            err["density"] += [p / n - 1 for p in played]
            print(f"  {n:>2} -> " + " / ".join(f"{p:.1f}" for p in played))
        print(f"{who}: voicing (notes per cluster) and register (mean pitch) asked -> played, 8 onsets/s")
        for v in VOICINGS:
            for reg in REGISTERS:
                plan = ControlPlan.flat(S, density=8, register=reg, voicing=v)
                outs = [pipe.write_plan(plan, S, seed=s).performance for s in seeds]
                pv = [C.TEXTURE["voicing_size"](o) for o in outs]
                pr = [C.TEXTURE["register"](o) for o in outs]
                err["voicing"] += [x - v for x in pv]
                err["register"] += [x - reg for x in pr]
                print(f"  {v:.1f} at {reg:.0f} -> " + " / ".join(f"{x:.2f}" for x in pv)
                      + " at " + " / ".join(f"{x:.1f}" for x in pr))
    rms = {k: float(np.sqrt(np.mean(np.square(v)))) for k, v in err.items()}
    print(f"\nRMS error: density {100 * rms['density']:.1f}% of the ask, voicing {rms['voicing']:.3f} notes "
          f"per cluster, register {rms['register']:.2f} semitones ({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
