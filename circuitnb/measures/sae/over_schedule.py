"""Part IV's measures at every training snapshot of one model, so the schedule's effect can be plotted.

    table = schedule_measures(snapshots, factors, thresholds=(0, 0.01), dci_trees=10)
    table[["step", "active_per_input", "dead@0", "mig_latent", "mono_max"]]

``snapshots``: step -> {"codes": [N, H], "mu": [N, latent]} on the same held-out inputs (what
:class:`circuitnb.modeling.sae.TrainedSAE` keeps); ``factors``: their integer factor codes [N, K]. Per step:

* ``active_per_input``: mean number of nonzero codes per input (the schedule's k, met or not);
* ``dead@<tau>``: :func:`~circuitnb.measures.sae.dead_neurons.dead_rate_curve`'s dead rate at each threshold;
* ``mig_latent``: MIG of the posterior means (global representation quality: the abstract's "MIG remains
  stable"; :func:`circuitnb.measures.disentanglement.mig`); with ``unit_mig``, ``mig_units``: MIG of the hidden
  units that vary (a constant unit carries no information, so leaving it out changes nothing; 0 when fewer than
  two vary). Off by default: 20-bin MI of hundreds of units costs ~15 s per snapshot at 500 units (measured);
* ``dci_d``, ``dci_c``, ``dci_i``: DCI of the posterior means, trees fitted on the first half of the inputs and
  informativeness scored on the second (:func:`circuitnb.measures.disentanglement.dci`);
* ``mono_max``, ``mono_margin``: mean monosemanticity of the units that vary, both readings
  (:mod:`~circuitnb.measures.sae.monosemanticity`); ``n_varying``: how many units vary.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from circuitnb.measures.disentanglement import dci, mig
from circuitnb.measures.sae.dead_neurons import DEFAULT_FRACTIONS, dead_rate_curve
from circuitnb.measures.sae.monosemanticity import monosemanticity


def snapshot_measures(codes, mu, factors, thresholds: Sequence[float] = DEFAULT_FRACTIONS, dci_trees: int = 10,
                      seed: int = 0, unit_mig: bool = False) -> dict:
    """The measures of one snapshot (see the module docstring), as a flat dict."""
    codes, mu, factors = np.asarray(codes, float), np.asarray(mu, float), np.asarray(factors)
    row = {"active_per_input": float((codes > 0).sum(1).mean())}
    curve = dead_rate_curve(codes, thresholds)
    row |= {f"dead@{t:g}": r for t, r in zip(curve["threshold"], curve["dead_rate"])}
    row["mig_latent"] = mig(mu, factors)
    if unit_mig:
        varying = codes[:, codes.std(0) > 0]
        row["mig_units"] = mig(varying, factors) if varying.shape[1] >= 2 else 0.0
    half = len(mu) // 2
    d = dci(mu[:half], factors[:half], mu[half:], factors[half:], n_estimators=dci_trees, seed=seed)
    row |= {"dci_d": d["disentanglement"], "dci_c": d["completeness"], "dci_i": d["informativeness"]}
    per_unit = monosemanticity(codes, factors)
    varying = per_unit["score"].notna()
    row["n_varying"] = int(varying.sum())
    row["mono_max"] = float(per_unit["score"][varying].mean()) if varying.any() else float("nan")
    row["mono_margin"] = (float((per_unit["eta2_best"] - per_unit["eta2_second"])[varying].mean())
                          if varying.any() else float("nan"))
    return row


def schedule_measures(snapshots: Mapping[int, Mapping[str, np.ndarray]], factors,
                      thresholds: Sequence[float] = DEFAULT_FRACTIONS, dci_trees: int = 10, seed: int = 0,
                      state: Sequence[Mapping] | None = None, unit_mig: bool = False) -> pd.DataFrame:
    """One row per snapshot step (ascending) of :func:`snapshot_measures`; ``state`` (one mapping per step, in
    step order, e.g. ``meta["snapshot_state"]``: the schedule's k and the L1 coefficient) adds its columns."""
    steps = sorted(snapshots)
    rows = []
    for i, step in enumerate(steps):
        row = {"step": int(step)} | (dict(state[i]) if state is not None else {})
        rows.append(row | snapshot_measures(snapshots[step]["codes"], snapshots[step]["mu"], factors, thresholds,
                                            dci_trees, seed, unit_mig))
    return pd.DataFrame(rows)
