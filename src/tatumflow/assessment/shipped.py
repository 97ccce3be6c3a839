"""The default assessor shipped inside the package, and the ``assess`` entry point.

Trees trained with scikit-learn (per rating, extra trees and gradient boosting
on the segment features, and gradient boosting on each note's row of context)
are exported to one small ``.npz`` (one node table) and evaluated here with
vectorised numpy, so a fresh install rates performances without scikit-learn
pickles or downloads.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from ..errors import TatumFlowError
from ..performance import Performance
from .data import DIMENSIONS

DEFAULT_MODEL = Path(__file__).with_name("default_assessor.npz")
#: The score-aware assessor: also reads how the performance deviates from its score.
SCORE_MODEL = Path(__file__).with_name("score_assessor.npz")


#: What the shipped assessors are (``assess-cv`` model names), without and with the score:
#: per rating, a compact extra-trees forest averaged with gradient-boosted trees, and in the
#: score-aware one also boosting note by note, a third each. (Without the score, rating note
#: by note gains on unheard excerpts but loses R² on unheard pieces and performers:
#: docs/assessor.md, "In the score-aware shipped assessor".)
SHIPPED_MODELS = {False: "extra-trees-per-dim-compact+boosting-per-dim",
                  True: "extra-trees-per-dim-compact+boosting-per-dim+note-boosting"}


#: Features within this of zero are zero (see :func:`portable_features`).
NEAR_ZERO = 1e-10
#: The same for note rows (:func:`~.inputs.note_rows`), whose running spreads come from
#: differences of sums: where a window is constant, rounding leaves up to about 1e-6.
NOTE_NEAR_ZERO = 1e-5


def portable_features(X: np.ndarray, near_zero: float = NEAR_ZERO) -> np.ndarray:
    """Features as every CPU computes them, for the shipped assessors to train and rate on.

    Two CPUs (vector widths, maths libraries) can disagree in a feature's last bits, and
    a value that should be 0 (the timing spread of a deadpan performance) comes out as
    +-1e-13 on one and 0 on the other. Such noise changes a trained tree: a feature
    constant in a node on one machine is not on the other, and the tree's random draws
    part ways from there. Values round to float32 (24 bits, the precision scikit-learn's
    forests split at) and those then within ``near_zero`` of zero become 0, so such
    differences do not reach the trees (docs/assessor.md, "Rebuilding the shipped
    assessors on another CPU")."""
    X = np.asarray(X, np.float64).astype(np.float32).astype(np.float64)
    return np.where(np.abs(X) < near_zero, 0.0, X)


class AssessorError(TatumFlowError):
    """An assessor file is missing or does not fit this version of the features."""


class AssessorMismatch(AssessorError):
    """An assessor trained on other features or note rows than this version computes."""


@dataclass
class ForestAssessor:
    """Trees over the hand-crafted features, each predicting one of the 19 ratings,
    and optionally boosted trees over each note's row of context.

    A rating's forest trees (extra trees) are averaged; its boosted trees are summed
    onto ``baseline``; its note trees (``on_notes``) are summed onto ``note_baseline``
    for each note (:func:`~.inputs.note_rows`, columns ``note_names``) and the notes'
    ratings averaged. A rating is the mean of the parts it has (what ``assess-cv
    --model`` scores for :data:`SHIPPED_MODELS`). The spread of a rating's forest trees
    is its uncertainty. All trees share one node table: a leaf has ``feature`` -1 and
    points to itself. :meth:`train` and the predictions read the features and note rows
    through :func:`portable_features`."""

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
    on_notes: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))  # (trees,) bool: reads note rows
    note_baseline: np.ndarray = field(default_factory=lambda: np.zeros(len(DIMENSIONS)))  # (19,)
    note_names: list[str] = field(default_factory=list)

    def __post_init__(self):
        if len(self.on_notes) != len(self.root):  # an assessor without note trees
            self.on_notes = np.zeros(len(self.root), bool)
        # for _leaves: a leaf reads feature 0 and goes to itself either way
        self._feature0 = np.maximum(self.feature, 0).astype(np.intp)
        self._child = np.stack([self.left, self.right], 1).ravel().astype(np.intp)
        self._trees = {on: np.flatnonzero(self.on_notes == on) for on in (False, True)}
        self._depth = {on: self._max_depth(t) for on, t in self._trees.items()}

    def _max_depth(self, trees: np.ndarray) -> int:
        """The most splits on a path from a root of ``trees`` to a leaf."""
        frontier, depth = self.root[trees].astype(np.intp), 0
        while True:
            inner = frontier[self.feature[frontier] >= 0]
            if not len(inner):
                return depth
            frontier, depth = np.concatenate([self.left[inner], self.right[inner]]), depth + 1

    @property
    def reads_notes(self) -> bool:
        """Whether it rates each note too (:meth:`predict_with_spread` then needs the note rows)."""
        return bool(self.on_notes.any())

    @classmethod
    def from_sklearn(cls, models, feature_names: Sequence[str], meta: dict | None = None,
                     note_names: Sequence[str] = ()) -> "ForestAssessor":
        """Export fitted one-model-per-rating regressors (``MultiOutputRegressor`` of extra
        trees / random forests, or of ``HistGradientBoostingRegressor``; at least one forest;
        a :class:`~.baselines.NoteBoosting` reading note rows with columns ``note_names``)."""
        from .baselines import NoteBoosting

        parts = {"feature": [], "threshold": [], "left": [], "right": [], "value": []}
        root, dim, boosted, on_notes, offset = [], [], [], [], 0
        baseline, note_baseline = np.zeros(len(DIMENSIONS)), np.zeros(len(DIMENSIONS))

        def add(d, is_boost, notes, feat, thr, lf, rt, val):
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
            on_notes.append(notes)
            offset += len(feat)

        def add_boosting(d, est, notes):
            (note_baseline if notes else baseline)[d] = float(np.ravel(est._baseline_prediction)[0])
            for (pred,) in est._predictors:  # one tree per iteration
                nd = pred.nodes
                leaf = nd["is_leaf"].astype(bool)
                add(d, True, notes, nd["feature_idx"], nd["num_threshold"],
                    np.where(leaf, -1, nd["left"].astype(np.int64)), nd["right"].astype(np.int64), nd["value"])

        for model in models if isinstance(models, (list, tuple)) else [models]:
            notes = isinstance(model, NoteBoosting)
            ests = model.models_ if notes else getattr(model, "estimators_", None)
            if ests is None or len(ests) != len(DIMENSIONS):
                raise ValueError(f"expected one fitted model per rating ({len(DIMENSIONS)}), got {type(model).__name__}")
            if notes and len(note_names) != ests[0].n_features_in_:
                raise ValueError(f"note_names: {len(note_names)} names for {ests[0].n_features_in_} note-row columns")
            for d, est in enumerate(ests):
                if hasattr(est, "_predictors"):
                    add_boosting(d, est, notes)
                else:
                    for e in est.estimators_:
                        t = e.tree_
                        add(d, False, False, t.feature, t.threshold, t.children_left, t.children_right,
                            t.value[:, 0, 0])
        if all(boosted):
            raise ValueError("the assessor needs a forest part (its spread is the uncertainty)")
        cat = {k: np.concatenate(v) for k, v in parts.items()}
        return cls(list(feature_names), cat["feature"].astype(np.int16), cat["threshold"].astype(np.float64),
                   cat["left"].astype(np.int32), cat["right"].astype(np.int32), cat["value"].astype(np.float32),
                   np.array(root, np.int32), np.array(dim, np.int8), np.array(boosted, bool), baseline,
                   dict(meta or {}), np.array(on_notes, bool), note_baseline,
                   list(note_names) if any(on_notes) else [])

    @classmethod
    def train(cls, X: np.ndarray, Y: np.ndarray, feature_names: Sequence[str], *, model: str | None = None,
              seed: int = 0, meta: dict | None = None, arrays: Sequence | None = None,
              score: bool = False) -> "ForestAssessor":
        """Fit ``model`` (by default the shipped one, :data:`SHIPPED_MODELS`; each of its
        ``+``-joined parts) on ``X`` (through :func:`portable_features`), ``Y`` and export
        it. ``score``: ``X`` holds the score-relative features too. A part that rates note
        by note reads ``arrays`` (each row's :class:`~.inputs.NoteArrays`, with ``score``
        read against its score: the note rows then hold the deviations)."""
        from .baselines import NOTE_MODELS, NoteBoosting, SklearnModel
        from .inputs import note_row_names

        X = portable_features(X)
        models = []
        for part in (model or SHIPPED_MODELS[score]).split("+"):
            if part in NOTE_MODELS:
                if arrays is None or len(arrays) != len(Y):
                    raise ValueError(f"{part} needs the note arrays of the {len(Y)} training performances")
                models.append(NoteBoosting(arrays, seed, score=score, portable=True).fit(X, Y, np.arange(len(Y))))
            else:
                models.append(SklearnModel(part, seed).fit(X, Y).model_)
        return cls.from_sklearn(models, feature_names, meta, note_row_names(score))

    def _leaves(self, X: np.ndarray, notes: bool, block: int | None = None) -> np.ndarray:
        """(N, trees): the leaf value of each segment tree (``notes``: each note tree) for
        the portable features or note rows ``X`` (float32 values, which scikit-learn's
        forest and boosted trees compare alike); ``block`` rows at a time (by default
        as many as keep a block's nodes to 2**18)."""
        trees = self._trees[notes]
        X = np.ascontiguousarray(X, np.float64)
        block = block or max(1, 2**18 // max(len(trees), 1))
        out = np.empty((len(X), len(trees)))
        for j in range(0, len(X), block):
            x = X[j:j + block]
            node = np.broadcast_to(self.root[trees].astype(np.intp), (len(x), len(trees)))
            at = (np.arange(len(x)) * X.shape[1])[:, None]  # where each row starts in x.ravel()
            for _ in range(self._depth[notes]):  # a leaf stays where it is
                go_right = x.ravel()[at + self._feature0[node]] > self.threshold[node]
                node = self._child[2 * node + go_right]
            out[j:j + block] = self.value[node]
        return out

    def _note_ratings(self, notes: Sequence[np.ndarray], block: int | None = None) -> np.ndarray:
        """(len(notes), 19): per performance, the mean over its note rows (at most
        :data:`MAX_NOTES_RATED` of them, evenly spaced) of the note trees' ratings."""
        onehot = np.eye(len(DIMENSIONS))[self.dim[self._trees[True]]]
        out = np.zeros((len(notes), len(DIMENSIONS)))
        for i, rows in enumerate(notes):
            rows = np.asarray(rows)
            if rows.ndim != 2 or rows.shape[1] != len(self.note_names) or not len(rows):
                raise AssessorError(f"expected note rows with {len(self.note_names)} columns, got {rows.shape}")
            if len(rows) > MAX_NOTES_RATED:
                rows = rows[np.linspace(0, len(rows) - 1, MAX_NOTES_RATED).round().astype(np.intp)]
            leaves = self._leaves(portable_features(rows, NOTE_NEAR_ZERO), True, block)
            out[i] = self.note_baseline + leaves.mean(0) @ onehot
        return out

    def predict_with_spread(self, X: np.ndarray, notes: Sequence[np.ndarray] | None = None, chunk: int = 256,
                            block: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(N, 19) ratings (0..1 scale, the dataset's 1..7 divided by 7) and (N, 19) the
        spread (standard deviation) of each rating's forest trees; ``chunk`` rows at a time
        (memory: rows x trees), each tree walked ``block`` rows (or notes) at a time. An
        assessor that :attr:`reads_notes` needs ``notes``: each row's note rows
        (:func:`~.inputs.note_rows`)."""
        X = np.asarray(X)
        if self.reads_notes and (notes is None or len(notes) != len(X)):
            raise AssessorError("this assessor rates each note too: give the note rows of every performance")
        if len(X) > chunk:
            parts = [self.predict_with_spread(X[i:i + chunk], None if notes is None else notes[i:i + chunk], chunk,
                                              block) for i in range(0, len(X), chunk)]
            return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
        seg = self._trees[False]
        v = self._leaves(portable_features(X), False, block)
        k = len(DIMENSIONS)
        onehot = np.eye(k)[self.dim[seg]]  # (trees, 19)
        forest = onehot * ~self.boosted[seg, None]
        n_forest = forest.sum(0)
        mean = v @ forest / n_forest
        spread = np.sqrt(np.maximum((v**2) @ forest / n_forest - mean**2, 0.0))
        boost = onehot * self.boosted[seg, None]
        has_boost = boost.sum(0) > 0
        total, parts = mean + np.where(has_boost, self.baseline + v @ boost, 0.0), 1.0 + has_boost
        if self.reads_notes:
            has_notes = np.bincount(self.dim[self.on_notes], minlength=k) > 0
            total = total + np.where(has_notes, self._note_ratings(notes, block), 0.0)
            parts = parts + has_notes
        return total / parts, spread

    def predict(self, X: np.ndarray, notes: Sequence[np.ndarray] | None = None) -> np.ndarray:
        """(N, 19) ratings (0..1 scale, the dataset's 1..7 divided by 7)."""
        return self.predict_with_spread(X, notes)[0]

    _ARRAYS = ("feature", "threshold", "left", "right", "value", "root", "dim", "boosted", "baseline", "on_notes",
               "note_baseline")

    def save(self, path: "str | Path") -> Path:
        from ..utils import atomic_path

        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            np.savez_compressed(fh, **{k: getattr(self, k) for k in self._ARRAYS}, names=np.array(self.feature_names),
                                note_names=np.array(self.note_names, dtype=str), meta=np.array(json.dumps(self.meta)))
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
            arrays = {k: z[k] for k in cls._ARRAYS if k in z.files}  # files without note trees lack the last two
            note_names = [str(s) for s in z["note_names"]] if "note_names" in z.files else []
            return cls([str(s) for s in z["names"]], meta=json.loads(str(z["meta"])), note_names=note_names, **arrays)
        except (KeyError, ValueError, OSError, TypeError) as e:
            raise AssessorError(f"{path}: not an assessor file ({e})") from e

    def inputs(self, perf: Performance, score: Optional[Performance] = None
               ) -> tuple[np.ndarray, Optional[np.ndarray], dict]:
        """What this assessor rates ``perf`` from: its (1, D) features (with ``score``, the
        score-relative ones too), its note rows (``None`` unless it :attr:`reads_notes`)
        and the score's match rate (``{}`` without one). Refuses a performance with too
        few notes, and features or note rows other than it was trained on."""
        from .features import performance_features
        from .inputs import NoteArrays, note_row_names, note_rows

        if len(perf) < MIN_NOTES_TO_RATE:
            raise AssessorError(f"{'no notes' if not len(perf) else f'too few notes ({len(perf)})'} to rate "
                                f"(needs {MIN_NOTES_TO_RATE})")
        X, names = performance_features([perf])
        alignment, extra = None, {}
        if score is not None:
            from ..align import SCORE_FEATURE_NAMES, align, score_features

            alignment = align(perf, score)
            X = np.concatenate([X, score_features(perf, score, alignment)[None]], axis=1)
            names = names + list(SCORE_FEATURE_NAMES)
            extra["match_rate"] = alignment.match_rate
        if names != self.feature_names or (self.reads_notes and
                                           self.note_names != list(note_row_names(score is not None))):
            raise AssessorMismatch("this assessor was trained on other features than this version computes; "
                                   "retrain it")
        rows = note_rows(NoteArrays.of(perf, score, alignment), score is not None) if self.reads_notes else None
        return X, rows, extra

    def assess(self, perfs: Sequence[Performance]) -> np.ndarray:
        """(N, 19) ratings of performances (each with at least :data:`MIN_NOTES_TO_RATE`
        notes), computed from their features and notes."""
        inputs = [self.inputs(p) for p in perfs]
        if not inputs:
            return np.zeros((0, len(DIMENSIONS)))
        return self.predict(np.concatenate([x for x, _, _ in inputs]),
                            [r for _, r, _ in inputs] if self.reads_notes else None)


def ratings_table(ratings: np.ndarray) -> list[dict[str, float]]:
    """Per performance, ``{dimension: rating on the 1..7 scale}``."""
    return [{d: float(7.0 * v) for d, v in zip(DIMENSIONS, row)} for row in ratings]


def build_shipped_assessor(out: "str | Path", *, root=None, seed: int = 0, progress: bool = False,
                           score: bool = False) -> ForestAssessor:
    """Train an assessor the package ships (:data:`SHIPPED_MODELS` on every labelled
    PercePiano segment; with ``score``, the score-aware one, on the score-relative
    features and the note rows against the score too) and write it to ``out``
    (``scripts/build_assessor.py``)."""
    from .cv import FEATURE_VERSION, feature_matrix, note_arrays
    from .data import load_percepiano

    data = load_percepiano(root)
    X, names = feature_matrix(data, progress=progress, score=score)
    model = SHIPPED_MODELS[score]
    arrays = note_arrays(data, score=score, progress=progress) if "note-boosting" in model.split("+") else None
    fa = ForestAssessor.train(X, data.ratings, names, model=model, seed=seed, arrays=arrays, score=score, meta={
        "model": model, "trained_on": "PercePiano, all 1,189 labelled segments",
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
#: The note trees rate at most this many of a performance's notes, evenly spaced (each
#: note's row still reads all its neighbours), and average their ratings: a long performance
#: costs about what a PercePiano segment (at most 413 notes, all rated) does.
MAX_NOTES_RATED = 512
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


def rate(perf: Performance, fa: "ForestAssessor | None" = None) -> dict:
    """The 19 ratings of one performance on the 1..7 scale, each with the forest's spread
    (standard deviation over its trees), and the ways the input is unlike the training data."""
    fa = fa or ForestAssessor.load()
    X, notes, _ = fa.inputs(perf)
    rating, spread = (7.0 * a[0] for a in fa.predict_with_spread(X, None if notes is None else [notes]))
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
    rows, notes, names, failed, warnings, matches = [], [], [], [], [], []
    for f in files:
        try:
            perf = read_midi(f)
            X, per_note, extra = fa.inputs(perf, score_perf)
        except AssessorMismatch:
            raise
        except Exception as exc:  # one file never stops the batch; say what happened to it
            msg = (f"{f}: {exc}" if isinstance(exc, AssessorError) else str(exc) if isinstance(exc, TatumFlowError)
                   else f"{f}: {type(exc).__name__}: {exc}")
            failed.append({"file": str(f), "error": msg})
            if on_skip:
                on_skip(msg)
            continue
        rows.append(X[0])
        notes.append(per_note)
        names.append(str(f))
        warnings.append(domain_warnings(perf))
        if score_perf is not None:
            match = float(extra["match_rate"])
            matches.append(match)
            if match < SCORE_MATCH_FLOOR:
                warnings[-1].append(f"only {match:.0%} of the score's notes were found in it (99% of the training "
                                    f"performances play {SCORE_MATCH_FLOOR:.0%} or more): is {score} the score it "
                                    f"was played from?")
    ratings, spread = (fa.predict_with_spread(np.stack(rows), notes if fa.reads_notes else None) if rows
                       else (np.zeros((0, len(DIMENSIONS))),) * 2)
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
