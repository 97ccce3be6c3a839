"""Every assessor model under every protocol: the table of the assessor issue.

    python benchmarks/assessor_table.py [--models mean,ridge,hybrid*3,...] [--protocols excerpt,...]
                                        [--bootstrap 1000] [--results DIR]

Each cell is what ``tatumflow assess-cv --protocol P --model M [--seeds K] [--score]``
prints (``M*K`` in ``--models`` means ``--seeds K``; ``M+score`` adds the
score-relative features). The raters' ceiling heads each table. The neural models take
minutes per cell on a CPU: with ``--results DIR`` a cell is read from
``DIR/<protocol>__<model>[+score][__--seeds_K].json`` when that file exists (written by
``assess-cv ... --out``) and computed otherwise.
"""

from __future__ import annotations

import argparse

from tatumflow.assessment.baselines import CLASSICAL
import json
from pathlib import Path

from tatumflow.assessment.cv import CVResult, run_cv
from tatumflow.assessment.data import load_percepiano, rater_ceiling
from tatumflow.assessment.metrics import paired_bootstrap
from tatumflow.assessment.protocols import PROTOCOLS


def cell(s, ci, k):
    v = s[k]
    if v != v:
        return "n/a"
    lo, hi = ci.get(k, (float("nan"), float("nan")))
    return f"{v:.3f} [{lo:.3f}, {hi:.3f}]" if lo == lo else f"{v:.3f}"


def get(spec: str, proto: str, data, args) -> CVResult:
    score = spec.endswith("+score")
    name, _, k = spec.removesuffix("+score").partition("*")
    seeds = int(k or 1)
    if args.results:
        f = args.results / (f"{proto}__{name}" + ("+score" if score else "")
                            + (f"__--seeds_{seeds}" if seeds > 1 else "") + ".json")
        if f.is_file():
            return CVResult.from_dict(json.loads(f.read_text()))
    return run_cv(name, proto, data=data, seeds=seeds, bootstrap=args.bootstrap, score=score)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default=",".join(CLASSICAL))
    ap.add_argument("--protocols", default=",".join(PROTOCOLS))
    ap.add_argument("--bootstrap", type=int, default=1000)
    ap.add_argument("--data")
    ap.add_argument("--results", type=Path, help="folder of saved assess-cv --out results to reuse")
    args = ap.parse_args()
    data = load_percepiano(args.data)
    models = args.models.split(",")
    ceiling = rater_ceiling(data.root)
    for proto in args.protocols.split(","):
        print(f"\n### protocol: {proto}\n")
        print("| model | mean r | R2 | within-excerpt r | seconds |")
        print("|---|---|---|---|---:|")
        print(f"| raters' ceiling | {ceiling['mean_r']:.3f} | | {ceiling['within_excerpt_r']:.3f} | |")
        res = {}
        for m in models:
            r = res[m] = get(m, proto, data, args)
            print(f"| {m} | {cell(r.scores, r.ci95, 'mean_r')} | {cell(r.scores, r.ci95, 'r2')} | "
                  f"{cell(r.scores, r.ci95, 'within_excerpt_r')} | {r.seconds:.1f} |", flush=True)
        if res[models[0]].ci95.get("kind") is None and len(models) > 1:
            best = max(models, key=lambda m: res[m].scores["mean_r"])
            for m in models:
                if m != best:
                    c = paired_bootstrap(data.ratings, res[best].predictions, res[m].predictions, data.excerpts,
                                         data.take_group, n=args.bootstrap)
                    print(f"- {best} minus {m}: mean r {c['difference']:+.3f} [{c['ci95'][0]:+.3f}, "
                          f"{c['ci95'][1]:+.3f}], P(not better) {c['p_not_better']:.3f}")


if __name__ == "__main__":
    main()
