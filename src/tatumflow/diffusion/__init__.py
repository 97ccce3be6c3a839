"""Gaussian diffusion: noise schedules, the training loss, DDPM/DDIM samplers and
classifier-free guidance. Plain objects; the denoiser never knows the sampler."""

from .samplers import DDIMSampler, DDPMSampler, guided, sample
from .schedule import NoiseSchedule, diffusion_loss

__all__ = ["NoiseSchedule", "diffusion_loss", "DDPMSampler", "DDIMSampler", "guided", "sample"]
