"""Model-level statistics for quantities that are not an image mean: a model's value with its image-bootstrap
interval, and values measured on a model *pair* (patching, CKA) set beside the same-data null.

    est = image_bootstrap(eq5, (mse_base, mse_int), 2000)        # one model's value, 95% and 90% CIs
    table = over_models(per_model, ["dataset", "group"], "impact")  # mean over models, t-interval
    table = beside_null(per_pair, ["block"], "cka")                  # other-data pairs vs same-data pairs

A thin layer over :mod:`circuitnb.analysis.replicates`, which does the statistics: the mean over models and
its t-interval are :func:`~circuitnb.analysis.replicates.across_replicates` of rows that are already one value
per model (Eq. 5 on mean MSEs, a share of interventions, a CKA), and the pairing is that of
:func:`~circuitnb.analysis.replicates.dataset_contrast`: model r with the other dataset's model r, beside
every pair of models of the same dataset. What ``dataset_contrast`` cannot take is an effect that is not a
function of the two models' image values (patching one model from another, the CKA of their features);
:func:`beside_null` takes such values measured on each pair.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import pandas as pd
from scipy import stats as sps

from circuitnb.analysis import replicates
from circuitnb.measures.verdicts import Estimate

EQ = 0.90       # level of the interval an equivalence test reads: 1 - 2 alpha at alpha = 0.05
BATCH = 100     # bootstrap resamples evaluated at once: bounds memory ([cells, BATCH, images] per array)


def image_bootstrap(stat: Callable, arrays, n_bootstrap: int, seed: int = 0, level: float = 0.95) -> Estimate:
    """One model's ``stat(*arrays)`` with percentile-bootstrap CIs at ``level`` and 2 level - 1 over its images.

        image_bootstrap(lambda b, i, axis=-1: i.mean(axis) / b.mean(axis) - 1, (mse_base, mse_int), 2000)

    Paired: every array's last axis is the same images, resampled together (scipy.stats.bootstrap).
    ``stat`` is vectorized: it reduces ``axis`` (the images), and scipy hands it BATCH resamples at a time.
    """
    arrays = tuple(np.asarray(a, float) for a in arrays)
    n, value = arrays[0].shape[-1], float(stat(*arrays))
    if n < 2:
        return Estimate(value, np.nan, np.nan, n, level)
    dist = sps.bootstrap(arrays, stat, paired=True, vectorized=True, n_resamples=n_bootstrap, batch=BATCH,
                         method="percentile", rng=np.random.default_rng(seed)).bootstrap_distribution
    (lo, hi), (elo, ehi) = (np.percentile(dist, [50 * (1 - lv), 50 * (1 + lv)]) for lv in (level, 2 * level - 1))
    return Estimate(value, float(lo), float(hi), n, level, more=((2 * level - 1, float(elo), float(ehi)),))


def over_models(per_model: pd.DataFrame, by: list[str], value: str) -> pd.DataFrame:
    """:func:`replicates.across_replicates` of rows that are one value per model, in ``per_model``'s order;
    ``n_images`` from the models' ``n`` (the fewest), ``per_model`` lists each model's value."""
    out = replicates.across_replicates(per_model, by, value).drop(columns="n_images")
    extra = per_model.groupby(by, sort=False).agg(n_images=("n", "min"),
                                                  per_model=(value, replicates.listed)).reset_index()
    return extra[by].merge(out, on=by).merge(extra, on=by)


def sources(models: dict[str, list], name: str, r: int) -> list[tuple[str, str, int]]:
    """The models compared with replicate r of ``name``, as (kind, dataset, replicate), paired as
    :func:`replicates.dataset_contrast` pairs them: the other dataset's model r ("other data") and every other
    model of ``name`` ("same data", the null). No two models share a seed (:func:`circuitnb.data.replicate_seed`),
    so "other data" differs from "same data" by the training data alone."""
    other = next(n for n in models if n != name)
    return [("other data", other, r)] + [("same data", name, s) for s in range(len(models[name])) if s != r]


def beside_null(per: pd.DataFrame, by: list[str], value: str) -> pd.DataFrame:
    """``per``: one row per model pair (``source`` from :func:`sources`). The "other data" values over pairs
    (mean, t-interval, :func:`over_models`) beside the range of the "same data" values (the null);
    ``beyond_null`` when the whole interval lies outside that range, the rule of
    :func:`replicates.dataset_contrast` (false where either is undefined)."""
    out = over_models(per[per.source == "other data"], by, value).rename(columns={"mean": value})
    null = per[per.source == "same data"].groupby(by)[value].agg(null_low="min", null_high="max").reset_index()
    out = out.merge(null, on=by, how="left")
    out["beyond_null"] = (out.ci_low > out.null_high) | (out.ci_high < out.null_low)
    return out[[*by, value, "ci_low", "ci_high", "eq_low", "eq_high", "per_model", "null_low", "null_high",
                "beyond_null", "n_models", "n_images"]]
