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
import tempfile
import time
from pathlib import Path

import torch

from tatumflow.models.tatumflow import GenerationPipeline
from tatumflow.pretrained import load_model
from tatumflow.scorecard import PROGRESSIONS, _Card, _edit_harmony_pass, _slices, load_data


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
    where = dict(w.split("=", 1) for w in (a.where or ["pianist=Art Tatum", "split=val"]))
    prompts = _slices(load_data(a.data, where, pieces=0).target, 20.0, a.pieces)
    pipe = GenerationPipeline(load_model(a.model)[0])
    print(f"{a.model}: {len(prompts)} pieces x {len(PROGRESSIONS)} progressions, {where}")
    with tempfile.TemporaryDirectory() as tmp:
        card = _Card(None, Path(tmp), print)  # the scorecard's own edit-harmony pass (MIDI to a scratch folder)
        for bias in (float(b) for b in a.biases.split(",")):
            t0 = time.perf_counter()
            r = _edit_harmony_pass(pipe, prompts, card, strength=0.6, seed=0, chord_bias=bias, tag="")
            print(f"bias {bias:g} nats: root {r['root_accuracy']:.3f}, root+quality {r['chord_accuracy']:.3f} "
                  f"(source {r['root_accuracy_source']:.3f} / {r['chord_accuracy_source']:.3f}); "
                  f"{time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
