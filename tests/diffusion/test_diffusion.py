"""Samplers checked against the exact denoiser of Gaussian data.

For x0 ~ N(mu, s^2) per dimension, E[eps | x_t] = sqrt(1 - a) (x_t - sqrt(a) mu) / (a s^2 + 1 - a),
so a correct sampler driven by it must return samples with mean mu and std s.
"""

import math

import pytest
import torch

from tatumflow.diffusion import DDIMSampler, DDPMSampler, NoiseSchedule, diffusion_loss, guided, sample

MU, SD = 2.0, 0.5


def oracle(schedule, mu=MU, sd=SD, prediction="eps"):
    def denoise(x, t, cond=None):
        m = mu if cond is None else cond.view(-1, *([1] * (x.dim() - 1)))
        a = schedule.alpha_bar[t].to(x.dtype).view(-1, *([1] * (x.dim() - 1)))
        eps = (1 - a).sqrt() * (x - a.sqrt() * m) / (a * sd**2 + 1 - a)
        if prediction == "eps":
            return eps
        x0 = (x - (1 - a).sqrt() * eps) / a.sqrt()
        return x0 if prediction == "x0" else a.sqrt() * eps - (1 - a).sqrt() * x0
    return denoise


def test_cosine_schedule():
    s = NoiseSchedule(1000)
    ab = s.alpha_bar
    assert ab[0] > 0.999 and ab[-1] < 1e-4 and torch.all(ab[1:] < ab[:-1])
    f = lambda t: math.cos(((t / 1000 + 0.008) / 1.008) * math.pi / 2) ** 2  # noqa: E731
    assert float(ab[499]) == pytest.approx(f(500) / f(0), rel=1e-6)


@pytest.mark.parametrize("prediction", ["eps", "x0", "v"])
def test_prediction_types_convert_exactly(prediction):
    s = NoiseSchedule(100)
    g = torch.Generator().manual_seed(0)
    x0, noise = torch.randn(16, 4, generator=g), torch.randn(16, 4, generator=g)
    t = torch.randint(0, 100, (16,), generator=g)
    xt = s.add_noise(x0, noise, t)
    eps, x0_hat = s.to_eps_x0(s.target(x0, noise, t, prediction), xt, t, prediction)
    torch.testing.assert_close(eps, noise)
    torch.testing.assert_close(x0_hat, x0)


@pytest.mark.parametrize("sampler,steps", [
    (lambda s: DDPMSampler(s), 200), (lambda s: DDIMSampler(s, eta=0.0), 50), (lambda s: DDIMSampler(s, eta=1.0), 50),
    (lambda s: DDIMSampler(s, eta=0.0, prediction="v"), 25),
])
def test_samplers_recover_the_data_distribution(sampler, steps):
    s = NoiseSchedule(200)
    smp = sampler(s)
    smp.set_timesteps(steps)
    x = sample(oracle(s, prediction=smp.prediction), smp, (4000, 2), generator=torch.Generator().manual_seed(1))
    assert float(x.mean()) == pytest.approx(MU, abs=0.05)
    assert float(x.std()) == pytest.approx(SD, abs=0.05)


def test_ddim_is_deterministic_and_calls_the_model_every_step():
    s = NoiseSchedule(100)
    smp = DDIMSampler(s, eta=0.0)
    smp.set_timesteps(20)
    calls = []

    def counted(x, t, cond=None):
        calls.append(int(t[0]))
        return oracle(s)(x, t, cond)

    a = sample(counted, smp, (8, 3), generator=torch.Generator().manual_seed(5))
    b = sample(oracle(s), smp, (8, 3), generator=torch.Generator().manual_seed(5))
    assert torch.equal(a, b)
    assert len(calls) == 20 and calls == sorted(calls, reverse=True) and calls[-1] == 0
    with pytest.raises(ValueError):
        smp.set_timesteps(101)


def test_classifier_free_guidance_mixes_predictions_each_step():
    s = NoiseSchedule(100)
    smp = DDIMSampler(s)
    smp.set_timesteps(30)
    den = oracle(s)  # conditional branch: mean = cond; unconditional: mean = MU
    cond = torch.full((2000,), -1.0)
    g = lambda: torch.Generator().manual_seed(3)  # noqa: E731
    w1 = sample(den, smp, (2000, 1), cond=cond, guidance=1.0, generator=g())
    w0 = sample(den, smp, (2000, 1), cond=cond, guidance=0.0, generator=g())
    w3 = sample(den, smp, (2000, 1), cond=cond, guidance=3.0, generator=g())
    assert float(w1.mean()) == pytest.approx(-1.0, abs=0.05)   # w = 1: conditional
    assert float(w0.mean()) == pytest.approx(MU, abs=0.05)     # w = 0: unconditional
    assert float(w3.mean()) < -1.5                              # w > 1: pushed beyond the condition
    calls = []
    guided(lambda x, t, c: calls.append(c is None) or x, 2.0)(torch.zeros(1, 1), torch.zeros(1, dtype=torch.long), cond[:1])
    assert calls == [False, True]


def test_partial_denoising_keeps_more_of_the_start():
    s = NoiseSchedule(100)
    smp = DDIMSampler(s)
    smp.set_timesteps(50)
    content = torch.full((500, 1), 5.0)
    t_mid = 30
    noisy = s.add_noise(content, torch.randn(500, 1, generator=torch.Generator().manual_seed(0)),
                        torch.full((500,), t_mid))
    out = sample(oracle(s), smp, (500, 1), x_T=noisy, start_step=t_mid)
    assert MU < float(out.mean()) < 5.0   # moved toward the data, still pulled by the content


def test_diffusion_loss_is_minimised_by_the_true_noise():
    s = NoiseSchedule(100)
    x0 = MU + SD * torch.randn(512, 2, generator=torch.Generator().manual_seed(0))
    good = diffusion_loss(oracle(s), x0, s, generator=torch.Generator().manual_seed(1))
    bad = diffusion_loss(lambda x, t: torch.zeros_like(x), x0, s, generator=torch.Generator().manual_seed(1))
    assert float(good) < 0.5 * float(bad)


def test_inpainting_keeps_the_known_part_and_conditions_the_rest():
    s = NoiseSchedule(100)
    smp = DDIMSampler(s, eta=0.5)
    smp.set_timesteps(20)
    assert smp.prev_timestep(int(smp.timesteps[-1])) == -1 and smp.start_timestep(1.0) == int(smp.timesteps[0])
    assert smp.start_timestep(0.0) == 0 and smp.start_timestep(0.5) <= 50
    known = torch.full((400, 4, 1), 9.0)
    mask = torch.zeros(400, 4, dtype=torch.bool)
    mask[:, :2] = True

    def denoise(x, t, cond=None):  # a model that knows x[:, 2:] follow x[:, :2]: mean of the known part
        a = s.alpha_bar[t].to(x.dtype).view(-1, 1, 1)
        m = torch.cat([torch.full_like(x[:, :2], MU), x[:, :2].mean(1, keepdim=True).expand_as(x[:, 2:])], 1)
        return (1 - a).sqrt() * (x - a.sqrt() * m) / (a * SD**2 + 1 - a)

    g = torch.Generator().manual_seed(0)
    out = sample(denoise, smp, (400, 4, 1), generator=g, known=known, known_mask=mask)
    assert torch.equal(out[:, :2], known[:, :2])           # the known latents, exactly
    assert float(out[:, 2:].mean()) > 0.5 * (MU + 9.0)     # the rest pulled towards them
    free = sample(denoise, smp, (400, 4, 1), generator=torch.Generator().manual_seed(0))
    assert float(free[:, 2:].mean()) < float(out[:, 2:].mean()) - 2.0
    with pytest.raises(ValueError, match="known"):
        sample(denoise, smp, (4, 4, 1), known_mask=mask[:4])
