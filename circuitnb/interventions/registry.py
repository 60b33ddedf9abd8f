"""The intervention registry: each kind is registered once, and everything else reads it.

    @register("negate", family="scaling", doc="x -> -x")
    def negate(x, ctx, iv):
        return -x

    Intervention("negate", "mid")            # validated against the registry
    kinds()                                   # ('zero', 'mean', ..., 'negate'), in registration order
    kinds_table()                             # name, family, target, params, needs, doc: one row per kind

A kind's function is a hook with the intervention bound to it: it gets the
site's tensor ``x``, the :class:`~circuitnb.hooking.hooks.HookContext` ``ctx``
(site, t, head, batch, inp) and the :class:`Intervention` ``iv`` (strength,
channels, seed, source), and returns the replacement for ``x``. Where it is
attached follows from ``target``:

==============  ==========================================================================
``sites``       every member of ``iv.site`` (a site, or a Table-3 group), or of the kind's
                fixed ``site=`` where it has one (``cut_mid`` always acts on ``mid``)
``attention``   ``iv.site`` is an attention layer; x is its probabilities ``[B, h, Q, K]``
                of head ``iv.head`` (h = 1) or of all heads (``ctx.head`` is None)
``heads``       each head output ``[B, Q, head_dim]`` of layer ``iv.site``: head ``iv.head``,
                or all of them (``ctx.head`` = k)
``skips``       a skip connection ``skipK``, or every skip into decoder block ``upI``
``branches``    every resnet and attention layer inside ``iv.site`` (a block, group or one
                layer); ``iv.source[site]`` is that layer's module (its shortcut path)
==============  ==========================================================================

``needs="reference"`` kinds read ``iv.source[site]``, filled with the site's
activations over a reference batch (:func:`~circuitnb.interventions.impact.apply`
does it); ``needs="source"`` kinds read activations the caller put in
``iv.source`` (see ``patch_from``). ``params`` declares each numeric field of
:class:`Intervention` the kind reads, with its allowed range: validation, the
playground's sliders and any table of kinds take them from here.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Callable

import pandas as pd
import torch

from circuitnb.hooking.hooks import HookContext, HookFn
from circuitnb.hooking.sites import SiteError, resolve, site_table

KindFn = Callable[[torch.Tensor, HookContext, "Intervention"], torch.Tensor]
TARGETS = ("sites", "attention", "heads", "skips", "branches")


@dataclass(frozen=True)
class Param:
    """A numeric parameter of a kind: allowed range (inclusive) and the playground's starting value."""
    lo: float
    hi: float
    default: float

    def check(self, kind: str, name: str, value) -> None:
        if value is None:
            raise ValueError(f"intervention {kind!r} needs a {name!r} in [{self.lo:g}, {self.hi:g}]")
        if not self.lo <= value <= self.hi:
            raise ValueError(f"parameter {name!r} of {kind!r} = {value!r}; allowed: [{self.lo:g}, {self.hi:g}]")


@dataclass(frozen=True)
class Kind:
    """One registered intervention kind (see the module docstring)."""
    name: str
    family: str                  # e.g. "ablation", "attention", "scaling", "interruption", "patching"
    fn: KindFn                   # fn(x, ctx, iv) -> replacement of x
    params: dict                 # field name -> Param, e.g. {"strength": Param(0.01, 100.0, 0.5)}
    doc: str                     # one line, e.g. "softmax(logits / T)"
    target: str = "sites"        # one of TARGETS
    needs: str | None = None     # None | "reference" | "source"
    site: str = ""               # a site the kind always acts on (cut_mid: "mid"), whatever iv.site says


_REGISTRY: dict[str, Kind] = {}


def register(name: str, *, family: str, doc: str, params: dict | None = None, target: str = "sites",
             needs: str | None = None, site: str = "") -> Callable[[KindFn], KindFn]:
    """Decorator that registers ``fn(x, ctx, iv)`` as intervention kind ``name``; returns ``fn`` unchanged.

        @register("temperature", family="attention", target="attention",
                  params={"strength": (0.01, 100.0, 0.5)}, doc="softmax(logits / T)")
        def temperature(p, ctx, iv): ...

    ``params`` values are :class:`Param` or ``(lo, hi)`` / ``(lo, hi, default)``
    tuples. Registering a name again replaces the kind (e.g. when a module is reloaded).
    """
    if target not in TARGETS:
        raise ValueError(f"parameter 'target' = {target!r}; choose one of {TARGETS}")
    if needs not in (None, "reference", "source"):
        raise ValueError(f"parameter 'needs' = {needs!r}; choose None, 'reference' or 'source'")
    fields = {f.name for f in dataclasses.fields(Intervention)}
    spec = {}
    for p, r in (params or {}).items():
        if p not in fields:
            raise ValueError(f"kind {name!r}: parameter {p!r} is not a field of Intervention {sorted(fields)}")
        spec[p] = r if isinstance(r, Param) else Param(r[0], r[1], r[2] if len(r) > 2 else r[0])

    def add(fn: KindFn) -> KindFn:
        _REGISTRY[name] = Kind(name, family, fn, spec, doc, target, needs, site)
        return fn
    return add


def unregister(name: str) -> None:
    """Remove a kind (tests register toy kinds and remove them again)."""
    del _REGISTRY[name]


def kinds(family: str | None = None) -> tuple[str, ...]:
    """Registered kind names in registration order (optionally of one family): ``kinds("attention")``."""
    return tuple(n for n, k in _REGISTRY.items() if family is None or k.family == family)


def get(name: str) -> Kind:
    """The registered :class:`Kind` called ``name``: ``get("scale").params["strength"].hi``."""
    if name not in _REGISTRY:
        raise ValueError(f"parameter 'kind' = {name!r}; choose one of {kinds()}")
    return _REGISTRY[name]


def kinds_table() -> pd.DataFrame:
    """One row per registered kind: name, family, target, params (with ranges), needs, doc."""
    return pd.DataFrame([dict(name=k.name, family=k.family, target=k.target,
                              params=", ".join(f"{p} in [{r.lo:g}, {r.hi:g}]" for p, r in k.params.items()),
                              needs=k.needs or "", doc=k.doc) for k in _REGISTRY.values()])


class _KindsView(Sequence):
    """``KINDS``: the registered names as a live, read-only sequence (``"zero" in KINDS``)."""

    def __len__(self) -> int:
        return len(_REGISTRY)

    def __getitem__(self, i):
        return kinds()[i]

    def __contains__(self, name) -> bool:
        return name in _REGISTRY

    def __eq__(self, other) -> bool:
        return kinds() == tuple(other)

    def __repr__(self) -> str:
        return repr(kinds())


KINDS = _KindsView()


@dataclass(frozen=True)
class Intervention:
    """One intervention as plain data: ``Intervention("temperature", "up0.attn0", strength=0.5, head=3)``.

    ``kind`` must be registered (:func:`kinds`); the numeric parameters the kind
    declares are checked against their ranges here, sites when it is applied.
    """
    kind: str
    site: str = ""
    strength: float | None = None
    head: int | None = None               # attention kinds: one head, or None for all heads
    channels: tuple | None = None         # scale: only these channels
    seed: int = 0                         # noise and shuffle
    source: dict = field(default_factory=dict, compare=False, hash=False)  # {site: tensor}: patch, mean

    def __post_init__(self):
        kind = get(self.kind)
        for name, param in kind.params.items():
            param.check(self.kind, name, getattr(self, name))


def _attention_layer(unet, iv: Intervention) -> int:
    """Check that ``iv.site`` is an attention layer and ``iv.head`` one of its heads; returns the head count."""
    table = site_table(unet)
    if table.get(iv.site) is None or table[iv.site].kind != "attn":
        raise SiteError(f"intervention {iv.kind!r} needs an attention layer site, got {iv.site!r}; "
                        f"attention layers: {[n for n, s in table.items() if s.kind == 'attn']}")
    heads = table[f"{iv.site}.probs"].shape[0]
    if iv.head is not None and not 0 <= iv.head < heads:
        raise ValueError(f"parameter 'head' = {iv.head}; {iv.site} has heads 0..{heads - 1}")
    return heads


def _skips(unet, site: str) -> list[str]:
    table = site_table(unet)
    if site.startswith("up") and site in table:
        return [n for n, s in table.items() if s.kind == "skip" and s.consumer.startswith(site + ".")]
    skips = list(resolve(unet, site))
    if any(table[s].kind != "skip" for s in skips):
        raise SiteError(f"'cut_skip' needs a skip site (skipK) or a decoder block (upI), got {site!r}")
    return skips


def _branches(unet, site: str) -> list[str]:
    """The resnet and attention layers (residual branches) of a block, a group of blocks, or one layer."""
    table = site_table(unet)
    out = []
    for name, s in resolve(unet, site).items():
        if s.kind in ("resnet", "attn"):
            out.append(name)
        elif s.kind == "block":
            out += [n for n, t in table.items() if t.kind in ("resnet", "attn") and n.startswith(name + ".")]
    if not out:
        raise SiteError(f"'bypass' needs a block, group, resnet or attention layer with a residual path, got {site!r}")
    return out


def hooks_for(iv: Intervention, unet) -> dict[str, HookFn]:
    """The ``fn(x, ctx)`` hooks (site -> hook) that carry out one intervention on ``unet``.

        with edit(unet, hooks_for(Intervention("zero", "mid"), unet)):
            unet(x_t, t)
    """
    kind = get(iv.kind)
    fn = kind.fn
    if kind.target == "attention":
        _attention_layer(unet, iv)
        h = iv.head
        if h is None:
            return {f"{iv.site}.probs": lambda p, ctx: fn(p, ctx, iv)}

        def one_head(p, ctx):
            p = p.clone()                                  # the other heads pass through untouched
            p[:, h:h + 1] = fn(p[:, h:h + 1], dataclasses.replace(ctx, head=h), iv)
            return p
        return {f"{iv.site}.probs": one_head}
    if kind.target == "heads":
        heads = _attention_layer(unet, iv)
        names = [f"{iv.site}.h{k}" for k in (range(heads) if iv.head is None else [iv.head])]
    elif kind.target == "skips":
        names = _skips(unet, iv.site)
    elif kind.target == "branches":
        names = _branches(unet, iv.site)
        modules = dict(unet.named_modules())
        iv = dataclasses.replace(iv, source={s: modules[site_table(unet)[s].path] for s in names})
    else:
        names = list(resolve(unet, kind.site or iv.site))
    if kind.needs:
        missing = [s for s in names if s not in iv.source]
        if missing:
            how = "build it with patch_from()" if kind.needs == "source" else "impact() records them"
            raise ValueError(f"{iv.kind!r} has no {kind.needs} activation for {missing}; {how}")
    return {s: (lambda x, ctx: fn(x, ctx, iv)) for s in names}
