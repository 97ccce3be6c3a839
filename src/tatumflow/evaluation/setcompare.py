"""Set-versus-set comparison (Yang & Lerch, "On the evaluation of generative
models in music", Neural Computing and Applications, 2020).

For each feature, the distances between pieces *within* the reference set
(intra-set) and *between* the two sets (inter-set) form two distributions;
each is smoothed with a Gaussian kernel density estimate and compared by the
Kullback-Leibler divergence and the overlapping area (OA). If the generated
set resembles the reference, a generated piece is as far from reference pieces
as reference pieces are from each other: KL near 0, OA near 1.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

GRID = 512


def _as_matrix(values: Sequence) -> np.ndarray:
    """Per-piece values (scalars or arrays) as an (n, d) matrix, NaN rows dropped."""
    m = np.array([np.asarray(v, dtype=np.float64).reshape(-1) for v in values])
    if m.ndim == 1:
        m = m[:, None]
    return m[~np.isnan(m).any(axis=1)]


def intra_distances(a: np.ndarray) -> np.ndarray:
    """Euclidean distances between all pairs of rows of ``a`` (i < j)."""
    if len(a) < 2:
        return np.empty(0)
    d = np.sqrt(((a[:, None, :] - a[None, :, :]) ** 2).sum(-1))
    return d[np.triu_indices(len(a), k=1)]


def inter_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)).ravel()


def kde(samples: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Gaussian KDE (Silverman's bandwidth) evaluated on ``grid``, normalised to
    integrate to 1 over the grid."""
    samples = np.asarray(samples, dtype=np.float64)
    n = samples.size
    std = samples.std()
    span = grid[-1] - grid[0]
    bw = 1.06 * std * n ** (-0.2) if std > 0 else max(span, 1e-6) / 50.0
    bw = max(bw, max(span, 1e-6) / 500.0)
    dens = np.exp(-0.5 * ((grid[:, None] - samples[None, :]) / bw) ** 2).sum(1)
    dx = grid[1] - grid[0]
    return dens / max(dens.sum() * dx, 1e-300)


def compare_distributions(p_samples: np.ndarray, q_samples: np.ndarray) -> tuple[float, float]:
    """(KL(P || Q) in bits, overlapping area) of two smoothed distance distributions."""
    if p_samples.size < 2 or q_samples.size < 2:
        return float("nan"), float("nan")
    lo = min(p_samples.min(), q_samples.min())
    hi = max(p_samples.max(), q_samples.max())
    pad = 0.1 * (hi - lo) + 1e-9
    grid = np.linspace(lo - pad, hi + pad, GRID)
    dx = grid[1] - grid[0]
    p, q = kde(p_samples, grid), kde(q_samples, grid)
    eps = 1e-10
    kl = float(np.sum(p * np.log2((p + eps) / (q + eps))) * dx)
    oa = float(np.minimum(p, q).sum() * dx)
    return max(kl, 0.0), min(oa, 1.0)


def compare_sets(gen: Mapping[str, Sequence], ref: Mapping[str, Sequence]) -> dict:
    """Per feature (keys of both mappings, each a list of per-piece values): means,
    and KL / OA of intra-reference vs inter-set distances (and intra-generated
    vs inter-set). Adds a ``summary`` with the mean OA and mean KL."""
    out: dict = {}
    oas, kls = [], []
    for name in gen:
        if name not in ref:
            continue
        g, r = _as_matrix(gen[name]), _as_matrix(ref[name])
        if len(g) < 2 or len(r) < 2:
            continue
        inter = inter_distances(g, r)
        intra_r, intra_g = intra_distances(r), intra_distances(g)
        kl_r, oa_r = compare_distributions(intra_r, inter)
        kl_g, oa_g = compare_distributions(intra_g, inter)
        entry = {
            "gen_mean": g.mean(0).tolist() if g.shape[1] > 1 else float(g.mean()),
            "ref_mean": r.mean(0).tolist() if r.shape[1] > 1 else float(r.mean()),
            "kl_intra_ref_vs_inter": kl_r, "oa_intra_ref_vs_inter": oa_r,
            "kl_intra_gen_vs_inter": kl_g, "oa_intra_gen_vs_inter": oa_g,
            "n_gen": int(len(g)), "n_ref": int(len(r)),
        }
        if g.shape[1] == 1:
            entry.update(gen_std=float(g.std()), ref_std=float(r.std()))
        out[name] = entry
        if not np.isnan(oa_r):
            oas.append(oa_r)
            kls.append(kl_r)
    out["summary"] = {
        "features": len(oas),
        "mean_oa": float(np.mean(oas)) if oas else float("nan"),
        "mean_kl": float(np.mean(kls)) if kls else float("nan"),
    }
    return out
