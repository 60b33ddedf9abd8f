"""Model-level statistics for quantities that are not an image mean: one value per model (or model pair),
its image-bootstrap interval, the mean over models, and model pairs beside the same-data null.

    est = image_bootstrap(eq5, (mse_base, mse_int), 2000)        # one model's value, 95% and 90% CIs
    table = over_models(per_model, ["dataset", "group"], "impact")  # mean over models, t-interval
    table = beside_null(per_pair, ["block"], "cka")                  # other-data pairs vs same-data pairs

:func:`circuitnb.chapters.replicates.across_replicates` averages each model's images first; here the model's
value is already computed (Eq. 5 on mean MSEs, a share of interventions, a CKA), so the rows are models.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import pandas as pd
from scipy import stats as sps

from circuitnb.chapters import replicates
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
    """:func:`replicates.across_replicates` of one value per model (e.g. Eq. 5 on its mean MSEs); n_images
    from the models' ``n``; ``per_model`` lists each model's value. Rows in the order ``per_model`` has them."""
    out = replicates.across_replicates(per_model, by, value).drop(columns="n_images")
    extra = per_model.groupby(by, sort=False).agg(n_images=("n", "min"), per_model=(value, listed))
    out = extra.reset_index()[by].merge(out, on=by).merge(extra.reset_index(), on=by)
    return out[[c for c in out.columns if c not in ("n_images", "per_model")] + ["n_images", "per_model"]]


def listed(values) -> str:
    return ", ".join(f"{v:.3g}" for v in values)


def sources(models: dict[str, list], name: str, r: int) -> list[tuple[str, str, int]]:
    """The models compared with replicate r of ``name``: (kind, dataset, replicate).

    Replicate r of both datasets starts from the same initial weights (seed + 1000 r), so the other dataset's
    model r shares its init ("other data, same init"). The contrast uses "other data" from the next replicate
    (another init, as in the same-data null: "same data", every other replicate of ``name``), so that it
    differs from the null by the data alone. With one replicate per dataset "other data" is the same-init
    model and there is no null.
    """
    other = next(n for n in models if n != name)
    if len(models[other]) == 1:
        return [("other data", other, 0)]
    return ([("other data", other, (r + 1) % len(models[other]))]
            + [("other data, same init", other, r)] * (r < len(models[other]))
            + [("same data", name, s) for s in range(len(models[name])) if s != r])


def beside_null(per: pd.DataFrame, by: list[str], value: str) -> pd.DataFrame:
    """``per`` (one row per model/pair and ``source``): the "other data" values over models (mean, t-interval),
    the "other data, same init" mean, and the range of the "same data" values (the null); ``beyond_null``
    when the whole interval lies outside that range."""
    out = over_models(per[per.source == "other data"], by, value).rename(columns={"mean": value})
    key = pd.MultiIndex.from_frame(out[by]) if len(by) > 1 else pd.Index(out[by[0]])
    out["same_init"] = per[per.source == "other data, same init"].groupby(by)[value].mean().reindex(key).to_numpy()
    null = per[per.source == "same data"].groupby(by)[value].agg(["min", "max"]).reindex(key)
    out["null_low"], out["null_high"] = null["min"].to_numpy(), null["max"].to_numpy()
    out["beyond_null"] = (out.ci_low > out.null_high) | (out.ci_high < out.null_low)
    return out[[*by, value, "ci_low", "ci_high", "eq_low", "eq_high", "per_model", "same_init", "null_low",
                "null_high", "beyond_null", "n_models", "n_images"]]
