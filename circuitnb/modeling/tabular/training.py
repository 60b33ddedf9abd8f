"""Training and scoring Part III's tabular VAEs.

    model, disc, losses = train_tabular_vae("dip_vae_ii", data.x, data.layout, steps=1000, seed=0)
    nelbo_terms(model, heldout.x)          # DataFrame per row: one NLL column per data column, recon, kl, nelbo
    encode_mean(model, heldout.x)          # [N, latent_dim]
    reconstruct(model, heldout.x)          # the decoder's mean in x's encoding, [N, D]

As Part II's :func:`~circuitnb.modeling.vae.model.train_vae`: Adam, minibatches drawn with replacement by one seeded
CPU generator (which also draws the reparameterisation noise and FactorVAE's permutations), initial weights from
the seed only, so a CPU run is bit-identical for a seed and the global RNG is untouched; the shared loop
(:func:`~circuitnb.modeling.loop.run_steps`: a tqdm bar, a NaN or infinite loss stops training with a
``FloatingPointError`` naming the learning rate). FactorVAE's
discriminator trains on a second batch with Kim & Mnih's Adam settings (lr 1e-4, betas (0.5, 0.9)).
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from circuitnb.modeling.loop import as_float32, batches, run_steps, seeded
from circuitnb.modeling.tabular.model import TAB_KINDS, TabularVAE, kl_per_row, objective
from circuitnb.modeling.vae.model import discriminator, discriminator_step


def build(kind: str, layout, *, latent_dim: int = 6, hidden: int = 64, beta: float = 4.0, gamma: float = 10.0,
          lambda_od: float = 10.0, lambda_d: float = 10.0, sigma: float = 0.5) -> TabularVAE:
    """The model of ``kind``, each weight only where its objective uses it (beta: beta_vae and beta_tc_vae;
    gamma: factor_vae; the lambdas: dip_vae_ii), so a cache key and a model agree on what was trained."""
    if kind not in TAB_KINDS:
        raise ValueError(f"parameter 'kind' = {kind!r}; choose one of {TAB_KINDS}")
    dip = kind == "dip_vae_ii"
    return TabularVAE(layout, latent_dim, hidden, kind, beta if kind in ("beta_vae", "beta_tc_vae") else 1.0,
                      gamma if kind == "factor_vae" else 0.0, lambda_od if dip else 0.0, lambda_d if dip else 0.0,
                      sigma)


def train_tabular_vae(kind: str, x: np.ndarray | torch.Tensor, layout, *, latent_dim: int = 6, hidden: int = 64,
                      steps: int = 1000, batch_size: int = 128, lr: float = 2e-3, beta: float = 4.0,
                      gamma: float = 10.0, lambda_od: float = 10.0, lambda_d: float = 10.0, sigma: float = 0.5,
                      seed: int = 0, disc_hidden: int = 64, disc_layers: int = 3, progress: bool = True,
                      device: str = "cpu", callback: Callable[[int, TabularVAE], None] | None = None,
                      callback_steps: Sequence[int] = ()) -> tuple[TabularVAE, nn.Module | None, list[float]]:
    """``train_tabular_vae("beta_vae", data.x, data.layout, steps=200)`` -> (model in eval mode, discriminator
    or None, loss per step). ``x``: encoded rows [N, D] (:class:`~circuitnb.data.tabular.TabularData`).
    ``callback(step, model)`` runs after each step in ``callback_steps`` (1-based) with the model in eval mode
    (e.g. the held-out negative ELBO at snapshots; it must not draw from the training generator)."""
    x_all = as_float32(x)
    n = len(x_all)
    g = torch.Generator().manual_seed(seed)
    with seeded(seed):                                             # initialise from the seed only
        model = build(kind, layout, latent_dim=latent_dim, hidden=hidden, beta=beta, gamma=gamma,
                      lambda_od=lambda_od, lambda_d=lambda_d, sigma=sigma)
        disc = discriminator(latent_dim, disc_hidden, disc_layers) if kind == "factor_vae" else None
    if x_all.ndim != 2 or x_all.shape[1] != model.lik.width:
        raise ValueError(f"x must be [N, {model.lik.width}] for this layout; got {tuple(x_all.shape)}")
    model.to(device)
    opt = torch.optim.Adam(model.parameters(), lr=lr, foreach=True)          # one kernel per step, not per tensor
    opt_d = None
    if disc is not None:
        disc.to(device)
        opt_d = torch.optim.Adam(disc.parameters(), lr=1e-4, betas=(0.5, 0.9), foreach=True)
    losses: list[float] = []

    def step(s: int):
        idx = torch.randint(n, (2 * batch_size if disc is not None else batch_size,), generator=g)
        xb = x_all[idx[:batch_size]].to(device)
        out, mu, logvar, z = model(xb, g)

        def after(value: float) -> dict:
            if disc is not None:
                discriminator_step(model, disc, opt_d, z, x_all[idx[batch_size:]].to(device), g)
            losses.append(value)
            return dict(loss=f"{value:.3f}")
        return objective(model, xb, out, mu, logvar, z, n, disc)["loss"], after

    run_steps(model, opt, step, steps, name=f"train_tabular_vae({kind!r})", lr=lr, desc=kind, progress=progress,
              every=50, callback=None if callback is None else lambda s: callback(s, model),
              callback_steps=callback_steps)
    if disc is not None:
        disc.eval()
    return model, disc, losses


@torch.no_grad()
def nelbo_terms(model: TabularVAE, x: np.ndarray | torch.Tensor, seed: int = 0, draws: int = 1,
                batch_size: int = 4096) -> pd.DataFrame:
    """The plain negative ELBO per row (beta = 1, whatever the model trained with), split into its terms, nats:
    one column per data column (its NLL), ``recon`` (their sum), ``kl`` and ``nelbo`` = recon + kl. The
    reconstruction terms average ``draws`` posterior samples per row (the KL is exact), drawn by a generator
    seeded with ``seed``, so two calls (two snapshots) are paired."""
    g = torch.Generator().manual_seed(seed)
    parts = []
    for xb in batches(model, x, batch_size):
        mu, logvar = model.encoder(xb)
        eps = torch.randn((draws, *mu.shape), generator=g).to(xb.device)
        z = (mu + torch.exp(0.5 * logvar) * eps).reshape(-1, mu.shape[1])          # [draws * B, d]
        nll = model.lik.nll_matrix(model.decoder(z), xb.repeat(draws, 1)).reshape(draws, len(xb), -1).mean(0)
        nll = nll.double().cpu().numpy()
        recon, kl = nll.sum(1), kl_per_row(mu, logvar).double().cpu().numpy()
        parts.append(pd.DataFrame({**{c[0]: nll[:, i] for i, c in enumerate(model.layout)},
                                   "recon": recon, "kl": kl, "nelbo": recon + kl}))
    return pd.concat(parts, ignore_index=True)


def negative_elbo_per_row(model: TabularVAE, x, seed: int = 0, draws: int = 1) -> np.ndarray:
    """``nelbo_terms(model, x, seed, draws)["nelbo"]`` as float64 [N]."""
    return nelbo_terms(model, x, seed, draws)["nelbo"].to_numpy()


@torch.no_grad()
def encode_mean(model: TabularVAE, x: np.ndarray | torch.Tensor) -> np.ndarray:
    """Posterior means, float32 [N, latent_dim]."""
    dev = next(model.parameters()).device
    return model.encoder(as_float32(x).to(dev))[0].cpu().numpy()


@torch.no_grad()
def reconstruct(model: TabularVAE, x: np.ndarray | torch.Tensor) -> np.ndarray:
    """The decoder's mean at z = mu, in x's encoding (category probabilities, expected ordinal level), [N, D]."""
    dev = next(model.parameters()).device
    mu = model.encoder(as_float32(x).to(dev))[0]
    return model.lik.expected(model.decoder(mu)).cpu().numpy()
