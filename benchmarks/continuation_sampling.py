"""Continuation quality under different sampling settings, as the scorecard measures it.

    python benchmarks/continuation_sampling.py [--model tatumflow_tatum] [--prompts 15] \\
        --try guidance=2 --try guidance=1 --try guidance=3,temperature=0.9 \\
        [--data ../shared/data/pijama/index.csv] [--where pianist="Art Tatum"] [--where split=val]

Each ``--try`` is a set of :class:`~tatumflow.models.tatumflow.Sampling` fields
of a TatumFlow model (a plain decoder-only one included). Per
setting: mean OA of 20 s continuations vs the real next 20 s, the style judge's
P(target), tail density / real, longest note, seconds. Tune on the val split,
never on test.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import numpy as np
import torch

from tatumflow.evaluation import controls as C
from tatumflow.evaluation.style import DEFAULT_JUDGE, StyleJudge
from tatumflow.models.registry import get_family
from tatumflow.pretrained import load_model
from tatumflow.scorecard import NEXT_SECONDS, PROMPT_SECONDS, _Card, load_data, prompt_pairs


def parse(text: str) -> dict:
    out = {}
    for kv in filter(None, text.split(",")):
        k, v = kv.split("=", 1)
        out[k.strip()] = None if v == "none" else (float(v) if any(c in v for c in ".e") else int(v))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="tatumflow_tatum")
    ap.add_argument("--data", default="../shared/data/pijama/index.csv")
    ap.add_argument("--where", action="append", default=None, help="column=value (default: Art Tatum, val)")
    ap.add_argument("--prompts", type=int, default=15)
    ap.add_argument("--try", dest="tries", action="append", default=None, help="Sampling fields, e.g. guidance=1")
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    where = dict(w.split("=", 1) for w in (a.where or ["pianist=Art Tatum", "split=val"]))
    pairs = prompt_pairs(load_data(a.data, where, pieces=0).target, 3)
    pairs = [pairs[i] for i in np.linspace(0, len(pairs) - 1, min(a.prompts, len(pairs))).astype(int)]
    model, state = load_model(a.model)
    pipe = get_family(state["family"]).pipeline(model)
    card = _Card(StyleJudge.load(DEFAULT_JUDGE), Path("."), print)
    real = [n for _, n, _ in pairs]
    real_dens = np.mean([C.tail_density(n, NEXT_SECONDS) for n in real])
    print(f"{a.model}: {len(pairs)} prompts, {where}; real P(target) {card.p_target(real):.3f}")
    for spec in a.tries or [""]:
        t0 = time.perf_counter()
        s = dataclasses.replace(pipe.sampling, **parse(spec))
        gens = [pipe.continuation(p, NEXT_SECONDS, seed=i, sampling=s).performance
                .slice(PROMPT_SECONDS, PROMPT_SECONDS + NEXT_SECONDS) for i, (p, _, _) in enumerate(pairs)]
        dens = np.mean([C.tail_density(g, NEXT_SECONDS) for g in gens]) / max(real_dens, 1e-9)
        print(f"{spec or 'defaults'}: mean OA {card.mean_oa(gens, real):.3f}, P(target) {card.p_target(gens):.3f}, "
              f"density ratio {dens:.2f}, longest note {max(C.longest_note(g) for g in gens):.1f} s; "
              f"{time.perf_counter() - t0:.0f} s", flush=True)


if __name__ == "__main__":
    main()
