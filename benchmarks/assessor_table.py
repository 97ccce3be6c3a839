"""Every assessor model under every protocol: the table of the assessor issue.

    python benchmarks/assessor_table.py [--models mean,ridge,hybrid*3,...] [--protocols excerpt,...]
                                        [--bootstrap 1000] [--results DIR]

Each cell is what ``tatumflow assess-cv --protocol P --model M [--seeds K] [--score]``
prints (``M*K`` in ``--models`` means ``--seeds K``; ``M+score`` adds the
score-relative features). The raters' ceiling heads each table. The neural models take
minutes to hours per cell on a CPU: with ``--results DIR`` a cell is read from
``DIR/<protocol>__<model>[+score][__--seeds_K].json`` when that file exists (written by
``assess-cv ... --out``), and otherwise computed and written there; ``--saved-only``
computes nothing and marks the cells without a file "no result file".
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tatumflow.assessment.baselines import CLASSICAL
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


def get(spec: str, proto: str, data, args) -> CVResult | None:
    """The cell of model ``spec`` under ``proto``: saved, computed, or None (not run)."""
    from tatumflow.utils import write_json_atomic

    score = spec.endswith("+score")
    name, _, k = spec.removesuffix("+score").partition("*")
    seeds = int(k or 1)
    f = None
    if args.results:
        f = args.results / (f"{proto}__{name}" + ("+score" if score else "")
                            + (f"__--seeds_{seeds}" if seeds > 1 else "") + ".json")
        if f.is_file():
            return CVResult.from_dict(json.loads(f.read_text()))
    if args.saved_only:
        return None
    res = run_cv(name, proto, data=data, seeds=seeds, bootstrap=args.bootstrap, score=score)
    if f is not None:
        write_json_atomic(f, res.as_dict())
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default=",".join(CLASSICAL))
    ap.add_argument("--protocols", default=",".join(PROTOCOLS))
    ap.add_argument("--bootstrap", type=int, default=1000)
    ap.add_argument("--data")
    ap.add_argument("--results", type=Path, help="folder of saved assess-cv --out results to reuse (cells "
                                                 "computed here are written there too)")
    ap.add_argument("--saved-only", action="store_true",
                    help="with --results: compute nothing; cells without a file read 'no result file'")
    args = ap.parse_args()
    if args.saved_only and not args.results:
        ap.error("--saved-only needs --results DIR")
    data = load_percepiano(args.data)
    models = args.models.split(",")
    ceiling = rater_ceiling(data.root)
    print("# Every assessor model under every protocol\n")
    print("Written by `python benchmarks/assessor_table.py " + " ".join(sys.argv[1:]) + "`. Each cell: the value "
          "and its 95% cluster-bootstrap interval (the published splits: the range over their 4 fold models).")
    for proto in args.protocols.split(","):
        print(f"\n### protocol: {proto}\n")
        print("| model | mean r | R2 | within-excerpt r | seconds |")
        print("|---|---|---|---|---:|")
        print(f"| raters' ceiling | {ceiling['mean_r']:.3f} | | {ceiling['within_excerpt_r']:.3f} | |")
        res = {}
        for m in models:
            r = get(m, proto, data, args)
            if r is None:
                print(f"| {m} | no result file | | | |", flush=True)
                continue
            res[m] = r
            print(f"| {m} | {cell(r.scores, r.ci95, 'mean_r')} | {cell(r.scores, r.ci95, 'r2')} | "
                  f"{cell(r.scores, r.ci95, 'within_excerpt_r')} | {r.seconds:.1f} |", flush=True)
        ran = list(res)
        for m in ran:
            e = res[m].scores.get("fold_ensemble")
            if e:
                print(f"- {m}: its 4 fold models' mean prediction: mean r {e['mean_r']:.3f}, R2 {e['r2']:.3f}")
        if len(ran) > 1 and res[ran[0]].ci95.get("kind") is None:
            best = max(ran, key=lambda m: res[m].scores["mean_r"])
            for m in ran:
                if m != best:
                    c = paired_bootstrap(data.ratings, res[best].predictions, res[m].predictions, data.excerpts,
                                         data.take_group, n=args.bootstrap)
                    print(f"- {best} minus {m}: mean r {c['difference']:+.3f} [{c['ci95'][0]:+.3f}, "
                          f"{c['ci95'][1]:+.3f}], P(not better) {c['p_not_better']:.3f}")


if __name__ == "__main__":
    main()
