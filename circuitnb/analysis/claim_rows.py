"""Scorecard rows: an estimate over replicate models, with each model's own verdict beside it.

    row = claim_row("cc_ratio_100", replicates.estimate(r), r.pair_estimates, unit="ratio")
    row = labelled_row("n_per_condition", 100, "by design", "a parameter (n_samples)")

What every claim builder of :mod:`circuitnb.analysis` returns, and what
:mod:`circuitnb.analysis.claim_sources` gathers for the scorecard (chapter 10).
"""
from __future__ import annotations

import functools
from typing import Sequence

import numpy as np

from circuitnb.measures import claims, verdicts
from circuitnb.measures.verdicts import Estimate


@functools.lru_cache(maxsize=1)
def _paper_values() -> dict[str, float]:
    """The paper's value of every claim id, read once per process (the files are package data)."""
    return claims.load().set_index("id").paper_value.astype(float).to_dict()


@functools.lru_cache(maxsize=1)
def _margins() -> dict[str, tuple[float, str]]:
    return {r.id: (float(r.margin), r.margin_kind) for r in verdicts.load_margins().itertuples()}


def claim_row(claim_id: str, est: Estimate, per_model: Sequence[Estimate] = (), unit: str = "",
              reason: str = "", alpha: float = 0.05) -> dict:
    """A scorecard row (:func:`circuitnb.measures.verdicts.measured_row`) with each replicate's own verdict.

    ``est`` is the estimate over models; ``per_model`` each model's (or replicate pair's) own estimate,
    judged alone against the paper's value and the claim's margin.
    """
    reps: tuple[str, ...] = ()
    if len(per_model) and claim_id in _paper_values():
        margin, kind = _margins()[claim_id]
        reps = verdicts.per_replicate_verdicts(_paper_values()[claim_id], list(per_model), margin, kind,
                                               alpha=alpha, claim_id=claim_id).labels
    return verdicts.measured_row(claim_id, est, alpha=alpha, unit=unit, reason=reason, replicates=reps)


def labelled_row(claim_id: str, ours: float, label: str, reason: str, unit: str = "") -> dict:
    """A scorecard row whose verdict is a label ("by design", "not comparable") with its reason."""
    verdicts.labelled(label, reason, claim_id)                      # fails now, not in the scorecard
    return verdicts.measured_row(claim_id, Estimate(float(ours), np.nan, np.nan, 1), unit=unit, label=label,
                                 reason=reason)
