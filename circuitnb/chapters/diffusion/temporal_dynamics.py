"""Chapter 5 (§4.4-4.5, Figs. 5-6): information flow by depth, and denoising phases found from the data.

    res = circuitnb.chapters.diffusion.temporal_dynamics.run(cfg)
    res.show("ife_ranges")     # low and high end of IFE per depth group: mean over models, t-interval
    res.show("phases")         # each model's number of phases (BIC) and where they start

IFE per model and its claim rows are the library's (:mod:`circuitnb.analysis.information_flow`, which says
how the paper's ranges become per-model values), and so are the phases (:mod:`circuitnb.analysis.phases`:
a dense profile over ``cfg.analysis.n_phase_timesteps`` timesteps segmented per model, number of phases by
BIC; the paper's four phases are not assumed). This module gathers them over models and shows them.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from circuitnb import data
from circuitnb.analysis import claim_sources, replicates, yours
from circuitnb.analysis.information_flow import ENDS, ife_models
from circuitnb.analysis.phases import dense_timesteps, phase_test, phases, profile
from circuitnb.chapters import common
from circuitnb.chapters.report import ChapterResult
from circuitnb.core.config import Config
from circuitnb.measures.verdicts import replicate_ci

CHAPTER = "05_temporal_dynamics"


def ife_ranges(per_model: pd.DataFrame) -> pd.DataFrame:
    """Per depth group, over every model of both datasets ("both") and per dataset: the mean over models of
    each model's low and high end of IFE, with a 95% t-interval over models."""
    rows = []
    for ds, sub in [("both", per_model), *per_model.groupby("dataset", sort=False)]:
        for group, g in sub.groupby("group", sort=False):
            row = dict(dataset=ds, group=group)
            for name, _ in ENDS.values():
                est = replicate_ci(g[name])
                row.update({name: est.mean, f"{name}_ci_low": est.low, f"{name}_ci_high": est.high,
                            f"{name}_per_model": replicates.listed(g[name])})
            row.update(n_models=len(g), n_images=int(g.n_images.min()))
            rows.append(row)
    return pd.DataFrame(rows)


def phase_tables(dense: dict) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Per model: the BIC table of every k (``phase_bic``), the chosen k and boundaries (``phases``), and
    {(dataset, replicate): (profile, boundaries)} for the figure."""
    bic, chosen, found = [], [], {}
    for name, sws in dense.items():
        for r, sw in enumerate(sws):
            prof = profile(sw)
            table = phases(prof).assign(dataset=name, replicate=r)
            best = table[table.chosen].iloc[0]
            found[(name, r)] = (prof, list(best.boundaries))
            gap = float(np.sort(table.bic.to_numpy())[1] - best.bic) if len(table) > 1 else np.nan
            smooth = phase_test(prof)["verdict"]                      # segments vs a cubic fit (chapter 12)
            chosen.append(dict(dataset=name, replicate=r, k=int(best.k), boundaries=", ".join(map(str, best.boundaries))
                               or "none", bic_gap=gap, against_smooth=smooth, n_timesteps=len(prof)))
            bic.append(table.assign(boundaries=table.boundaries.map(lambda b: ", ".join(map(str, b)) or "none")))
    return pd.DataFrame(chosen), pd.concat(bic, ignore_index=True), found


@common.cached_chapter()
def run(cfg: Config) -> ChapterResult:
    """Chapter 5: IFE ranges per depth group over every replicate model, and each model's phases."""
    if (res := common.on_your_model(cfg, CHAPTER)) is not None:
        return _on_your_model(cfg, res)
    models, sweeps = common.models_and_sweeps(cfg)
    ife = ife_models(cfg, models, sweeps)
    ranges = ife_ranges(ife["ranges"])
    found, bic, by_model = phase_tables(replicates.load_sweeps(cfg, models, timesteps=dense_timesteps(cfg)))
    res = ChapterResult(CHAPTER)
    res.tables.update(ife_ranges=ranges, ife_per_model=ife["ranges"], phases=found, phase_bic=bic,
                      claims=claim_sources.claims_table(cfg, "temporal", models, sweeps))
    per_t = replicates.across_replicates(ife["values"].rename(columns={"ife": "value"}),
                                         ["dataset", "t", "pair", "depth"])
    fc = replicates.per_replicate(sweeps, lambda sw: sw.blocks.groupby(["block", "t"], sort=False, as_index=False)
                                  .complexity.mean())
    block_order = sweeps["synthetic"][0].block_names
    per_t = per_t.sort_values("dataset", key=lambda d: d.map(data.DATASETS.index), kind="stable")
    res.data.update(ife=per_t.rename(columns={"mean": "ife"}), phases=by_model,
                    complexity={name: g.pivot_table(index="block", columns="t", values="complexity").loc[block_order]
                                for name, g in fc.groupby("dataset", sort=False)})
    both = ranges[ranges.dataset == "both"].set_index("group")
    res.values = dict(profile=cfg.profile, seed=cfg.run.seed, n=int(ife["ranges"].n_images.min()),
                      n_models=cfg.run.replicates, n_all_models=int(both.n_models.max()), n_dense=len(
                          dense_timesteps(cfg)), n_bootstrap=cfg.analysis.n_bootstrap,
                      **{f"ife_{g}_{end}": both.loc[g, end] for g in both.index for end in ("low", "high")},
                      **{f"k_{name}": ", ".join(str(k) for k in g.k) for name, g in found.groupby("dataset")},
                      n_no_phases=int((found.against_smooth == "no phases").sum()), n_phase_models=len(found),
                      **{f"bounds_{name}": "; ".join(f"r{r.replicate}: {r.boundaries}" for r in g.itertuples())
                         for name, g in found.groupby("dataset")})
    return res


def _on_your_model(cfg: Config, res: ChapterResult) -> ChapterResult:
    """A model of your own: its IFE per block pair and t, the low and high end per depth group with
    image-bootstrap intervals, feature complexity per block and t, and its denoising phases."""
    models, sweeps = common.models_and_sweeps(cfg)
    ife = ife_models(cfg, models, sweeps)
    found, bic, _ = phase_tables(replicates.load_sweeps(cfg, models, timesteps=dense_timesteps(cfg)))
    blocks = pd.concat([sw.blocks for sws in sweeps.values() for sw in sws], ignore_index=True)
    res.tables.update(ife_ranges=ife["ranges"], ife=ife["values"], phases=found, phase_bic=bic,
                      block_complexity=yours.over_images(blocks, ["dataset", "block", "t"], "complexity"))
    res.notes.update(ife_ranges="IFE (Eq. 4) per depth group: the low and high end over its block pairs and "
                                "timesteps, with percentile-bootstrap 95% intervals over images",
                     ife="IFE of every adjacent block pair at every analysed timestep",
                     phases="denoising phases: segments of the dense profile chosen by BIC, and against a cubic fit",
                     phase_bic="BIC of every number of segments",
                     block_complexity="feature complexity (Eq. 3) per block and t, mean over images, 95% t-interval",
                     ife_contrast=yours.LEFT_OUT["dataset contrasts"])
    res.values.update(n_dense=len(dense_timesteps(cfg)), n_phases=int(found.k.iloc[0]))
    return res
