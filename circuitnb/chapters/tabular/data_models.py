"""Chapter 30 (Part III): the tables (source, size, column types, preprocessing) and the tabular VAEs (training,
convergence), every architecture trained ``tabular.replicates`` times on every table.

    res = data_models.run(cfg)
    res.tables["datasets"], res.tables["columns"], res.tables["world_graph"]
    res.tables["models"], res.tables["convergence"], res.tables["training_wide"]

The tabular-VAE abstract (Part III) trains several VAE architectures on tabular benchmarks and an image one, with
replicate seeds per run (its counts are in ``claims_tabular.csv``), naming none of the tables. Ours are real tables
shipped inside installed packages and the synthetic world with a known DAG (:mod:`circuitnb.data.tabular`); the
image benchmark is Part II's shapes set. Models come from :func:`circuitnb.modeling.tabular.load_all` (cached,
locked, keyed by every training field), judged by the book's convergence rule on their held-out negative ELBO.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from circuitnb.analysis import convergence
from circuitnb.analysis.replicates import across_replicates
from circuitnb.analysis.tabular import common as tab_common
from circuitnb.chapters.report import ChapterResult
from circuitnb.core.config import Config
from circuitnb.data.tabular import datasets_table, schema_of, schema_table, tabular_data
from circuitnb.data.tabular.world import FACTOR_GROUPS, PARENTS
from circuitnb.modeling.tabular import reconstruct
from circuitnb.viz.vae.figures import wide_table

CHAPTER = "30_tabular_data_models"


def _model_row(cfg: Config, m) -> dict:
    ds = m.meta["dataset"]
    held = tabular_data(cfg, ds, "heldout")
    terms = m.meta["heldout_terms"]
    return dict(kind=m.meta["kind"], dataset=ds, replicate=m.meta["replicate"], seed=m.meta["seed"],
                train_rows=m.meta["n_rows"], heldout_rows=m.meta["n_heldout"], nelbo=terms["nelbo"],
                recon_nats=terms["recon"], kl_nats=terms["kl"],
                mse=float(((reconstruct(m.model, held.x) - held.x) ** 2).mean()),
                active_latents=m.meta["active_latents"], train_seconds=m.meta["train_seconds"],
                from_cache=m.from_cache)


def _world_graph() -> pd.DataFrame:
    group = {c: f for f, cols in FACTOR_GROUPS.items() for c in cols}
    return pd.DataFrame([dict(node=n, parents=", ".join(p) or "none (exogenous)", column_group=group.get(n, "–"))
                         for n, p in PARENTS.items()])


def run(cfg: Config) -> ChapterResult:
    """Chapter 30: the tables, their columns, the world's graph, one row per model and convergence."""
    t = cfg.tabular
    models = tab_common.models(cfg)
    per = pd.DataFrame([_model_row(cfg, m) for ms in models.values() for m in ms])
    conv = convergence.vae_convergence(cfg, models)
    conv["per_model"]["latent_dim"] = t.latent_dim           # vae_convergence reads Part II's latent_dim
    long = per.melt(id_vars=["kind", "dataset", "replicate"], value_vars=["nelbo", "mse", "active_latents"],
                    var_name="measure")
    res = ChapterResult(CHAPTER)
    res.tables["datasets"] = datasets_table(cfg, t.datasets)
    res.tables["columns"] = pd.concat([schema_table(schema_of(ds)).assign(dataset=ds) for ds in t.datasets],
                                      ignore_index=True)[["dataset", "column", "type", "levels", "encoded_as", "note"]]
    res.tables["world_graph"] = _world_graph()
    res.tables["models"] = per
    res.tables["convergence"] = conv["per_model"]
    res.tables["training"] = across_replicates(long, by=["measure", "kind", "dataset"]).drop(columns="n_images")
    res.tables["training_wide"] = wide_table(res.tables["training"], ["dataset", "kind"],
                                             order=dict(dataset=t.datasets, kind=t.kinds))
    res.data["convergence_curves"] = conv["curves"]
    summ = conv["summary"]
    res.values = dict(profile=cfg.profile, seed=cfg.run.seed, n_models=t.replicates, n_kinds=len(t.kinds),
                      n_tables=len(t.datasets), n_real=sum(ds != "world" for ds in t.datasets),
                      n_total=len(per), n_cached=int(per.from_cache.sum()), latent_dim=t.latent_dim,
                      hidden=t.hidden, steps=t.steps, batch=t.batch_size, lr=t.lr, beta=t.beta,
                      gamma=t.gamma, lambda_od=t.lambda_od, sigma=t.sigma,
                      world_rows=t.world_rows, heldout_fraction=t.heldout_fraction,
                      train_minutes=float(per.train_seconds.sum() / 60), converged_line=summ["line"],
                      n_converged=summ["n_converged"], converged_tol=cfg.analysis.converged_tol,
                      mean_active=float(np.mean(per.active_latents)), tables=", ".join(t.datasets),
                      kinds=", ".join(t.kinds))
    return res
