"""Is a model finished? The held-out denoising loss and the convergence rule the book judges models by.

    loss = heldout_loss_per_image(unet, scheduler, x0, n_t=8, seed=0)    # [N] eps-MSE per held-out image
    rule = convergence(steps=[100, 200, 300, 400], losses=[l100, l200, l300, l400], tol=0.02)
    rule["converged"], rule["rel_improvement"]

A verdict on an unfinished model measures training length, not the paper. The training objective
(Ho et al. 2020's L_simple: eps-MSE with t uniform on 0..T-1) on images the model never trained on
is the yardstick: every training option is compared on it, whatever loss weighting it trained with.
The rule: a model is converged when its held-out loss moved by less than ``tol`` (relative) over the
last quarter of training, i.e. from the last snapshot at or before 3/4 of the steps to the end. Both ways:
a model whose held-out loss rose by more than ``tol`` is unstable (status "worsening"), not finished.
Losses are per image on paired draws (the same t and eps for every snapshot of a model), so the
improvement is a paired difference and its CI is narrow.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from scipy import stats as sps

from circuitnb.measures.likelihood import as_eps_fn

LAST_FRACTION = 0.25           # the rule looks at the last quarter of training


def stratified_timesteps(n: int, n_t: int, low: int, high: int, generator: torch.Generator) -> torch.Tensor:
    """``[n, n_t]`` timesteps, one uniform draw in each of ``n_t`` equal strata of ``low..high - 1`` per row:
    an unbiased estimate of the uniform mean over t with less variance than ``n_t`` independent draws."""
    edges = torch.linspace(low, high, n_t + 1)
    u = torch.rand((n, n_t), generator=generator)
    t = (edges[:-1] + u * (edges[1:] - edges[:-1])).floor().long()
    return t.clamp(low, high - 1)


@torch.no_grad()
def heldout_loss_per_image(eps_model, scheduler, x0: np.ndarray, n_t: int = 8, seed: int = 0,
                           batch_size: int = 64) -> np.ndarray:
    """L_simple per image: the eps-MSE (per pixel) averaged over ``n_t`` stratified t in 0..T-1.

        heldout_loss_per_image(unet, scheduler, x0_heldout, n_t=8, seed=0)    # [N]

    ``eps_model`` is a diffusers UNet or any ``fn(x_t, t) -> eps_hat``. t and eps come from a seeded CPU
    generator, so the same seed gives the same draws on every device and for every snapshot.
    """
    fn, device = as_eps_fn(eps_model)
    x0 = torch.from_numpy(np.asarray(x0, np.float32))
    g = torch.Generator().manual_seed(seed)
    T = scheduler.config.num_train_timesteps
    ts = stratified_timesteps(len(x0), n_t, 0, T, g)
    eps = torch.randn((n_t, *x0.shape), generator=g)
    out = torch.zeros(len(x0), dtype=torch.float64)
    for k in range(n_t):
        for s in range(0, len(x0), batch_size):
            xb, eb, tb = (v[s:s + batch_size].to(device) for v in (x0, eps[k], ts[:, k]))
            eps_hat = fn(scheduler.add_noise(xb, eb, tb), tb)
            out[s:s + batch_size] += (eps_hat.float() - eb).pow(2).mean(dim=(1, 2, 3)).double().cpu()
    return (out / n_t).numpy()


def reference_index(steps: Sequence[int]) -> int | None:
    """Index of the snapshot the last quarter starts from: the last one at or before 3/4 of the final step
    (None when there is none, e.g. a single snapshot: the rule cannot be applied)."""
    cut = steps[-1] * (1 - LAST_FRACTION)
    before = [i for i, s in enumerate(steps[:-1]) if s <= cut + 1e-9]
    return before[-1] if before else None


def convergence(steps: Sequence[int], losses: Sequence[np.ndarray], tol: float, confidence: float = 0.95) -> dict:
    """The convergence rule on one model's per-image held-out losses at its snapshots (paired draws).

        convergence([100, 200, 300, 400], [l1, l2, l3, l4], tol=0.02)
        # {'reference_step': 300, 'final_step': 400, 'rel_improvement': 0.013, 'ci_low': ..., 'ci_high': ...,
        #  'converged': True}

    ``rel_improvement`` = (mean L_ref - mean L_final) / |mean L_ref|; its CI is the paired t-interval of the
    per-image differences over |mean L_ref|. The magnitude, because a continuous likelihood's negative log
    (a Gaussian decoder's, in nats) can be negative: a falling loss is an improvement whatever its sign.
    ``converged``: |rel_improvement| < tol; ``status``: "converged", "improving" or "worsening" (None and
    "not judged" where no reference snapshot exists).
    """
    i = reference_index(steps)
    if i is None:
        return dict(reference_step=None, final_step=steps[-1], rel_improvement=np.nan, ci_low=np.nan,
                    ci_high=np.nan, converged=None, status="not judged")
    ref, last = np.asarray(losses[i], float), np.asarray(losses[-1], float)
    diff = ref - last
    scale = abs(ref.mean())
    half = sps.t.ppf(0.5 + confidence / 2, len(diff) - 1) * diff.std(ddof=1) / np.sqrt(len(diff))
    rel = diff.mean() / scale
    return dict(reference_step=int(steps[i]), final_step=int(steps[-1]), rel_improvement=float(rel),
                ci_low=float((diff.mean() - half) / scale), ci_high=float((diff.mean() + half) / scale),
                converged=bool(abs(rel) < tol),
                status="converged" if abs(rel) < tol else "improving" if rel > 0 else "worsening")
