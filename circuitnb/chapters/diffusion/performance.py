"""Chapter 2 (§4.1, Fig. 3): prediction accuracy and feature complexity per timestep, every replicate model.

    res = performance.run(cfg)            # res.tables["accuracy"], ["feature_complexity"], ["per_model"], ["claims"]

Both quantities come from the recorded sweep (:mod:`circuitnb.analysis.sweep`) of
each replicate model on its dataset's held-out images, one noise draw per image
shared by all timesteps (per image: :mod:`circuitnb.analysis.per_image`; claim rows:
:mod:`circuitnb.analysis.performance`). Per model: the mean over images; then the mean over
models with a t-interval (:func:`circuitnb.analysis.replicates.across_replicates`).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from circuitnb.analysis import claim_sources, replicates, yours
from circuitnb.analysis.per_image import accuracy_per_image, complexity_per_image
from circuitnb.chapters import common
from circuitnb.chapters.report import ChapterResult
from circuitnb.measures import claims

CHAPTER = "02_performance"
_DS = {"synthetic": "syn", "celeba": "cel"}


def level_table(per: pd.DataFrame, prefix: str) -> pd.DataFrame:
    """Mean over models per dataset and t with its t-interval, the paper's value beside (claim ``prefix``).

        level_table(per, "acc")   # dataset, t, mean, ci_low, ci_high, paper, per_model, sd_models, n_models, ...
    """
    out = replicates.across_replicates(per, ["dataset", "t"])
    paper = claims.by_timestep(claims.load(), prefix)
    out["paper"] = [paper.get(d, {}).get(int(t), np.nan) for d, t in zip(out.dataset, out.t)]
    means = replicates.model_means(per, ["dataset", "t"]).sort_values("replicate")
    text = {k: ", ".join(f"{v:.4g}" for v in g.value) for k, g in means.groupby(["dataset", "t"])}
    out["per_model"] = [text[(d, t)] for d, t in zip(out.dataset, out.t)]
    out = out.sort_values(["dataset", "t"], ascending=[False, True], ignore_index=True)   # synthetic first
    return out[["dataset", "t", "mean", "ci_low", "ci_high", "paper", "per_model", "sd_models", "n_models",
                "n_images", "eq_low", "eq_high"]]


@common.cached_chapter()
def run(cfg) -> ChapterResult:
    """Chapter 2: accuracy and feature complexity per timestep, from every replicate model on held-out images."""
    if (res := common.on_your_model(cfg, CHAPTER)) is not None:
        return _on_your_model(cfg, res)
    models, sweeps = common.models_and_sweeps(cfg)
    acc = replicates.per_replicate(sweeps, accuracy_per_image)
    fc = replicates.per_replicate(sweeps, complexity_per_image)
    res = ChapterResult(CHAPTER)
    res.tables["accuracy"] = level_table(acc, "acc")
    res.tables["feature_complexity"] = level_table(fc, "fc")
    keys = ["dataset", "replicate", "t"]
    res.tables["per_model"] = replicates.model_means(acc, ["t"]).rename(columns={"value": "accuracy"}).merge(
        replicates.model_means(fc, ["t"]).rename(columns={"value": "feature_complexity"}), on=keys)
    res.tables["claims"] = claim_sources.claims_table(cfg, "performance", models, sweeps)
    res.data["accuracy"] = res.tables["accuracy"].rename(columns={"mean": "accuracy"})
    res.data["feature_complexity"] = res.tables["feature_complexity"].rename(columns={"mean": "complexity"})
    res.data["paper_accuracy"] = claims.by_timestep(claims.load(), "acc")
    res.data["paper_fc"] = claims.by_timestep(claims.load(), "fc")
    first, last = min(cfg.analysis.timesteps), max(cfg.analysis.timesteps)
    a, f = (res.tables[k].set_index(["dataset", "t"]) for k in ("accuracy", "feature_complexity"))
    res.values = dict(profile=cfg.profile, seed=cfg.run.seed, n=int(a.n_images.min()),
                      n_models=int(a.n_models.min()), timesteps=", ".join(map(str, cfg.analysis.timesteps)),
                      t_first=first, t_last=last)
    for d in _DS:
        for which, t in (("first", first), ("last", last)):
            key = f"{d}_{which}"
            res.values.update({f"acc_{key}": a.loc[(d, t), "mean"], f"acc_{key}_lo": a.loc[(d, t), "ci_low"],
                               f"acc_{key}_hi": a.loc[(d, t), "ci_high"], f"fc_{key}": f.loc[(d, t), "mean"]})
    return res


def _on_your_model(cfg, res: ChapterResult) -> ChapterResult:
    """A model of your own: prediction accuracy (noise R², %) and feature complexity (Eq. 3) per timestep,
    mean over images with a t-interval."""
    _, sweeps = common.models_and_sweeps(cfg)
    for name, per_image, what in (("accuracy", accuracy_per_image, "prediction accuracy (noise R², %)"),
                                  ("feature_complexity", complexity_per_image,
                                   "feature complexity (Eq. 3, mean over the blocks)")):
        res.tables[name] = yours.over_images(replicates.per_replicate(sweeps, per_image), ["dataset", "t"])
        res.notes[name] = f"{what} per timestep, mean over images with a 95% t-interval"
    res.notes["claims"] = yours.LEFT_OUT["claims"]
    return res
