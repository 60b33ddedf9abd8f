"""The paper's intervention kinds (§3.2.4), each one registered function ``fn(x, ctx, iv) -> x``.

    from circuitnb.interventions.registry import kinds_table
    kinds_table()          # this module's kinds: name, family, target, params, needs, doc

Adding a kind is one more decorated function here or anywhere else; the
validation of :class:`~circuitnb.interventions.registry.Intervention`,
``apply``/``impact``, the playground and the explorers pick it up from the
registry. Families follow §3.2.4: layer ablation, attention perturbation,
feature scaling, circuit interruption, and activation patching.
"""
from __future__ import annotations

import torch

from circuitnb.interventions.registry import register


# --- layer ablation ------------------------------------------------------------------------------
@register("zero", family="ablation", doc="x -> 0")
def zero(x, ctx, iv):
    return torch.zeros_like(x)


@register("mean", family="ablation", needs="reference",
          doc="x -> its mean over a reference batch at the same t")
def mean(x, ctx, iv):
    return iv.source[ctx.site].mean(0, keepdim=True).to(x.device, x.dtype).expand_as(x)


@register("identity", family="ablation", doc="the block/layer returns its input (shapes must match)")
def identity(x, ctx, iv):
    if ctx.inp is None or ctx.inp.shape != x.shape:
        raise ValueError(f"identity ablation of {ctx.site!r} needs equal input and output shapes, "
                         f"got {None if ctx.inp is None else tuple(ctx.inp.shape)} -> {tuple(x.shape)}")
    return ctx.inp


@register("bypass", family="ablation", target="branches",
          doc="each resnet / attention branch dropped, its shortcut (residual) path kept")
def bypass(x, ctx, iv):
    # ResnetBlock2D: (shortcut(x) + branch(x)) / output_scale_factor -> shortcut(x) / output_scale_factor;
    # Attention with a residual: (attn(x) + x) / rescale_output_factor -> x / rescale_output_factor.
    m, inp = iv.source[ctx.site], ctx.inp
    if hasattr(m, "output_scale_factor"):
        if getattr(m, "upsample", None) is not None:
            inp = m.upsample(inp)
        elif getattr(m, "downsample", None) is not None:
            inp = m.downsample(inp)
        if m.conv_shortcut is not None:
            inp = m.conv_shortcut(inp.contiguous())
        return inp / m.output_scale_factor
    if not getattr(m, "residual_connection", False):
        raise ValueError(f"bypass of {ctx.site!r}: the attention layer has no residual connection to keep")
    return inp / m.rescale_output_factor


# --- attention perturbation: x is [B, h, Q, K], one head (h = 1) or all -------------------------
@register("uniform", family="attention", target="attention", doc="attention map -> 1/K")
def uniform(p, ctx, iv):
    return torch.full_like(p, 1.0 / p.shape[-1])


@register("temperature", family="attention", target="attention", params={"strength": (0.01, 100.0, 0.5)},
          doc="softmax(logits / T), T = strength: < 1 sharpens, > 1 flattens")
def temperature(p, ctx, iv):
    # softmax(logits / T) == p^(1/T) / sum p^(1/T); computed in log space for stability.
    return torch.softmax(torch.log(p.clamp_min(1e-30)) / iv.strength, dim=-1)


@register("noise", family="attention", target="attention", params={"strength": (0.0, 10.0, 1.0)},
          doc="softmax(logits + strength * N(0, 1)), seeded by seed")
def noise(p, ctx, iv):
    g = torch.Generator().manual_seed(iv.seed)
    eps = torch.randn(p.shape, generator=g).to(p.device, p.dtype)
    return torch.softmax(torch.log(p.clamp_min(1e-30)) + iv.strength * eps, dim=-1)


@register("shuffle", family="attention", target="attention", doc="keys permuted (one permutation per seed)")
def shuffle(p, ctx, iv):
    g = torch.Generator().manual_seed(iv.seed)
    return p[..., torch.randperm(p.shape[-1], generator=g).to(p.device)]


@register("head_ablate", family="attention", target="heads",
          doc="a head's output -> 0 before the output projection")
def head_ablate(x, ctx, iv):
    return torch.zeros_like(x)


# --- feature scaling -----------------------------------------------------------------------------
@register("scale", family="scaling", params={"strength": (-10.0, 10.0, 0.5)},
          doc="x -> strength * x (only the given channels, if any)")
def scale(x, ctx, iv):
    if iv.channels is None:
        return x * iv.strength
    x = x.clone()
    x[:, list(iv.channels)] *= iv.strength
    return x


# --- circuit interruption ------------------------------------------------------------------------
@register("cut_skip", family="interruption", target="skips",
          doc="zero a skip connection skipK, or every skip into decoder block upI")
def cut_skip(x, ctx, iv):
    return torch.zeros_like(x)


@register("cut_mid", family="interruption", site="mid", doc="zero the mid block's output")
def cut_mid(x, ctx, iv):
    return torch.zeros_like(x)


# --- activation patching -------------------------------------------------------------------------
@register("patch", family="patching", needs="source",
          doc="x -> the same site's activation on another input (patch_from)")
def patch(x, ctx, iv):
    return iv.source[ctx.site].to(x.device, x.dtype).expand_as(x)
