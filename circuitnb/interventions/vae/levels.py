"""The four intervention levels of the VAE framework (arXiv:2505.03530, abstract), on the shared hooks.

    acts = activations(model, x, ["encoder.fc_mu", "encoder.fc"])          # {site: float [n, units]}
    traversal = latent_traversal(model, z, steps=9, half_width=2.5)        # level 2
    fwd = patched_outputs(model, x, x_do, "encoder.fc", [None, 3, 7])    # x run with units from x_do
    patching_effects(fwd)                                                  # level 3: [whole site, unit 3, 7]
    mediation(fwd, patched_outputs(model, x_do, x, "encoder.fc", [None, 3, 7]))   # level 4

Level 1, input manipulation (change one factor, re-render), is
:func:`circuitnb.data.vae.datasets.counterfactual`; its effect on each unit is
``activations(model, x_f) - activations(model, x)`` fed to
:func:`circuitnb.measures.causal_effects.effect_matrix`.

Every hook is the package's ``fn(x, ctx)`` through :func:`circuitnb.hooking.hooks.record` and
:func:`~circuitnb.hooking.hooks.edit` on the generic site table (site = module path, e.g.
``encoder.fc``); nothing here is VAE-specific hooking. A unit is one entry of an fc site or one channel of
a conv site (its activation summarised by the spatial mean; patching a channel replaces the whole map).
The output compared is the decoder's Bernoulli mean in [0, 1] per pixel. Models run in eval mode, where
z = mu, so every run is deterministic.
"""
from __future__ import annotations

from typing import Iterable

import numpy as np
import torch

from circuitnb.hooking.hooks import edit, record
from circuitnb.modeling.vae.model import VAE


def _t(x) -> torch.Tensor:
    return torch.as_tensor(np.asarray(x, np.float32))


def _units(a: torch.Tensor) -> torch.Tensor:
    """[n, C, H, W] -> channel means [n, C]; [n, U] unchanged."""
    return a.flatten(2).mean(2) if a.ndim > 2 else a


@torch.no_grad()
def output(model: VAE, x) -> np.ndarray:
    """The reconstruction's Bernoulli means [n, H*W] in [0, 1] (eval: decoded from z = mu)."""
    dev = next(model.parameters()).device
    return torch.sigmoid(model(_t(x).to(dev))[0]).flatten(1).cpu().numpy()


@torch.no_grad()
def activations(model: VAE, x, sites: Iterable[str]) -> dict[str, np.ndarray]:
    """Each site's units on images ``x`` [n, 1, H, W]: {site: float [n, units]}."""
    sites = list(sites)
    dev = next(model.parameters()).device
    with record(model, sites) as rec:
        model(_t(x).to(dev))
    return {s: _units(rec[s]).cpu().numpy() for s in sites}


@torch.no_grad()
def latent_traversal(model: VAE, z: np.ndarray, steps: int, half_width: float) -> dict[str, np.ndarray]:
    """Level 2: each latent k swept over ``steps`` values in [-half_width, +half_width] (prior sd; the other
    latents at each image's posterior mean), decoded and re-encoded.

    Returns ``grid`` [steps]; ``images`` [d, steps, n, H, W] decoded means in [0, 1]; ``pixel`` [d] mean
    |change| of the output per pixel over the sweep (against the output at z); ``recoded`` [d, d]: row k
    is the mean |change| of each re-encoded posterior mean while latent k is swept (the latent-level
    specificity of a perturbation: ideally only entry k moves).
    """
    dev = next(model.parameters()).device
    z = _t(z).to(dev)
    grid = np.linspace(-half_width, half_width, steps)
    base = torch.sigmoid(model.decoder(z))
    base_code = model.encoder(2 * base - 1)[0]
    d, n = z.shape[1], z.shape[0]
    images = np.zeros((d, steps, n, *base.shape[-2:]), np.float32)
    pixel, recoded = np.zeros(d), np.zeros((d, d))
    for k in range(d):
        zk = z.repeat(steps, 1)
        zk[:, k] = torch.as_tensor(np.repeat(grid, n), dtype=zk.dtype, device=dev)
        out = torch.sigmoid(model.decoder(zk))
        images[k] = out.reshape(steps, n, *out.shape[-2:]).cpu().numpy()
        pixel[k] = float((out - base.repeat(steps, 1, 1, 1)).abs().mean())
        recoded[k] = (model.encoder(2 * out - 1)[0] - base_code.repeat(steps, 1)).abs().mean(0).cpu().numpy()
    return dict(grid=grid, images=images, pixel=pixel, recoded=recoded)


def _replace(unit: int | None, value: torch.Tensor):
    """An ``fn(x, ctx)`` that puts ``value`` (the site's output on other images) in place: the whole
    site (``unit`` None) or one unit / channel."""
    def fn(x, ctx):
        if unit is None:
            return value
        x = x.clone()
        x[:, unit] = value[:, unit]
        return x
    return fn


@torch.no_grad()
def patched_outputs(model: VAE, x_to, x_from, site: str, units: Iterable[int | None]) -> dict[str, np.ndarray]:
    """Outputs of ``x_to`` with each unit of ``site`` (None = the whole site) taken from ``x_from``, one
    run per unit: ``patched`` [units, n, H*W], beside ``out_to`` and ``out_from`` [n, H*W]."""
    dev = next(model.parameters()).device
    a, b = _t(x_to).to(dev), _t(x_from).to(dev)
    out_a, out_b = torch.sigmoid(model(a)[0]).flatten(1), torch.sigmoid(model(b)[0]).flatten(1)
    with record(model, [site]) as rec:
        model(b)
    src = rec[site]
    runs = []
    for u in units:
        with edit(model, {site: _replace(u, src)}):
            runs.append(torch.sigmoid(model(a)[0]).flatten(1))
    return dict(out_to=out_a.cpu().numpy(), out_from=out_b.cpu().numpy(), patched=torch.stack(runs).cpu().numpy())


def patching_effects(p: dict[str, np.ndarray]) -> np.ndarray:
    """Level 3: activation patching, from :func:`patched_outputs` of images ``x_a`` (to) and ``x_b``
    (from) that differ in one factor.

    Per unit: sum_n ||out(a; u <- b) - out(a)|| / sum_n ||out(b) - out(a)||, the share of the factor's
    effect on the output that the unit alone carries (>= 0; 1 for a site every path crosses, e.g. the
    whole latent layer; 0 for a unit the output ignores). Returns float [units].
    """
    total = np.linalg.norm(p["out_from"] - p["out_to"], axis=1).sum()
    moved = np.linalg.norm(p["patched"] - p["out_to"][None], axis=2).sum(1)
    return moved / total if total > 0 else np.zeros(len(moved))


def mediation(forward: dict[str, np.ndarray], backward: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Level 4: causal mediation of an input intervention (x -> x_do) on the output through each unit
    (Pearl 2001; Vig et al. 2020 for networks). ``forward`` = :func:`patched_outputs` (x, x_do, ...),
    ``backward`` = :func:`patched_outputs` (x_do, x, ...), same site and units.

    Per image: total effect TE = out(x_do) - out(x); natural indirect effect NIE = out(x; M <- M(x_do))
    - out(x) (the mediator takes its value under the intervention, nothing else does); natural direct
    effect NDE = out(x_do; M <- M(x)) - out(x). Outputs are pixel vectors; our reading projects each on
    TE: ``indirect`` = sum_n <NIE, TE> / sum_n ||TE||^2 and ``direct`` likewise, the share of the total
    effect that goes through the mediator (1 and 0 for a site every path crosses). Float [units] each.
    """
    out, out_do = forward["out_to"], forward["out_from"]
    te = out_do - out
    norm = float((te * te).sum())
    scale = 1 / norm if norm > 0 else 0.0
    nie = ((forward["patched"] - out[None]) * te[None]).sum((1, 2)) * scale
    nde = ((backward["patched"] - out[None]) * te[None]).sum((1, 2)) * scale
    return dict(indirect=nie, direct=nde, total=norm)
