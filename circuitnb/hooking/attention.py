"""An attention processor that exposes per-head probabilities and head outputs (§3.2.1).

    with attention_hook(attn, probs=lambda p: None):      # p: [batch, head, query, key]
        unet(x_t, t)                                       # circuitnb.hooking.hooks does this for you

diffusers' default ``AttnProcessor2_0`` calls fused scaled-dot-product
attention and never materialises the probabilities, and ``UNet2DModel`` has no
``set_attn_processor``. :func:`attention_hook` therefore gives a hooked
``Attention`` a :class:`HookedAttnProcessor` (a line-by-line copy of diffusers'
classic ``AttnProcessor``, with two hook points), shared by reference count, and
puts the original back when its last user leaves, also after an exception.

The processor's two hook lists are plumbing for :mod:`circuitnb.hooking.hooks`,
which wraps the user's ``fn(x, ctx)`` hooks into them; each entry is called with
one tensor and returns a replacement or None:

* ``probs_hooks``: probs ``[B, heads, Q, K]`` (after the softmax, before the weighted sum of values);
* ``head_hooks``: ``[B, heads, Q, head_dim]`` (each head's output before the output projection mixes the heads).
"""
from __future__ import annotations

import contextlib
from typing import Callable, Iterator

import torch
from diffusers.models.attention_processor import Attention

Hook = Callable[[torch.Tensor], "torch.Tensor | None"]


class HookedAttnProcessor:
    """diffusers' classic ``AttnProcessor`` with probability and head-output hooks.

    It stays bit for bit equal to the classic processor (tests/test_hooks.py); the
    fused default differs from it by ~2e-7. Materialising the probabilities costs
    a softmax, two batched matmuls and four head-reshuffling copies per layer
    where the fused kernel needs none: at the quick profile (3 layers, 64 tokens,
    batch 32) a few milliseconds of a ~600 ms CPU forward pass, measured by the
    "hooks" line of benchmarks/hook_overhead.py.
    """

    def __init__(self) -> None:
        self.probs_hooks: list[Hook] = []
        self.head_hooks: list[Hook] = []
        self.original = None               # the processor to restore when the last user leaves
        self.users = 0

    @staticmethod
    def _run(hooks: list[Hook], x: torch.Tensor) -> torch.Tensor:
        for hook in hooks:
            out = hook(x)
            if out is not None:
                x = out
        return x

    def __call__(self, attn: Attention, hidden_states: torch.Tensor, encoder_hidden_states=None,
                 attention_mask=None, temb=None, *args, **kwargs) -> torch.Tensor:
        residual = hidden_states
        if attn.spatial_norm is not None:
            hidden_states = attn.spatial_norm(hidden_states, temb)
        input_ndim = hidden_states.ndim
        if input_ndim == 4:
            batch_size, channel, height, width = hidden_states.shape
            hidden_states = hidden_states.view(batch_size, channel, height * width).transpose(1, 2)
        batch_size, sequence_length, _ = (
            hidden_states.shape if encoder_hidden_states is None else encoder_hidden_states.shape)
        attention_mask = attn.prepare_attention_mask(attention_mask, sequence_length, batch_size)
        if attn.group_norm is not None:
            hidden_states = attn.group_norm(hidden_states.transpose(1, 2)).transpose(1, 2)
        query = attn.to_q(hidden_states)
        if encoder_hidden_states is None:
            encoder_hidden_states = hidden_states
        elif attn.norm_cross:
            encoder_hidden_states = attn.norm_encoder_hidden_states(encoder_hidden_states)
        key = attn.to_k(encoder_hidden_states)
        value = attn.to_v(encoder_hidden_states)
        query = attn.head_to_batch_dim(query)
        key = attn.head_to_batch_dim(key)
        value = attn.head_to_batch_dim(value)
        attention_probs = attn.get_attention_scores(query, key, attention_mask)
        heads = attn.heads
        if self.probs_hooks:
            # [B*heads, Q, K] -> [B, heads, Q, K] is a view: head_to_batch_dim puts the head index second.
            probs = attention_probs.view(batch_size, heads, *attention_probs.shape[1:])
            attention_probs = self._run(self.probs_hooks, probs).reshape(attention_probs.shape)
        # One batched matmul gives every head's output at once; head hooks see a view of it, no copy.
        hidden_states = torch.bmm(attention_probs, value)
        if self.head_hooks:
            per_head = hidden_states.view(batch_size, heads, *hidden_states.shape[1:])
            hidden_states = self._run(self.head_hooks, per_head).reshape(hidden_states.shape)
        hidden_states = attn.batch_to_head_dim(hidden_states)
        hidden_states = attn.to_out[0](hidden_states)
        hidden_states = attn.to_out[1](hidden_states)
        if input_ndim == 4:
            hidden_states = hidden_states.transpose(-1, -2).reshape(batch_size, channel, height, width)
        if attn.residual_connection:
            hidden_states = hidden_states + residual
        return hidden_states / attn.rescale_output_factor


@contextlib.contextmanager
def attention_hook(module: Attention, probs: Hook | None = None, heads: Hook | None = None,
                   observe: bool = False) -> Iterator[None]:
    """Attach one-tensor hooks to an ``Attention`` module, installing a :class:`HookedAttnProcessor` if needed.

        with attention_hook(unet.mid_block.attentions[0], heads=lambda h: torch.zeros_like(h)):
            unet(x_t, t)

    Editing hooks go first and observing hooks last, so a recording always sees
    what the model actually uses, whichever context was entered first.
    """
    proc = module.get_processor()
    if not isinstance(proc, HookedAttnProcessor):
        original, proc = proc, HookedAttnProcessor()
        proc.original = original
        module.set_processor(proc)
    proc.users += 1
    added = [(proc.probs_hooks, probs), (proc.head_hooks, heads)]
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


def attention_modules(unet: torch.nn.Module) -> dict[str, Attention]:
    """Every diffusers ``Attention`` module by path: ``attention_modules(unet)["mid_block.attentions.0"]``."""
    return {name: m for name, m in unet.named_modules() if isinstance(m, Attention)}
