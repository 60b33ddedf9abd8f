"""The variational bound on a DDPM's negative log-likelihood, in bits per dimension (Ho et al. 2020, Eq. 5, §3.3).

    df = vlb_bits_per_dim(unet, scheduler, x0, n_t=16, seed=0)     # image, bpd, prior_bpd, decoder_bpd, diffusion_bpd
    summarize_bpd(df)                                              # {"mean": ..., "sem": ..., "n": ...}

L = L_T + sum_{t=1}^{T-1} L_t + L_0 in diffusers' 0-based timesteps (t = 0 is the first noising step, so
our L_t is the paper's L_{t+1}); every term is in nats summed over the D = C*H*W dimensions, then / (D ln 2).
- L_T = KL(q(x_{T-1} | x0) || N(0, I)), analytic.
- L_t = coef_t * ||eps - eps_hat(x_t, t)||^2 for fixed variances sigma_t^2 = beta_tilde_t (``fixed_small``):
  see :func:`kl_coefficients` for the algebra. The model's mean is the unclipped eps-parametrisation (Eq. 11).
- L_0 = -log p(x0 | x_{t=0}), the discretised Gaussian decoder of §3.3 (256 bins of width 2/255, the edge bins
  reaching to +-inf), centred on x0_hat = (x_t - sqrt(1 - abar_0) eps_hat) / sqrt(abar_0) *clipped* to [-1, 1],
  as our schedulers clip it (``clip_sample=True``) before the last, noiseless step. Its std is sqrt(beta_0),
  the std of the noise q adds at t = 0 and so of x0 given x_{t=0} when the data are spread much wider than it.
  Ho et al.'s code uses sqrt(beta_tilde_1), 0.73 sqrt(beta_0) at T = 1000; on 8-bit Gaussian data (the
  tests' known answer) that costs 0.07 bits/dim more. Any mean and std give a proper distribution over the
  256^D images, so the bound stays a bound.
The sum over t is estimated per image by stratified Monte Carlo (one t per stratum, weighted by the stratum's
size: unbiased); ``n_t=None`` sums every t (exact in t, still one noise draw per t). Most of the bound sits in
the first few t (L_t ~ 1/t there on the cosine schedule), so the strata are geometric in t (:func:`_strata`):
the first ones are single timesteps. With equal strata the per-image sd on the tests' Gaussian data at
T = 1000 was ~10 bits/dim at n_t = 16 (0.3 with every t); the geometric strata's is measured in the tests.
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np
import pandas as pd
import torch
from diffusers import DDPMScheduler, UNet2DModel

EpsModel = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
_HALF_BIN = 1.0 / 255.0                              # grid points -1 + 2k/255 are 2/255 apart (8-bit data)


def kl_coefficients(scheduler: DDPMScheduler) -> torch.Tensor:
    """coef_t with L_t = coef_t ||eps - eps_hat||^2, float64 ``[T]`` (coef_0 = 0: t = 0 is the decoder's).

        coef = kl_coefficients(scheduler); L_t = coef[t] * (eps - eps_hat).pow(2).sum()

    Both q(x_{t-1} | x_t, x0) and p(x_{t-1} | x_t) have variance sigma_t^2 = beta_tilde_t
    = beta_t (1 - abar_{t-1}) / (1 - abar_t), so the KL is |mu_tilde - mu_theta|^2 / (2 sigma_t^2).
    mu_tilde = (x_t - beta_t / sqrt(1 - abar_t) eps) / sqrt(alpha_t) (Eq. 7 with x0 written through eps),
    mu_theta is the same with eps_hat (Eq. 11), so mu_tilde - mu_theta = beta_t (eps_hat - eps) / sqrt(alpha_t
    (1 - abar_t)) and
        coef_t = beta_t^2 / (2 sigma_t^2 alpha_t (1 - abar_t)) = beta_t / (2 alpha_t (1 - abar_{t-1}))
    after cancelling beta_t (1 - abar_t); it equals (SNR_{t-1} / SNR_t - 1) / 2 with SNR = abar / (1 - abar).
    """
    beta = scheduler.betas.double()
    abar = scheduler.alphas_cumprod.double()
    coef = torch.zeros_like(beta)
    coef[1:] = beta[1:] / (2 * (1 - beta[1:]) * (1 - abar[:-1]))
    return coef


def discretized_gaussian_nll(x0: torch.Tensor, mean: torch.Tensor, std: float) -> torch.Tensor:
    """-log of the N(mean, std^2) mass of each pixel's bin, in nats, same shape as ``x0`` (§3.3).

        discretized_gaussian_nll(x0, x0_hat, math.sqrt(beta_0)).sum()

    Bins are [x - 1/255, x + 1/255] with the edge bins at -1 and 1 extended to -inf and +inf. The mass
    Phi(b) - Phi(a) is taken in whichever tail both ends are nearer to, from log Phi, so that a mean many
    std away still gives a finite (large) value instead of log 0.
    """
    x0, mean = x0.double(), mean.double()
    a = torch.where(x0 < -1 + _HALF_BIN, -math.inf, (x0 - _HALF_BIN - mean) / std)
    b = torch.where(x0 > 1 - _HALF_BIN, math.inf, (x0 + _HALF_BIN - mean) / std)
    flip = a + b > 0                                 # the mass is the same with [a, b] mirrored to [-b, -a]
    lo, hi = torch.where(flip, -b, a), torch.where(flip, -a, b)
    log_hi, log_lo = torch.special.log_ndtr(hi), torch.special.log_ndtr(lo)
    return -(log_hi + torch.log(-torch.expm1(log_lo - log_hi)))


def prior_nats(scheduler: DDPMScheduler, x0: torch.Tensor) -> torch.Tensor:
    """L_T = KL(N(sqrt(abar) x0, (1 - abar) I) || N(0, I)) at the last step, in nats per image ``[N]``."""
    abar = scheduler.alphas_cumprod.double()[-1]
    # 1/2 sum (v + m^2 - 1 - log v) with v = 1 - abar, m^2 = abar x0^2; -abar - log1p(-abar) keeps the
    # O(abar^2) remainder that 1 - abar - 1 - log(1 - abar) would round away.
    per_dim = abar * x0.double().pow(2) - abar - torch.log1p(-abar)
    return 0.5 * per_dim.flatten(1).sum(1)


def _strata(T: int, n_t: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Lower ends and sizes of n_t strata of 1..T-1, geometrically spaced (each at least one step wide).

    Why geometric: L_t falls like 1/t over the first steps, so equal strata leave the few t that carry
    most of the bound to one random draw among hundreds (per-image sd ~10 bits/dim at n_t = 16 on the
    tests' Gaussian data). Strata of equal width in log t make the first ones single timesteps, summed
    exactly, and give every stratum a similar share of the bound."""
    if n_t is None:
        return np.arange(1, T), np.ones(T - 1, dtype=np.int64)
    if not 1 <= n_t <= T - 1:
        raise ValueError(f"n_t must be None or in 1..{T - 1} (timesteps 1..T-1), got {n_t}")
    edges = np.round(np.geomspace(1, T, n_t + 1)).astype(np.int64)
    for i in range(1, n_t + 1):                       # at least one timestep per stratum
        edges[i] = max(edges[i], edges[i - 1] + 1)
    for i in range(n_t - 1, -1, -1):                  # ... and the last edge at T
        edges[i] = min(edges[i], edges[i + 1] - 1)
    edges[-1] = T
    return edges[:-1], np.diff(edges)


def as_eps_fn(eps_model: UNet2DModel | EpsModel) -> tuple[EpsModel, torch.device]:
    """``(fn(x_t, t) -> eps_hat, device)``: a UNet's ``.sample`` on its own device, or a callable on the CPU."""
    if isinstance(eps_model, UNet2DModel):
        return (lambda x_t, t: eps_model(x_t, t).sample), next(eps_model.parameters()).device
    return eps_model, torch.device("cpu")


@torch.no_grad()
def vlb_bits_per_dim(eps_model: UNet2DModel | EpsModel, scheduler: DDPMScheduler, x0: torch.Tensor | np.ndarray,
                     n_t: int | None = 16, seed: int = 0, batch_size: int = 64) -> pd.DataFrame:
    """Per-image Monte-Carlo estimate of the bound (Eq. 5) in bits/dim; one row per image of ``x0`` [N, C, H, W].

        vlb_bits_per_dim(unet, scheduler, x0, n_t=16, seed=0)     # image, bpd, prior_bpd, decoder_bpd, diffusion_bpd

    ``eps_model`` is a ``UNet2DModel`` (run on its own device) or any ``(x_t [B, C, H, W], t [B] long) -> eps_hat``
    (given CPU tensors). ``x0`` in [-1, 1] is snapped to the 256-level grid (a no-op for 8-bit images): the
    bound is the one for the snapped images. Every image draws, in order, one t per stratum and then the noise
    for t = 0 and each stratum from one CPU generator seeded by ``seed``, so the draws do not depend on
    ``batch_size`` or the device, and two models given the same ``x0`` and ``seed`` are compared on paired draws.
    ``n_t=None`` sums every t in 1..T-1 (T forward passes per image). ``batch_size`` counts forward-pass inputs.
    """
    x0 = torch.as_tensor(x0).detach().cpu().float()
    if x0.ndim != 4 or not (x0.abs() <= 1 + 1e-4).all():     # also catches NaN
        raise ValueError(f"x0 must be [N, C, H, W] in [-1, 1]; got shape {tuple(x0.shape)}, "
                         f"max |x0| = {x0.abs().max():.3g}")
    x0 = torch.round((x0.clamp(-1, 1) + 1) * 127.5) / 127.5 - 1
    eps_fn, device = as_eps_fn(eps_model)
    T = len(scheduler.betas)
    abar = scheduler.alphas_cumprod.float()
    coef = kl_coefficients(scheduler)
    lower, size = _strata(T, n_t)
    k, shape = len(lower), tuple(x0.shape[1:])
    g = torch.Generator().manual_seed(seed)
    per_group = max(1, batch_size // (k + 1))        # images whose k + 1 noised copies fill about one batch
    diffusion, decoder = [], []
    for s in range(0, len(x0), per_group):
        xb = x0[s:s + per_group]
        draws = []
        for _ in range(len(xb)):                     # per image, so the stream is the same for any grouping
            u = torch.rand(k, generator=g, dtype=torch.float64)
            t = torch.from_numpy(lower) + (u * torch.from_numpy(size)).long()
            draws.append((torch.cat([torch.zeros(1, dtype=torch.long), t]),
                          torch.randn((k + 1,) + shape, generator=g)))
        t = torch.stack([d[0] for d in draws])                          # [b, k + 1], column 0 is t = 0
        eps = torch.stack([d[1] for d in draws])                        # [b, k + 1, C, H, W]
        a = abar[t].view(*t.shape, *[1] * len(shape))
        x_t = (a.sqrt() * xb[:, None] + (1 - a).sqrt() * eps).flatten(0, 1)
        tf = t.flatten()
        eps_hat = torch.cat([eps_fn(x_t[i:i + batch_size].to(device), tf[i:i + batch_size].to(device)).cpu()
                             for i in range(0, len(tf), batch_size)]).view(eps.shape)
        sq = (eps.double() - eps_hat.double()).pow(2).flatten(2).sum(2)  # [b, k + 1]
        weight = torch.from_numpy(size).double()                        # stratum size: unbiased sum over t
        diffusion.append((weight * coef[t[:, 1:]] * sq[:, 1:]).sum(1))
        a0 = float(abar[0])                                             # L_0: decode the t = 0 copy
        x0_hat = (x_t.view(eps.shape)[:, 0].double() - math.sqrt(1 - a0) * eps_hat[:, 0].double()) / math.sqrt(a0)
        nll = discretized_gaussian_nll(xb, x0_hat.clamp(-1, 1), math.sqrt(float(scheduler.betas[0])))
        decoder.append(nll.flatten(1).sum(1))
    to_bpd = 1.0 / (x0[0].numel() * math.log(2))
    df = pd.DataFrame(dict(image=np.arange(len(x0)), prior_bpd=(prior_nats(scheduler, x0) * to_bpd).numpy(),
                           decoder_bpd=(torch.cat(decoder) * to_bpd).numpy(),
                           diffusion_bpd=(torch.cat(diffusion) * to_bpd).numpy()))
    df.insert(1, "bpd", df.prior_bpd + df.decoder_bpd + df.diffusion_bpd)
    return df


def summarize_bpd(df: pd.DataFrame) -> dict:
    """Mean bits/dim over images with its standard error: ``{"mean", "sem", "n"}``.

        summarize_bpd(vlb_bits_per_dim(unet, scheduler, x0))

    Each image's estimate is itself random (one noise draw per term, one t per stratum), so the spread over
    images, and hence this SEM, includes that Monte-Carlo error along with the spread of the images' own
    bounds: it is the stated error of the estimator, for these images, as it stands.
    """
    bpd = df["bpd"].to_numpy(dtype=float)
    n = len(bpd)
    return dict(mean=float(bpd.mean()), sem=float(bpd.std(ddof=1) / math.sqrt(n)) if n > 1 else math.nan, n=n)
