"""Chapter 50 (Part V): the slices (the BraTS2020 loader, or the procedural phantom standing in for it), the subject
split, the three models and every replicate's training and convergence.

    res = data_models.run(cfg)
    res.tables["data"], res.tables["skipped"], res.tables["models"], res.tables["convergence"]
    res.data["samples"], res.data["masks"]     # a few held-out lesion and healthy slices [n, 4, S, S], [n, S, S]
    res.data["curves"]                         # held-out -ELBO at every snapshot of every model

BraTS2020 cannot be downloaded here; without ``mri.root`` Part V runs on :func:`circuitnb.data.mri.phantom_dataset`,
a stand-in, and every page says so (``res.values["source_line"]``). Models come from
:func:`circuitnb.analysis.mri.common.models` (cached, locked, keyed by every training field), each judged by the
book's convergence rule on its held-out healthy slices' negative ELBO.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from circuitnb.analysis.convergence import summary
from circuitnb.analysis.mri import common as mri_common
from circuitnb.analysis.replicates import across_replicates
from circuitnb.chapters.report import ChapterResult
from circuitnb.core.config import Config
from circuitnb.modeling.mri import mri_split
from circuitnb.modeling.store import training_outcome

CHAPTER = "50_mri_data_models"
N_SAMPLES = 4              # held-out slices in the grid (lesion first)


def _data(cfg: Config, split) -> tuple[pd.DataFrame, pd.DataFrame]:
    held, train = split.heldout, split.train
    row = dict(source=mri_common.source(cfg), read_from=held.source, subjects=len(split.train_subjects) + len(
        split.heldout_subjects), train_subjects=len(split.train_subjects), heldout_subjects=len(split.heldout_subjects),
        train_healthy_slices=len(train), heldout_healthy_slices=int((~held.lesion).sum()),
        heldout_lesion_slices=int(held.lesion.sum()), size=int(held.images.shape[-1]),
        dropped_little_brain=int(held.dropped.get("little_brain", 0)),
        dropped_small_lesion=int(held.dropped.get("small_lesion", 0)), skipped_subjects=len(held.skipped))
    skipped = pd.DataFrame([dict(subject=s, reason=why) for s, why in sorted(held.skipped.items())],
                           columns=["subject", "reason"])
    return pd.DataFrame([row]), skipped


def _model_row(m, tol: float) -> dict:
    meta = m.meta
    return dict(kind=meta["kind"], replicate=meta["replicate"], seed=meta["seed"], train_slices=meta["n_train"],
                parameters=int(sum(p.numel() for p in m.model.parameters())),
                **training_outcome(meta, m.from_cache, tol))


def run(cfg: Config) -> ChapterResult:
    """Chapter 50: the data, the split, one row per model and convergence."""
    mr = cfg.mri
    models = mri_common.models(cfg)
    split = mri_split(cfg)
    per = pd.DataFrame([_model_row(m, cfg.analysis.converged_tol) for ms in models.values() for m in ms])
    curves = pd.DataFrame([dict(kind=m.meta["kind"], replicate=m.meta["replicate"], step=st, nelbo=float(np.mean(v)))
                           for ms in models.values() for m in ms
                           for st, v in zip(m.meta["heldout_steps"], m.meta["heldout_nelbo"])])
    data, skipped = _data(cfg, split)
    res = ChapterResult(CHAPTER)
    res.tables["data"] = data
    res.tables["skipped"] = skipped
    res.tables["models"] = per
    res.tables["convergence"] = per[["kind", "replicate", "nelbo", "rel_improvement", "converged", "status"]]
    long = per.assign(dataset=mri_common.source(cfg)).melt(id_vars=["dataset", "kind", "replicate"],
                                                           value_vars=["nelbo"], var_name="measure")
    res.tables["training"] = across_replicates(long, by=["kind", "measure"]).drop(columns="n_images")
    held = split.heldout
    rows = mri_common.explore_rows(held.lesion, held.masks, N_SAMPLES)
    res.data["samples"], res.data["masks"] = held.images[rows], held.masks[rows]
    res.data["curves"] = curves
    summ = summary(per.assign(converged=per.converged.astype(object)), cfg.analysis.converged_tol)
    d = data.iloc[0]
    res.values = dict(
        profile=cfg.profile, seed=cfg.run.seed, n_models=mr.replicates, kinds=", ".join(mr.kinds),
        n_kinds=len(mr.kinds), n_total=len(per), n_cached=int(per.from_cache.sum()),
        source_line=mri_common.source_line(cfg),
        n_subjects=int(d.subjects), n_train_subjects=int(d.train_subjects), n_heldout_subjects=int(d.heldout_subjects),
        n_train=int(d.train_healthy_slices), n_heldout_healthy=int(d.heldout_healthy_slices),
        n_heldout_lesion=int(d.heldout_lesion_slices), n_heldout=int(len(held)), image_size=mr.image_size,
        n_skipped=int(d.skipped_subjects), dropped_little_brain=int(d.dropped_little_brain),
        dropped_small_lesion=int(d.dropped_small_lesion), heldout_fraction=mr.heldout_fraction,
        widths=", ".join(str(w) for w in mr.widths), latent_dim=mr.latent_dim, heads=mr.heads,
        dropout=mr.dropout, steps=mr.steps, batch=mr.batch_size, lr=mr.lr, beta=mr.beta,
        mc_passes=mr.mc_passes, n_snapshots=mr.n_snapshots, train_minutes=float(per.train_seconds.sum() / 60),
        converged_line=summ["line"], n_converged=summ["n_converged"], converged_tol=cfg.analysis.converged_tol,
        **{f"params_{k}": int(g.parameters.iloc[0]) for k, g in per.groupby("kind")})
    return res
