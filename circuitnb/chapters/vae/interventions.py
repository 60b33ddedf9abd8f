"""Chapter 21 (Part II): the four intervention levels on every replicate VAE, and a traversal explorer.

    res = vae_interventions.run(cfg)
    res.tables["input"], res.tables["traversal"], res.tables["patching"], res.tables["mediation"]
    res.tables["input_wide"]               # each table's wide form: measures as columns, "mean [ci_low, ci_high]"
    display(res.data["explorer"])          # latent traversals, offline

The VAE paper's framework (arXiv:2505.03530, abstract) intervenes at four levels: input manipulation,
latent-space perturbation, activation patching and causal mediation analysis. Each is one function of
:mod:`circuitnb.interventions.vae.levels` on the package's hooks; each model's results come from
:func:`circuitnb.analysis.vae.common.analysis` (cached, shared with chapter 22). Every row is a mean over
the replicate models with a t-interval over them (:func:`circuitnb.analysis.replicates.across_replicates`).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from circuitnb.analysis.replicates import across_replicates
from circuitnb.analysis.vae import common as vae_common
from circuitnb.chapters.report import ChapterResult
from circuitnb.core.config import Config
from circuitnb.measures import causal_effects as ce
from circuitnb.viz.explorer import Explorer, b64_uint8
from circuitnb.viz.vae.figures import wide_table

CHAPTER = "21_vae_interventions"
LAT = vae_common.LATENT


def _rows(analyses: dict, per_factor) -> pd.DataFrame:
    """``per_factor(a) -> {factor: {measure: value}}`` for every model, in the replicate frame's long form."""
    return pd.DataFrame([dict(kind=k, dataset=ds, replicate=r, factor=f, measure=name, value=float(val))
                         for (k, ds), items in analyses.items() for r, a in enumerate(items)
                         for f, vals in per_factor(a).items() for name, val in vals.items()])


def _input(a: dict) -> dict:
    e, out = a["effects"][LAT], a["out_change"]
    return {f: dict(top_latent_effect=e[i].max(), second_latent_effect=np.sort(e[i])[-2], output_change=out[i])
            for i, f in enumerate(a["factors"])}


def _patching(a: dict) -> dict:
    lay, p = a["layer"], a["patch"]
    return {f: dict(whole_latent_layer=lay[i, 0], whole_encoder_fc=lay[i, 1], top_latent=p[LAT][i].max(),
                    top_encoder_unit=p["encoder.fc"][i].max()) for i, f in enumerate(a["factors"])}


def _mediation(a: dict) -> dict:
    ind, dirs = a["indirect"], a["direct"]
    return {f: dict(indirect_all=ind[i, 0], direct_all=dirs[i, 0], indirect_top=ind[i, 1:].max(),
                    indirect_sum=ind[i, 1:].sum()) for i, f in enumerate(a["factors"])}


def _graph(a: dict) -> dict:
    return {r["edge"]: dict(model_share=r["model_share"], data_share=r["data_share"]) for r in a["graph"]}


def _traversal(a: dict) -> dict:
    t = a["traversal"]
    active = t["pixel"] > 0.01 * t["pixel"].max() if t["pixel"].max() > 0 else np.zeros(len(t["pixel"]), bool)
    spec = ce.intervention_specificity(t["recoded"][active]) if active.any() else np.nan
    return {"all": dict(moving_latents=int((t["pixel"] > 0.005).sum()), recoded_specificity=spec,
                        max_pixel_change=t["pixel"].max())}


def _summary(rows: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    s = across_replicates(rows, by=by)
    return s.drop(columns=["n_images", "eq_low", "eq_high"])


def traversal_explorer(cfg: Config, analyses: dict) -> Explorer:
    """Architecture x dataset x latent x traversal step -> the decoded image (replicate 0, first held-out
    image), with the latent's effect on each factor (level 1) beside it."""
    data = dict(kind="traversal", models=[], size=cfg.vae.image_size, grid=[], images={}, effects={},
                pixel={}, factors={})
    for (k, ds), items in analyses.items():
        a, key = items[0], f"{k}|{ds}"
        t = a["traversal"]
        data["models"].append(key)
        data["grid"] = [round(float(g), 3) for g in t["grid"]]
        data["images"][key] = b64_uint8(np.round(255 * t["images"][:, :, 0]))     # [d, steps, H, W]
        data["effects"][key] = np.round(a["effects"][LAT].T, 3).tolist()            # [latent, factor]
        data["pixel"][key] = np.round(t["pixel"], 4).tolist()
        data["factors"][key] = a["factors"]
    data["latents"] = cfg.vae.latent_dim
    return Explorer(data)


def run(cfg: Config) -> ChapterResult:
    """Chapter 21: levels 1-4 summarised over replicates, effect matrices and traversals of replicate 0."""
    analyses = vae_common.all_analyses(cfg)
    res = ChapterResult(CHAPTER)
    for name, fn in (("input", _input), ("patching", _patching), ("mediation", _mediation)):
        res.tables[name] = _summary(_rows(analyses, fn), ["kind", "dataset", "factor", "measure"])
    res.tables["traversal"] = _summary(_rows(analyses, _traversal), ["kind", "dataset", "measure"])
    causal = {key: items for key, items in analyses.items() if key[1] == "causal"}
    if causal:
        res.tables["graph"] = _summary(_rows(causal, _graph).rename(columns={"factor": "edge"}),
                                       ["kind", "dataset", "edge", "measure"])
    for name in [n for n in ("input", "traversal", "patching", "mediation", "graph") if n in res.tables]:
        # What the page shows: one row per architecture, dataset (and factor or edge), one column per measure.
        long = res.tables[name]
        res.tables[f"{name}_wide"] = wide_table(long, [c for c in ("dataset", "kind", "factor", "edge") if c in long],
                                                order=dict(dataset=cfg.vae.datasets, kind=cfg.vae.kinds))
    res.data["effects"] = {f"{k} ({ds})": (items[0]["effects"][LAT], items[0]["factors"])
                           for (k, ds), items in analyses.items()}
    res.data["traversal"] = {f"{k} ({ds})": items[0]["traversal"] for (k, ds), items in analyses.items()}
    res.data["explorer"] = traversal_explorer(cfg, analyses)
    med, pat = res.tables["mediation"], res.tables["patching"]
    all_ind = med[med.measure == "indirect_all"]["mean"]
    res.values = dict(profile=cfg.profile, seed=cfg.run.seed, n_models=cfg.run.replicates, n=cfg.vae.n_samples,
                      steps=cfg.vae.traversal_steps, half_width=cfg.vae.traversal_range,
                      patch_units=cfg.vae.patch_units,
                      indirect_all_min=float(all_ind.min()), indirect_all_max=float(all_ind.max()),
                      layer_min=float(pat[pat.measure.str.startswith("whole_")]["mean"].min()),
                      kb_explorer=res.data["explorer"].nbytes / 1024)
    return res
