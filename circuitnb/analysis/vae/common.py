"""What Part II's chapters share: the replicate VAEs, and each model's analysis, computed once and cached.

    models = vae_common.models(cfg)                  # {(kind, dataset): [TrainedVAE per replicate]}
    a = vae_common.analysis(cfg, models[("vae", "shapes")][0], "shapes")
    a["effects"]["encoder.fc_mu"]                    # [factors, latents]: level 1 effect matrix
    vae_common.measures_frame(cfg, models)           # one row per model and measure (CES, MIG, ...)

Everything is measured on held-out images (:func:`circuitnb.data.vae.datasets.vae_data` with ``split="analysis"``):
``vae.n_samples`` of them for the interventions, all ``vae.n_analysis`` for the disentanglement scores
(DCI: the first half trains its trees, the second half tests them). The model is the unit: each
replicate gives one value per measure, and the chapters' intervals are over replicates.
"""
from __future__ import annotations

import functools
import hashlib
import warnings

import numpy as np
import pandas as pd

from circuitnb.analysis.replicates import each_of
from circuitnb.core import results
from circuitnb.core.config import Config
from circuitnb.data.shapes import CAUSAL_GRAPH
from circuitnb.data.vae.datasets import codes, counterfactual, factor_names, subset, vae_data
from circuitnb.interventions.vae.levels import (
    activations,
    latent_traversal,
    mediation,
    output,
    patched_outputs,
    patching_effects,
)
from circuitnb.measures import causal_effects as ce
from circuitnb.measures.disentanglement import dci, factor_vae_score, mig
from circuitnb.modeling.vae.cache import TrainedVAE, load_all
from circuitnb.modeling.vae.model import encode_mean

LATENT = "encoder.fc_mu"                     # the latent layer (posterior means; z = mu in eval)
HIDDEN = ("encoder.fc",)                     # the hidden layer whose units are patched one by one
# The config fields an analysis reads (its cache key; the model keys carry the training fields).
READS = ("seed", "vae.n_samples", "vae.n_analysis", "vae.traversal_steps", "vae.traversal_range",
         "vae.patch_units", "vae.fvae_votes", "vae.dci_trees")
MEASURES = ("ces", "specificity", "modularity", "modularity_latent", "mig", "factor_vae_score", "dci_d")


@functools.lru_cache(maxsize=2)
def models(cfg: Config) -> dict[tuple[str, str], list[TrainedVAE]]:
    """Every (kind, dataset) with its replicate models, trained once (cache) and loaded once per process."""
    return load_all(cfg, progress=True)


# FactorVAE-score renders: the score draws the same codes for every model of a config (its own seeded
# generator), so images are rendered once and kept as exact uint8 coverage levels.
_RENDERS: dict[str, np.ndarray] = {}


def _render_memo(held, codes_: np.ndarray) -> np.ndarray:
    """``held.render(codes)`` [n, 1, H, W], each image kept once as its sub-pixel counts (exact)."""
    key = hashlib.sha256(codes_.tobytes() + str(held.images.shape).encode()).hexdigest()
    per_pixel = held.antialias ** 2                     # render: 2 * count / per_pixel - 1
    if key not in _RENDERS:
        img = held.render(pd.DataFrame(codes_, columns=list(held.factor_names)))
        _RENDERS[key] = np.round((img + 1) / 2 * per_pixel).astype(np.uint8)
    return _RENDERS[key].astype(np.float32) * np.float32(2 / per_pixel) - 1


def _compute(cfg: Config, m: TrainedVAE, dataset: str) -> dict:
    v, model = cfg.vae, m.model
    held = vae_data(cfg, dataset, "analysis")
    sub = subset(held, slice(0, v.n_samples))
    x, names = sub.images, factor_names(held)
    sites = [LATENT, *HIDDEN]
    base = activations(model, x, sites)
    sd = {s: base[s].std(0, ddof=1) for s in sites}
    top = {s: np.argsort(-sd[s])[: v.patch_units].tolist() for s in HIDDEN}        # most variable units
    d = base[LATENT].shape[1]
    deltas: dict[str, list] = {s: [] for s in sites}
    patch: dict[str, list] = {s: [] for s in sites}
    layer, ind, dirs, out_change = [], [], [], []
    for f in names:
        x_f = counterfactual(sub, f, cfg.run.seed)
        acts, layer_row = activations(model, x_f, sites), []
        for s in sites:
            deltas[s].append(acts[s] - base[s])
        for s in sites:
            units = [None, *(range(d) if s == LATENT else top[s])]
            fwd = patched_outputs(model, x, x_f, s, units)
            eff = patching_effects(fwd)
            layer_row.append(float(eff[0]))
            patch[s].append(eff[1:])
            if s == LATENT:               # mediation through each latent (and all of them: entry 0)
                med = mediation(fwd, patched_outputs(model, x_f, x, s, units))
                ind.append(med["indirect"])
                dirs.append(med["direct"])
        layer.append(layer_row)
        out_change.append(float(np.abs(output(model, x_f) - output(model, x)).mean()))
    effects = {s: ce.effect_matrix(np.stack(deltas[s]), sd[s]) for s in sites}
    graph = _graph_mediation(cfg, model, sub) if dataset == "causal" else []
    trav = latent_traversal(model, base[LATENT][:8], v.traversal_steps, v.traversal_range)
    z_all, c_all = encode_mean(model, held.images), codes(held)
    half = len(z_all) // 2
    fvae = np.nan
    if dataset == "shapes":               # needs factors drawn independently: not the causal world's
        to_lat = lambda c: encode_mean(model, _render_memo(held, np.asarray(c)))     # noqa: E731
        fvae = factor_vae_score(to_lat, held.n_values, n_train=v.fvae_votes, n_eval=v.fvae_votes // 2,
                                n_variance=max(1000, 4 * v.fvae_votes), seed=cfg.run.seed)
    with warnings.catch_warnings():       # sklearn: "more classes than half the samples" at small n (40 angles)
        warnings.simplefilter("ignore", UserWarning)
        dci_d = dci(z_all[:half], c_all[:half], z_all[half:], c_all[half:], n_estimators=v.dci_trees,
                    seed=cfg.run.seed)["disentanglement"]
    scores = dict(ces=ce.causal_effect_strength(effects[LATENT]),
                  specificity=ce.intervention_specificity(effects[LATENT]),
                  modularity=ce.circuit_modularity(np.stack(patch["encoder.fc"])),
                  modularity_latent=ce.circuit_modularity(effects[LATENT]),
                  mig=mig(z_all, c_all), factor_vae_score=fvae,
                  dci_d=dci_d)
    return dict(factors=list(names), effects=effects, patch={s: np.stack(p) for s, p in patch.items()},
                top_units=top, layer=np.array(layer), layer_sites=sites,
                indirect=np.stack(ind), direct=np.stack(dirs), out_change=np.array(out_change),
                traversal=trav, scores=scores, graph=graph, kl_active=int((sd[LATENT] > 0.1).sum()),
                recon=_recon(model, x))


def _graph_mediation(cfg: Config, model, sub) -> list[dict]:
    """Level 4 on the causal graph itself: for each edge parent -> child, the share of do(parent)'s total
    effect that goes through the child, <TE - CDE, TE> / ||TE||^2, where the controlled direct effect CDE
    holds the child at its own value (:func:`~circuitnb.data.vae.datasets.counterfactual` with ``hold``); on the
    model's output and, as the answer the model should match, on the images themselves."""
    x, out, rows = sub.images.reshape(len(sub), -1), output(model, sub.images), []
    for child, parents in CAUSAL_GRAPH.items():
        for parent in parents:
            x_te, x_de = (counterfactual(sub, parent, cfg.run.seed, hold=h) for h in ("", child))
            shares = {}
            for name, base, te, de in (("data", x, x_te.reshape(len(x), -1), x_de.reshape(len(x), -1)),
                                       ("model", out, output(model, x_te), output(model, x_de))):
                total = te - base
                norm = float((total * total).sum())
                shares[name] = float(((te - de) * total).sum() / norm) if norm > 0 else np.nan
            rows.append(dict(edge=f"{parent} -> {child}", model_share=shares["model"], data_share=shares["data"]))
    return rows


def _recon(model, x) -> float:
    """Mean per-image Bernoulli cross-entropy (nats, summed over pixels) on held-out images."""
    p = np.clip(output(model, x), 1e-6, 1 - 1e-6)
    t = ((np.asarray(x) + 1) / 2).reshape(len(x), -1)
    return float(-(t * np.log(p) + (1 - t) * np.log(1 - p)).sum(1).mean())


def analysis(cfg: Config, m: TrainedVAE, dataset: str, wait: bool = True) -> dict:
    """One model's four-level analysis and scores (see :func:`_compute`), from the results cache."""
    return results.cached(cfg, "vae_analysis", m, lambda: _compute(cfg, m, dataset), reads=READS, dataset=dataset,
                          data=vae_data(cfg, dataset, "analysis").images, wait=wait)


def all_analyses(cfg: Config) -> dict[tuple[str, str], list[dict]]:
    return each_of(models(cfg), lambda key, m, wait=True: analysis(cfg, m, key[1], wait))


def measures_frame(cfg: Config) -> pd.DataFrame:
    """One row per model and measure: kind, dataset, replicate, measure, value (the replicate frame of
    :mod:`circuitnb.analysis.replicates`)."""
    rows = [dict(kind=k, dataset=ds, replicate=r, measure=name, value=float(a["scores"][name]))
            for (k, ds), items in all_analyses(cfg).items() for r, a in enumerate(items) for name in MEASURES]
    return pd.DataFrame(rows)
