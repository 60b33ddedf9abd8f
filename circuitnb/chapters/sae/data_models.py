"""Chapter 40 (Part IV): the data sets with known factors (drawn stand-ins for dSprites and Shapes3D; the loaders of
the real files), the hybrid VAE-SAE, its sparsity schedule, and every model's training and convergence.

    res = data_models.run(cfg)
    res.tables["datasets"], res.tables["factors"], res.tables["models"], res.tables["convergence"]
    res.data["samples"]            # {dataset: held-out images [n, C, S, S] in [-1, 1]}, for a grid
    res.data["schedule"]           # (steps, k per step, the decay's end)

The abstract tests dSprites and Shapes3D; neither file can be downloaded here, so Part IV draws procedural sets
with the same factors and factor sizes (:mod:`circuitnb.data.sae`), and reads the real ``.npz`` / ``.h5`` when a
user has them (:func:`circuitnb.data.sae.load_dsprites`, :func:`circuitnb.data.sae.load_shapes3d`). Models come
from :func:`circuitnb.analysis.sae.common.models` (cached, locked, keyed by every training field); each is judged
by the book's convergence rule on its held-out negative ELBO.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from circuitnb.analysis.convergence import summary
from circuitnb.analysis.replicates import across_replicates
from circuitnb.analysis.sae import common as sae_common
from circuitnb.chapters.report import ChapterResult
from circuitnb.core.config import Config
from circuitnb.modeling.sae import decay_end, final_k, sae_data, schedule
from circuitnb.modeling.store import training_outcome
from circuitnb.viz.vae.figures import wide_table

CHAPTER = "40_sae_data_models"
REAL = {"dsprites": "circuitnb.data.sae.load_dsprites (dsprites_ndarray_*.npz)",
        "shapes3d": "circuitnb.data.sae.load_shapes3d (3dshapes.h5, needs h5py)"}
N_SAMPLES = 16             # images per set in the sample grid


def _datasets(cfg: Config) -> tuple[pd.DataFrame, pd.DataFrame]:
    s, rows, factors = cfg.sae, [], []
    for ds in s.datasets:
        held, train = sae_data(cfg, ds, "analysis"), sae_data(cfg, ds, "train")
        rows.append(dict(dataset=ds, source=f"{held.source} stand-in (drawn, seed {cfg.run.seed})",
                         real_file_loader=REAL[ds], channels=int(held.images.shape[1]), size=s.image_size,
                         factors=len(held.factor_names), train_images=len(train.images),
                         heldout_images=len(held.images)))
        factors += [dict(dataset=ds, factor=f, values=int(n)) for f, n in zip(held.factor_names, held.n_values)]
    return pd.DataFrame(rows), pd.DataFrame(factors)


def _rgb(x: np.ndarray) -> np.ndarray:
    """[N, C, S, S] -> [N, 3, S, S]: a grayscale set repeated over three channels, for an image grid."""
    return np.repeat(x, 3, axis=1) if x.shape[1] == 1 else x


def _model_row(m, tol: float) -> dict:
    meta, hist = m.meta, m.meta["history"]
    return dict(method=meta["method"], dataset=meta["dataset"], replicate=meta["replicate"], seed=meta["seed"],
                train_images=meta["n_images"], k_final=hist["k"][-1], l0_final=float(np.mean(hist["l0"][-20:])),
                **training_outcome(meta, m.from_cache, tol))


def run(cfg: Config) -> ChapterResult:
    """Chapter 40: the sets, their factors, the schedule, one row per model and convergence."""
    s = cfg.sae
    models = sae_common.models(cfg)
    per = pd.DataFrame([_model_row(m, cfg.analysis.converged_tol) for ms in models.values() for m in ms])
    curves = pd.DataFrame([dict(method=m.meta["method"], dataset=m.meta["dataset"], replicate=m.meta["replicate"],
                                step=st, nelbo=float(np.mean(v)))
                           for ms in models.values() for m in ms
                           for st, v in zip(m.meta["heldout_steps"], m.meta["heldout_nelbo"])])
    long = per.melt(id_vars=["method", "dataset", "replicate"], value_vars=["nelbo", "l0_final"], var_name="measure")
    datasets, factors = _datasets(cfg)
    res = ChapterResult(CHAPTER)
    res.tables["datasets"] = datasets
    res.tables["factors"] = factors
    res.tables["models"] = per
    res.tables["convergence"] = per[["method", "dataset", "replicate", "nelbo", "rel_improvement", "converged",
                                     "status"]]
    res.tables["training"] = across_replicates(long, by=["measure", "method", "dataset"]).drop(columns="n_images")
    res.tables["training_wide"] = wide_table(res.tables["training"], ["dataset", "method"],
                                             order=dict(dataset=s.datasets, method=s.methods))
    res.data["curves"] = curves
    res.data["samples"] = {ds: _rgb(sae_data(cfg, ds, "analysis").images[:N_SAMPLES]) for ds in s.datasets}
    k_end = final_k(s.hidden, s.active_fraction)
    end = decay_end(s.steps, s.decay_fraction)
    res.data["schedule"] = (np.arange(1, s.steps + 1), np.array(schedule(s.steps, s.hidden, k_end,
                                                                             s.decay_fraction, s.schedule)),
                            end)
    summ = summary(per.assign(converged=per.converged.astype(object)), cfg.analysis.converged_tol)
    res.values = dict(profile=cfg.profile, seed=cfg.run.seed, n_models=s.replicates, n_methods=len(s.methods),
                      methods=", ".join(s.methods), n_sets=len(s.datasets), n_total=len(per),
                      n_cached=int(per.from_cache.sum()), hidden=s.hidden, k_end=k_end,
                      active_percent=100 * k_end / s.hidden, decay_end=end, steps=s.steps,
                      decay_epochs=sae_common.epochs(cfg, end), total_epochs=sae_common.epochs(cfg, s.steps),
                      extension_epochs=sae_common.extension_epochs(cfg), schedule_end=sae_common.schedule_end(cfg),
                      shape=s.schedule, batch=s.batch_size, lr=s.lr, latent_dim=s.latent_dim,
                      image_size=s.image_size, n_train=s.n_images - s.n_analysis,
                      n_heldout=s.n_analysis, n_snapshots=s.n_snapshots,
                      train_minutes=float(per.train_seconds.sum() / 60), converged_line=summ["line"],
                      n_converged=summ["n_converged"], converged_tol=cfg.analysis.converged_tol,
                      auxk_alpha=s.auxk_alpha, dead_window=s.dead_window)
    return res
