"""Does the shipped assessor's spread say when a rating is unsure? Measured on unheard music.

    python benchmarks/assessor_spread.py [--protocol excerpt] [--score] [--data ../shared/data/percepiano]

Trains the shipped kind of assessor (:data:`~tatumflow.assessment.shipped.SHIPPED_MODELS`)
on each fold of a protocol, exports it as the package does, and rates the fold's
held-out segments. Prints how the spread of each rating's forest trees relates to
its error there: Spearman correlation (pooled and per rating), the share of
ratings within one and two spreads of the panel's mean, and the mean error of
the least and most unsure quarter of the ratings.
"""

from __future__ import annotations

import argparse

import numpy as np
from scipy.stats import spearmanr

from tatumflow.assessment.cv import feature_matrix, note_arrays
from tatumflow.assessment.data import DIMENSIONS, load_percepiano
from tatumflow.assessment.inputs import note_rows
from tatumflow.assessment.protocols import PROTOCOLS, get_protocol
from tatumflow.assessment.shipped import SHIPPED_MODELS, ForestAssessor


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--protocol", default="excerpt", choices=[p for p in PROTOCOLS if not p.startswith("paper")])
    ap.add_argument("--score", action="store_true", help="the score-aware assessor")
    ap.add_argument("--data")
    a = ap.parse_args()
    data = load_percepiano(a.data)
    X, names = feature_matrix(data, score=a.score)
    Y = data.ratings
    model = SHIPPED_MODELS[a.score]
    arrays = note_arrays(data, score=a.score) if "note-boosting" in model.split("+") else None
    rating, spread = np.zeros_like(Y), np.zeros_like(Y)
    for fold in get_protocol(a.protocol, data).folds:
        part = None if arrays is None else [arrays[i] for i in fold.train]
        fa = ForestAssessor.train(X[fold.train], Y[fold.train], names, arrays=part, score=a.score)
        notes = None if arrays is None else [note_rows(arrays[i], a.score) for i in fold.test]
        rating[fold.test], spread[fold.test] = fa.predict_with_spread(X[fold.test], notes)
    err = np.abs(rating - Y)
    print(f"{model}{' +score' if a.score else ''} under {a.protocol}, {len(Y)} segments x {len(DIMENSIONS)} "
          f"ratings (errors on the 1..7 scale)")
    print(f"Spearman(spread, |error|): {spearmanr(spread.ravel(), err.ravel())[0]:.3f} pooled; per rating "
          + " ".join(f"{spearmanr(spread[:, d], err[:, d])[0]:.2f}" for d in range(len(DIMENSIONS))))
    print(f"|error| <= spread: {np.mean(err <= spread):.1%}; <= 2 spreads: {np.mean(err <= 2 * spread):.1%}")
    lo, hi = np.quantile(spread, [0.25, 0.75])
    print(f"mean |error|: {7 * err[spread <= lo].mean():.3f} in the least unsure quarter, "
          f"{7 * err[spread >= hi].mean():.3f} in the most unsure (all: {7 * err.mean():.3f})")


if __name__ == "__main__":
    main()
