"""Classical assessors on the hand-crafted features: the training mean, ridge
regression, random forest and extra trees (all 19 ratings at once)."""

from __future__ import annotations

import numpy as np


class MeanModel:
    """Predicts the training mean of each dimension (the floor every model must beat)."""

    name = "mean"

    def fit(self, X, Y):
        self.mean_ = Y.mean(0)
        return self

    def predict(self, X):
        return np.repeat(self.mean_[None, :], len(X), axis=0)


class SklearnModel:
    """A scikit-learn regressor on standardised features, for all dimensions."""

    def __init__(self, name: str, seed: int = 0):
        self.name, self.seed = name, seed

    def _make(self):
        from sklearn.ensemble import ExtraTreesRegressor, RandomForestRegressor
        from sklearn.linear_model import RidgeCV
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
        if self.name == "extra-trees-compact":  # the shipped default: small enough for the package
            return ExtraTreesRegressor(n_estimators=120, min_samples_leaf=5, max_features=0.5,
                                       n_jobs=-1, random_state=self.seed)
        raise ValueError(f"unknown classical model {self.name!r}")

    def fit(self, X, Y):
        self.model_ = self._make().fit(X, Y)
        return self

    def predict(self, X):
        return self.model_.predict(X)

    def feature_importances(self) -> np.ndarray | None:
        m = self.model_
        if hasattr(m, "feature_importances_"):
            return m.feature_importances_
        coef = m[-1].coef_  # ridge on standardised features: mean |coefficient| over dimensions
        return np.abs(coef).mean(0)


CLASSICAL = ("mean", "ridge", "random-forest", "extra-trees", "extra-trees-compact")


def make_classical(name: str, seed: int = 0):
    return MeanModel() if name == "mean" else SklearnModel(name, seed)
