"""The paper's interventions (§3.2.4) as plain data, and the impact score (Eq. 5).

    spec = [Intervention("zero", "enc_middle"), Intervention("temperature", "up0.attn0", strength=0.5, head=3)]
    result = impact(unet, scheduler, x0, t=300, interventions=spec, seed=0)
    result.impact        # I = (MSE_int - MSE_base) / MSE_base on paired noise

Kinds (``site`` may be a site or a Table-3 group; ``strength`` as noted):

==================  =========================================================================
layer ablation      ``zero`` (x -> 0), ``mean`` (x -> its mean over a reference batch at the
                    same t), ``identity`` (the block/layer returns its input; shapes must match)
attention           ``uniform`` (map -> 1/K), ``temperature`` (softmax(logits / strength):
                    < 1 sharpens, > 1 flattens), ``noise`` (logits + strength * N(0, 1)),
                    ``shuffle`` (keys permuted), on one layer (``site`` = an attention layer,
                    e.g. ``up0.attn0``) and one head (``head``) or all; ``head_ablate`` zeroes
                    a head's output before the output projection
feature scaling     ``scale`` (x -> strength * x, optionally only ``channels``)
circuit interrupt   ``cut_skip`` (zero a skip connection ``skipK`` or all skips into a decoder
                    block ``upI``), ``cut_mid`` (zero the mid block's output)
patching            ``patch`` (x -> the same site's activation on another input; see
                    :func:`patch_from`)
==================  =========================================================================

Interventions compose: a list is applied together in one forward pass.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from circuitnb.hooking.hooks import edit, record
from circuitnb.measures.metrics import impact_score
from circuitnb.hooking.sites import SiteError, resolve, site_table

KINDS = ("zero", "mean", "identity", "uniform", "temperature", "noise", "shuffle", "head_ablate",
         "scale", "cut_skip", "cut_mid", "patch")
_ATTENTION_KINDS = ("uniform", "temperature", "noise", "shuffle", "head_ablate")


@dataclass(frozen=True)
class Intervention:
    kind: str
    site: str = ""
    strength: float | None = None
    head: int | None = None               # attention kinds: one head, or None for all heads
    channels: tuple | None = None         # scale: only these channels
    seed: int = 0                         # noise and shuffle
    source: dict = field(default_factory=dict, compare=False, hash=False)  # patch: {site: tensor}

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"parameter 'kind' = {self.kind!r}; choose one of {KINDS}")
        if self.kind in ("temperature", "noise", "scale") and self.strength is None:
            raise ValueError(f"intervention {self.kind!r} needs a 'strength'")
        if self.kind == "temperature" and self.strength <= 0:
            raise ValueError("parameter 'strength' of 'temperature' must be > 0")


def _attention_edits(iv: Intervention, unet) -> dict:
    table = site_table(unet)
    if table.get(iv.site) is None or table[iv.site].kind != "attn":
        raise SiteError(f"intervention {iv.kind!r} needs an attention layer site, got {iv.site!r}; "
                        f"attention layers: {[n for n, s in table.items() if s.kind == 'attn']}")
    heads = table[f"{iv.site}.probs"].shape[0]
    if iv.head is not None and not 0 <= iv.head < heads:
        raise ValueError(f"parameter 'head' = {iv.head}; {iv.site} has heads 0..{heads - 1}")
    if iv.kind == "head_ablate":
        targets = range(heads) if iv.head is None else [iv.head]
        return {f"{iv.site}.h{k}": (lambda x, ctx: torch.zeros_like(x)) for k in targets}
    sel = slice(None) if iv.head is None else slice(iv.head, iv.head + 1)

    def perturb(p, ctx):
        p = p.clone()
        q = p[:, sel]
        if iv.kind == "uniform":
            q = torch.full_like(q, 1.0 / q.shape[-1])
        elif iv.kind == "temperature":
            # softmax(logits / T) == p^(1/T) / sum p^(1/T); computed in log space for stability.
            q = torch.softmax(torch.log(q.clamp_min(1e-30)) / iv.strength, dim=-1)
        elif iv.kind == "noise":
            g = torch.Generator().manual_seed(iv.seed)
            eps = torch.randn(q.shape, generator=g).to(q.device, q.dtype)
            q = torch.softmax(torch.log(q.clamp_min(1e-30)) + iv.strength * eps, dim=-1)
        elif iv.kind == "shuffle":
            g = torch.Generator().manual_seed(iv.seed)
            q = q[..., torch.randperm(q.shape[-1], generator=g).to(q.device)]
        p[:, sel] = q
        return p
    return {f"{iv.site}.probs": perturb}


def _edits(iv: Intervention, unet, reference: dict | None) -> dict:
    """The edit hooks (site -> fn(x, ctx)) that carry out one intervention."""
    if iv.kind in _ATTENTION_KINDS:
        return _attention_edits(iv, unet)
    if iv.kind == "cut_mid":
        return {"mid": lambda x, ctx: torch.zeros_like(x)}
    if iv.kind == "cut_skip":
        table = site_table(unet)
        if iv.site.startswith("up") and iv.site in table:
            skips = [n for n, s in table.items() if s.kind == "skip" and s.consumer.startswith(iv.site + ".")]
        else:
            skips = list(resolve(unet, iv.site))
            if any(table[s].kind != "skip" for s in skips):
                raise SiteError(f"'cut_skip' needs a skip site (skipK) or a decoder block (upI), got {iv.site!r}")
        return {s: (lambda x, ctx: torch.zeros_like(x)) for s in skips}
    members = resolve(unet, iv.site)
    if iv.kind == "zero":
        return {s: (lambda x, ctx: torch.zeros_like(x)) for s in members}
    if iv.kind == "scale":
        def scale(x, ctx):
            if iv.channels is None:
                return x * iv.strength
            x = x.clone()
            x[:, list(iv.channels)] *= iv.strength
            return x
        return {s: scale for s in members}
    if iv.kind == "identity":
        def identity(x, ctx):
            if ctx.inp is None or ctx.inp.shape != x.shape:
                raise ValueError(f"identity ablation of {ctx.site!r} needs equal input and output shapes, "
                                 f"got {None if ctx.inp is None else tuple(ctx.inp.shape)} -> {tuple(x.shape)}")
            return ctx.inp
        return {s: identity for s in members}
    if iv.kind == "mean":
        if reference is None:
            raise ValueError("'mean' ablation needs reference activations (impact() records them)")
        return {s: (lambda x, ctx: reference[ctx.site].mean(0, keepdim=True).expand_as(x)) for s in members}
    if iv.kind == "patch":
        missing = [s for s in members if s not in iv.source]
        if missing:
            raise ValueError(f"'patch' has no source activation for {missing}; build it with patch_from()")
        return {s: (lambda x, ctx: iv.source[ctx.site].to(x.device, x.dtype).expand_as(x)) for s in members}
    raise AssertionError(iv.kind)  # pragma: no cover


@torch.no_grad()
def apply(unet, interventions, x_t: torch.Tensor, t: torch.Tensor, reference: dict | None = None) -> torch.Tensor:
    """eps_hat of ``unet`` at (x_t, t) with every intervention applied together."""
    edits = {}
    for iv in interventions:
        for site, fn in _edits(iv, unet, reference).items():
            if site in edits:                          # two interventions on one site compose in order
                first = edits[site]
                edits[site] = (lambda f, g: lambda x, ctx: g(f(x, ctx), ctx))(first, fn)
            else:
                edits[site] = fn
    with edit(unet, edits):
        return unet(x_t, t).sample


@torch.no_grad()
def patch_from(unet, sites, x_t: torch.Tensor, t: torch.Tensor) -> dict:
    """Activations of ``sites`` on a source input (another image, timestep or model), for ``patch``."""
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
    """(x0, eps, t tensor, x_t, generator) as every impact measurement draws them: eps first from ``seed``;
    the returned generator then draws the mean-ablation reference's noise (:func:`reference_activations`)."""
    device = next(unet.parameters()).device
    x0 = torch.as_tensor(np.asarray(x0), device=device)
    g = torch.Generator().manual_seed(seed)
    eps = torch.randn(x0.shape, generator=g).to(device)
    tt = torch.full((len(x0),), int(t), device=device, dtype=torch.long)
    return x0, eps, tt, scheduler.add_noise(x0, eps, tt), g


def reference_activations(unet, scheduler, specs, x0, t, g, reference_x0=None):
    """Site activations over the reference batch at t, for every ``mean`` ablation in ``specs``."""
    mean_sites = sorted({s for spec in specs for iv in spec if iv.kind == "mean" for s in resolve(unet, iv.site)})
    if not mean_sites:
        return None
    device = x0.device
    ref = x0 if reference_x0 is None else torch.as_tensor(np.asarray(reference_x0), device=device)
    r_eps = torch.randn(ref.shape, generator=g).to(device)
    r_t = torch.full((len(ref),), int(t), device=device, dtype=torch.long)
    return patch_from(unet, mean_sites, scheduler.add_noise(ref, r_eps, r_t), r_t)


def predicted_x0(scheduler, x_t: torch.Tensor, eps_hat: torch.Tensor, t: int) -> torch.Tensor:
    """The clean image implied by a noise prediction: (x_t - sqrt(1 - abar_t) eps_hat) / sqrt(abar_t), in [-1, 1]."""
    ab = scheduler.alphas_cumprod[int(t)].to(x_t)
    return ((x_t - (1 - ab).sqrt() * eps_hat) / ab.sqrt()).clamp(-1, 1)


@torch.no_grad()
def impact(unet, scheduler, x0, t: int, interventions, seed: int = 0,
           reference_x0=None) -> ImpactResult:
    """Impact score (Eq. 5) of ``interventions`` at timestep ``t`` on images ``x0`` [N, 3, H, W].

    Base and intervened runs share the noise draw (paired). ``mean`` ablations
    use the site means over ``reference_x0`` (default: ``x0``) noised at the same t.
    """
    return impacts(unet, scheduler, x0, t, {"": interventions}, seed, reference_x0)[""]


@torch.no_grad()
def impacts(unet, scheduler, x0, t: int, specs: dict, seed: int = 0, reference_x0=None) -> dict:
    """:func:`impact` for many named intervention lists at one t, sharing the base pass and the noise.

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
