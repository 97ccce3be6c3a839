"""Noise schedules for Gaussian diffusion: plain objects, no nn.Module state.

Forward process (Ho et al. 2020, eq. 4): ``x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps``.
The cosine schedule is Nichol & Dhariwal (2021), eq. 17:
``abar_t = f(t) / f(0)``, ``f(t) = cos(((t / T + s) / (1 + s)) * pi / 2) ** 2``,
with betas clipped at 0.999.

A denoiser may predict the noise ``eps``, the clean sample ``x0``, or the
velocity ``v = sqrt(abar) eps - sqrt(1 - abar) x0`` (Salimans & Ho 2022); this
module converts between them, so samplers never care which.
"""

from __future__ import annotations

import math
from typing import Literal, Optional

import torch

Prediction = Literal["eps", "x0", "v"]


class NoiseSchedule:
    def __init__(self, num_steps: int = 1000, kind: str = "cosine", *, s: float = 0.008,
                 beta_start: float = 1e-4, beta_end: float = 0.02):
        if num_steps < 1:
            raise ValueError(f"num_steps must be >= 1, got {num_steps}")
        self.num_steps = num_steps
        self.kind = kind
        t = torch.arange(num_steps + 1, dtype=torch.float64)
        if kind == "cosine":
            f = torch.cos(((t / num_steps + s) / (1 + s)) * math.pi / 2) ** 2
            abar = f / f[0]
            betas = (1 - abar[1:] / abar[:-1]).clamp(max=0.999)
        elif kind == "linear":
            betas = torch.linspace(beta_start, beta_end, num_steps, dtype=torch.float64)
        else:
            raise ValueError(f"unknown schedule {kind!r} (cosine or linear)")
        self.betas = betas                                  # (T,) float64; index t = 0..T-1
        self.alphas = 1.0 - betas
        self.alpha_bar = torch.cumprod(self.alphas, 0)      # abar_t for t = 0..T-1

    def _abar(self, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        a = self.alpha_bar.to(like.device)[t.long()].to(like.dtype)
        return a.view(-1, *([1] * (like.dim() - 1)))

    def add_noise(self, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """q(x_t | x_0) sample for per-example timesteps ``t`` (B,)."""
        a = self._abar(t, x0)
        return a.sqrt() * x0 + (1 - a).sqrt() * noise

    def target(self, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor, prediction: Prediction) -> torch.Tensor:
        """What a denoiser trained for ``prediction`` should output."""
        if prediction == "eps":
            return noise
        if prediction == "x0":
            return x0
        if prediction == "v":
            a = self._abar(t, x0)
            return a.sqrt() * noise - (1 - a).sqrt() * x0
        raise ValueError(f"unknown prediction type {prediction!r}")

    def to_eps_x0(self, model_out: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor,
                  prediction: Prediction) -> tuple[torch.Tensor, torch.Tensor]:
        """(eps, x0) implied by a model output at ``x_t``."""
        a = self._abar(t, x_t)
        if prediction == "eps":
            eps = model_out
            x0 = (x_t - (1 - a).sqrt() * eps) / a.sqrt()
        elif prediction == "x0":
            x0 = model_out
            eps = (x_t - a.sqrt() * x0) / (1 - a).sqrt()
        elif prediction == "v":
            x0 = a.sqrt() * x_t - (1 - a).sqrt() * model_out
            eps = (1 - a).sqrt() * x_t + a.sqrt() * model_out
        else:
            raise ValueError(f"unknown prediction type {prediction!r}")
        return eps, x0

    def sample_timesteps(self, n: int, generator: Optional[torch.Generator] = None,
                         device: "torch.device | str" = "cpu") -> torch.Tensor:
        return torch.randint(0, self.num_steps, (n,), generator=generator, device="cpu").to(device)


def diffusion_loss(denoiser, x0: torch.Tensor, schedule: NoiseSchedule, *, prediction: Prediction = "eps",
                   generator: Optional[torch.Generator] = None, **cond) -> torch.Tensor:
    """MSE between the denoiser's output at a random ``x_t`` and its target (the
    added noise, x0 or v). ``denoiser(x_t, t, **cond)`` returns the prediction."""
    t = schedule.sample_timesteps(x0.shape[0], generator, x0.device)
    noise = torch.randn(x0.shape, generator=generator, dtype=x0.dtype).to(x0.device)
    x_t = schedule.add_noise(x0, noise, t)
    out = denoiser(x_t, t, **cond)
    return torch.mean((out - schedule.target(x0, noise, t, prediction)) ** 2)
