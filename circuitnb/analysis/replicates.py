"""Replicate models as the unit of analysis, and dataset contrasts judged against the seed-to-seed spread.

    models = load_models(cfg)                        # {"synthetic": [m_0, m_1, ...], "celeba": [...]}
    per = per_replicate(sweeps, complexity_per_image)  # one frame, a ``replicate`` column added
    summary = across_replicates(per, by=["dataset", "t"])
    effect = dataset_contrast(per, by=["t"], measure="ratio")

Why: one model per dataset confounds the dataset with the training seed (a
second seed on the same data moved the t = 100 complexity ratio from 1.32 to
3.43). So every quantity is measured on each of ``cfg.run.replicates`` models
per dataset, each model's image mean is one observation, and a CelebA-vs-
synthetic effect is set beside the same effect between two models trained on
the *same* data (the same-data null). Images are held out from training
(:func:`circuitnb.data.images` with ``split="analysis"``).

Statistics at the model level: the mean over models with a t-interval
(:func:`circuitnb.measures.verdicts.replicate_ci`; undefined for one model),
Welch's t over model means, and per replicate pair (r-th synthetic model vs
r-th CelebA model, on their own held-out images) a ratio of image means or an
image-level Cohen's d (pingouin).
"""
from __future__ import annotations

import functools
import itertools
from typing import Callable

import numpy as np
import pandas as pd
import pingouin as pg
from scipy import stats as sps

from circuitnb import data
from circuitnb.analysis import sweep, yours
from circuitnb.core import results
from circuitnb.core.config import Config
from circuitnb.core.errors import UserError
from circuitnb.measures.verdicts import Estimate, replicate_ci
from circuitnb.modeling import train

A, B = data.DATASETS             # the contrast is B vs A: celeba vs synthetic, as the paper states it


def load_models(cfg: Config, progress: bool = False, at_step: int | None = None) -> dict[str, list]:
    """``cfg.run.replicates`` trained models per dataset (from the cache, else trained now); ``at_step``
    (one of :func:`circuitnb.modeling.train.snapshot_steps`): each model's EMA weights at that training step.
    With ``model_dir``: your model as the one replicate, under its images' name (:mod:`circuitnb.analysis.yours`)."""
    if yours.on_your_model(cfg):
        if at_step is not None:
            raise UserError(f"parameter 'at_step' = {at_step}: your model ('model_dir') has no training snapshots")
        return {yours.images_name(cfg): [yours.load(cfg)]}
    return {name: [train.load_or_train(cfg, name, progress=progress, replicate=r, at_step=at_step)
                   for r in range(cfg.run.replicates)] for name in data.DATASETS}


def load_sweeps(cfg: Config, models: dict, timesteps=None) -> dict[str, list]:
    """The cached recorded sweep of every replicate model on its dataset's held-out images (a snapshot
    model from ``load_models(cfg, at_step=s)`` carries its own cache key, so its sweep is its own)."""
    return each_of(models, lambda name, m, wait=True: sweep.sweep(cfg, name, m, timesteps, wait=wait))


def each_of(items: dict, fn: Callable) -> dict:
    """``{key: [fn(key, item) for item in seq] for key, seq in items.items()}`` for an ``fn(key, item, wait=...)``
    that ends in a cached result: the items whose result another process is computing are taken last
    (:func:`circuitnb.core.results.each`)."""
    jobs = [(key, item) for key, seq in items.items() for item in seq]
    done = iter(results.each([functools.partial(fn, key, item) for key, item in jobs]))
    return {key: [next(done) for _ in seq] for key, seq in items.items()}


def per_replicate(items: dict[str, list], fn: Callable[..., pd.DataFrame], cached: bool = False) -> pd.DataFrame:
    """``fn(item)`` for every replicate item (sweep or model) of every dataset, concatenated with
    ``dataset`` and ``replicate`` columns. ``cached``: ``fn(item, wait=...)`` ends in a cached result, and
    the items whose result another process is computing are taken last (:func:`circuitnb.core.results.each`)."""
    values = (each_of(items, lambda _, item, wait=True: fn(item, wait=wait)) if cached
              else {name: [fn(item) for item in seq] for name, seq in items.items()})
    return pd.concat([v.assign(dataset=name, replicate=r) for name, seq in values.items() for r, v in enumerate(seq)],
                     ignore_index=True)


def listed(values) -> str:
    """Per-model (or per-pair) values for a table cell: ``listed([1.0, 1.234])`` -> "1, 1.23"."""
    return ", ".join(f"{v:.3g}" for v in values)


def model_means(frame: pd.DataFrame, by: list[str], value: str = "value") -> pd.DataFrame:
    """One row per (model, group): the mean over images of ``value``; the model is the unit from here on."""
    return frame.groupby(_model_keys(by), as_index=False)[value].mean()


def _model_keys(by: list[str]) -> list[str]:
    return list(dict.fromkeys(["dataset", "replicate", *by]))      # `by` may name the dataset too


def across_replicates(frame: pd.DataFrame, by: list[str], value: str = "value", level: float = 0.95) -> pd.DataFrame:
    """Mean over models of the per-model image means, with a t-interval over models (nan for one model).

    Columns: ``*by, mean, ci_low, ci_high`` (``level``), ``eq_low, eq_high`` (the 1 - 2 alpha interval an
    equivalence test uses, alpha = (1 - level) / 2), ``sd_models, n_models, n_images`` (images per model).
    """
    per_model = model_means(frame, by, value)
    n_img = frame.groupby(_model_keys(by))[value].count().groupby(by).median()
    rows = []
    for key, g in per_model.groupby(by, sort=False):
        est = replicate_ci(g[value].to_numpy(), level)
        eq = est.ci(2 * level - 1)
        key = key if isinstance(key, tuple) else (key,)
        rows.append({**dict(zip(by, key)), "mean": est.mean, "ci_low": est.low, "ci_high": est.high,
                     "eq_low": eq[0], "eq_high": eq[1],
                     "sd_models": float(np.std(g[value], ddof=1)) if len(g) > 1 else np.nan,
                     "n_models": est.n, "n_images": int(n_img.loc[key if len(key) > 1 else key[0]])})
    return pd.DataFrame(rows)


def image_estimates(frame: pd.DataFrame, by: list[str], value: str = "value", level: float = 0.95) -> dict:
    """Each model's own estimate per group: {(*by): [Estimate of replicate 0, 1, ...]} (t-interval over
    its images), for the per-replicate verdicts (does the verdict hang on which model we trained?)."""
    out: dict = {}
    for key, g in frame.groupby(by, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        out[key] = [replicate_ci(grp[value].to_numpy(), level) for _, grp in g.groupby("replicate")]
    return out


def _pair_estimate(a: np.ndarray, b: np.ndarray, measure: str, level: float) -> Estimate:
    """One replicate pair's effect with its image-level CIs at ``level`` and 2 level - 1 (for its verdict).

    ratio: delta method on log(mean b / mean a); difference: Welch; d: pingouin's CI of Cohen's d.
    """
    eff = _pair_effect(a, b, measure)
    cis = []
    for lv in (level, 2 * level - 1):
        if measure == "d":
            lo, hi = pg.compute_esci(stat=eff, nx=len(b), ny=len(a), eftype="cohen", confidence=lv)
        else:
            va, vb = np.var(a, ddof=1) / len(a), np.var(b, ddof=1) / len(b)
            if measure == "ratio":
                se = np.sqrt(va / np.mean(a) ** 2 + vb / np.mean(b) ** 2)
                z = sps.norm.ppf(0.5 + lv / 2)
                lo, hi = eff * np.exp(-z * se), eff * np.exp(z * se)
            else:
                df = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))
                half = sps.t.ppf(0.5 + lv / 2, df) * np.sqrt(va + vb)
                lo, hi = eff - half, eff + half
        cis.append((float(lo), float(hi)))
    return Estimate(eff, *cis[0], min(len(a), len(b)), level, more=((2 * level - 1, *cis[1]),))


def _pair_effect(a: np.ndarray, b: np.ndarray, measure: str) -> float:
    if measure == "ratio":
        return float(np.mean(b) / np.mean(a))
    if measure == "difference":
        return float(np.mean(b) - np.mean(a))
    if measure == "d":
        return float(pg.compute_effsize(b, a, eftype="cohen"))
    raise ValueError(f"parameter 'measure' = {measure!r}; choose 'ratio', 'difference' or 'd'")


def _interval(effects: np.ndarray, measure: str, level: float) -> tuple[float, ...]:
    """Mean effect over replicate pairs with t-intervals at ``level`` and 2 level - 1; ratios on the log scale
    (a geometric mean)."""
    f = np.exp if measure == "ratio" else float
    est = replicate_ci(np.log(effects) if measure == "ratio" else effects, level)
    eq = est.ci(2 * level - 1)
    return tuple(float(f(v)) for v in (est.mean, est.low, est.high, *eq))


def estimate(row, level: float = 0.95) -> Estimate:
    """The verdict-ready :class:`Estimate` of one row of :func:`across_replicates` or :func:`dataset_contrast`."""
    mean = row["mean"] if "mean" in row else row["effect"]
    n = int(row["n_models"] if "n_models" in row else row["n_pairs"])
    return Estimate(float(mean), float(row["ci_low"]), float(row["ci_high"]), n, level,
                    more=((2 * level - 1, float(row["eq_low"]), float(row["eq_high"])),))


def dataset_contrast(frame: pd.DataFrame, by: list[str], measure: str = "ratio", value: str = "value",
                     level: float = 0.95) -> pd.DataFrame:
    """CelebA vs synthetic per group, with the model as the unit and the same-data null beside it.

    * ``effect`` [``ci_low``, ``ci_high``]: the effect of pair r (synthetic model r on synthetic images vs
      CelebA model r on CelebA images), averaged over the R pairs with a t-interval (ratios: geometric).
    * ``null_low``, ``null_high``: the range of the same effect between two models trained on the *same*
      dataset, evaluated on the same images (every pair i < j of each dataset, both orientations). A dataset
      effect is claimed (``beyond_null``) only when the whole CI lies outside that range.
    * ``p_models``: Welch's t over the per-model means (n = R per dataset), the model as the unit.
    * ``pair_estimates``: each pair's own effect with image-level CIs, for per-replicate verdicts.
    """
    rows = []
    for key, g in frame.groupby(by, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        vals = {(d, r): grp[value].to_numpy() for (d, r), grp in g.groupby(["dataset", "replicate"])}
        reps = sorted({r for _, r in vals})
        pairs = [r for r in reps if (A, r) in vals and (B, r) in vals]
        per_pair = [_pair_estimate(vals[(A, r)], vals[(B, r)], measure, level) for r in pairs]
        effects = np.array([e.mean for e in per_pair])
        null = [_pair_effect(vals[(d, i)], vals[(d, j)], measure)
                for d in (A, B) for i, j in itertools.permutations([r for r in reps if (d, r) in vals], 2)]
        eff, lo, hi, eq_lo, eq_hi = _interval(effects, measure, level)
        nlo, nhi = (min(null), max(null)) if null else (np.nan, np.nan)
        means = {d: [vals[(d, r)].mean() for r in reps if (d, r) in vals] for d in (A, B)}
        p = (sps.ttest_ind(means[B], means[A], equal_var=False).pvalue
             if min(len(means[A]), len(means[B])) > 1 else np.nan)
        beyond = bool(np.isfinite(lo) and np.isfinite(nlo) and (lo > nhi or hi < nlo))
        rows.append({**dict(zip(by, key)), "measure": measure, "effect": eff, "ci_low": lo, "ci_high": hi,
                     "eq_low": eq_lo, "eq_high": eq_hi,
                     "null_low": nlo, "null_high": nhi, "beyond_null": beyond, "p_models": float(p),
                     "n_pairs": len(pairs), "per_pair": listed(effects),
                     "pair_estimates": per_pair})
    return pd.DataFrame(rows)
