"""How good a MelodyVAE is, measured: reconstruction of held-out melodies, KL,
what its samples look like next to the data, and how smooth its interpolations are."""

from __future__ import annotations

import numpy as np
import torch

from ...features.core import PROFILES_CENTRED, PROFILES_NORM
from .data import MelodyDataset, MelodyWindows
from .generate import slerp
from .model import MelodyVAE

_MAJOR = np.array([0, 2, 4, 5, 7, 9, 11])
_MINOR = np.array([0, 2, 3, 5, 7, 8, 10])


def in_key_ratio(onset: np.ndarray, pitch: np.ndarray) -> np.ndarray:
    """Per window (N, T): the share of its notes inside the scale of its best
    Krumhansl-Kessler key (the window's own notes pick the key; NaN without notes)."""
    pcs = np.where(onset, pitch % 12, 12)
    hist = np.stack([np.bincount(row, minlength=13)[:12] for row in pcs]).astype(float)  # (N, 12)
    centred = hist - hist.mean(1, keepdims=True)
    norm = np.sqrt((centred**2).sum(1, keepdims=True))
    corr = centred @ PROFILES_CENTRED.T / np.maximum(norm * PROFILES_NORM, 1e-12)  # (N, 24) Pearson r
    k = corr.argmax(1)
    scale = np.zeros((24, 12), bool)
    for key in range(24):
        scale[key, ((_MAJOR if key < 12 else _MINOR) + key % 12) % 12] = True
    inside = (hist * scale[k]).sum(1)
    n = hist.sum(1)
    flat = norm[:, 0] == 0  # every pitch class equally often (e.g. one note): all in key
    return np.where(n > 0, np.where(flat, 1.0, inside / np.maximum(n, 1)), np.nan)


@torch.no_grad()
def decode_grids(model: MelodyVAE, z: torch.Tensor, threshold: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """(onset (N, T) bool, pitch (N, T) MIDI) decoded from ``z``."""
    model.eval()
    out = model.decode(z)
    return (torch.sigmoid(out["onset"]) > threshold).numpy(), (out["pitch"].argmax(-1) + model.config.pitch_min).numpy()


def _distance(on_a, p_a, on_b, p_b) -> np.ndarray:
    """Cells that differ: an onset in one and not the other, or another pitch on a shared onset."""
    return (on_a != on_b).sum(-1) + ((on_a & on_b) & (p_a != p_b)).sum(-1)


@torch.no_grad()
def melody_metrics(model: MelodyVAE, val: MelodyWindows, *, samples: int = 256, pairs: int = 64,
                   steps: int = 8, seed: int = 0) -> dict:
    """Reconstruction (onset and pitch accuracy of the posterior means' decodings),
    KL, samples' in-key ratio and onsets per window against the data's, and
    interpolation smoothness: mean cell distance between consecutive decodings of
    a slerp path over the distance between its two ends (below 1: smooth)."""
    model.eval()
    c = model.config
    ds = MelodyDataset(val, c)
    batch = ds.batch(np.arange(len(ds)))
    mu, logvar = model.encode(batch)
    on_hat, p_hat = decode_grids(model, mu)
    on, pitch = val.onset.astype(bool), val.pitch.astype(np.int64)
    kl = float((0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)).sum(-1).mean())
    g = torch.Generator().manual_seed(seed)
    s_on, s_p = decode_grids(model, torch.randn((samples, c.z_dim), generator=g))
    rng = np.random.default_rng(seed)
    a, b = rng.integers(0, len(val), (2, min(pairs, len(val))))
    dist_steps, dist_ends = [], []
    for i, j in zip(a, b):
        z = torch.stack([slerp(mu[i], mu[j], t) for t in np.linspace(0.0, 1.0, steps)])
        o, p = decode_grids(model, z)
        dist_steps.append(_distance(o[1:], p[1:], o[:-1], p[:-1]).mean())
        dist_ends.append(_distance(o[:1], p[:1], o[-1:], p[-1:])[0])
    ends = float(np.mean(dist_ends))
    return {
        "windows": len(val),
        "onset_accuracy": float((on_hat == on).mean()),
        "pitch_accuracy": float((p_hat[on] == pitch[on]).mean()),
        "kl": kl,
        "data_in_key": float(np.nanmean(in_key_ratio(on, pitch))),
        "samples_in_key": float(np.nanmean(in_key_ratio(s_on, s_p))),
        "data_onsets_per_window": float(on.sum(1).mean()),
        "samples_onsets_per_window": float(s_on.sum(1).mean()),
        "interpolation_step_distance": float(np.mean(dist_steps)),
        "interpolation_end_distance": ends,
        "interpolation_smoothness": float(np.mean(dist_steps) / ends) if ends > 0 else float("nan"),
    }
