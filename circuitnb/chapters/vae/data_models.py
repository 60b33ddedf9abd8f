"""Chapter 20 (Part II): the data with known factors and causal graph, and the four VAE architectures.

    res = vae_data_models.run(cfg)
    res.tables["factors"], res.tables["graph"], res.tables["models"], res.tables["training"]
    res.tables["training_wide"]     # training's measures side by side, per dataset and kind: "mean [ci_low, ci_high]"

The VAE paper (arXiv:2505.03530) applies its framework "to both synthetic datasets with known causal
relationships and standard disentanglement benchmarks" and compares VAE, β-VAE and FactorVAE (we add
β-TC-VAE). Neither dataset is published; ours are procedural (:mod:`circuitnb.data.vae.datasets`). Every
architecture is trained ``replicates`` times per dataset, each from its own seed and data draw, through the
cached, locked training of :mod:`circuitnb.modeling.vae.cache`.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from circuitnb.analysis import convergence
from circuitnb.analysis.replicates import across_replicates
from circuitnb.analysis.vae import common as vae_common
from circuitnb.chapters.report import ChapterResult
from circuitnb.core.config import Config
from circuitnb.data.shapes import CAUSAL_BINS, CAUSAL_GRAPH, SHAPES
from circuitnb.data.vae.datasets import factor_names, vae_data
from circuitnb.interventions.vae.levels import output
from circuitnb.modeling.vae.cache import active_latents
from circuitnb.viz.vae.figures import wide_table

CHAPTER = "20_vae_data_models"
DESCRIBE = {"shapes": "dSprites-style: factors independent and uniform",
            "causal": "shapes world: factors follow the structural equations of the graph"}


def _factors(cfg: Config) -> pd.DataFrame:
    rows = []
    for ds in cfg.vae.datasets:
        held = vae_data(cfg, ds, "analysis")
        for name, k in zip(factor_names(held), held.n_values):
            parents = CAUSAL_GRAPH.get(name, []) if ds == "causal" else []
            rows.append(dict(dataset=ds, factor=name, codes=int(k), parents=", ".join(parents) or "none (exogenous)"))
    return pd.DataFrame(rows)


def _model_row(cfg: Config, m, ds: str) -> dict:
    x = vae_data(cfg, ds, "analysis").images[: cfg.vae.n_samples]
    p = np.clip(output(m.model, x), 1e-6, 1 - 1e-6)
    t = ((x + 1) / 2).reshape(len(x), -1)
    losses = m.meta["losses"]
    return dict(kind=m.meta["kind"], dataset=ds, replicate=m.meta["replicate"], seed=m.meta["seed"],
                final_loss=float(np.mean(losses[-max(1, len(losses) // 10):])),
                recon_nats=float(-(t * np.log(p) + (1 - t) * np.log(1 - p)).sum(1).mean()),
                active_latents=active_latents(m.model, x), train_seconds=m.meta["train_seconds"],
                from_cache=m.from_cache)


def run(cfg: Config) -> ChapterResult:
    """Chapter 20: factors and graph, one row per trained model, held-out reconstruction over replicates."""
    models = vae_common.models(cfg)
    per = pd.DataFrame([_model_row(cfg, m, ds) for (k, ds), ms in models.items() for m in ms])
    long = per.melt(id_vars=["kind", "dataset", "replicate"], value_vars=["recon_nats", "active_latents"],
                    var_name="measure")
    res = ChapterResult(CHAPTER)
    res.tables["factors"] = _factors(cfg)
    res.tables["graph"] = pd.DataFrame([dict(factor=f, parents=", ".join(p) or "none", bins=CAUSAL_BINS[f])
                                        for f, p in CAUSAL_GRAPH.items()])
    res.tables["models"] = per
    conv = convergence.vae_convergence(cfg, models)
    res.tables["convergence"] = conv["per_model"]
    res.data["convergence_curves"] = conv["curves"]
    res.tables["training"] = across_replicates(long, by=["measure", "kind", "dataset"]).drop(columns="n_images")
    res.tables["training_wide"] = wide_table(res.tables["training"], ["dataset", "kind"],   # what the page shows
                                             order=dict(dataset=cfg.vae.datasets, kind=cfg.vae.kinds))
    first = {ds: vae_data(cfg, ds, "analysis").images[:16] for ds in cfg.vae.datasets}
    recon = {f"{k} ({ds})": np.concatenate([first[ds][:8], 2 * output(ms[0].model, first[ds][:8]).reshape(
        first[ds][:8].shape) - 1]) for (k, ds), ms in models.items()}
    res.data.update(samples=first, recon=recon,
                    losses={f"{k} ({ds})": ms[0].meta["losses"] for (k, ds), ms in models.items()})
    v = cfg.vae
    res.values = dict(profile=cfg.profile, seed=cfg.run.seed, n_models=cfg.run.replicates,
                      n_kinds=len(v.kinds), n_datasets=len(v.datasets), n_total=len(per),
                      n_images=v.n_images, n_train=v.n_images - v.n_analysis, n_analysis=v.n_analysis,
                      n_samples=v.n_samples, size=v.image_size, latent_dim=v.latent_dim, steps=v.steps,
                      batch=v.batch_size, beta=v.beta, gamma=v.gamma, shapes=", ".join(SHAPES),
                      train_minutes=float(per.train_seconds.sum() / 60),
                      n_cached=int(per.from_cache.sum()), recon_order="; ".join(recon),
                      converged_line=conv["summary"]["line"], converged_tol=cfg.analysis.converged_tol)
    return res
