"""The one table of hook sites: readable names -> module paths, for any ``UNet2DModel`` or other ``nn.Module``.

    site_names(unet)          # ['conv_in', 'down0', 'down0.res0', ..., 'up0.attn1.h7', 'skip0', ...]
    table = site_table(unet)  # name -> Site(path, kind, shape)

Names (shapes for the ``quick`` profile, B = batch, in comments of
:func:`site_table`'s output via ``Site.shape``):

* ``conv_in``                  conv_in                          [B, C0, H, W]
* ``down{i}``                  down_blocks.{i} (its main output; the tuple's last entry is the same tensor)
* ``down{i}.res{j}``           down_blocks.{i}.resnets.{j}
* ``down{i}.attn{j}``          down_blocks.{i}.attentions.{j}   (includes the residual)
* ``down{i}.downsample``       down_blocks.{i}.downsamplers.0
* ``mid``, ``mid.res{j}``, ``mid.attn{j}``   mid_block ...
* ``up{i}``, ``up{i}.res{j}``, ``up{i}.attn{j}``, ``up{i}.upsample``   up_blocks.{i} ...
* ``skip{k}``                  the k-th encoder activation handed to the decoder (UNet skip
                               connection k, in the order of ``down_block_res_samples``); it is
                               consumed by ``up{i}.res{j}``, recorded in ``Site.consumer``
* ``<attn>.probs``             attention probabilities of one layer      [B, heads, Q, K]
* ``<attn>.h{k}``              head k of one attention layer: its probabilities and its output

Coarse groups of the paper's Table 3 (§4.6) split the encoder blocks and the
decoder blocks into thirds in forward order; with 3 blocks per side:
``enc_early = down0``, ``enc_middle = down1``, ``enc_late = down2``, ``middle = mid``,
``dec_early = up0``, ``dec_middle = up1``, ``dec_late = up2``. (``dec_early``
is the decoder block that runs first, at the deepest resolution.)

Any other ``nn.Module`` (the VAEs of Part II) gets the generic table: every named submodule that is not a
bare index of a container (``encoder.conv0``, not ``encoder.conv0.0``) is a site named by its module path,
of kind ``module``. When the model has a ``site_shapes()`` method (the VAEs do), it lists the sites with a
tensor output and their shapes; the encoder, whose output is the tuple (mu, logvar), is then not a site.
Groups are the top-level children (``encoder``, ``decoder``): every module site below them.

Attention heads need no model-specific code: every diffusers ``Attention`` in any model (found by
:func:`circuitnb.hooking.attention.attention_modules`, e.g. Part V's ``MriVAE``) adds ``<path>.probs``
``[B, heads, Q, K]`` and ``<path>.h{k}`` ``[B, Q, head_dim]`` sites, named and hooked as the UNet's, so
``record(vae, ["encoder.attn.probs"])`` and ``edit(vae, {"decoder.attn.h1": zero})`` work as they do on a UNet.
(``torch.nn.MultiheadAttention`` fuses its softmax and has no processor to swap; it gets no head sites.)
"""
from __future__ import annotations

import weakref
from dataclasses import dataclass

import numpy as np
from diffusers import UNet2DModel
from torch import nn

from circuitnb.hooking.attention import attention_modules


@dataclass(frozen=True)
class Site:
    name: str
    path: str            # module path in named_modules() ('' for skips, which are tensors in flight)
    kind: str            # block | resnet | attn | downsample | upsample | conv | skip | probs | head | module
    shape: tuple         # per-example shape without the batch dim, e.g. (C, H, W) or (heads, Q, K)
    consumer: str = ""   # for skips: the decoder resnet site that reads it
    index: int = -1      # head index for heads; position for skips


class SiteError(KeyError):
    """A site name that the model does not have."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return self.args[0]


def _res(cfg, level: int) -> int:
    return cfg.sample_size // 2 ** level


_TABLES: "weakref.WeakKeyDictionary[nn.Module, dict[str, Site]]" = weakref.WeakKeyDictionary()


def site_table(unet: nn.Module) -> dict[str, Site]:
    """Every named site of ``unet`` (a UNet2DModel: derived from its config and validated against its
    modules; any other module: the generic table of the module docstring).

    Built once per model object (every record/edit/intervention looks sites up);
    callers get their own copy of the dict.
    """
    if unet not in _TABLES:
        _TABLES[unet] = _build_table(unet) if isinstance(unet, UNet2DModel) else _generic_table(unet)
    return dict(_TABLES[unet])


def _generic_table(model: nn.Module) -> dict[str, Site]:
    shapes = model.site_shapes() if callable(getattr(model, "site_shapes", None)) else None
    names = [n for n, _ in model.named_modules() if n and not n.split(".")[-1].isdigit()]
    table = {n: Site(n, n, "module", tuple(shapes[n]) if shapes else ()) for n in names
             if shapes is None or n in shapes}
    for path, attn in attention_modules(model).items():
        table.update(_head_sites(path, attn, tuple(shapes.get(path, ())) if shapes else ()))
    return table


def _head_sites(path: str, attn: nn.Module, shape: tuple) -> dict[str, Site]:
    """``<path>.probs`` and ``<path>.h{k}`` of one diffusers ``Attention`` found in any model, as the UNet's.

    Self-attention over a feature map ``(C, H, W)`` has H W queries and keys; a sequence ``(S, C)`` has S.
    An unknown shape (a model without ``site_shapes``) leaves the sites' shapes empty, as its other sites.
    """
    tokens = int(np.prod(shape[1:])) if len(shape) == 3 else shape[0] if len(shape) == 2 else None
    heads, head_dim = attn.heads, attn.inner_dim // attn.heads
    out = {f"{path}.probs": Site(f"{path}.probs", path, "probs", (heads, tokens, tokens) if tokens else ())}
    for k in range(heads):
        out[f"{path}.h{k}"] = Site(f"{path}.h{k}", path, "head", (tokens, head_dim) if tokens else (), index=k)
    return out


def _build_table(unet: UNet2DModel) -> dict[str, Site]:
    cfg = unet.config
    ch = list(cfg.block_out_channels)
    modules = dict(unet.named_modules())
    table: dict[str, Site] = {}

    def add(name, path, kind, shape, **kw):
        if path and path not in modules:
            raise SiteError(f"site {name!r}: module {path!r} is missing from this UNet2DModel")
        table[name] = Site(name, path, kind, tuple(shape), **kw)

    def attn_sites(prefix, path, c, r):
        mod = modules[path]
        add(prefix, path, "attn", (c, r, r))
        add(f"{prefix}.probs", path, "probs", (mod.heads, r * r, r * r))
        for k in range(mod.heads):
            add(f"{prefix}.h{k}", path, "head", (r * r, mod.inner_dim // mod.heads), index=k)

    add("conv_in", "conv_in", "conv", (ch[0], _res(cfg, 0), _res(cfg, 0)))
    skips = [("conv_in", (ch[0], _res(cfg, 0), _res(cfg, 0)))]        # down_block_res_samples
    for i, block in enumerate(unet.down_blocks):
        r = _res(cfg, i)
        last = i == len(unet.down_blocks) - 1
        out_r = r if last else r // 2
        add(f"down{i}", f"down_blocks.{i}", "block", (ch[i], out_r, out_r))
        for j, _ in enumerate(block.resnets):
            add(f"down{i}.res{j}", f"down_blocks.{i}.resnets.{j}", "resnet", (ch[i], r, r))
            has_attn = getattr(block, "attentions", None) is not None
            if has_attn:
                attn_sites(f"down{i}.attn{j}", f"down_blocks.{i}.attentions.{j}", ch[i], r)
            skips.append((f"down{i}.attn{j}" if has_attn else f"down{i}.res{j}", (ch[i], r, r)))
        if block.downsamplers is not None:
            add(f"down{i}.downsample", f"down_blocks.{i}.downsamplers.0", "downsample", (ch[i], out_r, out_r))
            skips.append((f"down{i}.downsample", (ch[i], out_r, out_r)))
    deep = _res(cfg, len(ch) - 1)
    if unet.mid_block is not None:
        add("mid", "mid_block", "block", (ch[-1], deep, deep))
        for j, _ in enumerate(unet.mid_block.resnets):
            add(f"mid.res{j}", f"mid_block.resnets.{j}", "resnet", (ch[-1], deep, deep))
        for j, a in enumerate(unet.mid_block.attentions):
            if a is not None:
                attn_sites(f"mid.attn{j}", f"mid_block.attentions.{j}", ch[-1], deep)
    rev = ch[::-1]
    pending = list(range(len(skips)))
    for i, block in enumerate(unet.up_blocks):
        r = _res(cfg, len(ch) - 1 - i)
        out_r = r if block.upsamplers is None else r * 2
        add(f"up{i}", f"up_blocks.{i}", "block", (rev[i], out_r, out_r))
        n = len(block.resnets)
        taken, pending = pending[-n:], pending[:-n]
        for j, _ in enumerate(block.resnets):
            add(f"up{i}.res{j}", f"up_blocks.{i}.resnets.{j}", "resnet", (rev[i], r, r))
            if getattr(block, "attentions", None) is not None:
                attn_sites(f"up{i}.attn{j}", f"up_blocks.{i}.attentions.{j}", rev[i], r)
            k = taken[-1 - j]                        # resnet j pops the last remaining skip
            add(f"skip{k}", "", "skip", skips[k][1], consumer=f"up{i}.res{j}", index=j)
        if block.upsamplers is not None:
            add(f"up{i}.upsample", f"up_blocks.{i}.upsamplers.0", "upsample", (rev[i], out_r, out_r))
    return dict(sorted(table.items(), key=lambda kv: _order(kv[0])))


def _order(name: str):
    parts = name.replace("skip", "zskip").split(".")
    return [(0, int(p)) if p.isdigit() else (1, p) for p in parts]


def site_names(unet: nn.Module, kind: str | None = None) -> list[str]:
    """All site names (optionally of one kind: block, resnet, attn, probs, head, skip, ...)."""
    return [n for n, s in site_table(unet).items() if kind is None or s.kind == kind]


def resolve(unet: nn.Module, names) -> dict[str, Site]:
    """Look names up, expanding groups (see :func:`groups`); unknown names raise :class:`SiteError`."""
    table = site_table(unet)
    grp = groups(unet)
    out = {}
    for name in ([names] if isinstance(names, str) else names):
        for n in grp.get(name, [name]):
            if n not in table:
                close = [t for t in table if t.startswith(n.split(".")[0])][:8]
                raise SiteError(f"unknown site {n!r}; e.g. {close or list(table)[:8]} "
                                f"(circuitnb.hooking.sites.site_names(unet) lists all, groups: {list(grp)})")
            out[n] = table[n]
    return out


def groups(unet: nn.Module) -> dict[str, list[str]]:
    """The paper's Table 3 groups: encoder/decoder early-middle-late thirds, and the middle block (a UNet);
    any other module: each top-level child -> the sites below it."""
    if not isinstance(unet, UNet2DModel):
        # Module sites only: a group edit replaces block outputs, never attention probabilities or heads.
        table = {n: s for n, s in site_table(unet).items() if s.kind == "module"}
        tops = dict.fromkeys(n.split(".")[0] for n in table if "." in n)
        return {t: [n for n in table if n.startswith(t + ".")] for t in tops if t not in table}
    n_down, n_up = len(unet.down_blocks), len(unet.up_blocks)
    thirds = ("early", "middle", "late")
    out = {}
    for side, n, prefix in (("enc", n_down, "down"), ("dec", n_up, "up")):
        for label, idx in zip(thirds, np.array_split(np.arange(n), 3)):
            if len(idx):
                out[f"{side}_{label}"] = [f"{prefix}{i}" for i in idx]
        if side == "enc" and unet.mid_block is not None:
            out["middle"] = ["mid"]
    return out
