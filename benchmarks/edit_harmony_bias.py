"""Edit harmony with and without the chord-tone bias, as the scorecard measures it.

    python benchmarks/edit_harmony_bias.py [--model tatumflow_tatum] [--pieces 3] [--biases 0,2,4,8] \\
        [--data ../shared/data/pijama/index.csv] [--where pianist="Art Tatum"] [--where split=val]

For each bias (nats on the requested chord's tones, ``generate --chord-bias``):
the root and root+quality accuracy of edit-harmony over 20 s slices of the
target pieces x the scorecard's three progressions, the source's own accuracy
(chance) and the seconds taken. Tune on the val split, never on test.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from tatumflow.evaluation import controls as C
from tatumflow.models.tatumflow import GenerationPipeline, Sampling
from tatumflow.pretrained import load_model
from tatumflow.scorecard import PROGRESSIONS, _slices, load_data


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="tatumflow_tatum")
    ap.add_argument("--data", default="../shared/data/pijama/index.csv")
    ap.add_argument("--where", action="append", default=None, help="column=value (default: Art Tatum, val)")
    ap.add_argument("--pieces", type=int, default=3)
    ap.add_argument("--biases", default="0,2,4,8")
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    where = dict(w.split("=", 1) for w in (a.where or ['pianist=Art Tatum', 'split=val']))
    prompts = _slices(load_data(a.data, where, pieces=0).target, 20.0, a.pieces)
    pipe = GenerationPipeline(load_model(a.model)[0])
    print(f"{a.model}: {len(prompts)} pieces x {len(PROGRESSIONS)} progressions, {where}")
    for bias in (float(b) for b in a.biases.split(",")):
        t0, rows, src = time.perf_counter(), [], []
        for i, p in enumerate(prompts):
            for prog in PROGRESSIONS:
                r = pipe.edit_harmony(p, prog, 0.6, seed=i, sampling=Sampling(chord_bias=bias))
                rows.append(C.chord_accuracy(r.performance, prog.split(), duration=p.end))
                src.append(C.chord_accuracy(p, prog.split(), duration=p.end))
        w = np.array([r["windows"] for r in rows], float)

        def mean(rs, k):
            return float((np.array([r[k] for r in rs]) * w).sum() / max(w.sum(), 1.0))

        print(f"bias {bias:g} nats: root {mean(rows, 'root_accuracy'):.3f}, root+quality "
              f"{mean(rows, 'chord_accuracy'):.3f} (source {mean(src, 'root_accuracy'):.3f} / "
              f"{mean(src, 'chord_accuracy'):.3f}); {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
