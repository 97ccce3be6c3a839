"""Scores of rating predictions: Pearson r per dimension and its mean, R² (uniform
average, as sklearn), within-excerpt r, cluster-bootstrap intervals and paired
model comparisons."""

from __future__ import annotations

import numpy as np


def pearson_per_dim(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    """(D,) Pearson r of each column (0 where either side is constant)."""
    yc, pc = y - y.mean(0), p - p.mean(0)
    den = np.sqrt((yc**2).sum(0) * (pc**2).sum(0))
    return np.where(den > 1e-12, (yc * pc).sum(0) / np.maximum(den, 1e-12), 0.0)


def r2_per_dim(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    ss_res = ((y - p) ** 2).sum(0)
    ss_tot = ((y - y.mean(0)) ** 2).sum(0)
    return np.where(ss_tot > 0, 1.0 - ss_res / np.maximum(ss_tot, 1e-300), 0.0)


def within_group_r(y: np.ndarray, p: np.ndarray, groups: np.ndarray, min_size: int = 3) -> np.ndarray:
    """(D,) mean over groups (of >= ``min_size`` items) of the Pearson r inside
    each group: how well predictions order different performances of one passage.
    Groups where a dimension's truth or prediction is constant are left out of
    that dimension's mean; NaN where no group qualifies (e.g. a test set with at
    most two performances of each passage)."""
    uniq, inv = np.unique(groups, return_inverse=True)
    sums = np.zeros(y.shape[1])
    counts = np.zeros(y.shape[1])
    for g in range(len(uniq)):
        m = inv == g
        if m.sum() < min_size:
            continue
        yc, pc = y[m] - y[m].mean(0), p[m] - p[m].mean(0)
        den = np.sqrt((yc**2).sum(0) * (pc**2).sum(0))
        ok = den > 1e-12
        sums[ok] += ((yc * pc).sum(0) / np.maximum(den, 1e-12))[ok]
        counts[ok] += 1
    return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def scores(y: np.ndarray, p: np.ndarray, excerpts: np.ndarray) -> dict:
    """Headline scores and the per-dimension table of one set of predictions."""
    r, r2, wr = pearson_per_dim(y, p), r2_per_dim(y, p), within_group_r(y, p, excerpts)
    wmean = float(np.nanmean(wr)) if np.isfinite(wr).any() else float("nan")
    return {"mean_r": float(r.mean()), "r2": float(r2.mean()), "within_excerpt_r": wmean,
            "per_dim": {"r": r.tolist(), "r2": r2.tolist(), "within_excerpt_r": wr.tolist()}}


def _cluster_resamples(excerpts: np.ndarray, clusters: np.ndarray, n: int, seed: int):
    """``n`` resamples of whole clusters (take groups) with replacement: (segment
    indices, excerpt labels), a passage drawn twice relabelled as two passages."""
    rng = np.random.default_rng(seed)
    uniq, inv = np.unique(clusters, return_inverse=True)
    members = [np.flatnonzero(inv == g) for g in range(len(uniq))]
    for _ in range(n):
        pick = rng.integers(0, len(uniq), len(uniq))
        idx = np.concatenate([members[g] for g in pick])
        ex = np.concatenate([np.char.add(excerpts[members[g]].astype(str), f"#{j}") for j, g in enumerate(pick)])
        yield idx, ex


def bootstrap_ci(y: np.ndarray, p: np.ndarray, excerpts: np.ndarray, clusters: np.ndarray, *,
                 n: int = 1000, seed: int = 0, alpha: float = 0.05) -> dict:
    """95% intervals of mean r, R² and within-excerpt r from resampling whole
    clusters (take groups) with replacement: segments of one passage move together."""
    out = {"mean_r": [], "r2": [], "within_excerpt_r": []}
    for idx, ex in _cluster_resamples(excerpts, clusters, n, seed):
        s = scores(y[idx], p[idx], ex)
        for k in out:
            out[k].append(s[k])
    q = [100 * alpha / 2, 100 * (1 - alpha / 2)]
    return {k: [float(x) for x in np.percentile(v, q)] for k, v in out.items()}


def paired_bootstrap(y: np.ndarray, pa: np.ndarray, pb: np.ndarray, excerpts: np.ndarray,
                     clusters: np.ndarray, *, metric: str = "mean_r", n: int = 1000, seed: int = 0) -> dict:
    """Model A minus model B on the same segments: the difference, its 95% cluster
    bootstrap interval and the share of resamples where A is not better."""
    diffs = []
    for idx, ex in _cluster_resamples(excerpts, clusters, n, seed):
        diffs.append(scores(y[idx], pa[idx], ex)[metric] - scores(y[idx], pb[idx], ex)[metric])
    d = scores(y, pa, excerpts)[metric] - scores(y, pb, excerpts)[metric]
    diffs = np.array(diffs)
    return {"metric": metric, "difference": float(d), "ci95": [float(x) for x in np.percentile(diffs, [2.5, 97.5])],
            "p_not_better": float(np.mean(diffs <= 0))}
