"""Run a model under a protocol and score it: ``tatumflow assess-cv``."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .data import DIMENSIONS, PercePiano, load_percepiano
from .metrics import bootstrap_ci, scores
from .protocols import get_protocol

FEATURE_VERSION = 1


def feature_matrix(data: PercePiano, *, progress: bool = False, cache: bool = True) -> tuple[np.ndarray, list[str]]:
    """Hand-crafted features of every segment, cached (by file names, sizes and
    mtimes and the feature version) in the TatumFlow cache folder."""
    from ..utils import cache_dir
    from .features import performance_features

    h = hashlib.sha256(f"v{FEATURE_VERSION}".encode())
    for p in data.paths:
        st = p.stat()
        h.update(f"{p.name}:{st.st_size}:{st.st_mtime_ns};".encode())
    f = cache_dir() / "assessment" / f"features_{h.hexdigest()[:16]}.npz"
    if cache and f.is_file():
        z = np.load(f, allow_pickle=False)
        return z["X"], [str(n) for n in z["names"]]
    X, names = performance_features(data.performances(progress=progress))
    if cache:
        from ..utils import atomic_path

        f.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(f) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, X=X, names=np.array(names))
    return X, names


@dataclass
class CVResult:
    model: str
    protocol: str
    scores: dict            # pooled (or fold-averaged) headline scores and per-dimension table
    folds: list[dict]       # per-fold scores
    ci95: dict              # cluster-bootstrap intervals (pooled protocols) or fold range
    predictions: np.ndarray  # (N, 19) out-of-fold predictions (pooled) or fold-mean test predictions
    seconds: float
    analysis: dict | None = None  # feature importances and the hardest dimensions, excerpts, performers

    def as_dict(self) -> dict:
        """JSON-ready (NaN, e.g. within-excerpt r on a test set without repeated passages, becomes null)."""
        return _no_nan({"model": self.model, "protocol": self.protocol, "scores": self.scores, "folds": self.folds,
                        "ci95": self.ci95, "seconds": self.seconds, "dimensions": list(DIMENSIONS),
                        "analysis": self.analysis})


def error_analysis(data: PercePiano, pred: np.ndarray, mask: np.ndarray, importances: np.ndarray | None,
                   feature_names: list[str], top: int = 5) -> dict:
    """Where the model is weakest: dimensions by r, excerpts and performers by mean
    absolute error (on the 1..7 scale), and the most important features."""
    y, p = data.ratings[mask], pred[mask]
    r = scores(y, p, data.excerpts[mask])["per_dim"]["r"]
    err = 7.0 * np.abs(y - p).mean(1)

    def worst(keys):
        keys = np.asarray(keys)[mask]
        u = np.unique(keys)
        m = np.array([err[keys == k].mean() for k in u])
        o = np.argsort(-m)[:top]
        return [{"name": str(u[i]), "mae": float(m[i]), "segments": int((keys == u[i]).sum())} for i in o]

    out = {"hardest_dimensions": [{"name": DIMENSIONS[i], "r": float(r[i])} for i in np.argsort(r)[:top]],
           "hardest_excerpts": worst(data.excerpts), "hardest_performers": worst(data.players),
           "mae_overall": float(err.mean())}
    if importances is not None:
        o = np.argsort(-importances)[: 3 * top]
        out["top_features"] = [{"name": feature_names[i], "importance": float(importances[i])} for i in o]
    return out


def _no_nan(x):
    if isinstance(x, float):
        return None if x != x else x
    if isinstance(x, dict):
        return {k: _no_nan(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_no_nan(v) for v in x]
    return x


def make_model(name: str, seed: int = 0):
    from .baselines import CLASSICAL, make_classical

    if name in CLASSICAL:
        return make_classical(name, seed)
    raise ValueError(f"unknown assessor model {name!r}; available: {', '.join(CLASSICAL)}")


def run_cv(model: str, protocol: str, *, data: PercePiano | None = None, seed: int = 0,
           bootstrap: int = 1000, progress: bool = False) -> CVResult:
    """Train ``model`` on each fold of ``protocol`` and score its test predictions."""
    t0 = time.perf_counter()
    data = data or load_percepiano()
    proto = get_protocol(protocol, data)
    X, feat_names = feature_matrix(data, progress=progress)
    imps = []
    Y = data.ratings
    exc = data.excerpts
    fold_scores = []
    if proto.pooled:
        pred = np.zeros_like(Y)
        for fold in proto.folds:
            m = make_model(model, seed).fit(X[fold.train], Y[fold.train])
            imps.append(m.feature_importances() if hasattr(m, "feature_importances") else None)
            pred[fold.test] = m.predict(X[fold.test])
            s = scores(Y[fold.test], pred[fold.test], exc[fold.test])
            fold_scores.append({k: s[k] for k in ("mean_r", "r2", "within_excerpt_r")})
        sc = scores(Y, pred, exc)
        ci = bootstrap_ci(Y, pred, exc, data.take_group, n=bootstrap, seed=seed) if bootstrap else {}
    else:
        preds = []
        test = proto.folds[0].test
        per = []
        for fold in proto.folds:
            m = make_model(model, seed).fit(X[fold.train], Y[fold.train])
            imps.append(m.feature_importances() if hasattr(m, "feature_importances") else None)
            p = m.predict(X[test])
            preds.append(p)
            s = scores(Y[test], p, exc[test])
            per.append(s)
            fold_scores.append({k: s[k] for k in ("mean_r", "r2", "within_excerpt_r")})
        pred = np.full_like(Y, np.nan)
        pred[test] = np.mean(preds, 0)
        sc = {k: float(np.mean([s[k] for s in per])) for k in ("mean_r", "r2", "within_excerpt_r")}
        sc["per_dim"] = {k: np.mean([s["per_dim"][k] for s in per], 0).tolist() for k in per[0]["per_dim"]}
        ens = scores(Y[test], pred[test], exc[test])
        sc["fold_ensemble"] = {k: ens[k] for k in ("mean_r", "r2", "within_excerpt_r")}
        ci = {k: [float(min(f[k] for f in fold_scores)), float(max(f[k] for f in fold_scores))]
              for k in ("mean_r", "r2", "within_excerpt_r")}
        ci["kind"] = "range over the 4 fold models"
    imp = np.mean(imps, 0) if imps and all(i is not None for i in imps) else None
    analysis = error_analysis(data, pred, np.isfinite(pred[:, 0]), imp, feat_names)
    return CVResult(model, protocol, sc, fold_scores, ci, pred, time.perf_counter() - t0, analysis)
