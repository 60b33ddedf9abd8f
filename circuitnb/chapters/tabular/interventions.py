"""Chapter 31 (Part III): the framework's interventions on tabular VAEs and the abstract's three new techniques,
each first on the synthetic world, whose answers are known; and an explorer of the latents.

    res = interventions.run(cfg)
    res.tables["calibration_wide"]   # raw vs posterior-calibrated CES (two readings) and active latents
    res.tables["paths"]              # world: do(factor) through single-latent paths, leakage to other columns
    res.tables["fgd_wide"]           # FGD with MIG and DCI over column groups
    res.tables["world_latents"]      # world: which latent each factor moves most, per model
    display(res.data["explorer"])    # latent traversals of every model's first held-out row, offline

Every model's matrices and scores come from :func:`circuitnb.analysis.tabular.common.analysis` (cached, shared
with chapter 32); every summary is a mean over the ``tabular.replicates`` models with a t-interval over them.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from circuitnb.analysis.replicates import across_replicates
from circuitnb.analysis.tabular import common as tab_common
from circuitnb.chapters.report import ChapterResult
from circuitnb.core.config import Config
from circuitnb.data.tabular import tabular_data
from circuitnb.viz.tabular.explorer import TabularExplorer
from circuitnb.viz.vae.figures import wide_table

CHAPTER = "31_tabular_interventions"
COLLAPSED = 0.1            # posterior weight below which a latent counts as collapsed (reported, not used in a measure)


def _summary(rows: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    return across_replicates(rows, by=by).drop(columns=["n_images", "eq_low", "eq_high"])


def _scores(analyses: dict, names: tuple[str, ...]) -> pd.DataFrame:
    return pd.DataFrame([dict(kind=k, dataset=ds, replicate=r, measure=n, value=float(a["scores"][n]))
                         for (k, ds), items in analyses.items() for r, a in enumerate(items) for n in names])


def _collapsed_top(a: dict) -> float:
    """Share of sources whose raw top latent is collapsed (posterior weight < COLLAPSED): raw CES read off noise."""
    top = a["effects_raw"].argmax(1)
    return float(np.mean(a["weights"][top] < COLLAPSED)) if a["effects_raw"].sum() > 0 else np.nan


def _paths(analyses: dict) -> pd.DataFrame:
    return pd.DataFrame([dict(kind=k, dataset=ds, replicate=r, factor=p["factor"], measure=name, value=float(p[name]))
                         for (k, ds), items in analyses.items() if ds == "world" for r, a in enumerate(items)
                         for p in a["paths"] for name in ("own_total", "leak_share", "top_share", "latent_share_sum")])


def _world_latents(analyses: dict) -> pd.DataFrame:
    rows = []
    for (k, ds), items in analyses.items():
        if ds != "world":
            continue
        for r, a in enumerate(items):
            e = a["effects"]
            top = e.argmax(1)
            rows.append(dict(kind=k, replicate=r, **{f"{f}_top_latent": f"z{t}" for f, t in zip(a["sources"], top)},
                             distinct_top_latents=len(set(top.tolist())) if e.sum() > 0 else 0,
                             active_latents=int((a["weights"] >= COLLAPSED).sum())))
    return pd.DataFrame(rows)


def explorer(cfg: Config, models: dict, analyses: dict) -> TabularExplorer:
    """Replicate 0 of every (kind, table): traversals of the first held-out row, with each latent's effects."""
    v = cfg.vae
    data = dict(kind="tabular", models=[], columns={}, decoded={}, clean={}, scale={}, effects={}, sources={},
                weights={}, latents=cfg.tabular.latent_dim)
    for (k, ds), ms in models.items():
        m, a, key = ms[0], analyses[(k, ds)][0], f"{k}|{ds}"
        held = tabular_data(cfg, ds, "heldout")
        tr = tab_common.traversal(m.model, held.x[:1], v.traversal_steps, v.traversal_range)
        dec, clean = tr["decoded"], tr["clean"]
        cols = {c.name: c for c in held.schema.columns}
        labels = [lab for b in held.blocks for lab in
                  ([f"{b.name}={lvl}" for lvl in cols[b.name].levels] if b.kind == "categorical" else [b.name])]
        data["models"].append(key)
        data["grid"] = [round(float(g), 3) for g in tr["grid"]]
        data["columns"][key] = labels
        data["decoded"][key] = np.round(dec, 3).tolist()
        data["clean"][key] = np.round(clean, 3).tolist()
        data["scale"][key] = np.round(np.abs(dec - clean).max((0, 1)), 4).tolist()
        data["effects"][key] = np.round(a["effects"].T, 3).tolist()          # [latent, source]
        data["sources"][key] = a["sources"]
        data["weights"][key] = np.round(a["weights"], 3).tolist()
    return TabularExplorer(data)


def run(cfg: Config) -> ChapterResult:
    """Chapter 31: the three techniques on every model, the world's known answers, the explorer."""
    t = cfg.tabular
    models = tab_common.models(cfg)
    analyses = tab_common.all_analyses(cfg)
    order = dict(dataset=t.datasets, kind=t.kinds)
    res = ChapterResult(CHAPTER)
    cal = _scores(analyses, ("ces_raw", "ces", "ces_normalised", "active_latents"))
    cal = pd.concat([cal, pd.DataFrame([dict(kind=k, dataset=ds, replicate=r, measure="raw_top_collapsed",
                                             value=_collapsed_top(a))
                                        for (k, ds), items in analyses.items() for r, a in enumerate(items)])])
    res.tables["calibration"] = _summary(cal, ["kind", "dataset", "measure"])
    res.tables["calibration_wide"] = wide_table(res.tables["calibration"], ["dataset", "kind"], order=order)
    fgd = _scores(analyses, ("fgd", "mig_groups", "dci_groups", "modularity", "specificity"))
    res.tables["fgd"] = _summary(fgd, ["kind", "dataset", "measure"])
    res.tables["fgd_wide"] = wide_table(res.tables["fgd"], ["dataset", "kind"], order=order)
    if "world" in t.datasets:
        res.tables["paths"] = _summary(_paths(analyses), ["kind", "factor", "measure"])
        res.tables["paths_wide"] = wide_table(res.tables["paths"], ["kind", "factor"], order=dict(kind=t.kinds))
        res.tables["world_latents"] = _world_latents(analyses)
        res.data["world_effects"] = {k: (analyses[(k, "world")][0]["effects"], analyses[(k, "world")][0]["sources"])
                                     for k in t.kinds}
        res.data["world_groups"] = {k: (analyses[(k, "world")][0]["group_effects"].T,
                                        analyses[(k, "world")][0]["groups"]) for k in t.kinds}
    res.data["explorer"] = explorer(cfg, models, analyses)
    paths = res.tables.get("paths", pd.DataFrame(columns=["measure", "mean"]))
    leak = paths[paths.measure == "leak_share"]["mean"]
    calt = res.tables["calibration"]
    res.values = dict(profile=cfg.profile, seed=cfg.run.seed, n_models=t.replicates,
                      n=cfg.analysis.n_samples, patch_units=cfg.vae.patch_units, steps=cfg.vae.traversal_steps,
                      half_width=cfg.vae.traversal_range, collapsed=COLLAPSED,
                      leak_max=float(leak.max()) if len(leak) else np.nan,
                      leak_min=float(leak.min()) if len(leak) else np.nan,
                      collapsed_top_max=float(calt[calt.measure == "raw_top_collapsed"]["mean"].max()),
                      kb_explorer=res.data["explorer"].nbytes / 1024)
    return res
