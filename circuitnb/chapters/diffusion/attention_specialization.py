"""Chapter 4 (§4.3, Table 2, Fig. 4): every head of every replicate model, its tested function, and Table 2.

    res = circuitnb.chapters.diffusion.attention_specialization.run(cfg)
    res.show("heads")          # every head at cfg.analysis.head_t: mean over models with t-intervals
    res.show("table2")         # the paper's four named heads, matched in each model by our tested labels

The head values, importance, function tests, Table 2 and its claim rows are the library's
(:mod:`circuitnb.analysis.heads`, which says how Table 2's heads are matched); this module shows them. The
model is the unit: per-model values are means over held-out images, and the estimate is the mean over models
with a t-interval (:func:`circuitnb.measures.verdicts.replicate_ci`).
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from circuitnb.analysis import claim_sources, replicates, yours
from circuitnb.analysis.heads import (
    TABLE2,
    distinct_heads,
    head_sweeps,
    head_tests,
    heads_per_model,
    table2,
    table2_matches,
)
from circuitnb.chapters import common
from circuitnb.chapters.report import ChapterResult
from circuitnb.core.config import Config
from circuitnb.measures import metrics
from circuitnb.measures.verdicts import replicate_ci

CHAPTER = "04_attention_specialization"
SHORT = {func: key for key, func in TABLE2.items()}           # figure labels: "edge", "global", ...


def heads_summary(per_model: pd.DataFrame) -> pd.DataFrame:
    """One row per (dataset, head): each quantity's mean over models with its 95% t-interval, and the
    function label of each model (``r0: edge detection; r1: unassigned``)."""
    rows = []
    for (name, layer, head), g in per_model.groupby(["dataset", "layer", "head"], sort=False):
        row = dict(dataset=name, layer=layer, head=head, n_keys=int(g.n_keys.iloc[0]))
        for col in ("entropy", "entropy_norm", "specialization", "importance"):
            est = replicate_ci(g[col])
            row.update({col: est.mean, f"{col}_ci_low": est.low, f"{col}_ci_high": est.high})
        row["functions"] = "; ".join(f"r{r}: {f}" for r, f in zip(g.replicate, g.function))
        row.update(n_models=len(g), n_images=int(g.n_images.min()))
        rows.append(row)
    return pd.DataFrame(rows)


def _correlation(sw, t: int) -> np.ndarray:
    """Pearson r between heads of their per-image entropies at t (Fig. 4c); NaN for a constant head."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.corrcoef(sw.head_matrix(t, "entropy"), rowvar=False)


def figure_data(sweeps: dict, tests: pd.DataFrame, t: int) -> dict:
    """What Figs. 4.1-4.4 draw: entropy per head and t, inter-head correlation and function scores at t,
    each the mean over the replicate models of a dataset."""
    ent = replicates.per_replicate(sweeps, lambda sw: sw.heads.groupby(["head_id", "t"], sort=False, as_index=False)
                                   .entropy.mean())
    entropy_by_t = {name: g.pivot_table(index="head_id", columns="t", values="entropy", sort=False)
                    for name, g in ent.groupby("dataset", sort=False)}
    syn = sweeps["synthetic"]
    with warnings.catch_warnings():                            # a head constant in every model: NaN, said so
        warnings.simplefilter("ignore", RuntimeWarning)
        corr = np.nanmean([_correlation(sw, t) for sw in syn], axis=0)
    scores = tests[tests.dataset == "synthetic"].pivot_table(index="head", columns="function", values="score",
                                                             sort=False).rename(columns=SHORT)
    return dict(entropy_by_t=entropy_by_t, heads_order=syn[0].head_ids, scores=scores,
                correlation=pd.DataFrame(corr, index=syn[0].head_ids, columns=syn[0].head_ids))


@common.cached_chapter()
def run(cfg: Config) -> ChapterResult:
    """Chapter 4: every head of every replicate model at ``cfg.analysis.head_t``, Table 2, figures."""
    if (res := common.on_your_model(cfg, CHAPTER)) is not None:
        return _on_your_model(cfg, res)
    t = cfg.analysis.head_t
    models, every_t = common.models_and_sweeps(cfg)
    sweeps = head_sweeps(cfg, models, every_t)                  # a sweep at head_t alone when it is not analysed
    h = head_tests(cfg, models, sweeps, t)
    per_image, tests = h["per_image"], h["tests"]
    per_model = heads_per_model(per_image, h["imp"], tests)
    matches = table2_matches(tests)
    distinct = distinct_heads(per_model)
    res = ChapterResult(CHAPTER)
    passed = tests.loc[tests.significant, ["dataset", "replicate", "head", "function", "score", "p", "p_bonferroni",
                                           "label"]].reset_index(drop=True)
    res.tables.update(heads=heads_summary(per_model), heads_per_model=per_model, table2=table2(matches, per_model),
                      functions_passed=passed, distinct_heads=distinct)
    res.tables["claims"] = claim_sources.claims_table(cfg, "heads", models, every_t)
    res.data.update(figure_data(sweeps, tests, t), heads=res.tables["heads"])
    res.values = _values(cfg, t, res.tables["heads"], distinct, res.tables["table2"])
    return res


def _values(cfg: Config, t: int, summary: pd.DataFrame, distinct: pd.DataFrame, t2: pd.DataFrame) -> dict:
    syn = summary[summary.dataset == "synthetic"]
    n_dist = replicate_ci(distinct.n_distinct)
    by_ds = distinct.groupby("dataset").n_distinct
    keys = sorted(summary.n_keys.unique())
    return dict(profile=cfg.profile, seed=cfg.run.seed, n=int(summary.n_images.min()),
                n_models=int(summary.n_models.min()), head_t=t, n_heads=int(syn["head"].nunique()),
                n_keys=", ".join(map(str, keys)), hmax=", ".join(f"{metrics.max_entropy(k):.3g}" for k in keys),
                h_min=syn.entropy.min(), h_max=syn.entropy.max(), s_min=syn.specialization.min(),
                s_max=syn.specialization.max(), top_head=syn.loc[syn.importance.idxmax(), "head"],
                top_imp=syn.importance.max(), n_perm=cfg.analysis.n_permutations,
                n_labelled_syn=by_ds.mean().get("synthetic", np.nan), n_labelled_cel=by_ds.mean().get("celeba", np.nan),
                distinct=n_dist.mean, distinct_lo=n_dist.low, distinct_hi=n_dist.high, n_all_models=len(distinct),
                **{f"matched_{k}": int(r.n_models_matched) for k, r in zip(TABLE2, t2.itertuples())})


def _on_your_model(cfg: Config, res: ChapterResult) -> ChapterResult:
    """A model of your own: every head at ``head_t`` (entropy, specialization with t-intervals over images,
    importance, tested function), the tests that passed and the heads per function."""
    t = cfg.analysis.head_t
    models, every_t = common.models_and_sweeps(cfg)
    h = head_tests(cfg, models, head_sweeps(cfg, models, every_t), t)
    per_model = heads_per_model(h["per_image"], h["imp"], h["tests"])
    for col in ("entropy", "specialization"):
        ci = yours.over_images(h["per_image"], ["layer", "head"], col)[["layer", "head", "ci_low", "ci_high"]]
        per_model = per_model.merge(ci.rename(columns={"ci_low": f"{col}_ci_low", "ci_high": f"{col}_ci_high"}),
                                    on=["layer", "head"], how="left")
    tests = h["tests"]
    passed = tests.loc[tests.significant, ["head", "function", "score", "p", "p_bonferroni", "label"]]
    res.tables.update(heads=per_model.assign(t=t), functions_passed=passed.reset_index(drop=True),
                      distinct_heads=distinct_heads(per_model))
    res.notes.update(heads=f"every head at t = {t}: entropy (Eq. 1, bits), H / log2 K, specialization (Eq. 2), "
                           "means over images with 95% t-intervals; importance; the tested function",
                     functions_passed="the head-function tests that pass (Bonferroni over heads x functions)",
                     distinct_heads="heads carrying each tested function",
                     table2="Table 2 matches the paper's four named heads in models trained on its synthetic "
                            "faces; left out (every head's tested function is in the heads table)")
    res.values.update(head_t=t, n_heads=len(per_model))
    return res
