"""DDPM and DDIM samplers and classifier-free guidance: plain objects.

Contract (shared by both samplers): ``set_timesteps(n)`` chooses ``n <= T``
steps; ``timesteps`` lists them from noisiest to cleanest; ``step(model_out,
t, x, generator=...)`` returns the sample at the next (less noisy) timestep.
The denoiser never knows which sampler drives it.

Guidance (Ho & Salimans 2022) mixes the *predictions* at every step:
``eps = eps_uncond + w * (eps_cond - eps_uncond)`` — never finished samples.
"""

from __future__ import annotations

from typing import Callable, Optional

import torch

from .schedule import NoiseSchedule, Prediction


class _Sampler:
    """``clip_x0`` clamps, and ``project_x0`` maps, each step's estimate of the clean
    sample onto where the data lives (DDPM's ``clip_denoised`` for images in [-1, 1]).
    Without it, at the noisiest steps of a cosine schedule (abar ~ 1e-8) the estimate
    ``(x_t - sqrt(1 - abar) eps) / sqrt(abar)`` multiplies the model's error by ~1e4
    and the samples leave the data's scale (measured on TatumFlow's unit-scale
    latents: std ~300 instead of 1)."""

    def __init__(self, schedule: NoiseSchedule, prediction: Prediction = "eps", clip_x0: Optional[float] = None,
                 project_x0: Optional[Callable[[torch.Tensor], torch.Tensor]] = None):
        self.schedule = schedule
        self.prediction = prediction
        self.clip_x0 = clip_x0
        self.project_x0 = project_x0
        self.set_timesteps(schedule.num_steps)

    def set_timesteps(self, n: int) -> None:
        T = self.schedule.num_steps
        if not 1 <= n <= T:
            raise ValueError(f"number of sampling steps must be in 1..{T}, got {n}")
        # Evenly spaced, always ending at t = 0 (the cleanest step).
        ts = torch.linspace(0, T - 1, n).round().long().unique()
        self.timesteps = ts.flip(0)

    def prev_timestep(self, t: int) -> int:
        """The timestep after ``t`` on this sampler's grid (-1 after the last)."""
        ts = self.timesteps.tolist()
        i = ts.index(t)
        return ts[i + 1] if i + 1 < len(ts) else -1

    def start_timestep(self, strength: float) -> int:
        """Where partial denoising starts for ``strength`` (0..1 of the schedule):
        the grid step nearest below ``strength * (T - 1)`` (the last step if none)."""
        ts = self.timesteps.tolist()
        return max([t for t in ts if t <= round(strength * (self.schedule.num_steps - 1))] or [ts[-1]])

    def _eps_x0(self, model_out, t: int, x):
        tt = torch.full((x.shape[0],), t, dtype=torch.long, device=x.device)
        eps, x0 = self.schedule.to_eps_x0(model_out, x, tt, self.prediction)
        if self.clip_x0 is not None:
            x0 = x0.clamp(-self.clip_x0, self.clip_x0)
        if self.project_x0 is not None:
            x0 = self.project_x0(x0)
        if self.clip_x0 is not None or self.project_x0 is not None:  # the noise consistent with the kept x0
            a = self._abar(t, x)
            eps = (x - a.sqrt() * x0) / (1 - a).sqrt()
        return eps, x0

    def _abar(self, t: int, like) -> torch.Tensor:
        if t < 0:
            return torch.ones((), dtype=like.dtype, device=like.device)
        return self.schedule.alpha_bar[t].to(like.dtype).to(like.device)


class DDPMSampler(_Sampler):
    """Ancestral sampling from the posterior q(x_prev | x_t, x0) (Ho et al. 2020,
    eqs. 6-7), generalised to strided timesteps: with ``a = abar_t``,
    ``a' = abar_prev`` and ``b = 1 - a / a'``, the mean is
    ``sqrt(a') b / (1 - a) x0 + sqrt(a / a') (1 - a') / (1 - a) x_t`` and the
    variance ``(1 - a') / (1 - a) b``."""

    def step(self, model_out: torch.Tensor, t: int, x: torch.Tensor,
             generator: Optional[torch.Generator] = None) -> torch.Tensor:
        _, x0 = self._eps_x0(model_out, t, x)
        prev = self.prev_timestep(t)
        a, ap = self._abar(t, x), self._abar(prev, x)
        b = 1 - a / ap
        mean = ap.sqrt() * b / (1 - a) * x0 + (a / ap).sqrt() * (1 - ap) / (1 - a) * x
        if prev < 0:
            return mean
        var = (1 - ap) / (1 - a) * b
        noise = torch.randn(x.shape, generator=generator, dtype=x.dtype).to(x.device)
        return mean + var.sqrt() * noise


class DDIMSampler(_Sampler):
    """Song et al. (2021), eq. 12: ``x_prev = sqrt(a') x0 + sqrt(1 - a' - s^2) eps
    + s z`` with ``s = eta * sqrt((1 - a') / (1 - a)) * sqrt(1 - a / a')``.
    ``eta = 0`` is deterministic; ``eta = 1`` matches DDPM's variance."""

    def __init__(self, schedule: NoiseSchedule, prediction: Prediction = "eps", eta: float = 0.0,
                 clip_x0: Optional[float] = None, project_x0: Optional[Callable[[torch.Tensor], torch.Tensor]] = None):
        if not 0.0 <= eta <= 1.0:
            raise ValueError(f"eta must be in [0, 1], got {eta}")
        self.eta = eta
        super().__init__(schedule, prediction, clip_x0, project_x0)

    def step(self, model_out: torch.Tensor, t: int, x: torch.Tensor,
             generator: Optional[torch.Generator] = None) -> torch.Tensor:
        eps, x0 = self._eps_x0(model_out, t, x)
        prev = self.prev_timestep(t)
        a, ap = self._abar(t, x), self._abar(prev, x)
        sigma = self.eta * ((1 - ap) / (1 - a)).sqrt() * (1 - a / ap).sqrt()
        out = ap.sqrt() * x0 + (1 - ap - sigma**2).clamp(min=0).sqrt() * eps
        if prev >= 0 and self.eta > 0:
            out = out + sigma * torch.randn(x.shape, generator=generator, dtype=x.dtype).to(x.device)
        return out


def guided(denoiser: Callable, guidance: float) -> Callable:
    """Wrap ``denoiser(x, t, cond)`` (``cond=None`` is the unconditional branch)
    for classifier-free guidance: both predictions at every step, mixed."""

    def predict(x: torch.Tensor, t: torch.Tensor, cond) -> torch.Tensor:
        if cond is None or guidance == 1.0:
            return denoiser(x, t, cond)
        cond_out, uncond_out = denoiser(x, t, cond), denoiser(x, t, None)
        return uncond_out + guidance * (cond_out - uncond_out)

    return predict


@torch.no_grad()
def sample(denoiser: Callable, sampler: _Sampler, shape: tuple[int, ...], *, cond=None,
           guidance: float = 1.0, generator: Optional[torch.Generator] = None, x_T: Optional[torch.Tensor] = None,
           start_step: Optional[int] = None, known: Optional[torch.Tensor] = None,
           known_mask: Optional[torch.Tensor] = None, device: "torch.device | str" = "cpu") -> torch.Tensor:
    """The one sampling loop: run ``sampler`` from noise (or from ``x_T`` at
    ``start_step``, for partial denoising such as style transfer), calling the
    denoiser at every step; ``denoiser(x, t, cond)`` gets ``cond=None`` for the
    unconditional branch.

    Inpainting: where ``known_mask`` (the leading dims of ``shape``, e.g. (B, n))
    is True, the sample is replaced after every step by ``known`` noised to the
    next step's level (the replacement method of Song et al. 2021 and RePaint's
    inner step, Lugmayr et al. 2022), and by ``known`` itself at the end."""
    x = x_T if x_T is not None else torch.randn(shape, generator=generator).to(device)
    if known_mask is not None and known is None:
        raise ValueError("known_mask needs the known values")
    predict = guided(denoiser, guidance)
    for t in sampler.timesteps.tolist():
        if start_step is not None and t > start_step:
            continue
        tt = torch.full((x.shape[0],), t, dtype=torch.long, device=x.device)
        x = sampler.step(predict(x, tt, cond), t, x, generator=generator)
        prev = sampler.prev_timestep(t)
        if known_mask is not None and prev >= 0 and bool(known_mask.any()):
            kn = known[known_mask]  # (M, D)
            noise = torch.randn(kn.shape, generator=generator, dtype=kn.dtype).to(x.device)
            x[known_mask] = sampler.schedule.add_noise(kn, noise, torch.full((kn.shape[0],), prev, device=x.device)
                                                       ).to(x.dtype)
    if known_mask is not None:
        x[known_mask] = known[known_mask].to(x.dtype)
    return x
