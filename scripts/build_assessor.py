"""Rebuild the assessor shipped in the package from PercePiano.

    python scripts/build_assessor.py OUT.npz [--data ../shared/data/percepiano] [--seed 0] [--score]

Writes to OUT (never into the installed package); copy it over
``src/tatumflow/assessment/default_assessor.npz`` (with ``--score``:
``score_assessor.npz``, the model ``assess --score`` uses) to ship it."""

import argparse

from tatumflow.assessment.shipped import build_shipped_assessor

ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument("out")
ap.add_argument("--data", help="the PercePiano folder (default: ../shared/data/percepiano)")
ap.add_argument("--seed", type=int, default=0)
ap.add_argument("--score", action="store_true", help="the score-aware assessor (score-relative features too)")
args = ap.parse_args()
fa = build_shipped_assessor(args.out, root=args.data, seed=args.seed, progress=True, score=args.score)
print(f"{args.out}: {fa.meta}")
