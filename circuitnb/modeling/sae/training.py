"""Training and scoring Part IV's hybrid VAE-SAEs under the sparsity schedule.

    model, hist = train_hybrid("topk_auxk", data.images, hidden=500, active_fraction=0.1, steps=4000, seed=0)
    hist["k"][-1], hist["l0"][-1]                 # the schedule's k and the measured active units per input
    acts = encode(model, heldout.images)          # {"codes": [N, H], "mu": [N, latent_dim]}
    negative_elbo_per_image(model, heldout.images, seed=0)    # [N], nats

The objective per image (batch means): Bernoulli reconstruction NLL summed over pixels + beta KL (a VAE,
beta = 1 by default) + ``recon_weight`` ||f_n - f_hat||^2 (the SAE's reconstruction of its input, summed over
features; the target f_n is held constant so the SAE term trains the SAE, and the conv encoder learns from the
ELBO through f_hat), plus per method:

* ``topk``: nothing more; k follows :func:`~circuitnb.modeling.sae.schedule.active_units` from H to
  round(``active_fraction`` H) over the first ``decay_fraction`` of the steps;
* ``topk_auxk``: + ``auxk_alpha`` ``recon_weight`` AuxK (:func:`~circuitnb.modeling.sae.model.aux_k_loss`,
  Gao et al. 2024: alpha = 1/32), dead = no firing on the last ``dead_window`` training images;
* ``l1``: + lambda ||codes||_1, lambda from :class:`~circuitnb.modeling.sae.schedule.L1Controller` steered to
  the same k(s) as a mean number of active units per input (never below ``l1_init`` / 100: anti-windup).

As Parts II and III: Adam, batches drawn with replacement by one seeded CPU generator (which also draws the
reparameterisation noise), initial weights from the seed only (a CPU run is bit-identical for a seed, the global
RNG untouched), and the shared loop (:func:`~circuitnb.modeling.loop.run_steps`: a tqdm bar, a NaN or infinite
loss stops training with a ``FloatingPointError`` naming the learning rate). After every step the decoder
columns are renormalised to unit length.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from circuitnb.modeling.loop import as_float32, batches, run_steps, seeded
from circuitnb.modeling.sae.model import METHODS, HybridVAE, aux_k_loss
from circuitnb.modeling.sae.schedule import L1Controller, active_units


def final_k(hidden: int, active_fraction: float) -> int:
    """The schedule's end point: round(active_fraction * hidden), at least 1 (paper: 0.1 x 500 = 50)."""
    return max(1, min(hidden, round(active_fraction * hidden)))


def _kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    return 0.5 * (mu ** 2 + logvar.exp() - 1 - logvar).sum(1)


def train_hybrid(method: str, images: np.ndarray | torch.Tensor, *, widths: tuple[int, ...] = (16, 16, 32, 32),
                 latent_dim: int = 10, hidden: int = 500, active_fraction: float = 0.1, decay_fraction: float = 0.5,
                 shape: str = "linear", steps: int = 4000, batch_size: int = 64, lr: float = 1e-3,
                 beta: float = 1.0, recon_weight: float = 1.0, l1_init: float = 1e-3, l1_gain: float = 0.05,
                 auxk_alpha: float = 1 / 32, auxk_k: int = 256, dead_window: int = 5000, seed: int = 0,
                 progress: bool = True, device: str = "cpu",
                 callback: Callable[[int, HybridVAE, dict], None] | None = None,
                 callback_steps: Sequence[int] = ()) -> tuple[HybridVAE, dict]:
    """``train_hybrid("l1", x, hidden=64, steps=200)`` -> (model in eval mode at the final k, history).
    ``images``: [N, C, S, S] in [-1, 1]. History, one value per step: ``loss``, ``recon`` (pixel NLL), ``sae``
    (feature reconstruction), ``k`` (the schedule's target), ``l0`` (batch mean of nonzero codes per input),
    ``lam`` (L1 coefficient; l1 only), ``dead`` (units dead by the AuxK window). ``callback(step, model, hist)``
    runs after each step in ``callback_steps`` (1-based) in eval mode; it must not draw from the training
    generator."""
    if method not in METHODS:
        raise ValueError(f"parameter 'method' = {method!r}; choose one of {METHODS}")
    x_all = as_float32(images)
    if x_all.ndim != 4 or x_all.shape[2] != x_all.shape[3]:
        raise ValueError(f"images must be [N, C, S, S]; got {tuple(x_all.shape)}")
    n = len(x_all)
    k_end = final_k(hidden, active_fraction)
    g = torch.Generator().manual_seed(seed)
    with seeded(seed):                                             # initialise from the seed only
        model = HybridVAE(x_all.shape[1], x_all.shape[-1], widths, latent_dim, hidden, method)
    model.to(device)
    opt = torch.optim.Adam(model.parameters(), lr=lr, foreach=True)
    # Anti-windup: while the layer is sparser than k(s) by itself (early, at large k), lambda would sink without
    # bound and take hundreds of steps to climb back once k(s) falls below the natural activity (measured: from
    # the 1e-8 floor, activity reached k = 50 some 350 steps after the decay ended). Floor: l1_init / 100.
    ctl = L1Controller(l1_init, l1_gain, low=l1_init / 100) if method == "l1" else None
    hist: dict[str, list] = {key: [] for key in ("loss", "recon", "sae", "k", "l0", "lam", "dead")}

    def step(s: int):
        k = active_units(s, steps, hidden, k_end, decay_fraction, shape)
        if method != "l1":
            model.k = k
        x = x_all[torch.randint(n, (batch_size,), generator=g)].to(device)
        out = model(x, g)
        recon = F.binary_cross_entropy_with_logits(out.logits, (x + 1) / 2, reduction="sum") / len(x)
        sae = (out.f.detach() - out.f_hat).pow(2).sum(1).mean()
        loss = recon + beta * _kl(out.mu, out.logvar).mean() + recon_weight * sae
        dead = model.dead_mask(dead_window)
        if method == "l1":
            loss = loss + ctl.lam * out.codes.abs().sum(1).mean()
        elif method == "topk_auxk":
            aux = aux_k_loss(out.pre, dead, out.f - out.f_hat, model.sae.decode.weight, auxk_k)
            loss = loss + auxk_alpha * recon_weight * aux

        def after(value: float) -> dict:
            model.sae.normalize_decoder()
            model.track_firing(out.codes.detach())
            l0 = float((out.codes > 0).sum(1).float().mean())
            for key, v in (("loss", value), ("recon", recon.item()), ("sae", sae.item()), ("k", k), ("l0", l0),
                           ("lam", ctl.lam if ctl else 0.0), ("dead", int(dead.sum()))):
                hist[key].append(v)
            if ctl is not None:
                ctl.update(l0, k)
            return dict(loss=f"{value:.1f}", k=k, l0=f"{l0:.0f}")
        return loss, after

    run_steps(model, opt, step, steps, name=f"train_hybrid({method!r})", lr=lr, desc=f"sae {method}",
              progress=progress, callback=None if callback is None else lambda s: callback(s, model, hist),
              callback_steps=callback_steps)
    return model, hist


@torch.no_grad()
def encode(model: HybridVAE, images: np.ndarray | torch.Tensor, batch_size: int = 512) -> dict[str, np.ndarray]:
    """``encode(model, x)`` -> {"codes": float32 [N, H] the hidden units at the model's k, "mu": float32
    [N, latent_dim] posterior means}, in eval mode."""
    was = model.training
    model.eval()
    codes, mus = [], []
    for x in batches(model, images, batch_size):
        out = model(x)
        codes.append(out.codes.cpu())
        mus.append(out.mu.cpu())
    model.train(was)
    return {"codes": torch.cat(codes).numpy(), "mu": torch.cat(mus).numpy()}


@torch.no_grad()
def negative_elbo_per_image(model: HybridVAE, images: np.ndarray | torch.Tensor, seed: int = 0,
                            batch_size: int = 512) -> np.ndarray:
    """The plain negative ELBO (beta = 1; no SAE or sparsity term), nats per image, float64 [N]: Bernoulli NLL
    summed over pixels + KL, one posterior draw per image from a generator seeded with ``seed`` (paired across
    snapshots), at the model's current k."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for x in batches(model, images, batch_size):
        _, _, f_hat = model.sae(model.features(x))
        mu, logvar = model.head(f_hat)
        z = mu + torch.exp(0.5 * logvar) * torch.randn(mu.shape, generator=g).to(x.device)
        nll = F.binary_cross_entropy_with_logits(model.decoder(z), (x + 1) / 2, reduction="none").sum((1, 2, 3))
        out.append((nll + _kl(mu, logvar)).cpu())
    return torch.cat(out).double().numpy()
