"""The one training loop of Parts II-V's models: numbered steps, a tqdm bar, a stop on a NaN loss, snapshots.

    def step(s):                                   # s = 1 .. steps; draw from the trainer's seeded generator
        loss = objective(model(x_all[torch.randint(n, (64,), generator=g)], g))
        def after(value):                          # after the optimiser step: bookkeeping, the bar's fields
            losses.append(value)
            return dict(loss=f"{value:.2f}")
        return loss, after
    with seeded(seed):
        model = VAE(...)
    run_steps(model, opt, step, steps, name="train_vae('vae')", lr=1e-4, callback=score, callback_steps=[50, 100])

Each part's trainer keeps what differs (the objective, the second optimiser of FactorVAE, the SAE's decoder
renormalisation and L1 controller, the history it returns) in its ``step``; this loop does what they share, in this
order per step: the loss, a ``FloatingPointError`` naming the trainer, the step and the learning rate when the loss
is NaN or infinite, ``zero_grad``/``backward``/``step``, the trainer's ``after(value)``, ``callback(s)`` in eval
mode at each of ``callback_steps`` (1-based), the bar every ``every`` steps. Nothing here draws a random number, so
a trainer's seeded generator alone decides its batches and noise (CPU runs bit-identical for a seed).
"""
from __future__ import annotations

import math
from contextlib import contextmanager
from typing import Callable, Iterator, Sequence

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

# ``step(s) -> (loss, after)``; ``after(loss value) -> the bar's fields``, run once the optimiser has stepped.
Step = Callable[[int], tuple[torch.Tensor, Callable[[float], dict]]]


@contextmanager
def seeded(seed: int) -> Iterator[None]:
    """``with seeded(seed): model = build()``: global-RNG draws inside (initial weights, dropout masks) come
    from ``seed`` alone, and the caller's global RNG is left as it was (forked, CPU only)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def cosine_lr(peak: float, steps: int) -> Callable[[int], float]:
    """``lr_at(s)`` for s = 1 .. steps: from ``peak`` at step 1 down to 0 after the last step along half a
    cosine (Loshchilov & Hutter 2017, without restarts): the late steps refine instead of wandering, so a
    short run ends where its loss has settled."""
    return lambda s: peak * 0.5 * (1 + math.cos(math.pi * (s - 1) / steps))


def run_steps(model: nn.Module, opt: torch.optim.Optimizer, step: Step, steps: int, *, name: str, lr: float,
              hint: str = "", desc: str = "", progress: bool = True, every: int = 20,
              callback: Callable[[int], None] | None = None, callback_steps: Sequence[int] = (),
              lr_at: Callable[[int], float] | None = None) -> None:
    """Train ``model`` for ``steps`` steps of ``step`` (see the module docstring); it ends in eval mode.

    ``name`` opens the NaN error (``"train_vae('vae')"``) and ``hint`` ends it (``" or beta/gamma"``).
    ``lr_at(s)``, where given, sets every parameter group's learning rate before step s (:func:`cosine_lr`)."""
    model.train()
    bar = tqdm(range(1, steps + 1), desc=desc, disable=not progress)
    for s in bar:
        if lr_at is not None:
            for group in opt.param_groups:
                group["lr"] = lr_at(s)
        loss, after = step(s)
        value = loss.item()
        if not math.isfinite(value):
            raise FloatingPointError(f"{name}: loss is {value} at step {s}; try a smaller lr (now {lr}){hint}")
        opt.zero_grad()
        loss.backward()
        opt.step()
        fields = after(value)
        if callback is not None and s in callback_steps:
            model.eval()
            callback(s)
            model.train()
        if s % every == 0 or s == steps:
            bar.set_postfix(**fields, refresh=False)
    model.eval()


def as_float32(x: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Images or rows as a float32 CPU tensor (the trainers index it with their CPU generator's draws)."""
    return torch.as_tensor(np.asarray(x, np.float32))


def batches(model: nn.Module, x: np.ndarray | torch.Tensor, batch_size: int) -> Iterator[torch.Tensor]:
    """``for xb in batches(model, x, 512)``: ``x`` in order, ``batch_size`` rows at a time, float32 on the
    model's device (scoring and encoding without holding the whole set on the device)."""
    x_all = as_float32(x)
    dev = next(model.parameters()).device
    for a in range(0, len(x_all), batch_size):
        yield x_all[a:a + batch_size].to(dev)
