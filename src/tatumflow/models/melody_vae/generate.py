"""What musicians do with a MelodyVAE: sample, decode pad coordinates, encode a
melody to its coordinates, interpolate between two melodies, bend the model.

Every function takes the randomness it uses (a seed or a ``torch.Generator``)."""

from __future__ import annotations

from typing import Iterable, Optional, Sequence

import numpy as np
import torch

from ...errors import TatumFlowError
from ...performance import Performance
from .data import MelodyDataset, MelodyWindows, cut_windows, melody_grid, melody_line, window_cells
from .model import MelodyVAE, MelodyVAEConfig


def _check(threshold: float, noise: float) -> None:
    if not 0.0 < threshold < 1.0:
        raise TatumFlowError(f"threshold must be in (0, 1), got {threshold}")
    if not noise >= 0.0:
        raise TatumFlowError(f"noise must be >= 0, got {noise}")


def grid_to_performance(onset: np.ndarray, pitch: np.ndarray, velocity: np.ndarray, duration: np.ndarray,
                        cfg: MelodyVAEConfig, *, qpm: float = 120.0, start: float = 0.0) -> Performance:
    """One window's cells as notes: an onset cell starts a note of its pitch and
    velocity lasting its duration (cells), cut where the next note starts."""
    cell = 60.0 / qpm / cfg.steps_per_beat
    on = np.flatnonzero(onset)
    if not len(on):
        return Performance.from_arrays([], [], [], [], metadata={"qpm": qpm})
    end = on + np.maximum(1, np.round(duration[on]).astype(np.int64))
    end = np.minimum(np.minimum(end, np.append(on[1:], cfg.steps)), cfg.steps)
    vel = np.clip(np.round(velocity[on] * 127), 1, 127)
    return Performance.from_arrays(start + on * cell, start + end * cell, pitch[on], vel, metadata={"qpm": qpm})


@torch.no_grad()
def decode(model: MelodyVAE, z: torch.Tensor, *, threshold: float = 0.5, noise: float = 0.0,
           generator: Optional[torch.Generator] = None, qpm: float = 120.0) -> list[Performance]:
    """Melodies for latents ``z`` (N, z_dim): ``noise`` adds Gaussian noise of that
    scale to ``z`` first; a cell holds an onset where its probability exceeds
    ``threshold``; pitch is the most likely one."""
    _check(threshold, noise)
    c = model.config
    z = torch.as_tensor(z, dtype=torch.float32).reshape(-1, c.z_dim)
    if noise > 0:
        z = z + noise * torch.randn(z.shape, generator=generator)
    model.eval()
    out = model.decode(z)
    onset = (torch.sigmoid(out["onset"]) > threshold).numpy()
    pitch = (out["pitch"].argmax(-1) + c.pitch_min).numpy()
    vel, dur = out["velocity"].numpy(), (out["duration"] * c.steps).numpy()
    return [grid_to_performance(onset[i], pitch[i], vel[i], dur[i], c, qpm=qpm) for i in range(len(z))]


def sample(model: MelodyVAE, n: int = 1, *, threshold: float = 0.5, noise: float = 0.0, seed: int = 0,
           qpm: float = 120.0) -> tuple[torch.Tensor, list[Performance]]:
    """``n`` melodies from the prior: ``(z, melodies)``."""
    if n < 1:
        raise TatumFlowError(f"count must be >= 1, got {n}")
    g = torch.Generator().manual_seed(int(seed))
    z = torch.randn((n, model.config.z_dim), generator=g)
    return z, decode(model, z, threshold=threshold, noise=noise, generator=g, qpm=qpm)


def melody_batch(perf: Performance, cfg: MelodyVAEConfig, *, voice: str = "top") -> dict[str, torch.Tensor]:
    """The first usable window of a melody as a batch of one (what :func:`encode` reads)."""
    g = melody_grid(melody_line(perf, voice), cfg)
    wins = cut_windows(g, cfg, min_onsets=1)
    if not wins:
        raise TatumFlowError(f"no {cfg.bars}-bar window with notes in {cfg.pitch_min}..{cfg.pitch_max}")
    cells = window_cells(g, wins[:1], cfg)
    return MelodyDataset(MelodyWindows(**cells, split=np.array([""]), source=[""]), cfg).batch([0])


@torch.no_grad()
def encode(model: MelodyVAE, perf: Performance, *, voice: str = "top") -> torch.Tensor:
    """A melody's coordinates: the posterior mean (z_dim,) of its first window."""
    model.eval()
    mu, _ = model.encode(melody_batch(perf, model.config, voice=voice))
    return mu[0]


def slerp(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    """Spherical interpolation (linear when ``a`` and ``b`` are (anti)parallel or zero)."""
    na, nb = a.norm(), b.norm()
    if na < 1e-8 or nb < 1e-8:
        return (1 - t) * a + t * b
    cos = torch.clamp((a / na) @ (b / nb), -1.0, 1.0)
    omega = torch.arccos(cos)
    if omega.abs() < 1e-4 or (np.pi - omega).abs() < 1e-4:
        return (1 - t) * a + t * b
    return (torch.sin((1 - t) * omega) * a + torch.sin(t * omega) * b) / torch.sin(omega)


def interpolate(model: MelodyVAE, a: Performance, b: Performance, steps: int = 5, *, threshold: float = 0.5,
                qpm: float = 120.0) -> tuple[torch.Tensor, list[Performance]]:
    """``steps`` melodies from ``a``'s code to ``b``'s (slerp), ends included."""
    if steps < 2:
        raise TatumFlowError(f"interpolation steps must be >= 2, got {steps}")
    za, zb = encode(model, a), encode(model, b)
    z = torch.stack([slerp(za, zb, t) for t in np.linspace(0.0, 1.0, steps)])
    return z, decode(model, z, threshold=threshold, qpm=qpm)


def concatenate(melodies: Sequence[Performance], cfg: MelodyVAEConfig, qpm: float = 120.0) -> Performance:
    """Windows one after another (each ``steps`` cells long) in one Performance."""
    span = cfg.steps * 60.0 / qpm / cfg.steps_per_beat
    notes = [m.notes.copy() for m in melodies]
    for i, n in enumerate(notes):
        n["onset"] += i * span
        n["offset"] += i * span
    return Performance(np.concatenate(notes) if notes else melodies[0].notes, metadata={"qpm": qpm})


class Bender:
    """Model bending: Gaussian noise on the decoder's weights for creative accidents;
    :meth:`reset` puts the original weights back bit for bit."""

    def __init__(self, model: MelodyVAE):
        self.model = model
        self._original: Optional[dict[str, torch.Tensor]] = None

    def layers(self) -> list[str]:
        return [n for n, _ in self.model.named_parameters() if not n.startswith(("encoder", "mu", "logvar"))]

    @torch.no_grad()
    def bend(self, amount: float, *, layers: Optional[Iterable[str]] = None, seed: int = 0) -> list[str]:
        """Add N(0, amount^2 * std(weight)^2) noise to the decoder's parameters (or
        those whose names start with one of ``layers``); bends add up until reset."""
        if not amount >= 0.0:
            raise TatumFlowError(f"bend amount must be >= 0, got {amount}")
        names = self.layers()
        if layers is not None:
            wanted = list(layers)
            names = [n for n in names if any(n.startswith(w) for w in wanted)]
            if not names:
                raise TatumFlowError(f"no decoder layer matches {wanted}; layers: {', '.join(self.layers())}")
        if self._original is None:
            self._original = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        g = torch.Generator().manual_seed(int(seed))
        params = dict(self.model.named_parameters())
        for n in names:
            p = params[n]
            scale = float(p.std()) if p.numel() > 1 else float(p.abs().mean())
            p.add_(torch.randn(p.shape, generator=g) * amount * (scale or 1.0))
        return names

    @property
    def bent(self) -> bool:
        return self._original is not None

    @torch.no_grad()
    def reset(self) -> None:
        if self._original is not None:
            self.model.load_state_dict(self._original)
            self._original = None
