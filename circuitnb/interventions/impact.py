"""Applying interventions and the impact score (Eq. 5) on paired noise.

    spec = [Intervention("zero", "enc_middle"), Intervention("temperature", "up0.attn0", strength=0.5, head=3)]
    result = impact(unet, scheduler, x0, t=300, interventions=spec, seed=0)
    result.impact        # I = (MSE_int - MSE_base) / MSE_base on paired noise

Interventions compose: a list is applied together in one forward pass, and two
on one site run in list order. Kinds come from the registry
(:mod:`circuitnb.interventions.registry`, built-ins in :mod:`~circuitnb.interventions.library`).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch

from circuitnb.data.noise import paired_noise
from circuitnb.hooking.hooks import edit, record
from circuitnb.hooking.sites import resolve
from circuitnb.interventions.registry import Intervention, get, hooks_for
from circuitnb.measures.metrics import impact_score


def _compose(first, then):
    def both(x, ctx):
        y = first(x, ctx)
        return then(x if y is None else y, ctx)
    return both


@torch.no_grad()
def apply(unet, interventions, x_t: torch.Tensor, t: torch.Tensor, reference: dict | None = None) -> torch.Tensor:
    """eps_hat of ``unet`` at (x_t, t) with every intervention applied together.

        eps_hat = apply(unet, [Intervention("zero", "mid")], x_t, t)

    ``reference`` (site -> activations over a reference batch) serves the kinds
    that need one (``mean``); :func:`reference_activations` records it.
    """
    edits = {}
    for iv in interventions:
        if get(iv.kind).needs == "reference":
            iv = dataclasses.replace(iv, source=reference or {})
        for site, fn in hooks_for(iv, unet).items():
            edits[site] = _compose(edits[site], fn) if site in edits else fn
    with edit(unet, edits):
        return unet(x_t, t).sample


@torch.no_grad()
def patch_from(unet, sites, x_t: torch.Tensor, t: torch.Tensor) -> dict:
    """Activations of ``sites`` on a source input (another image, timestep or model), for ``patch``.

        source = patch_from(other_unet, ["mid"], x_t, t)
        apply(unet, [Intervention("patch", "mid", source=source)], x_t, t)
    """
    with record(unet, sites) as rec:
        unet(x_t, t)
    return {s: rec[s] for s in resolve(unet, sites)}


@dataclass
class ImpactResult:
    mse_base: float
    mse_int: float
    impact: float                 # (MSE_int - MSE_base) / MSE_base, Eq. 5
    per_image_base: np.ndarray
    per_image_int: np.ndarray


def paired_inputs(unet, scheduler, x0, t: int, seed: int):
    """(x0, eps, t tensor, x_t, generator) as every impact measurement draws them.

        x0, eps, tt, x_t, g = paired_inputs(unet, scheduler, images, 300, seed=0)

    eps is drawn first from ``seed``; the returned generator then draws the
    mean-ablation reference's noise (:func:`reference_activations`).
    """
    device = next(unet.parameters()).device
    x0 = (x0 if isinstance(x0, torch.Tensor) else torch.as_tensor(np.asarray(x0))).to(device)
    eps, g = paired_noise(x0.shape, seed)
    eps = eps.to(device)
    tt = torch.full((len(x0),), int(t), device=device, dtype=torch.long)
    return x0, eps, tt, scheduler.add_noise(x0, eps, tt), g


def reference_activations(unet, scheduler, specs, x0, t, g, reference_x0=None):
    """Site activations over the reference batch at t, for every kind in ``specs`` that needs a reference.

        reference = reference_activations(unet, scheduler, [[Intervention("mean", "mid")]], x0, 300, g)
    """
    mean_sites = sorted({s for spec in specs for iv in spec if get(iv.kind).needs == "reference"
                         for s in resolve(unet, iv.site)})
    if not mean_sites:
        return None
    device = x0.device
    ref = x0 if reference_x0 is None else torch.as_tensor(np.asarray(reference_x0)).to(device)
    r_eps = torch.randn(ref.shape, generator=g).to(device)
    r_t = torch.full((len(ref),), int(t), device=device, dtype=torch.long)
    return patch_from(unet, mean_sites, scheduler.add_noise(ref, r_eps, r_t), r_t)


def predicted_x0(scheduler, x_t: torch.Tensor, eps_hat: torch.Tensor, t: int) -> torch.Tensor:
    """The clean image implied by a noise prediction, in [-1, 1].

        x0_hat = predicted_x0(scheduler, x_t, eps_hat, 300)   # (x_t - sqrt(1 - abar_t) eps_hat) / sqrt(abar_t)
    """
    ab = scheduler.alphas_cumprod[int(t)].to(x_t)
    return ((x_t - (1 - ab).sqrt() * eps_hat) / ab.sqrt()).clamp(-1, 1)


@torch.no_grad()
def impact(unet, scheduler, x0, t: int, interventions, seed: int = 0,
           reference_x0=None) -> ImpactResult:
    """Impact score (Eq. 5) of ``interventions`` at timestep ``t`` on images ``x0`` [N, 3, H, W].

        impact(unet, scheduler, x0, 300, [Intervention("zero", "enc_middle")]).impact

    Base and intervened runs share the noise draw (paired). ``mean`` ablations
    use the site means over ``reference_x0`` (default: ``x0``) noised at the same t.
    """
    return impacts(unet, scheduler, x0, t, {"": interventions}, seed, reference_x0)[""]


@torch.no_grad()
def impacts(unet, scheduler, x0, t: int, specs: dict, seed: int = 0, reference_x0=None) -> dict:
    """:func:`impact` for many named intervention lists at one t, sharing the base pass and the noise.

        impacts(unet, scheduler, x0, 300, {"a": [Intervention("zero", "mid")], "none": []})["a"].impact

    ``specs`` maps a name to a list of :class:`Intervention`; returns name -> :class:`ImpactResult`.
    """
    x0, eps, tt, x_t, g = paired_inputs(unet, scheduler, x0, t, seed)
    reference = reference_activations(unet, scheduler, specs.values(), x0, t, g, reference_x0)
    base = (unet(x_t, tt).sample - eps).pow(2).mean(dim=(1, 2, 3))
    mb = base.mean().item()
    out = {}
    for name, spec in specs.items():
        intervened = (apply(unet, spec, x_t, tt, reference) - eps).pow(2).mean(dim=(1, 2, 3))
        mi = intervened.mean().item()
        out[name] = ImpactResult(mse_base=mb, mse_int=mi, impact=impact_score(mi, mb),
                                 per_image_base=base.cpu().numpy(), per_image_int=intervened.cpu().numpy())
    return out


__all__ = ["Intervention", "ImpactResult", "apply", "impact", "impacts", "paired_inputs", "patch_from",
           "predicted_x0", "reference_activations"]
