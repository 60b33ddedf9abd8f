"""The adaptive sparsity schedule (Part IV, abstract 2): active units per input cut from all of them to a tenth.

    k = active_units(step, steps=4000, k_start=500, k_end=50, decay_fraction=0.5)    # int, 500 -> 50
    ctl = L1Controller(init=1e-3, gain=0.05); lam = ctl.update(measured_l0, target=k)

The paper "progressively reduces active neurons from 500 to 50 over 50 training epochs" and then reports the
model at k = 50 (and after 100 more epochs at k = 50). It states neither the curve's shape nor how L1 reaches
the same activity; our readings:

* :func:`active_units`: the target number of active units per input, k(s) at optimizer step s (1-based, the
  step about to be taken), interpolated between ``k_start`` (step 1) and ``k_end`` (the step
  ``ceil(decay_fraction * steps)`` and every step after it). ``shape="linear"``: k falls linearly in s
  (the paper's "progressively", read as evenly per epoch); ``shape="geometric"``: log k falls linearly (the
  same cut per step in relative terms). k is rounded to the nearest integer and never leaves
  [k_end, k_start]; it is exactly ``k_end`` from the end of the decay on.
* :class:`L1Controller`: L1 cannot fix an active count; it sets a penalty coefficient lambda. We steer lambda
  by integral feedback on log lambda toward the Top-k schedule's target: after each step,
  log lambda += gain * (L0 - k) / k, L0 the batch mean number of nonzero codes per input, so lambda grows while
  too many units fire and shrinks while too few do, and settles where the mean activity equals k(s). The
  relative error makes the gain mean the same at k = 500 and k = 50.
"""
from __future__ import annotations

import math

SHAPES = ("linear", "geometric")


def decay_end(steps: int, decay_fraction: float) -> int:
    """The first step at which the schedule sits at ``k_end``: ceil(decay_fraction * steps), at least 1."""
    return max(1, math.ceil(decay_fraction * steps - 1e-9))


def active_units(step: int, steps: int, k_start: int, k_end: int, decay_fraction: float = 0.5,
                 shape: str = "linear") -> int:
    """``active_units(1, 4000, 500, 50)`` -> 500; ``active_units(2000, 4000, 500, 50)`` -> 50.

    k(s) for step s in 1..steps: ``k_start`` at s = 1, ``k_end`` from s = :func:`decay_end` on, interpolated
    in between by ``shape`` (see the module docstring), rounded to the nearest integer."""
    if shape not in SHAPES:
        raise ValueError(f"parameter 'shape' = {shape!r}; choose one of {SHAPES}")
    if not 1 <= k_end <= k_start:
        raise ValueError(f"need 1 <= k_end <= k_start; got k_start={k_start}, k_end={k_end}")
    end = decay_end(steps, decay_fraction)
    if step >= end or end == 1:
        return int(k_end)
    u = (max(step, 1) - 1) / (end - 1)                          # 0 at step 1, 1 at the decay's end
    k = k_start + u * (k_end - k_start) if shape == "linear" else k_start * (k_end / k_start) ** u
    return int(min(k_start, max(k_end, round(k))))


def schedule(steps: int, k_start: int, k_end: int, decay_fraction: float = 0.5, shape: str = "linear") -> list[int]:
    """k(s) for every step s = 1..steps (what :func:`active_units` gives each step)."""
    return [active_units(s, steps, k_start, k_end, decay_fraction, shape) for s in range(1, steps + 1)]


class L1Controller:
    """``L1Controller(1e-3, 0.05)``: the L1 coefficient, steered toward a target mean activity (integral
    feedback on log lambda; see the module docstring). ``lam`` is the coefficient in force."""

    def __init__(self, init: float = 1e-3, gain: float = 0.05, low: float = 1e-8, high: float = 1e4):
        if not (init > 0 and gain > 0 and 0 < low < high):
            raise ValueError(f"need init > 0, gain > 0, 0 < low < high; got {init}, {gain}, {low}, {high}")
        self.lam, self.gain, self.low, self.high = float(init), float(gain), float(low), float(high)

    def update(self, active: float, target: float) -> float:
        """One feedback step: ``active`` the measured mean number of nonzero codes per input, ``target`` k(s).
        Returns the new coefficient, clipped to [low, high] (so one bad batch cannot run it away)."""
        err = (float(active) - float(target)) / max(float(target), 1.0)
        self.lam = min(self.high, max(self.low, self.lam * math.exp(self.gain * err)))
        return self.lam

    def state_dict(self) -> dict:
        return {"lam": self.lam, "gain": self.gain, "low": self.low, "high": self.high}
