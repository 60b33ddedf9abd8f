"""Training and scoring Part V's MRI VAEs on healthy slices.

    model, hist = train_mri("attention", healthy.images, steps=1500, seed=0)
    negative_elbo_per_image(model, heldout_healthy.images, seed=0)       # [N], nats

The objective per image (batch means): the Gaussian reconstruction NLL summed over pixels and channels
(:func:`~circuitnb.modeling.mri.model.gaussian_nll`, with the decoder's per-pixel or shared log-variance) +
``beta`` KL(q(z|x) || N(0, I)); beta = 1 is the plain negative ELBO.

As Parts II-IV: Adam, batches drawn with replacement by one seeded CPU generator (which also draws the
reparameterisation noise), initial weights and dropout masks from the seed (the global RNG is forked, so it is
left untouched), and the shared loop (:func:`~circuitnb.modeling.loop.run_steps`: a tqdm bar, a NaN or infinite
loss stops training with a ``FloatingPointError`` naming the learning rate).
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch

from circuitnb.modeling.loop import as_float32, batches, cosine_lr, run_steps, seeded
from circuitnb.modeling.mri.model import MriVAE, check_kind, gaussian_nll, kl_normal


def train_mri(kind: str, images: np.ndarray | torch.Tensor, *, widths: tuple[int, ...] = (32, 64),
              latent_dim: int = 32, heads: int = 4, dropout: float = 0.1, steps: int = 1500, batch_size: int = 32,
              lr: float = 1e-3, beta: float = 1.0, seed: int = 0, progress: bool = True, device: str = "cpu",
              callback: Callable[[int, MriVAE, dict], None] | None = None,
              callback_steps: Sequence[int] = (), lr_schedule: str = "constant") -> tuple[MriVAE, dict]:
    """``train_mri("attention", x, steps=200)`` -> (model in eval mode, history). ``images``: [N, C, S, S] in
    [-1, 1], healthy slices only. History, one value per step: ``loss`` (the beta-weighted negative ELBO),
    ``nll`` and ``kl`` (nats per image). ``callback(step, model, hist)`` runs after each step in
    ``callback_steps`` (1-based) in eval mode; it must not draw from the training generator. ``lr_schedule``
    'cosine' decays the learning rate from ``lr`` to 0 over the steps (:func:`~circuitnb.modeling.loop.cosine_lr`)."""
    check_kind(kind)
    if lr_schedule not in ("constant", "cosine"):
        raise ValueError(f"parameter 'lr_schedule' = {lr_schedule!r}; choose 'constant' or 'cosine'")
    x_all = as_float32(images)
    if x_all.ndim != 4 or x_all.shape[2] != x_all.shape[3]:
        raise ValueError(f"images must be [N, C, S, S]; got {tuple(x_all.shape)}")
    if len(x_all) == 0:
        raise ValueError("no training images (no healthy slice in the training subjects)")
    n = len(x_all)
    g = torch.Generator().manual_seed(seed)
    hist: dict[str, list] = {"loss": [], "nll": [], "kl": []}

    def step(s: int):
        x = x_all[torch.randint(n, (batch_size,), generator=g)].to(device)
        out = model(x, g)
        nll = gaussian_nll(x, out.mean, out.logvar).sum((1, 2, 3)).mean()
        kl = kl_normal(out.mu, out.logvar_z).mean()

        def after(value: float) -> dict:
            for key, v in (("loss", value), ("nll", nll.item()), ("kl", kl.item())):
                hist[key].append(v)
            return dict(loss=f"{value:.0f}")
        return nll + beta * kl, after

    with seeded(seed):                                             # weights and dropout masks from the seed only
        model = MriVAE(x_all.shape[1], x_all.shape[-1], tuple(widths), latent_dim, heads, kind, dropout)
        model.to(device)
        opt = torch.optim.Adam(model.parameters(), lr=lr, foreach=True)
        run_steps(model, opt, step, steps, name=f"train_mri({kind!r})", lr=lr, desc=f"mri {kind}",
                  progress=progress, callback=None if callback is None else lambda s: callback(s, model, hist),
                  callback_steps=callback_steps, lr_at=cosine_lr(lr, steps) if lr_schedule == "cosine" else None)
    return model, hist


@torch.no_grad()
def negative_elbo_per_image(model: MriVAE, images: np.ndarray | torch.Tensor, seed: int = 0,
                            batch_size: int = 256) -> np.ndarray:
    """The negative ELBO (beta = 1), nats per image, float64 [N]: Gaussian NLL summed over pixels and channels +
    KL, one posterior draw per image from a generator seeded with ``seed`` (paired across snapshots), dropout
    off (the network's deterministic weights: the held-out objective of the convergence rule)."""
    g = torch.Generator().manual_seed(seed)
    was = model.training
    model.eval()
    out = []
    for x in batches(model, images, batch_size):
        mu, logvar_z = model.encode(x)
        z = mu + torch.exp(0.5 * logvar_z) * torch.randn(mu.shape, generator=g).to(x.device)
        mean, logvar = model.decode(z)
        out.append((gaussian_nll(x, mean, logvar).sum((1, 2, 3)) + kl_normal(mu, logvar_z)).cpu())
    model.train(was)
    return torch.cat(out).double().numpy()
