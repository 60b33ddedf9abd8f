"""Causal circuit quantities that need forward passes (§4.3, §4.6, §4.9, and one beyond the paper).

    imp = head_importance(unet, scheduler, x0, t=300)                 # Table 2 "importance", per head
    size = effective_circuit_size(unet, scheduler, x0, 300, heads)    # smallest kept share retaining 90%
    acc = cross_dataset_accuracy(models, images, timesteps)           # §4.9, % per model/data/t

All impacts are Eq. 5 (:func:`circuitnb.measures.metrics.impact_score`) on paired noise.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from circuitnb.hooking.sites import site_names
from circuitnb.interventions.impact import impacts
from circuitnb.interventions.registry import Intervention
from circuitnb.measures.quantities import prediction_accuracy
from circuitnb.modeling.sampling import noise_mse_by_timestep

RETAIN = 0.9


def head_sites(unet) -> list[str]:
    """Every attention head as a site name (``down2.attn0.h3``), in forward order."""
    return site_names(unet, "head")


def head_importance(unet, scheduler, x0, t: int, seed: int = 0) -> pd.DataFrame:
    """Table 2 "importance": impact score (Eq. 5) of zeroing one head's output, for every head.

    The paper ranks heads "based on intervention impact" without naming the
    intervention; zeroing the head before the output projection (``head_ablate``)
    is the standard single-head ablation. Columns: head, layer, index, mse_base,
    mse_ablated, importance.
    """
    specs = {}
    for name in head_sites(unet):
        layer, h = name.rsplit(".h", 1)
        specs[name] = [Intervention("head_ablate", layer, head=int(h))]
    res = impacts(unet, scheduler, x0, t, specs, seed)
    return pd.DataFrame([dict(head=n, layer=n.rsplit(".h", 1)[0], index=int(n.rsplit(".h", 1)[1]),
                              mse_base=r.mse_base, mse_ablated=r.mse_int, importance=r.impact)
                         for n, r in res.items()])


@dataclass
class CircuitSize:
    fraction: float            # smallest kept share of components that retains RETAIN of the performance
    n_kept: int
    n_components: int
    curve: pd.DataFrame        # n_kept, fraction, mse, retained
    order: list                # components, most important first


def effective_circuit_size(unet, scheduler, x0, t: int, components, seed: int = 0,
                           retain: float = RETAIN) -> CircuitSize:
    """Beyond the paper: the smallest share of ``components`` that, kept while the rest are
    mean-ablated, retains ``retain`` of the baseline performance.

    Components (heads ``…h{k}`` or blocks/groups) are ranked by the impact of
    mean-ablating each alone; the top k are kept and the others replaced by
    their mean over the batch at t. Performance retained is
    (MSE_none - MSE_k) / (MSE_none - MSE_all), where MSE_none has every
    component mean-ablated and MSE_all is the intact model: 0 with nothing
    kept, 1 intact. Returns the curve over k as well.
    """
    components = list(components)
    n = len(components)
    single = impacts(unet, scheduler, x0, t, {c: [Intervention("mean", c)] for c in components}, seed)
    order = sorted(components, key=lambda c: -single[c].impact)
    specs = {k: [Intervention("mean", c) for c in order[k:]] for k in range(n)}
    res = impacts(unet, scheduler, x0, t, specs, seed)
    mse = [res[k].mse_int for k in range(n)] + [next(iter(res.values())).mse_base]
    curve = retained_curve(mse)
    k = int(curve.loc[curve.retained >= retain, "n_kept"].min())
    return CircuitSize(fraction=k / n, n_kept=k, n_components=n, curve=curve, order=order)


def retained_curve(mse) -> pd.DataFrame:
    """Performance retained with k = 0..n components kept, from the MSEs ``[MSE_none, ..., MSE_all]``.

    retained = (MSE_none - MSE_k) / (MSE_none - MSE_all). When ablating every
    component does not raise the MSE (MSE_none <= MSE_all) the components carry
    nothing measurable and every k retains everything (size 0).
    """
    mse = np.asarray(mse, float)
    n = len(mse) - 1
    span = mse[0] - mse[-1]
    retained = (mse[0] - mse) / span if span > 0 else np.ones_like(mse)
    return pd.DataFrame(dict(n_kept=np.arange(n + 1), fraction=np.arange(n + 1) / n, mse=mse, retained=retained))


def cross_dataset_accuracy(models: dict, images: dict, timesteps, seed: int = 0) -> pd.DataFrame:
    """§4.9 "cross-dataset accuracy": prediction accuracy (§4.1 definition) of each model on each dataset.

    ``models`` and ``images`` are keyed by dataset name. Rows with
    ``model != data`` are the cross-dataset ones; the paper's single number is
    read as their mean. Columns: model, data, t, image, accuracy.
    """
    frames = []
    for m_name, m in models.items():
        for d_name, x0 in images.items():
            f = noise_mse_by_timestep(m.unet, m.scheduler, x0, timesteps, seed=seed)
            frames.append(f.assign(model=m_name, data=d_name, accuracy=prediction_accuracy(f.mse)))
    return pd.concat(frames, ignore_index=True)[["model", "data", "t", "image", "accuracy"]]
