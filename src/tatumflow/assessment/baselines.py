"""Classical assessors on the hand-crafted features: the training mean, ridge
regression, random forest and extra trees (one model for all 19 ratings), and
extra trees and gradient boosting with one model per rating (``*-per-dim``:
each rating splits on its own features instead of on what serves all 19 at
once; on the ``excerpt`` protocol mean r 0.666 -> 0.687, and 0.699 with the two
averaged). ``note-boosting`` rates note by note: boosting per rating on each
note's row of context (:func:`~.inputs.note_rows`), its ratings of a segment's
notes averaged; it errs unlike the trees on segment summaries, and averaged in
with them a third it lifts them (docs/assessor.md)."""

from __future__ import annotations

import numpy as np


#: Trees per rating of the shipped assessor (``extra-trees-per-dim-compact``).
COMPACT_TREES = 40


class MeanModel:
    """Predicts the training mean of each dimension (the floor every model must beat)."""

    name = "mean"

    def fit(self, X, Y):
        self.mean_ = Y.mean(0)
        return self

    def predict(self, X):
        return np.repeat(self.mean_[None, :], len(X), axis=0)


class SklearnModel:
    """A scikit-learn regressor of all 19 ratings (ridge on standardised features; the
    trees on the features as they are)."""

    def __init__(self, name: str, seed: int = 0):
        self.name, self.seed = name, seed

    def _make(self):
        from sklearn.ensemble import ExtraTreesRegressor, HistGradientBoostingRegressor, RandomForestRegressor
        from sklearn.linear_model import RidgeCV
        from sklearn.multioutput import MultiOutputRegressor
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        if self.name == "ridge":
            return make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-1, 4, 21)))
        if self.name == "random-forest":
            return RandomForestRegressor(n_estimators=300, min_samples_leaf=2, max_features=0.33,
                                         n_jobs=-1, random_state=self.seed)
        if self.name == "extra-trees":
            return ExtraTreesRegressor(n_estimators=400, min_samples_leaf=2, max_features=0.5,
                                       n_jobs=-1, random_state=self.seed)
        if self.name == "extra-trees-per-dim":
            return MultiOutputRegressor(ExtraTreesRegressor(n_estimators=200, min_samples_leaf=3, max_features=0.5,
                                                            n_jobs=-1, random_state=self.seed))
        if self.name == "extra-trees-per-dim-compact":  # the shipped one: small enough for the package
            return MultiOutputRegressor(ExtraTreesRegressor(n_estimators=COMPACT_TREES, min_samples_leaf=5,
                                                            max_features=0.5, n_jobs=-1, random_state=self.seed))
        if self.name == "boosting-per-dim":
            return MultiOutputRegressor(HistGradientBoostingRegressor(
                max_iter=200, learning_rate=0.05, max_leaf_nodes=7, min_samples_leaf=20, l2_regularization=1.0,
                random_state=self.seed))
        raise ValueError(f"unknown classical model {self.name!r}")

    def fit(self, X, Y):
        self.model_ = self._make().fit(X, Y)
        return self

    def predict(self, X):
        return self.model_.predict(X)

    def feature_importances(self) -> np.ndarray | None:
        m = self.model_
        if hasattr(m, "estimators_") and not hasattr(m, "feature_importances_"):  # one model per rating
            imps = [getattr(e, "feature_importances_", None) for e in m.estimators_]
            return None if any(i is None for i in imps) else np.mean(imps, 0)
        if hasattr(m, "feature_importances_"):
            return m.feature_importances_
        coef = m[-1].coef_  # ridge on standardised features: mean |coefficient| over dimensions
        return np.abs(coef).mean(0)


class NoteBoosting:
    """Gradient boosting per rating on single notes: each training segment gives up to
    ``notes_per_segment`` of its notes (drawn with the seed; every segment counts
    alike, however many notes it has), each note's row of context
    (:func:`~.inputs.note_rows`; ``score``: with its deviations from the score) the
    input and its segment's rating the target; a segment's rating is the mean of
    its notes' (the training mean for a segment with none). Like the networks it
    reads the segments' note arrays, by row number. ``portable``: the rows pass
    through :func:`~.shipped.portable_features` (as the shipped assessors read them)."""

    name = "note-boosting"

    def __init__(self, arrays, seed: int = 0, *, score: bool = False, notes_per_segment: int = 64,
                 portable: bool = False):
        self.arrays, self.seed, self.score, self.cap, self.portable = arrays, seed, score, notes_per_segment, portable

    def _rows(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The note rows of segments ``rows`` and which of ``rows`` (0-based) each came from."""
        from .inputs import note_rows

        mats = [note_rows(self.arrays[int(r)], self.score) for r in rows]
        owner = np.repeat(np.arange(len(rows)), [len(m) for m in mats])
        R = np.concatenate(mats)
        if self.portable:
            from .shipped import NOTE_NEAR_ZERO, portable_features

            R = portable_features(R, NOTE_NEAR_ZERO)
        return R, owner

    def fit(self, X, Y, rows: np.ndarray) -> "NoteBoosting":
        from sklearn.ensemble import HistGradientBoostingRegressor

        R, owner = self._rows(rows)
        # at most `cap` notes a segment: a random rank within each segment, the lowest kept
        rank = np.empty(len(owner), np.int64)
        order = np.lexsort((np.random.default_rng(self.seed).random(len(owner)), owner))
        rank[order] = np.arange(len(owner)) - np.searchsorted(owner[order], owner[order])
        keep = rank < self.cap
        R, target = R[keep], np.asarray(Y)[owner[keep]]
        self.mean_ = np.asarray(Y).mean(0)
        self.models_ = [HistGradientBoostingRegressor(
            max_iter=300, learning_rate=0.05, max_leaf_nodes=15, min_samples_leaf=200, early_stopping=False,
            random_state=self.seed).fit(R, target[:, j]) for j in range(target.shape[1])]
        return self

    def predict(self, X, rows: np.ndarray) -> np.ndarray:
        R, owner = self._rows(rows)
        count = np.bincount(owner, minlength=len(rows))
        out = np.repeat(self.mean_[None, :], len(rows), axis=0)
        if len(R):
            per_note = np.stack([m.predict(R) for m in self.models_], 1)
            for j in range(per_note.shape[1]):
                s = np.bincount(owner, per_note[:, j], minlength=len(rows))
                out[count > 0, j] = s[count > 0] / count[count > 0]
        return out


#: Classical models that read the segments' notes (their note arrays), not the features.
NOTE_MODELS = ("note-boosting",)

CLASSICAL = ("mean", "ridge", "random-forest", "extra-trees", "extra-trees-per-dim", "extra-trees-per-dim-compact",
             "boosting-per-dim")


def make_classical(name: str, seed: int = 0):
    return MeanModel() if name == "mean" else SklearnModel(name, seed)
