"""Chapter 9 (§4.9): cross-dataset accuracy, feature transferability and circuit robustness."""
from __future__ import annotations

import pandas as pd
import torch

from circuitnb.interventions import circuits
from circuitnb.measures import claims, quantities
from circuitnb.core import results
from circuitnb.core.config import Config
from circuitnb.hooking.hooks import record
from circuitnb.hooking.sites import site_names
from circuitnb.chapters.common import analysis_images, mean_ci


def cross_accuracy(cfg: Config, models: dict) -> pd.DataFrame:
    """:func:`circuitnb.circuits.cross_dataset_accuracy` of both models on both datasets (cached)."""
    images = {n: analysis_images(cfg, n) for n in models}
    return results.cached(cfg, "cross_accuracy", list(models.values()), lambda: circuits.cross_dataset_accuracy(
        models, images, cfg.analysis.timesteps, seed=cfg.run.seed), timesteps=cfg.analysis.timesteps)


@torch.no_grad()
def _cka_rows(cfg: Config, models: dict) -> list[dict]:
    a, b = models.values()
    blocks = site_names(a.unet, "block")
    rows = []
    for data_name in models:
        x0 = torch.as_tensor(analysis_images(cfg, data_name))
        eps = torch.randn(x0.shape, generator=torch.Generator().manual_seed(cfg.run.seed))
        for t in cfg.analysis.timesteps:
            tt = torch.full((len(x0),), int(t), dtype=torch.long)
            x_t = a.scheduler.add_noise(x0, eps, tt)
            acts = []
            for m in (a, b):
                with record(m.unet, blocks) as rec:
                    m.unet(x_t.to(next(m.unet.parameters()).device), tt)
                acts.append({k: rec[k].cpu() for k in blocks})
            for blk in blocks:
                rows.append(dict(data=data_name, t=int(t), block=blk,
                                 cka=quantities.linear_cka(acts[0][blk], acts[1][blk])))
    return rows


def block_similarity(cfg: Config, models: dict) -> pd.DataFrame:
    """Linear CKA between the two models at each block, on the same noisy inputs of each dataset (cached)."""
    return pd.DataFrame(results.cached(cfg, "cka", list(models.values()), lambda: _cka_rows(cfg, models),
                                       timesteps=cfg.analysis.timesteps))


def transferability(cka: pd.DataFrame, n_bootstrap: int = 2000, seed: int = 0) -> dict:
    """Feature transferability (%): :func:`circuitnb.quantities.feature_transferability`'s mean CKA,
    over blocks, timesteps and both input datasets, with a bootstrap CI over those cells."""
    _, lo, hi = mean_ci(100 * cka.cka, n_bootstrap, seed)
    return dict(transferability=quantities.feature_transferability(cka.cka), ci_low=lo, ci_high=hi, n=len(cka))


def cross_summary(acc: pd.DataFrame, n_bootstrap: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Mean accuracy per (model, data): in-domain on the diagonal, cross-dataset off it."""
    rows = []
    for (m, d), g in acc.groupby(["model", "data"]):
        mean, lo, hi = mean_ci(g.accuracy, n_bootstrap, seed)
        rows.append(dict(model=m, data=d, accuracy=mean, ci_low=lo, ci_high=hi, n=len(g)))
    return pd.DataFrame(rows)


def claim_rows(acc: pd.DataFrame, xfer: dict, robust: pd.DataFrame, n_bootstrap: int = 2000,
               seed: int = 0) -> list[dict]:
    cross = acc[acc.model != acc.data]
    m, lo, hi = mean_ci(cross.accuracy, n_bootstrap, seed)
    r_mean = robust.robustness.mean()
    return [claims.row("xfer_accuracy", m, lo, hi, complement=100,
                       definition="circuits.cross_dataset_accuracy (off-diagonal mean; compared as error rate)"),
            claims.row("xfer_features", xfer["transferability"], xfer["ci_low"], xfer["ci_high"],
                       definition="quantities.feature_transferability (linear CKA)"),
            claims.row("xfer_robustness", r_mean, robust.ci_low.min(), robust.ci_high.max(),
                       definition="quantities.circuit_robustness (mean of the two models; CI spans both)")]
