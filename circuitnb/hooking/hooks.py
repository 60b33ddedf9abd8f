"""One hook protocol, ``fn(x, ctx) -> x``, for every site of a ``UNet2DModel`` or any other ``nn.Module``
(see :mod:`circuitnb.hooking.sites`); contexts that always clean up.

    with edit(unet, {"down1": lambda x, ctx: 0 * x}):          # ablate: return the replacement
        eps_hat = unet(x_t, t).sample
    with record(unet, ["mid", "up0.attn0.probs"], reduce={"up0.attn0.probs": entropy_bits}) as rec:
        unet(x_t, t)
    rec["mid"]              # [B, C, H, W], concatenated over calls
    rec["up0.attn0.probs"]  # [B, heads] entropies (the reducer ran inside the hook)

Every hook, whether it records, edits, ablates or patches, is called as
``fn(x, ctx)`` (TransformerLens' single ``hook(tensor, hook)`` signature) and
returns the replacement for ``x``, or None to leave it as it is. ``x`` is the
site's output: for ``.probs`` sites the probabilities ``[B, heads, Q, K]``, for
``.h{k}`` sites head k's output ``[B, Q, head_dim]`` before the output
projection mixes the heads. ``ctx`` is a :class:`HookContext` naming the site,
the timestep, the head and the batch size, and carrying the module's input for
identity ablation.

Hooks are registered on entry and removed in ``finally`` (TransformerLens warns
that hooks are global state); attention processors are swapped in by reference
count and the originals restored when the last user leaves. Editors run before
observers at every site, so a recording sees what the model actually used,
whichever context was entered first.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import torch

from circuitnb.hooking.attention import attention_hook
from circuitnb.hooking.sites import Site, resolve, site_table
from circuitnb.measures.metrics import attention_entropy


@dataclass(frozen=True)
class HookContext:
    """What a hook is told about the call it runs in: ``fn(x, ctx)`` reads ``ctx.site``, ``ctx.t``, ...

        def halve_late(x, ctx):               # an edit that depends on the timestep
            return 0.5 * x if ctx.t is not None and int(ctx.t.max()) > 500 else None
    """
    site: str                            # the site's name, e.g. "up0.attn0.h3" (a group is expanded to members)
    t: torch.Tensor | None               # timestep tensor of the UNet forward in progress; None outside one
    head: int | None                     # head index of a ``.h{k}`` site; None elsewhere (``.probs`` has all heads)
    batch: int                           # batch size of x (its first dimension)
    inp: torch.Tensor | None = None      # the module's input (block/layer sites), for identity ablation; else None


HookFn = Callable[[torch.Tensor, HookContext], "torch.Tensor | None"]


# --- reducers that run inside the hook, so sweeps keep memory flat ------------------------------
# Eq. 1 is defined once, in metrics; as a reducer it maps [B, heads, Q, K] -> [B, heads] bits.
entropy_bits = attention_entropy


def activation_stats(x: torch.Tensor) -> torch.Tensor:
    """Per-example summary ``[B, 5]``: mean, std (n - 1), min, max, fraction of |x| < 1e-3.

        activation_stats(torch.zeros(2, 4, 8, 8))[:, 4]    # tensor([1., 1.])
    """
    f = x.detach().float().flatten(1)
    n = f.shape[1]
    # Plain sum/amax/amin/vector_norm reductions are vectorised; std_mean and aminmax over dim 1
    # measured 10-25x slower on CPU (2M floats: 25 ms vs 1.6 ms), which made block recording the
    # largest part of the hook overhead. Two-pass variance keeps the precision of std_mean.
    mean = f.sum(1) / n
    std = torch.linalg.vector_norm(f - mean[:, None], 2, dim=1) / max(n - 1, 1) ** 0.5
    near_zero = f.abs().lt_(1e-3).sum(1) / n      # lt_ in float avoids a slow bool -> int64 sum
    return torch.stack([mean, std, f.amin(1), f.amax(1), near_zero], 1)


class RunningMean:
    """A reducer that keeps only the running mean over all examples and calls (e.g. mean attention map)."""

    def __init__(self) -> None:
        self.total: torch.Tensor | None = None
        self.count = 0

    def __call__(self, x: torch.Tensor) -> None:
        s = x.detach().float().sum(0)
        self.total = s if self.total is None else self.total + s
        self.count += x.shape[0]

    def result(self) -> torch.Tensor:
        return self.total / self.count


# --- attaching fn(x, ctx) to the sites -----------------------------------------------------------
class _Clock:
    """Keeps the timestep of the UNet forward call in progress, for ``ctx.t``."""

    def __init__(self) -> None:
        self.t: torch.Tensor | None = None

    def __call__(self, module, args, kwargs) -> None:
        # UNet2DModel also takes a plain number; hooks always get a tensor. A model called without a
        # timestep (a VAE: forward(x)) leaves ctx.t None.
        t = kwargs["timestep"] if "timestep" in kwargs else args[1] if len(args) > 1 else None
        self.t = None if t is None else torch.as_tensor(t)


def _attach(stack: contextlib.ExitStack, modules: dict, clock: _Clock, name: str, site: Site, fn: HookFn,
            observe: bool) -> None:
    """Route ``fn(x, ctx)`` to one site; a non-None return value replaces the site's output.

    Editors are prepended and observers appended to each hook list (``prepend=``
    in torch), so observers see the edited values.
    """
    def ctx(x, head=None, inp=None) -> HookContext:
        return HookContext(name, clock.t, head, x.shape[0], inp)

    order = dict(prepend=not observe)
    if site.kind == "probs":
        stack.enter_context(attention_hook(modules[site.path], probs=lambda p: fn(p, ctx(p)), observe=observe))
    elif site.kind == "head":
        k = site.index

        def head_hook(heads_out):
            x = heads_out[:, k]
            new = fn(x, ctx(x, head=k))
            if new is None:
                return None
            heads_out = heads_out.clone()          # never write into a tensor another hook may hold
            heads_out[:, k] = new
            return heads_out
        stack.enter_context(attention_hook(modules[site.path], heads=head_hook, observe=observe))
    elif site.kind == "skip":
        up_index, res_index = int(site.consumer.split(".")[0][2:]), int(site.consumer.split("res")[-1])

        def pre(module, args, kwargs):
            # Up blocks are called as block(sample, res_tuple, temb); resnet j reads res_tuple[-1 - j].
            res = args[1] if len(args) > 1 else kwargs["res_hidden_states_tuple"]
            pos = len(res) - 1 - res_index
            new = fn(res[pos], ctx(res[pos]))
            if new is None:
                return None
            res = res[:pos] + (new,) + res[pos + 1:]
            if len(args) > 1:
                return (args[0], res, *args[2:]), kwargs
            return args, {**kwargs, "res_hidden_states_tuple": res}
        handle = modules[f"up_blocks.{up_index}"].register_forward_pre_hook(pre, with_kwargs=True, **order)
        stack.callback(handle.remove)
    else:
        def post(module, args, kwargs, output):
            inp = args[0] if args else kwargs.get("hidden_states")
            if isinstance(output, tuple):           # down blocks: (h, (res_1, ..., res_n)), h is res_n
                new = fn(output[0], ctx(output[0], inp=inp))
                if new is None:
                    return None
                res = output[1]
                return (new, res[:-1] + (new,)) + output[2:]   # a new tuple, never an in-place edit
            return fn(output, ctx(output, inp=inp))
        stack.callback(modules[site.path].register_forward_hook(post, with_kwargs=True, **order).remove)


@contextlib.contextmanager
def attach(unet, fns: dict[str, HookFn], observe: bool = False) -> Iterator[None]:
    """Call ``fn(x, ctx)`` at each site during the forward calls inside the block.

        with attach(unet, {"mid": lambda x, ctx: print(ctx.site, int(ctx.t[0]), ctx.batch)}, observe=True):
            unet(x_t, t)

    A group name (e.g. ``"enc_middle"``) attaches ``fn`` to each member block, and
    ``ctx.site`` names the member. ``observe=True`` runs after every editing hook.
    """
    clock = _Clock()
    modules = dict(unet.named_modules())          # built once per context, not once per site
    with contextlib.ExitStack() as stack:
        stack.callback(unet.register_forward_pre_hook(clock, with_kwargs=True).remove)
        for key, fn in fns.items():
            for name, site in resolve(unet, key).items():
                _attach(stack, modules, clock, name, site, fn, observe)
        yield


def edit(unet, edits: dict[str, HookFn]) -> contextlib.AbstractContextManager[None]:
    """Replace site outputs with ``fn(x, ctx)`` during the forward calls inside the block.

        with edit(unet, {"enc_middle": lambda x, ctx: torch.zeros_like(x)}):
            eps_hat = unet(x_t, t).sample
    """
    return attach(unet, edits)


class Recording:
    """What :func:`record` captured: ``rec[site]`` concatenates the calls along the batch.

    Its :meth:`hook` is an ordinary ``fn(x, ctx)`` hook that keeps ``reduce(x)`` under ``ctx.site``.
    """

    def __init__(self, names, reduce: Callable | dict | None = None) -> None:
        self.calls: dict[str, list] = {n: [] for n in names}
        self.reducers: dict[str, Any] = {n: reduce.get(n) if isinstance(reduce, dict) else reduce for n in names}

    def hook(self, x: torch.Tensor, ctx: HookContext) -> None:
        x = x.detach()
        reducer = self.reducers[ctx.site]
        if hasattr(reducer, "result"):                 # a running reducer keeps its own state
            reducer(x)
        else:
            # Kept on the host: recordings outlive the forward pass and are read with numpy (``.numpy()``
            # needs a CPU tensor), and device memory is for the model.
            value = reducer(x) if reducer is not None else x
            self.calls[ctx.site].append(value.to("cpu", copy=True) if isinstance(value, torch.Tensor) else value)
        return None                                    # recording never changes the output

    def __getitem__(self, site: str):
        reducer = self.reducers.get(site)
        if hasattr(reducer, "result"):
            value = reducer.result()
            return value.cpu() if isinstance(value, torch.Tensor) else value
        values = self.calls[site]
        if values and all(isinstance(v, torch.Tensor) for v in values):
            return torch.cat(values, 0)
        return values

    def __contains__(self, site: str) -> bool:
        return site in self.calls


@contextlib.contextmanager
def record(unet, sites, reduce: Callable | dict | None = None) -> Iterator[Recording]:
    """Capture site outputs (detached) during the forward calls inside the block.

        with record(unet, ["up0.attn0.probs"], reduce=entropy_bits) as rec:
            unet(x_t, t)

    ``reduce`` is one function for every site, or a dict site -> function; a
    reducer maps the tensor to what is kept (e.g. :func:`entropy_bits`), or is a
    :class:`RunningMean` that keeps only a running mean. Groups are expanded.
    """
    rec = Recording(resolve(unet, sites), reduce)
    with attach(unet, {name: rec.hook for name in rec.calls}, observe=True):
        yield rec


def check_shapes(unet) -> None:
    """Run one forward pass and assert each block/resnet/attn site's output has its tabled shape.

        check_shapes(UNet2DModel(sample_size=32, ...))      # raises AssertionError naming the site
    """
    table = site_table(unet)
    names = [n for n, s in table.items() if s.kind in ("block", "resnet", "attn", "conv", "skip",
                                                         "downsample", "upsample", "probs")]
    size = unet.config.sample_size
    with torch.no_grad(), record(unet, names) as rec:
        unet(torch.zeros(1, unet.config.in_channels, size, size), torch.tensor([0]))
    for n in names:
        got = tuple(rec[n].shape[1:])
        assert got == table[n].shape, f"site {n}: tabled shape {table[n].shape}, measured {got}"
