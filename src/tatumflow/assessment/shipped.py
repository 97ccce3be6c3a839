"""The default assessor shipped inside the package, and the ``assess`` entry point.

Trees trained with scikit-learn (per rating, extra trees and gradient boosting)
are exported to one small ``.npz`` (one node table) and evaluated here with
vectorised numpy, so a fresh install rates performances without scikit-learn
pickles or downloads.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from ..errors import TatumFlowError
from ..performance import Performance
from .data import DIMENSIONS

DEFAULT_MODEL = Path(__file__).with_name("default_assessor.npz")
#: The score-aware assessor: also reads how the performance deviates from its score.
SCORE_MODEL = Path(__file__).with_name("score_assessor.npz")


#: What the shipped assessors are (an ``assess-cv`` model name): per rating, a compact
#: extra-trees forest averaged with gradient-boosted trees.
SHIPPED_MODEL = "extra-trees-per-dim-compact+boosting-per-dim"


#: Features within this of zero are zero (see :func:`portable_features`).
NEAR_ZERO = 1e-10


def portable_features(X: np.ndarray) -> np.ndarray:
    """Features as every CPU computes them, for the shipped assessors to train and rate on.

    Two CPUs (vector widths, maths libraries) can disagree in a feature's last bits, and
    a value that should be 0 (the timing spread of a deadpan performance) comes out as
    +-1e-13 on one and 0 on the other. Such noise changes a trained tree: a feature
    constant in a node on one machine is not on the other, and the tree's random draws
    part ways from there. Values round to float32 (24 bits, the precision scikit-learn's
    forests split at) and those then within :data:`NEAR_ZERO` of zero become 0, so such
    differences do not reach the trees (docs/assessor.md, "Rebuilding the shipped
    assessors on another CPU")."""
    X = np.asarray(X, np.float64).astype(np.float32).astype(np.float64)
    return np.where(np.abs(X) < NEAR_ZERO, 0.0, X)


class AssessorError(TatumFlowError):
    """An assessor file is missing or does not fit this version of the features."""


@dataclass
class ForestAssessor:
    """Trees over the hand-crafted features, each predicting one of the 19 ratings.

    A rating's forest trees (extra trees) are averaged; its boosted trees are summed
    onto ``baseline``; a rating with both is the mean of the two (what ``assess-cv
    --model extra-trees-per-dim-compact+boosting-per-dim`` scores). The spread of a
    rating's forest trees is its uncertainty. All trees share one node table: a leaf
    has ``feature`` -1 and points to itself. :meth:`train` and the predictions read the
    features through :func:`portable_features`."""

    feature_names: list[str]
    feature: np.ndarray    # (nodes,) int16, -1 at leaves
    threshold: np.ndarray  # (nodes,) float64: go left when the feature is <= it
    left: np.ndarray       # (nodes,) int32, node indices into this table
    right: np.ndarray      # (nodes,) int32
    value: np.ndarray      # (nodes,) float32: a leaf's rating (forest) or increment (boosted)
    root: np.ndarray       # (trees,) int32
    dim: np.ndarray        # (trees,) int8: the rating each tree predicts
    boosted: np.ndarray    # (trees,) bool
    baseline: np.ndarray   # (19,) float64: where the boosted trees start
    meta: dict

    @classmethod
    def from_sklearn(cls, models, feature_names: Sequence[str], meta: dict | None = None) -> "ForestAssessor":
        """Export fitted one-model-per-rating regressors (``MultiOutputRegressor`` of extra
        trees / random forests, or of ``HistGradientBoostingRegressor``; at least one forest)."""
        parts = {"feature": [], "threshold": [], "left": [], "right": [], "value": []}
        root, dim, boosted, baseline, offset = [], [], [], np.zeros(len(DIMENSIONS)), 0

        def add(d, is_boost, feat, thr, lf, rt, val):
            nonlocal offset
            leaf = lf < 0
            own = np.arange(len(feat)) + offset
            parts["feature"].append(np.where(leaf, -1, feat))
            parts["threshold"].append(np.where(leaf, 0.0, thr))
            parts["left"].append(np.where(leaf, own, lf + offset))
            parts["right"].append(np.where(leaf, own, rt + offset))
            parts["value"].append(np.where(leaf, val, 0.0))
            root.append(offset)
            dim.append(d)
            boosted.append(is_boost)
            offset += len(feat)

        for model in models if isinstance(models, (list, tuple)) else [models]:
            ests = getattr(model, "estimators_", None)
            if ests is None or len(ests) != len(DIMENSIONS):
                raise ValueError(f"expected one fitted model per rating ({len(DIMENSIONS)}), got {type(model).__name__}")
            for d, est in enumerate(ests):
                if hasattr(est, "_predictors"):  # gradient boosting: one tree per iteration
                    baseline[d] = float(np.ravel(est._baseline_prediction)[0])
                    for (pred,) in est._predictors:
                        nd = pred.nodes
                        leaf = nd["is_leaf"].astype(bool)
                        add(d, True, nd["feature_idx"], nd["num_threshold"],
                            np.where(leaf, -1, nd["left"].astype(np.int64)), nd["right"].astype(np.int64), nd["value"])
                else:
                    for e in est.estimators_:
                        t = e.tree_
                        add(d, False, t.feature, t.threshold, t.children_left, t.children_right, t.value[:, 0, 0])
        if all(boosted):
            raise ValueError("the assessor needs a forest part (its spread is the uncertainty)")
        cat = {k: np.concatenate(v) for k, v in parts.items()}
        return cls(list(feature_names), cat["feature"].astype(np.int16), cat["threshold"].astype(np.float64),
                   cat["left"].astype(np.int32), cat["right"].astype(np.int32), cat["value"].astype(np.float32),
                   np.array(root, np.int32), np.array(dim, np.int8), np.array(boosted, bool), baseline,
                   dict(meta or {}))

    @classmethod
    def train(cls, X: np.ndarray, Y: np.ndarray, feature_names: Sequence[str], *, seed: int = 0,
              meta: dict | None = None) -> "ForestAssessor":
        """Fit :data:`SHIPPED_MODEL` (each of its ``+``-joined parts) on ``X`` (through
        :func:`portable_features`), ``Y`` and export it."""
        from .baselines import SklearnModel

        X = portable_features(X)
        models = [SklearnModel(part, seed).fit(X, Y).model_ for part in SHIPPED_MODEL.split("+")]
        return cls.from_sklearn(models, feature_names, meta)

    def _leaves(self, X: np.ndarray) -> np.ndarray:
        """(N, trees): each tree's leaf value for the portable features ``X`` (float32
        values, which scikit-learn's forest and boosted trees compare alike)."""
        node = np.broadcast_to(self.root, (len(X), len(self.root))).astype(np.int64)
        rows = np.arange(len(X))[:, None]
        while True:
            f = self.feature[node].astype(np.int64)
            live = f >= 0
            if not live.any():
                break
            x = X[rows, np.maximum(f, 0)]
            node = np.where(live, np.where(x <= self.threshold[node], self.left[node], self.right[node]), node)
        return self.value[node].astype(np.float64)

    def predict_with_spread(self, X: np.ndarray, chunk: int = 256) -> tuple[np.ndarray, np.ndarray]:
        """(N, 19) ratings (0..1 scale, the dataset's 1..7 divided by 7) and (N, 19) the
        spread (standard deviation) of each rating's forest trees; ``chunk`` rows at a time
        (memory: rows x trees)."""
        X = np.asarray(X)
        if len(X) > chunk:
            parts = [self.predict_with_spread(X[i:i + chunk], chunk) for i in range(0, len(X), chunk)]
            return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
        v = self._leaves(portable_features(X))
        k = len(DIMENSIONS)
        onehot = np.eye(k)[self.dim]  # (trees, 19)
        forest = onehot * ~self.boosted[:, None]
        n_forest = forest.sum(0)
        mean = v @ forest / n_forest
        spread = np.sqrt(np.maximum((v**2) @ forest / n_forest - mean**2, 0.0))
        boost = onehot * self.boosted[:, None]
        has_boost = boost.sum(0) > 0
        ratings = np.where(has_boost, (mean + self.baseline + v @ boost) / 2, mean)
        return ratings, spread

    def predict(self, X: np.ndarray) -> np.ndarray:
        """(N, 19) ratings (0..1 scale, the dataset's 1..7 divided by 7)."""
        return self.predict_with_spread(X)[0]

    _ARRAYS = ("feature", "threshold", "left", "right", "value", "root", "dim", "boosted", "baseline")

    def save(self, path: "str | Path") -> Path:
        from ..utils import atomic_path

        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            np.savez_compressed(fh, **{k: getattr(self, k) for k in self._ARRAYS},
                                names=np.array(self.feature_names), meta=np.array(json.dumps(self.meta)))
        return Path(path)

    @classmethod
    def load(cls, path: "str | Path" = DEFAULT_MODEL) -> "ForestAssessor":
        path = Path(path)
        if not path.is_file():
            raise AssessorError(f"{path}: no assessor file")
        try:
            z = np.load(path, allow_pickle=False)
            if "root" not in z.files:
                raise AssessorError(f"{path}: an assessor of an older format (one forest for all ratings); "
                                    f"rebuild it with scripts/build_assessor.py")
            return cls([str(s) for s in z["names"]], *(z[k] for k in cls._ARRAYS), json.loads(str(z["meta"])))
        except (KeyError, ValueError, OSError) as e:
            raise AssessorError(f"{path}: not an assessor file ({e})") from e

    def assess(self, perfs: Sequence[Performance]) -> np.ndarray:
        """(N, 19) ratings of performances, computed from their features."""
        from .features import performance_features

        X, names = performance_features(list(perfs))
        if names != self.feature_names:
            raise AssessorError("this assessor was trained on other features than this version computes; retrain it")
        return self.predict(X)


def ratings_table(ratings: np.ndarray) -> list[dict[str, float]]:
    """Per performance, ``{dimension: rating on the 1..7 scale}``."""
    return [{d: float(7.0 * v) for d, v in zip(DIMENSIONS, row)} for row in ratings]


def build_shipped_assessor(out: "str | Path", *, root=None, seed: int = 0, progress: bool = False,
                           score: bool = False) -> ForestAssessor:
    """Train an assessor the package ships (:data:`SHIPPED_MODEL` on every labelled
    PercePiano segment; with ``score``, on the score-relative features too) and write
    it to ``out`` (``scripts/build_assessor.py``)."""
    from .cv import FEATURE_VERSION, feature_matrix
    from .data import load_percepiano

    data = load_percepiano(root)
    X, names = feature_matrix(data, progress=progress, score=score)
    fa = ForestAssessor.train(X, data.ratings, names, seed=seed, meta={
        "model": SHIPPED_MODEL, "trained_on": "PercePiano, all 1,189 labelled segments",
        "feature_version": FEATURE_VERSION, "seed": seed, "licence": "PercePiano data: MIT",
        **({"score_aware": True} if score else {})})
    fa.save(out)
    return fa


def plot_ratings(ratings: np.ndarray, labels: Sequence[str], path: "str | Path") -> Path:
    """A horizontal bar chart of the 19 ratings (1..7) of up to a few performances."""
    from matplotlib.figure import Figure

    from ..utils import atomic_path

    ratings = np.atleast_2d(ratings) * 7.0
    fig = Figure(figsize=(8, 0.32 * len(DIMENSIONS) + 1.2), dpi=110)
    ax = fig.add_subplot(111)
    k = len(ratings)
    h = 0.8 / k
    y = np.arange(len(DIMENSIONS))
    for i, (r, lab) in enumerate(zip(ratings, labels)):
        ax.barh(y + (i - (k - 1) / 2) * h, r - 1.0, height=h, left=1.0, label=lab)
    ax.set_yticks(y, [d.replace("_", " ") for d in DIMENSIONS], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlim(1, 7)
    ax.set_xlabel("predicted rating (1 = left term of the scale, 7 = right term)")
    ax.axvline(4.0, color="grey", lw=0.5)
    if k > 1 or labels[0]:
        ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    return Path(path)


#: Fewer notes than this give no ratings: the features would describe next to nothing.
MIN_NOTES_TO_RATE = 8
#: What the training performances look like (the 1,189 labelled PercePiano segments, measured by
#: :func:`measure_domain`; a data test checks these numbers): outside it, ratings are guesses.
TRAINING_DOMAIN = {"seconds": (4.3, 100.0), "notes_per_second": (1.34, 25.5), "pitch_p5_min": 31.0,
                   "pitch_p95_max": 91.0, "pedal_share": 0.93}
#: 99% of the training performances play at least this share of their score's notes (the 1st
#: percentile of their match rates, rounded down; a data test checks it): below it, the
#: score-relative features describe a poor alignment, or the wrong score.
SCORE_MATCH_FLOOR = 0.75


def _domain_stats(perf: Performance) -> dict:
    n = perf.notes
    length = max(perf.end - perf.start, 1e-3)
    lo, hi = np.percentile(n["pitch"], [5, 95]) if len(n) else (np.nan, np.nan)
    return {"seconds": length, "notes_per_second": len(n) / length, "pitch_p5": float(lo), "pitch_p95": float(hi),
            "pedal": bool(perf.pedals.size), "programs": perf.metadata.get("programs", [0])}


def measure_domain(perfs: Sequence[Performance]) -> dict:
    """:data:`TRAINING_DOMAIN` of a set of performances (ranges rounded outward)."""
    st = [_domain_stats(p) for p in perfs]
    col = lambda k: np.array([s[k] for s in st], float)  # noqa: E731
    return {"seconds": (np.floor(col("seconds").min() * 10) / 10, np.ceil(col("seconds").max())),
            "notes_per_second": (np.floor(col("notes_per_second").min() * 100) / 100,
                                 np.ceil(col("notes_per_second").max() * 10) / 10),
            "pitch_p5_min": float(col("pitch_p5").min()), "pitch_p95_max": float(col("pitch_p95").max()),
            "pedal_share": round(float(col("pedal").mean()), 2)}


def domain_warnings(perf: Performance) -> list[str]:
    """Why ``perf`` is unlike the assessor's training performances (empty: it is alike)."""
    d, s, out = TRAINING_DOMAIN, _domain_stats(perf), []
    if not s["pedal"]:
        out.append(f"no sustain pedal ({d['pedal_share']:.0%} of the training performances use it)")
    lo, hi = d["seconds"]
    if not lo <= s["seconds"] <= hi:
        out.append(f"{s['seconds']:.1f} s long (training segments: {lo:g}-{hi:g} s)")
    lo, hi = d["notes_per_second"]
    if not lo <= s["notes_per_second"] <= hi:
        out.append(f"{s['notes_per_second']:.1f} notes/s (training: {lo:g}-{hi:g})")
    if s["pitch_p5"] < d["pitch_p5_min"] or s["pitch_p95"] > d["pitch_p95_max"]:
        out.append(f"register {s['pitch_p5']:.0f}-{s['pitch_p95']:.0f} (MIDI pitch, 5th-95th percentile) beyond "
                   f"the training range {d['pitch_p5_min']:.0f}-{d['pitch_p95_max']:.0f}")
    if any(p > 7 for p in s["programs"]):
        out.append(f"not a piano (General MIDI programs {s['programs']})")
    return out


def _rating_features(perf: Performance, score: Optional[Performance] = None) -> tuple[np.ndarray, list[str]]:
    """(1, D) features an assessor rates ``perf`` from (with ``score``: the score-relative
    ones too) and their names; refuses a performance with too few notes."""
    from .features import performance_features

    if len(perf) < MIN_NOTES_TO_RATE:
        raise AssessorError(f"{'no notes' if not len(perf) else f'too few notes ({len(perf)})'} to rate "
                            f"(needs {MIN_NOTES_TO_RATE})")
    X, names = performance_features([perf])
    if score is not None:
        from ..align import SCORE_FEATURE_NAMES, score_features

        X = np.concatenate([X, score_features(perf, score)[None]], axis=1)
        names = names + list(SCORE_FEATURE_NAMES)
    return X, names


def _check_fits(fa: "ForestAssessor", names: list[str]) -> None:
    if names != fa.feature_names:
        raise AssessorError("this assessor was trained on other features than this version computes; retrain it")


def rate(perf: Performance, fa: "ForestAssessor | None" = None) -> dict:
    """The 19 ratings of one performance on the 1..7 scale, each with the forest's spread
    (standard deviation over its trees), and the ways the input is unlike the training data."""
    fa = fa or ForestAssessor.load()
    X, names = _rating_features(perf)
    _check_fits(fa, names)
    rating, spread = (7.0 * a[0] for a in fa.predict_with_spread(X))
    return {"dimensions": list(DIMENSIONS), "rating": rating.tolist(), "spread": spread.tolist(),
            "warnings": domain_warnings(perf)}


def assess_files(files: Sequence["str | Path"], model: "str | Path | None" = None, *,
                 score: "str | Path | None" = None, on_skip=None) -> dict:
    """Rate MIDI files with an assessor: the shipped score-free one, or with ``score``
    (MIDI or MusicXML: what was played from) the score-aware one, which also reads how
    each performance deviates from the score. A file that cannot be read or rated (no
    notes, too few) is listed under ``failed`` with the reason (``on_skip(message)`` is
    told of each) and the others are rated."""
    from ..midi import read_midi

    fa = ForestAssessor.load(model or (SCORE_MODEL if score else DEFAULT_MODEL))
    aware = bool(fa.meta.get("score_aware"))
    if aware and score is None:
        raise AssessorError(f"{model}: this assessor reads the score too: give --score FILE")
    if score is not None and not aware:
        raise AssessorError(f"{model}: this assessor does not read scores; drop --score or use a score-aware one")
    score_perf = None
    if score is not None:
        from ..midi.score import read_score

        score_perf = read_score(score)
        if not len(score_perf):
            raise AssessorError(f"{score}: the score has no notes")
    rows, names, failed, warnings, matches = [], [], [], [], []
    for f in files:
        try:
            perf = read_midi(f)
            X, feat_names = _rating_features(perf, score_perf)
        except Exception as exc:  # one file never stops the batch; say what happened to it
            msg = (f"{f}: {exc}" if isinstance(exc, AssessorError) else str(exc) if isinstance(exc, TatumFlowError)
                   else f"{f}: {type(exc).__name__}: {exc}")
            failed.append({"file": str(f), "error": msg})
            if on_skip:
                on_skip(msg)
            continue
        _check_fits(fa, feat_names)
        rows.append(X[0])
        names.append(str(f))
        warnings.append(domain_warnings(perf))
        if score_perf is not None:
            match = float(X[0, feat_names.index("score/match_rate")])
            matches.append(match)
            if match < SCORE_MATCH_FLOOR:
                warnings[-1].append(f"only {match:.0%} of the score's notes were found in it (99% of the training "
                                    f"performances play {SCORE_MATCH_FLOOR:.0%} or more): is {score} the score it "
                                    f"was played from?")
    ratings, spread = fa.predict_with_spread(np.stack(rows)) if rows else (np.zeros((0, len(DIMENSIONS))),) * 2
    results = [{"file": n, "ratings": t, "spread": u, "warnings": w} for n, t, u, w in
               zip(names, ratings_table(ratings), ratings_table(spread), warnings)]
    for r, m in zip(results, matches):  # with a score: the share of its notes found in the performance
        r["score_match_rate"] = m
    return {"model": fa.meta, "scale": "1..7", "dimensions": list(DIMENSIONS), "ratings": ratings,
            "results": results, "failed": failed}


def format_ratings(results: list[dict]) -> str:
    from ..utils import format_table

    return "\n".join(r["file"] + (f"\n  {r['score_match_rate']:.0%} of the score's notes found in it"
                                  if "score_match_rate" in r else "")
                     + "".join(f"\n  warning: unlike the training data: {w}" for w in r["warnings"])
                     + "\n" + format_table([(d, f"{v:.2f}", f"{r['spread'][d]:.2f}") for d, v in r["ratings"].items()],
                                           ("dimension (low-high)", "rating 1..7", "+- (spread of the trees)"))
                     for r in results)
