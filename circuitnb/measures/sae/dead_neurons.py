"""Dead units of a sparse hidden layer, under several threshold definitions, as a curve over the threshold.

    rates = firing_rates(codes)                      # [H]: share of held-out inputs on which each unit fires
    curve = dead_rate_curve(codes, (0, 0.001, 0.01, 0.05))
    curve[["threshold", "n_dead", "dead_rate"]]      # one row per threshold, dead_rate non-decreasing in it

The abstract reports "dead neuron rates" and says the collapse "is robust across all tested threshold definitions"
without stating them. Our readings, all on held-out inputs (never the training batches), codes [N inputs, H units]:

* a unit *fires* on an input when its code exceeds ``eps`` (default 0: Top-k and ReLU codes are exactly 0 when
  off, so any positive code is activity);
* threshold 0 ("never active"): dead = fires on no held-out input;
* threshold tau > 0: dead = fires on fewer than a fraction tau of the held-out inputs (count < tau N).

A unit dead at one threshold is dead at every larger one, so the curve is non-decreasing in the threshold; with
N inputs, a tau <= 1/N reads as "never active". The dead rate is the share of the H units that are dead.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

DEFAULT_FRACTIONS = (0.0, 0.001, 0.005, 0.01, 0.02, 0.05)


def _codes(codes) -> np.ndarray:
    codes = np.asarray(codes, float)
    if codes.ndim != 2 or codes.shape[0] < 1:
        raise ValueError(f"need codes [N inputs, H units] with N >= 1; got shape {codes.shape}")
    return codes


def firing_rates(codes, eps: float = 0.0) -> np.ndarray:
    """``firing_rates(codes)`` -> float [H]: the share of inputs (rows) on which each unit's code exceeds ``eps``."""
    return (_codes(codes) > eps).mean(0)


def dead_units(codes, threshold: float = 0.0, eps: float = 0.0) -> np.ndarray:
    """bool [H]: the units dead at ``threshold`` (0: active on no input; tau > 0: active on fewer than tau N)."""
    codes = _codes(codes)
    if not 0 <= threshold < 1:
        raise ValueError(f"parameter 'threshold' = {threshold!r}; need a fraction in [0, 1)")
    active = (codes > eps).sum(0)
    return active == 0 if threshold == 0 else active < threshold * len(codes)


def dead_rate_curve(codes, thresholds: Sequence[float] = DEFAULT_FRACTIONS, eps: float = 0.0) -> pd.DataFrame:
    """``dead_rate_curve(codes, (0, 0.01))`` -> DataFrame, one row per threshold (ascending): ``threshold``,
    ``reading`` ("never active" or "active on < tau of inputs"), ``n_dead``, ``n_units``, ``n_inputs``,
    ``dead_rate`` = n_dead / n_units."""
    codes = _codes(codes)
    rows = []
    for t in sorted({float(t) for t in thresholds}):
        n_dead = int(dead_units(codes, t, eps).sum())
        rows.append(dict(threshold=t, reading="never active" if t == 0 else f"active on < {t:g} of inputs",
                         n_dead=n_dead, n_units=codes.shape[1], n_inputs=len(codes),
                         dead_rate=n_dead / codes.shape[1]))
    return pd.DataFrame(rows)
