"""Record and edit any site of a ``UNet2DModel`` through context managers that always clean up.

    with record(unet, ["mid", "up0.attn0.probs"], reduce={"up0.attn0.probs": entropy_bits}) as rec:
        unet(x_t, t)
    rec["mid"]              # [B, C, H, W], concatenated over calls
    rec["up0.attn0.probs"]  # [B, heads] entropies (the reducer ran inside the hook)

    with edit(unet, {"down1": lambda x, **kw: 0 * x}):
        eps_hat = unet(x_t, t).sample

Edit functions are called as ``fn(x, site=..., t=..., inp=...)`` and return the
replacement: ``x`` is the site's output (for ``.probs`` sites the
probabilities ``[B, heads, Q, K]``, for ``.h{k}`` sites head k's output
``[B, Q, head_dim]`` before the output projection), ``t`` the timestep tensor of
the current forward call, ``inp`` the module's first input (None for skips,
probs and heads). Hooks are registered on entry and removed in ``finally``
(TransformerLens warns that hooks are global state); attention processors are
swapped in by reference count and the originals restored when the last user
leaves. Recording never changes the output: the hooks return nothing.
"""
from __future__ import annotations

import contextlib
from typing import Any, Callable, Iterator

import torch

from circuitnb.hooking.attention import HookedAttnProcessor
from circuitnb.measures.metrics import attention_entropy
from circuitnb.hooking.sites import Site, resolve, site_table

EditFn = Callable[..., torch.Tensor]


# --- reducers that run inside the hook, so sweeps keep memory flat ------------------------------
# Eq. 1 is defined once, in metrics; as a reducer it maps [B, heads, Q, K] -> [B, heads] bits.
entropy_bits = attention_entropy


def activation_stats(x: torch.Tensor) -> torch.Tensor:
    """Per-example summary ``[B, 5]``: mean, std, min, max, fraction of |x| < 1e-3."""
    f = x.float().flatten(1)
    std, mean = torch.std_mean(f, 1)            # fused kernels: this runs once per site per call
    lo, hi = torch.aminmax(f, dim=1)
    return torch.stack([mean, std, lo, hi, (f.abs() < 1e-3).sum(1) / f.shape[1]], 1)


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


# --- shared attention processors ----------------------------------------------------------------
@contextlib.contextmanager
def _attention_hook(module, probs_hook=None, head_hook=None, observe: bool = False) -> Iterator[None]:
    """Attach hooks to one Attention module's processor, installing a HookedAttnProcessor if needed.

    Editing hooks go first and observing hooks last, so a recording always sees
    what the model actually uses, whichever context was entered first.
    """
    proc = module.get_processor()
    if not isinstance(proc, HookedAttnProcessor):
        original, proc = proc, HookedAttnProcessor()
        proc.original = original
        proc.users = 0
        module.set_processor(proc)
    proc.users += 1
    added = [(proc.probs_hooks, probs_hook), (proc.head_hooks, head_hook)]
    try:
        for hooks, fn in added:
            if fn is not None:
                hooks.insert(len(hooks) if observe else 0, fn)
        yield
    finally:
        for hooks, fn in added:
            if fn is not None:
                hooks.remove(fn)
        proc.users -= 1
        if proc.users == 0:
            module.set_processor(proc.original)


class _Timestep:
    """Keeps the timestep of the forward call in progress, for edit functions that depend on t."""

    def __init__(self) -> None:
        self.t = None

    def __call__(self, module, args, kwargs):
        self.t = kwargs["timestep"] if "timestep" in kwargs else args[1]


def _attach(stack: contextlib.ExitStack, modules: dict, unet, site: Site,
            fn: Callable[[torch.Tensor, Any], torch.Tensor | None], observe: bool = False):
    """Route ``fn(x, inp)`` to a site; a non-None return value replaces the site's output.

    Editors are prepended and observers appended to each hook list (``prepend=``
    in torch), so observers see the edited values.
    """
    order = dict(prepend=not observe)
    if site.kind == "probs":
        stack.enter_context(_attention_hook(modules[site.path], probs_hook=lambda p: fn(p, None), observe=observe))
    elif site.kind == "head":
        k = site.index

        def head_hook(heads_out):
            new = fn(heads_out[:, k], None)
            if new is None:
                return None
            heads_out = heads_out.clone()
            heads_out[:, k] = new
            return heads_out
        stack.enter_context(_attention_hook(modules[site.path], head_hook=head_hook, observe=observe))
    elif site.kind == "skip":
        up_index, res_index = int(site.consumer.split(".")[0][2:]), int(site.consumer.split("res")[-1])

        def pre(module, args, kwargs):
            # Up blocks are called as block(sample, res_tuple, temb); resnet j reads res_tuple[-1 - j].
            res = args[1] if len(args) > 1 else kwargs["res_hidden_states_tuple"]
            pos = len(res) - 1 - res_index
            new = fn(res[pos], None)
            if new is None:
                return None
            res = res[:pos] + (new,) + res[pos + 1:]
            if len(args) > 1:
                return (args[0], res, *args[2:]), kwargs
            return args, {**kwargs, "res_hidden_states_tuple": res}
        stack.callback(modules[f"up_blocks.{up_index}"].register_forward_pre_hook(pre, with_kwargs=True, **order).remove)
    else:
        def post(module, args, kwargs, output):
            inp = args[0] if args else kwargs.get("hidden_states")
            if isinstance(output, tuple):           # down blocks: (h, (res_1, ..., res_n)), h is res_n
                new = fn(output[0], inp)
                if new is None:
                    return None
                res = output[1]
                return (new, res[:-1] + (new,)) + output[2:]   # a new tuple, never an in-place edit
            return fn(output, inp)
        stack.callback(modules[site.path].register_forward_hook(post, with_kwargs=True, **order).remove)


class Recording:
    """What :func:`record` captured: ``rec[site]`` concatenates the calls along the batch."""

    def __init__(self, names) -> None:
        self.calls: dict[str, list] = {n: [] for n in names}
        self.reducers: dict[str, Any] = {}

    def __getitem__(self, site: str):
        reducer = self.reducers.get(site)
        if isinstance(reducer, RunningMean):
            return reducer.result()
        values = self.calls[site]
        if values and all(isinstance(v, torch.Tensor) for v in values):
            return torch.cat(values, 0)
        return values

    def __contains__(self, site: str) -> bool:
        return site in self.calls


@contextlib.contextmanager
def record(unet, sites, reduce: Callable | dict | None = None) -> Iterator[Recording]:
    """Capture site outputs (detached) during the forward calls inside the block.

    ``reduce`` is one function for every site, or a dict site -> function; a
    reducer maps the tensor to what is kept (e.g. :func:`entropy_bits`), or is a
    :class:`RunningMean` that keeps only a running mean. Groups are expanded.
    """
    table = resolve(unet, sites)
    rec = Recording(table)
    modules = dict(unet.named_modules())          # built once per context, not once per site
    with contextlib.ExitStack() as stack:
        for name, site in table.items():
            reducer = reduce.get(name) if isinstance(reduce, dict) else reduce
            rec.reducers[name] = reducer

            def keep(x, inp, name=name, reducer=reducer):
                x = x.detach()
                if isinstance(reducer, RunningMean):
                    reducer(x)
                else:
                    rec.calls[name].append(reducer(x) if reducer is not None else x.clone())
                return None
            _attach(stack, modules, unet, site, keep, observe=True)
        yield rec


@contextlib.contextmanager
def edit(unet, edits: dict[str, EditFn]) -> Iterator[None]:
    """Replace site outputs with ``fn(x, site=, t=, inp=)`` during the forward calls inside the block.

    A group name (e.g. ``"enc_middle"``) applies its function to each member block.
    """
    clock = _Timestep()
    modules = dict(unet.named_modules())
    with contextlib.ExitStack() as stack:
        stack.callback(unet.register_forward_pre_hook(clock, with_kwargs=True).remove)
        for key, fn in edits.items():
            for name, site in resolve(unet, key).items():
                def apply(x, inp, name=name, fn=fn):
                    return fn(x, site=name, t=clock.t, inp=inp)
                _attach(stack, modules, unet, site, apply)
        yield


def check_shapes(unet: UNet2DModel) -> None:
    """Run one forward pass and assert each block/resnet/attn site's output has its tabled shape."""
    table = site_table(unet)
    names = [n for n, s in table.items() if s.kind in ("block", "resnet", "attn", "conv", "skip",
                                                         "downsample", "upsample", "probs")]
    size = unet.config.sample_size
    with torch.no_grad(), record(unet, names) as rec:
        unet(torch.zeros(1, unet.config.in_channels, size, size), torch.tensor([0]))
    for n in names:
        got = tuple(rec[n].shape[1:])
        assert got == table[n].shape, f"site {n}: tabled shape {table[n].shape}, measured {got}"
