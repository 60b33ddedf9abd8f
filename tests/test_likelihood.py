"""The DDPM bound (Eq. 5) against known answers: Gaussian data with its Bayes-optimal eps predictor."""
import math

import numpy as np
import pandas as pd
import pytest
import torch
from diffusers import DDPMScheduler, UNet2DModel
from scipy import stats

from circuitnb.measures import likelihood as L

S = 0.3                                              # data std: x0 ~ N(0, S^2), quantised to 8 bits


def cosine(T: int) -> DDPMScheduler:
    return DDPMScheduler(num_train_timesteps=T, beta_schedule="squaredcos_cap_v2", clip_sample=True)


def gaussian_images(n: int, shape=(1, 8, 8), seed: int = 1) -> torch.Tensor:
    x = torch.randn((n, *shape), generator=torch.Generator().manual_seed(seed)) * S
    return torch.round((x.clamp(-1, 1) + 1) * 127.5) / 127.5 - 1


def optimal(scheduler: DDPMScheduler):
    """E[eps | x_t] for x0 ~ N(0, S^2 I): sqrt(1 - abar) x_t / (abar S^2 + 1 - abar)."""
    abar = scheduler.alphas_cumprod.float()

    def eps_hat(x_t, t):
        a = abar[t].view(-1, 1, 1, 1)
        return (1 - a).sqrt() * x_t / (a * S ** 2 + 1 - a)
    return eps_hat


def _log_bin_mass(x, mean, std):
    """log of the N(mean, std^2) mass of x's 2/255 bin (edges to +-inf), by scipy; mirrored for the upper tail."""
    h = 1 / 255
    lo = np.where(x < -1 + h, -np.inf, (x - h - mean) / std)
    hi = np.where(x > 1 - h, np.inf, (x + h - mean) / std)
    upper = lo + hi > 0
    return np.log(np.where(upper, stats.norm.sf(lo) - stats.norm.sf(hi), stats.norm.cdf(hi) - stats.norm.cdf(lo)))


def true_nll_bpd(x0: torch.Tensor) -> np.ndarray:
    """-log2 P(x0) per dim under the data's own law: each pixel's bin mass under N(0, S^2)."""
    x = x0.double().numpy().reshape(len(x0), -1)
    return -_log_bin_mass(x, 0.0, S).sum(1) / (x.shape[1] * math.log(2))


def expected_bound_bpd(scheduler: DDPMScheduler, x0: torch.Tensor) -> np.ndarray:
    """E over noise and t of each image's bound under :func:`optimal`, from closed forms (not the module's code).

    eps_hat = c_t x_t is linear, so E||eps - eps_hat||^2 = D (1 - c_t sqrt(1 - abar_t))^2 + c_t^2 abar_t ||x0||^2;
    the decoder's expectation over its one noise draw is a Gauss-Hermite integral per pixel.
    """
    a, b = scheduler.alphas_cumprod.double().numpy(), scheduler.betas.double().numpy()
    x = x0.double().numpy().reshape(len(x0), -1)
    D, sq = x.shape[1], (x ** 2).sum(1, keepdims=True)
    c = np.sqrt(1 - a) / (a * S ** 2 + 1 - a)
    beta_tilde = b[1:] * (1 - a[:-1]) / (1 - a[1:])
    coef = b[1:] ** 2 / (2 * beta_tilde * (1 - b[1:]) * (1 - a[1:]))
    diffusion = (coef * ((1 - c[1:] * np.sqrt(1 - a[1:])) ** 2 * D + c[1:] ** 2 * a[1:] * sq)).sum(1)
    prior = 0.5 * (a[-1] * sq[:, 0] - D * (a[-1] + np.log1p(-a[-1])))
    e, w = np.polynomial.hermite_e.hermegauss(40)
    x_t = np.sqrt(a[0]) * x[..., None] + np.sqrt(1 - a[0]) * e
    mean = np.clip((1 - np.sqrt(1 - a[0]) * c[0]) * x_t / np.sqrt(a[0]), -1, 1)
    decoder = -(_log_bin_mass(x[..., None], mean, np.sqrt(b[0])) * w / w.sum()).sum((1, 2))
    return (prior + diffusion + decoder) / (D * math.log(2))


def sem(d) -> float:
    return float(np.std(d, ddof=1) / math.sqrt(len(d)))


def test_bound_sits_its_known_gap_above_the_true_nll_of_gaussian_data():
    scheduler, x0 = cosine(1000), gaussian_images(256)        # the project's schedule
    df = L.vlb_bits_per_dim(optimal(scheduler), scheduler, x0, n_t=None, batch_size=4096)
    nll = true_nll_bpd(x0)                                     # about 7.30 bits/dim
    d = df.bpd.to_numpy() - nll                                # paired: the images' own NLLs cancel
    expected_gap = float(np.mean(expected_bound_bpd(scheduler, x0) - nll))
    # A bound: not below the NLL beyond the Monte-Carlo error (4 SEM of the paired difference, ~0.014 bits).
    assert d.mean() > -4 * sem(d)
    assert expected_gap > 0
    # The estimate is the closed-form expectation within its MC error ...
    assert abs(d.mean() - expected_gap) < 4 * sem(d)
    # ... and the gap is the one measured: 0.579 +- 0.0002 bits/dim (4,096 images, closed form) at T = 1000
    # (0.84 at T = 200, 0.98 at T = 100). It is the fixed variance beta_tilde_t being smaller than the true
    # reverse variance at the first steps, where beta_t ~ 1 - abar_{t-1}; the decoder costs within 0.002 bits
    # of its ideal. Its spread over samples of 256 images (0.0007) is negligible next to 4 SEM.
    assert d.mean() < 0.58 + 4 * sem(d)


def test_stratified_estimate_agrees_with_the_exact_sum():
    scheduler, x0 = cosine(200), gaussian_images(1024, shape=(1, 4, 4))
    eps_hat = optimal(scheduler)
    strat = L.vlb_bits_per_dim(eps_hat, scheduler, x0, n_t=16, seed=0, batch_size=4096)
    exact = L.vlb_bits_per_dim(eps_hat, scheduler, x0, n_t=None, seed=1, batch_size=4096)
    assert (strat.prior_bpd == exact.prior_bpd).all()        # analytic: no draws
    d = strat.bpd.to_numpy() - exact.bpd.to_numpy()          # per image: both unbiased for the same bound
    assert abs(d.mean()) < 4 * sem(d)
    e = exact.bpd.to_numpy() - expected_bound_bpd(scheduler, x0)
    assert abs(e.mean()) < 4 * sem(e)


def test_a_worse_model_has_a_higher_bound_on_paired_draws():
    scheduler, x0 = cosine(100), gaussian_images(64, shape=(1, 4, 4))
    best = L.vlb_bits_per_dim(optimal(scheduler), scheduler, x0, n_t=8, seed=3)
    worse = L.vlb_bits_per_dim(lambda x_t, t: torch.zeros_like(x_t), scheduler, x0, n_t=8, seed=3)
    assert (worse.bpd > best.bpd).all()
    assert L.summarize_bpd(worse)["mean"] > L.summarize_bpd(best)["mean"] + 4 * L.summarize_bpd(best)["sem"]


def test_deterministic_and_finite_with_a_random_unet():
    torch.manual_seed(0)
    unet = UNet2DModel(sample_size=8, in_channels=1, out_channels=1, block_out_channels=(8, 16), norm_num_groups=8,
                       down_block_types=("DownBlock2D", "AttnDownBlock2D"),
                       up_block_types=("AttnUpBlock2D", "UpBlock2D"), attention_head_dim=4, layers_per_block=1).eval()
    scheduler, x0 = cosine(100), gaussian_images(4).numpy()
    a = L.vlb_bits_per_dim(unet, scheduler, x0, n_t=4, seed=0)
    pd.testing.assert_frame_equal(a, L.vlb_bits_per_dim(unet, scheduler, x0, n_t=4, seed=0))
    assert list(a.columns) == ["image", "bpd", "prior_bpd", "decoder_bpd", "diffusion_bpd"]
    assert np.isfinite(a.drop(columns="image").to_numpy()).all() and (a.bpd > 0).all()
    # Draws are per image, so another batching gives the same numbers (up to the UNet's batched arithmetic).
    b = L.vlb_bits_per_dim(unet, scheduler, x0, n_t=4, seed=0, batch_size=3)
    np.testing.assert_allclose(a.bpd, b.bpd, rtol=1e-5)
    assert not np.allclose(a.bpd, L.vlb_bits_per_dim(unet, scheduler, x0, n_t=4, seed=1).bpd)
    assert set(L.summarize_bpd(a)) == {"mean", "sem", "n"} and L.summarize_bpd(a)["n"] == 4


@pytest.mark.parametrize("t", [1, 37, 99])
def test_coefficient_is_the_gaussian_kl_between_the_two_posteriors(t):
    scheduler = cosine(100)
    a, b = scheduler.alphas_cumprod.double(), scheduler.betas.double()
    g = torch.Generator().manual_seed(t)
    x0, eps, eps_hat = (torch.randn(32, generator=g, dtype=torch.float64) for _ in range(3))
    x_t = a[t].sqrt() * x0 + (1 - a[t]).sqrt() * eps
    x0_hat = (x_t - (1 - a[t]).sqrt() * eps_hat) / a[t].sqrt()

    def posterior_mean(x0_):                                  # Eq. 7: mu_tilde(x_t, x0)
        return (a[t - 1].sqrt() * b[t] * x0_ + (1 - b[t]).sqrt() * (1 - a[t - 1]) * x_t) / (1 - a[t])
    var = b[t] * (1 - a[t - 1]) / (1 - a[t])                 # beta_tilde_t for both
    kl = torch.distributions.kl_divergence(torch.distributions.Normal(posterior_mean(x0), var.sqrt()),
                                           torch.distributions.Normal(posterior_mean(x0_hat), var.sqrt())).sum()
    # rel 1e-6: diffusers stores abar in float32, so abar_t = abar_{t-1} (1 - beta_t), which the short form of
    # coef_t uses and Eq. 7 does not, holds only to float32 rounding (we see ~2e-8).
    coef = L.kl_coefficients(scheduler)[t]
    assert float(coef * (eps - eps_hat).pow(2).sum()) == pytest.approx(float(kl), rel=1e-6)


def test_decoder_matches_scipy_and_stays_finite_far_from_the_mean():
    x0 = torch.tensor([-1.0, -1 + 2 / 255, 0.0, 1 - 2 / 255, 1.0, 0.0, 1.0])
    mean = torch.tensor([-0.99, -1.0, 0.003, 0.99, 0.98, 0.9, -0.9])
    got = L.discretized_gaussian_nll(x0, mean, 0.01).numpy()
    want = -_log_bin_mass(x0[:5].double().numpy(), mean[:5].double().numpy(), 0.01)
    np.testing.assert_allclose(got[:5], want, rtol=1e-9)
    assert np.isfinite(got).all() and (got[5:] > 1e3).all()   # 90 std away: scipy's difference would be log 0


def test_bad_inputs_are_named():
    scheduler = cosine(100)
    with pytest.raises(ValueError, match="n_t"):
        L.vlb_bits_per_dim(optimal(scheduler), scheduler, gaussian_images(2), n_t=100)
    with pytest.raises(ValueError, match="x0"):
        L.vlb_bits_per_dim(optimal(scheduler), scheduler, 3 * gaussian_images(2))


def test_geometric_strata_keep_the_per_image_estimate_tight():
    # Equal strata gave a per-image sd of ~10 bits/dim at n_t = 16 here (the first t, which carry most of the
    # bound, were one draw among ~60); the geometric strata measured 0.40. A bound of 1.0 fails the old design.
    scheduler, x0 = cosine(1000), gaussian_images(256)
    df = L.vlb_bits_per_dim(optimal(scheduler), scheduler, x0, n_t=16, batch_size=4096)
    assert df.bpd.std(ddof=1) < 1.0
    d = df.bpd.to_numpy() - expected_bound_bpd(scheduler, x0)
    assert abs(d.mean()) < 4 * sem(d)                          # still unbiased


def test_strata_cover_every_timestep_once():
    for T, n_t in ((1000, 8), (1000, 16), (10, 8), (200, 199)):
        lower, size = L._strata(T, n_t)
        assert len(lower) == n_t and (size >= 1).all() and lower[0] == 1 and lower[-1] + size[-1] == T
        assert (lower[1:] == lower[:-1] + size[:-1]).all()
