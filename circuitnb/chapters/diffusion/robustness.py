"""Chapter 9 (§4.9): cross-dataset accuracy, feature transferability and circuit robustness, per replicate model.

    res = transfer.run(cfg)     # tables: accuracy, transfer_gap, cka, robustness, claims

The three quantities, per replicate pair, and their claim rows are the library's
(:mod:`circuitnb.analysis.transfer`); this module tabulates and shows them. §4.9 reports three percentages
for "both" datasets; ours are one estimate over replicate pairs (a t-interval over pairs), and CKA is set
beside the same-data null: the similarity of two models trained on the same data with different seeds.
"""
from __future__ import annotations

import pandas as pd

from circuitnb.analysis import claim_sources, model_stats, replicates
from circuitnb.analysis.interventions import replicate_sweeps
from circuitnb.analysis.transfer import A, B, block_similarity, cka_table, cross_accuracy, robustness
from circuitnb.chapters import common
from circuitnb.chapters.report import ChapterResult
from circuitnb.core.config import Config
from circuitnb.measures import quantities, stats

CHAPTER = "09_robustness"


def accuracy_table(acc: pd.DataFrame) -> pd.DataFrame:
    """Mean over models of each model's accuracy on each dataset (in-domain and cross-dataset), t-interval."""
    out = replicates.across_replicates(acc, ["dataset", "data"])
    order = {name: i for i, name in enumerate(acc.dataset.unique())}          # synthetic first, as trained
    out = out.sort_values(["dataset", "data"], key=lambda c: c.map(order), ignore_index=True)
    out["cross"] = out.dataset != out.data
    return out.rename(columns={"dataset": "trained_on", "data": "evaluated_on", "mean": "accuracy"})


def transfer_gap(acc: pd.DataFrame, alpha: float = 0.05) -> pd.DataFrame:
    """On each dataset's images: the CelebA-trained minus the synthetic-trained models' accuracy (points),
    per replicate pair, beside two same-data models' difference (the null); Welch p over models, Holm over
    the two image sets."""
    out = replicates.dataset_contrast(acc, ["data"], "difference").drop(columns="pair_estimates")
    out["p_holm"] = stats.correct(out.p_models.fillna(1.0).to_numpy(), alpha).p_holm.to_numpy()
    return out.rename(columns={"data": "evaluated_on", "effect": "difference"})


def robustness_table(per: pd.DataFrame, pairs: list) -> pd.DataFrame:
    """Circuit robustness per dataset (mean over models, t-interval) and of both ("both": over pairs, each
    pair's value the mean of its two models)."""
    both = pd.DataFrame(dict(dataset="both", replicate=range(len(pairs)), robustness=[e.mean for e in pairs],
                             n=int(per.n.min())))
    out = model_stats.over_models(pd.concat([per, both], ignore_index=True), ["dataset"], "robustness")
    return out.rename(columns={"mean": "robustness"})[["dataset", "robustness", "ci_low", "ci_high", "per_model",
                                                       "n_models", "n_images"]]


@common.cached_chapter()
def run(cfg: Config) -> ChapterResult:
    """Chapter 9: the three §4.9 quantities on every replicate model, with the same-data null for CKA."""
    if (res := common.on_your_model(cfg, CHAPTER)) is not None:
        return res                                  # cannot run on a model of your own: its line says why
    models, sweeps = common.models_and_sweeps(cfg)
    acc = cross_accuracy(cfg, models)
    sim = block_similarity(cfg, models)
    cka = cka_table(sim)
    per_rob, rob_pairs = robustness(replicate_sweeps(cfg, models), cfg.analysis.n_bootstrap, cfg.run.seed)
    cka_all = cka.set_index("block").loc["all"]
    res = ChapterResult(CHAPTER)
    res.tables.update(accuracy=accuracy_table(acc), transfer_gap=transfer_gap(acc, cfg.analysis.alpha), cka=cka,
                      robustness=robustness_table(per_rob, rob_pairs),
                      claims=claim_sources.claims_table(cfg, "transfer", models, sweeps))
    other = sim[sim.source == "other data"]
    res.data.update(accuracy=res.tables["accuracy"].pivot(index="trained_on", columns="evaluated_on",
                                                          values="accuracy"),
                    cka=other.pivot_table(index="block", columns="t", values="cka", sort=False))
    r = res.tables["claims"].set_index("id").to_dict("index")
    rob = res.tables["robustness"].set_index("dataset").robustness
    res.values = dict(profile=cfg.profile, seed=cfg.run.seed, n=int(acc.groupby(["dataset", "replicate", "data"])
                      .image.nunique().min()), n_models=cfg.run.replicates,
                      timesteps=", ".join(map(str, cfg.analysis.timesteps)),
                      **{f"{k}{s}": r[f"xfer_{name}"][c] for k, name in (("xacc", "accuracy"), ("xfeat", "features"),
                                                                        ("xrob", "robustness"))
                         for s, c in (("", "ours"), ("_lo", "ci_low"), ("_hi", "ci_high"))},
                      feat_null_lo=cka_all.null_low,
                      feat_null_hi=cka_all.null_high, rob_syn=rob[A], rob_cel=rob[B],
                      n_cells=int(per_rob.cells.min()), threshold=quantities.ROBUSTNESS_THRESHOLD,
                      threshold_pct=100 * quantities.ROBUSTNESS_THRESHOLD)
    return res
