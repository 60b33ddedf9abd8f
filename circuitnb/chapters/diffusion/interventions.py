"""Chapter 6 (§4.6, Table 3, Fig. 7): every intervention family on every replicate model, patching, circuit size.

    res = causal.run(cfg)       # tables: table3, families, patching, circuit_size, claims; figure data in res.data

The intervention sweep, its per-model summary, Table 3 and its claim rows are the library's
(:mod:`circuitnb.analysis.interventions`; the claims through :mod:`circuitnb.analysis.claim_sources`, as the
scorecard reads them); patching and circuit size are this chapter's own. The model is the unit: a table shows
the mean over models with a t-interval over models (:func:`circuitnb.analysis.replicates.across_replicates`).
"""
from __future__ import annotations

import functools

import numpy as np
import pandas as pd
import torch

from circuitnb.analysis import claim_sources, yours
from circuitnb.analysis.interventions import (
    ABLATION,
    MODEL,
    TABLE3,
    intervention_images,
    replicate_sweeps,
    summary,
    table3,
    table_t,
)
from circuitnb.analysis.model_stats import beside_null, over_models, sources
from circuitnb.chapters import common
from circuitnb.chapters.report import ChapterResult
from circuitnb.core import results
from circuitnb.core.config import Config
from circuitnb.core.readings import options
from circuitnb.hooking.sites import groups, site_names
from circuitnb.interventions.circuits import RETAIN, effective_circuit_size, head_sites
from circuitnb.interventions.impact import impacts, paired_inputs, patch_from
from circuitnb.interventions.registry import Intervention
from circuitnb.measures import claims

CHAPTER = "06_interventions"


def families(summ: pd.DataFrame) -> pd.DataFrame:
    """Each family's median impact over its interventions, per model, dataset and t; mean over models."""
    med = summ.groupby([*MODEL, "family", "t"], as_index=False, sort=False).agg(impact=("impact", "median"),
                                                                                n=("n", "min"))
    return over_models(med, ["dataset", "family", "t"], "impact").rename(columns={"mean": "impact"})


@torch.no_grad()
def _patch(cfg: Config, target, source, x0, t: int, blocks) -> dict:
    x0, _, tt, x_t, _ = paired_inputs(target.unet, target.scheduler, x0, t, cfg.run.seed)   # impacts' own draw
    acts = patch_from(source.unet, blocks, x_t, tt)
    specs = {b: [Intervention("patch", b, source={b: acts[b]})] for b in blocks}
    return impacts(target.unet, target.scheduler, x0, t, specs, cfg.run.seed)


def _patch_rows(cfg: Config, target, source, x0, t: int) -> list[dict]:
    blocks = site_names(target.unet, "block")
    return [dict(t=int(t), block=b, mse_base=r.mse_base, mse_patched=r.mse_int, impact=r.impact)
            for b, r in _patch(cfg, target, source, x0, t, blocks).items()]


def patching(cfg: Config, models: dict[str, list], t: int) -> pd.DataFrame:
    """Activation patching at t (cached): each block of a target model gets a source model's (:func:`sources`)
    output at that block on the same noisy input (the target's held-out images). One timestep: with every
    replicate and its same-data null, all t would cost as much as chapter 6's whole sweep.

    Columns: dataset, replicate, source, source_dataset, source_replicate, t, block, mse_base, mse_patched,
    impact, n (images).
    """
    x0 = {name: intervention_images(cfg, name) for name in models}
    pairs = [(name, r, kind, sd, sr) for name, ms in models.items() for r in range(len(ms))
             for kind, sd, sr in sources(models, name, r)]

    def one(name, r, sd, sr, wait=True):
        tgt, src = models[name][r], models[sd][sr]
        return results.cached(cfg, "patching_at", [tgt, src], lambda: _patch_rows(cfg, tgt, src, x0[name], t),
                              t=t, data=x0[name], wait=wait)
    rows = results.each([functools.partial(one, name, r, sd, sr) for name, r, _, sd, sr in pairs])
    return pd.concat([pd.DataFrame(rw).assign(dataset=name, replicate=r, source=kind, source_dataset=sd,
                                              source_replicate=sr, n=len(x0[name]))
                      for (name, r, kind, sd, sr), rw in zip(pairs, rows)], ignore_index=True)


def patch_table(patch: pd.DataFrame) -> pd.DataFrame:
    """Per target dataset and block: the patching impact from the other dataset's model, over models, beside
    the same-data null (each same-data source its own value)."""
    return beside_null(patch, ["dataset", "block"], "impact")


def circuit_sizes(cfg: Config, models: dict[str, list], t: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Effective circuit size (:func:`circuitnb.interventions.circuits.effective_circuit_size`) of every
    replicate model at t, over its attention heads and over its Table 3 groups (cached).

    Returns (one row per model and component kind, the curves: performance retained by share kept).
    """
    x0 = {name: intervention_images(cfg, name) for name in models}
    jobs = [(name, r, kind) for name, ms in models.items() for r in range(len(ms)) for kind in ("heads", "groups")]

    def one(name, r, kind, wait=True):
        m = models[name][r]
        comps = head_sites(m.unet) if kind == "heads" else list(groups(m.unet))
        return results.cached(cfg, "circuit_size", m, lambda: effective_circuit_size(
            m.unet, m.scheduler, x0[name], t, comps, seed=cfg.run.seed), t=t, kind=kind, data=x0[name], wait=wait)
    sizes = results.each([functools.partial(one, *job) for job in jobs])
    rows = [dict(dataset=name, replicate=r, components=kind, n_components=size.n_components,
                 share=100 * size.fraction, most_important=size.order[0], n=len(x0[name]))
            for (name, r, kind), size in zip(jobs, sizes)]
    curves = [size.curve.assign(dataset=name, replicate=r, components=kind)
              for (name, r, kind), size in zip(jobs, sizes)]
    return pd.DataFrame(rows), pd.concat(curves, ignore_index=True)


def size_table(sizes: pd.DataFrame) -> pd.DataFrame:
    """Effective circuit size (% of components kept) per dataset and component kind, mean over models."""
    out = over_models(sizes, ["dataset", "components"], "share").rename(columns={"mean": "share"})
    extra = sizes.groupby(["dataset", "components"], sort=False).agg(
        n_components=("n_components", "first"), most_important=("most_important", ", ".join))
    return out.merge(extra.reset_index(), on=["dataset", "components"])[
        ["dataset", "components", "n_components", "share", "ci_low", "ci_high", "per_model", "most_important",
         "n_models", "n_images"]]


def _impact_matrices(summ: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """log10(1 + impact) per intervention (rows, family order) and t, mean over models (Fig. 7a-d);
    negative impacts (the intervention helps) drawn as 0."""
    mean = summ.groupby(["dataset", "name", "t"], sort=False).impact.mean().reset_index()
    return {d: np.log10(1 + g.pivot_table(index="name", columns="t", values="impact", sort=False).clip(lower=0))
            for d, g in mean.groupby("dataset", sort=False)}


def _patch_matrix(raw: pd.DataFrame) -> pd.DataFrame:
    """log10(1 + impact) of patching per target block (rows) and source kind (columns), mean over models;
    negative impacts drawn as 0."""
    rows = raw.assign(row=raw.dataset + ": " + raw.block)
    return np.log10(1 + rows.pivot_table(index="row", columns="source", values="impact", sort=False).clip(lower=0))


def with_readings(t3: pd.DataFrame, summ: pd.DataFrame, t: int, alpha: float = 0.05) -> pd.DataFrame:
    """Table 3 with the other ablation readings' impacts beside the default's: ``impact_<kind>`` and its
    ``ci_low_<kind>`` / ``ci_high_<kind>`` (t-interval over models) for each kind in READINGS["ablation"]."""
    out = t3
    for kind in options("ablation")[1:]:
        other = table3(summ, t, alpha, kind)[["dataset", "group", "impact", "ci_low", "ci_high"]]
        out = out.merge(other.rename(columns={c: f"{c}_{kind}" for c in ("impact", "ci_low", "ci_high")}),
                        on=["dataset", "group"], how="left")
    return out


def _with_paper(t3: pd.DataFrame, t: int) -> pd.DataFrame:
    """Table 3 with the paper's impact beside ours (synthetic rows, at the paper's timestep; from claims.csv)."""
    paper = claims.load().set_index("id")
    ids = [TABLE3.get(g) if d == "synthetic" else None for d, g in zip(t3.dataset, t3.group)]
    value = [paper.paper_value[i] if i and paper.timestep[i] == t else np.nan for i in ids]
    return t3.assign(paper=value)


@common.cached_chapter()
def run(cfg: Config) -> ChapterResult:
    """Chapter 6: Table 3, every family by t, patching and circuit size, on every replicate model."""
    if (res := common.on_your_model(cfg, CHAPTER)) is not None:
        return _on_your_model(cfg, res)
    models, sweeps = common.models_and_sweeps(cfg)
    ivs = replicate_sweeps(cfg, models)
    summ = summary(ivs, cfg.analysis.n_bootstrap, cfg.run.seed)
    t = table_t(cfg)
    t3 = with_readings(_with_paper(table3(summ, t, cfg.analysis.alpha), t), summ, t, cfg.analysis.alpha)
    raw = patching(cfg, models, t)
    patch = patch_table(raw)
    sizes, curves = circuit_sizes(cfg, models, t)
    res = ChapterResult(CHAPTER)
    res.tables.update(table3=t3, families=families(summ), patching=patch, circuit_size=size_table(sizes),
                      claims=claim_sources.claims_table(cfg, "causal", models, sweeps))
    res.data.update(impact=_impact_matrices(summ), size_curves=curves, patching=_patch_matrix(raw),
                    table3={d: g for d, g in t3.groupby("dataset", sort=False)})
    top = t3.sort_values("rank").groupby("dataset").first()
    size = res.tables["circuit_size"].set_index(["dataset", "components"]).share
    res.values = dict(profile=cfg.profile, seed=cfg.run.seed, n=int(t3.n_images.min()),
                      n_models=int(t3.n_models.min()), timesteps=", ".join(map(str, cfg.analysis.timesteps)),
                      t3=t, n_interventions=int(summ.name.nunique()), n_families=int(summ.family.nunique()),
                      base_mse=float(t3[t3.dataset == "synthetic"].mse_base.iloc[0]),
                      top_syn=top.loc["synthetic", "group"],
                      top_syn_impact=top.loc["synthetic", "impact"], top_syn_lo=top.loc["synthetic", "ci_low"],
                      top_syn_hi=top.loc["synthetic", "ci_high"], top_syn_ranks=top.loc["synthetic", "model_ranks"],
                      top_cel=top.loc["celeba", "group"], top_cel_impact=top.loc["celeba", "impact"],
                      n_patch_beyond=int(patch.beyond_null.sum()), n_patch=len(patch),
                      n_heads=int(sizes[sizes.components == "heads"].n_components.iloc[0]),
                      retain=100 * RETAIN, n_groups=int(sizes[sizes.components == "groups"].n_components.iloc[0]),
                      **{f"size_{k}_{d[:3]}": size[(d, k)] for d, k in size.index})
    return res


def _on_your_model(cfg: Config, res: ChapterResult) -> ChapterResult:
    """A model of your own: every intervention at every t (Eq. 5 with image-bootstrap intervals), the ablation
    of each Table 3 group at Table 3's t with its rank, each family's median, and the effective circuit size."""
    models, _ = common.models_and_sweeps(cfg)
    summ = summary(replicate_sweeps(cfg, models), cfg.analysis.n_bootstrap, cfg.run.seed).drop(columns="est")
    t = table_t(cfg)
    groups_t = summ[(summ.t == t) & (summ.kind == ABLATION)].rename(columns={"target": "group",
                                                                            "mse_int": "mse_ablated"})
    groups_t = groups_t.assign(rank=groups_t.impact.rank(ascending=False, method="min").astype(int))
    fam = summ.groupby(["dataset", "family", "t"], as_index=False, sort=False).agg(
        impact=("impact", "median"), n_interventions=("name", "size"), n_images=("n", "min"))
    sizes, _ = circuit_sizes(cfg, models, t)
    res.tables.update(table3=groups_t[["dataset", "group", "t", "mse_base", "mse_ablated", "impact", "ci_low",
                                       "ci_high", "rank", "n"]].rename(columns={"n": "n_images"}),
                      families=fam, interventions=summ, circuit_size=sizes)
    res.notes.update(table3=f"{ABLATION} ablation of each Table 3 group at t = {t}: Eq. 5 impact (ablated / "
                            "baseline MSE - 1) with a 95% image-bootstrap interval, rank 1 = most harmful",
                     families="each intervention family's median impact per t",
                     interventions="every intervention at every analysed t (Eq. 5, image-bootstrap intervals)",
                     circuit_size="effective circuit size at t: the share of heads or groups kept to retain "
                                  f"{100 * RETAIN:.0f}% of performance",
                     patching=yours.LEFT_OUT["patching"])
    res.values.update(t3=t, n_interventions=int(summ.name.nunique()), n_families=int(summ.family.nunique()))
    return res
