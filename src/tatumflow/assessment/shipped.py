"""The default assessor shipped inside the package, and the ``assess`` entry point.

A forest trained with scikit-learn is exported to one small ``.npz`` (node arrays,
leaf ratings as float16) and evaluated here with vectorised numpy, so a fresh
install rates performances without scikit-learn pickles or downloads.
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


class AssessorError(TatumFlowError):
    """An assessor file is missing or does not fit this version of the features."""


@dataclass
class ForestAssessor:
    """A regression forest over the hand-crafted features, all 19 ratings at once."""

    feature_names: list[str]
    feature: np.ndarray    # (T, M) int16, -1 at leaves
    threshold: np.ndarray  # (T, M) float32
    left: np.ndarray       # (T, M) int16 (a leaf points to itself)
    right: np.ndarray      # (T, M) int16
    value: np.ndarray      # (T, M, 19) float16, the mean rating of each node
    meta: dict

    @classmethod
    def from_sklearn(cls, forest, feature_names: Sequence[str], meta: dict | None = None) -> "ForestAssessor":
        trees = [e.tree_ for e in forest.estimators_]
        m = max(t.node_count for t in trees)
        T = len(trees)
        feat = np.full((T, m), -1, np.int16)
        thr = np.zeros((T, m), np.float32)
        idx_t = np.int16 if m < 32768 else np.int32
        lf = np.zeros((T, m), idx_t)
        rt = np.zeros((T, m), idx_t)
        val = np.zeros((T, m, len(DIMENSIONS)), np.float16)
        for i, t in enumerate(trees):
            n = t.node_count
            leaf = t.children_left[:n] < 0
            feat[i, :n] = np.where(leaf, -1, t.feature[:n])
            thr[i, :n] = t.threshold[:n]
            lf[i, :n] = np.where(leaf, np.arange(n), t.children_left[:n])
            rt[i, :n] = np.where(leaf, np.arange(n), t.children_right[:n])
            val[i, :n][leaf] = t.value[:n, :, 0][leaf]  # only leaves are ever read
        return cls(list(feature_names), feat, thr, lf, rt, val, dict(meta or {}))

    def predict(self, X: np.ndarray) -> np.ndarray:
        """(N, 19) ratings (0..1 scale, the dataset's 1..7 divided by 7)."""
        return self.tree_predictions(X).mean(1)

    def tree_predictions(self, X: np.ndarray) -> np.ndarray:
        """(N, trees, 19): each tree's ratings; their spread is the forest's uncertainty."""
        X = np.asarray(X, np.float32)
        n, T = X.shape[0], self.feature.shape[0]
        node = np.zeros((n, T), np.int64)
        tree = np.arange(T)[None, :]
        rows = np.arange(n)[:, None]
        for _ in range(self.feature.shape[1]):
            f = self.feature[tree, node].astype(np.int64)
            live = f >= 0
            if not live.any():
                break
            go_left = X[rows, np.maximum(f, 0)] <= self.threshold[tree, node]
            nxt = np.where(go_left, self.left[tree, node], self.right[tree, node]).astype(np.int64)
            node = np.where(live, nxt, node)
        return self.value[tree, node].astype(np.float64)

    def save(self, path: "str | Path") -> Path:
        from ..utils import atomic_path

        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            np.savez_compressed(fh, feature=self.feature, threshold=self.threshold, left=self.left,
                                right=self.right, value=self.value,
                                names=np.array(self.feature_names), meta=np.array(json.dumps(self.meta)))
        return Path(path)

    @classmethod
    def load(cls, path: "str | Path" = DEFAULT_MODEL) -> "ForestAssessor":
        path = Path(path)
        if not path.is_file():
            raise AssessorError(f"{path}: no assessor file")
        try:
            z = np.load(path, allow_pickle=False)
            return cls([str(s) for s in z["names"]], z["feature"], z["threshold"], z["left"], z["right"],
                       z["value"], json.loads(str(z["meta"])))
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
    """Train an assessor the package ships (``extra-trees-compact`` on every labelled
    PercePiano segment; with ``score``, on the score-relative features too) and write
    it to ``out`` (``scripts/build_assessor.py``)."""
    from .baselines import SklearnModel
    from .cv import FEATURE_VERSION, feature_matrix
    from .data import load_percepiano

    data = load_percepiano(root)
    X, names = feature_matrix(data, progress=progress, score=score)
    m = SklearnModel("extra-trees-compact", seed).fit(X, data.ratings)
    fa = ForestAssessor.from_sklearn(m.model_, names, {
        "model": "extra-trees-compact", "trained_on": "PercePiano, all 1,189 labelled segments",
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
    trees = fa.tree_predictions(X)[0] * 7.0  # (T, 19)
    return {"dimensions": list(DIMENSIONS), "rating": trees.mean(0).tolist(), "spread": trees.std(0).tolist(),
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
    rows, names, failed, warnings = [], [], [], []
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
    trees = fa.tree_predictions(np.stack(rows)) if rows else np.zeros((0, 1, len(DIMENSIONS)))
    ratings, spread = trees.mean(1), trees.std(1)
    return {"model": fa.meta, "scale": "1..7", "dimensions": list(DIMENSIONS), "ratings": ratings,
            "results": [{"file": n, "ratings": t, "spread": u, "warnings": w} for n, t, u, w in
                        zip(names, ratings_table(ratings), ratings_table(spread), warnings)],
            "failed": failed}


def format_ratings(results: list[dict]) -> str:
    from ..utils import format_table

    return "\n".join(r["file"] + "".join(f"\n  warning: unlike the training data: {w}" for w in r["warnings"])
                     + "\n" + format_table([(d, f"{v:.2f}", f"{r['spread'][d]:.2f}") for d, v in r["ratings"].items()],
                                           ("dimension (low-high)", "rating 1..7", "+- (spread of the trees)"))
                     for r in results)
