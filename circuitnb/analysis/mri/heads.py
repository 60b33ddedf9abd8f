"""Part V's attention heads through Part I's lens: entropy (Eq. 1) and specialization (Eq. 2) of every head on
healthy and lesion slices, and what ablating each head (and each layer) does to the slice-level anomaly score.

    layers = head_sites(model)                            # {"encoder.attn": ["encoder.attn.h0", ...], ...}
    hm = head_measures(model, x)                          # {layer: {"entropy", "specialization", "received"}}
    entropy_table(hm, lesion)                             # layer, head, group (healthy / lesion), means over slices
    ablation_table(model, x, lesion, passes=16, seed=0)   # one row per target: AUC and score changes
    mri_heads.analysis(cfg, m)                            # both, cached per model (None for a model without attention)

The heads are reached by site name only (``<layer>.probs``, ``<layer>.h{k}``: :mod:`circuitnb.hooking.sites`
finds any diffusers ``Attention``), so nothing here knows the MriVAE. Readings:

* entropy and specialization: :func:`circuitnb.measures.metrics.attention_entropy` (bits, mean over query rows)
  and :func:`~circuitnb.measures.metrics.specialization`, one value per slice and head, in eval mode (dropout off:
  the network's own weights); a group's value is the mean over its slices. ``received``: each key position's
  attention averaged over the queries ([N, heads, K]), the head map of the explorer.
* ablation: a head's output (before the output projection mixes the heads) set to zero, in every MC-dropout
  pass (the same seed as the intact model, so the comparison is paired); a layer's ablation zeroes all its heads.
  The score is the primary reading of :mod:`circuitnb.analysis.mri.common`. Effects: ``delta_auc`` (slice ROC AUC
  ablated minus intact; < 0: the head carries detection), ``delta_pr``, and ``rel_gap``: the relative change of
  the gap between the mean score of lesion and of healthy slices.
* head k of one seed and head k of another are not the same head (the heads of a layer are interchangeable);
  a CI over models is meaningful for a layer, and for a head only as "the k-th head of this layer". Per model,
  :func:`top_heads` names the head whose ablation lowers the AUC most.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from circuitnb.analysis.mri.common import PIXEL_READING, SLICE_READING, source
from circuitnb.analysis.replicates import each_of
from circuitnb.core import results
from circuitnb.core.config import Config
from circuitnb.hooking.hooks import edit, record
from circuitnb.hooking.sites import site_names
from circuitnb.measures.metrics import attention_entropy, specialization
from circuitnb.measures.mri import brain_mask, pixel_scores, pr_auc, roc_auc, slice_scores
from circuitnb.modeling.mri import TrainedMri, mc_predict, mri_split

READS = ("seed", "mri.mc_passes")


def head_sites(model: torch.nn.Module) -> dict[str, list[str]]:
    """Each attention layer's path -> its head sites, from the generic site table (empty: no attention)."""
    heads = site_names(model, "head")
    return {p[: -len(".probs")]: [h for h in heads if h.startswith(p[: -len("probs")] + "h")]
            for p in site_names(model, "probs")}


def _reduce(probs: torch.Tensor) -> torch.Tensor:
    """[B, heads, Q, K] -> [B, heads, 2 + K]: Eq. 1 entropy (bits), Eq. 2 specialization, mean attention per key."""
    h = attention_entropy(probs)
    return torch.cat([h[..., None], specialization(probs, entropy=h)[..., None], probs.float().mean(2)], -1)


@torch.no_grad()
def head_measures(model: torch.nn.Module, images: np.ndarray, batch_size: int = 64) -> dict[str, dict]:
    """``head_measures(model, x)`` -> {layer: {"entropy", "specialization": [N, heads], "received": [N, heads, K]}}
    in eval mode (the reducer runs inside the hook: no [N, heads, Q, K] tensor is kept)."""
    layers = head_sites(model)
    probs = [f"{layer}.probs" for layer in layers]
    was = model.training
    model.eval()
    dev = next(model.parameters()).device
    x_all = torch.as_tensor(np.asarray(images, np.float32))
    try:
        with record(model, probs, reduce=_reduce) as rec:
            for a in range(0, len(x_all), batch_size):
                model(x_all[a:a + batch_size].to(dev))
    finally:
        model.train(was)
    out = {}
    for layer, site in zip(layers, probs):
        v = rec[site].numpy().astype(np.float64)
        out[layer] = dict(entropy=v[..., 0], specialization=v[..., 1], received=v[..., 2:].astype(np.float32))
    return out


def entropy_table(measures: dict[str, dict], lesion: np.ndarray) -> pd.DataFrame:
    """One row per layer, head and group ("healthy", "lesion"): mean entropy (bits) and specialization over the
    group's slices, and n_slices; head -1 is the layer's mean over its heads."""
    les = np.asarray(lesion, bool)
    rows = []
    for layer, m in measures.items():
        for group, sel in (("healthy", ~les), ("lesion", les)):
            if not sel.any():
                continue
            ent, spec = m["entropy"][sel].mean(0), m["specialization"][sel].mean(0)
            rows += [dict(layer=layer, head=k, group=group, entropy=float(ent[k]), specialization=float(spec[k]),
                          n_slices=int(sel.sum())) for k in range(len(ent))]
            rows.append(dict(layer=layer, head=-1, group=group, entropy=float(ent.mean()),
                             specialization=float(spec.mean()), n_slices=int(sel.sum())))
    return pd.DataFrame(rows)


def _zero(x: torch.Tensor, ctx) -> torch.Tensor:
    return torch.zeros_like(x)


def _score(model, x: np.ndarray, lesion: np.ndarray, passes: int, seed: int, sites: list[str]) -> dict:
    with edit(model, {s: _zero for s in sites}):
        pred = mc_predict(model, x, passes, seed=seed)
    sl = slice_scores(pixel_scores(x, pred, PIXEL_READING), brain_mask(x), SLICE_READING)
    les = np.asarray(lesion, bool)
    both = les.any() and (~les).any()
    return dict(roc_auc=roc_auc(sl, les) if both else np.nan, pr_auc=pr_auc(sl, les) if both else np.nan,
                mean_lesion=float(sl[les].mean()) if les.any() else np.nan,
                mean_healthy=float(sl[~les].mean()) if (~les).any() else np.nan)


def ablation_table(model: torch.nn.Module, images: np.ndarray, lesion: np.ndarray, passes: int = 8,
                   seed: int = 0) -> pd.DataFrame:
    """One row per target: the intact model (target "none"), every head (``<layer>.h{k}``) and every layer
    (``<layer>``: all its heads), with roc_auc, pr_auc, mean_lesion, mean_healthy and the effects of the module
    docstring (delta_auc, delta_pr, rel_gap; 0 for the intact row)."""
    targets: list[tuple[str, str, int, list[str]]] = [("none", "", -2, [])]
    for layer, heads in head_sites(model).items():
        targets += [(h, layer, int(h.rsplit(".h", 1)[1]), [h]) for h in heads]
        targets.append((layer, layer, -1, heads))
    rows = [dict(target=t, layer=layer, head=k, **_score(model, images, lesion, passes, seed, s))
            for t, layer, k, s in targets]
    out = pd.DataFrame(rows)
    base = out.iloc[0]
    gap = base.mean_lesion - base.mean_healthy
    return out.assign(delta_auc=out.roc_auc - base.roc_auc, delta_pr=out.pr_auc - base.pr_auc,
                      rel_gap=((out.mean_lesion - out.mean_healthy) - gap) / gap if gap else np.nan)


def top_heads(ablation: pd.DataFrame) -> pd.Series:
    """The single head whose ablation lowers the slice AUC most (the row of :func:`ablation_table`)."""
    heads = ablation[ablation["head"] >= 0]
    return heads.loc[heads.delta_auc.idxmin()]


def _compute(cfg: Config, m: TrainedMri) -> dict | None:
    if not head_sites(m.model):
        return None
    held = mri_split(cfg).heldout
    hm = head_measures(m.model, held.images)
    return dict(entropy=entropy_table(hm, held.lesion), received={k: v["received"] for k, v in hm.items()},
                per_slice={k: dict(entropy=v["entropy"], specialization=v["specialization"]) for k, v in hm.items()},
                ablation=ablation_table(m.model, held.images, held.lesion, cfg.mri.mc_passes, cfg.run.seed))


def analysis(cfg: Config, m: TrainedMri, wait: bool = True) -> dict | None:
    """One model's head measures and ablations (None for a model without attention), from the results cache."""
    return results.cached(cfg, "mri.heads", m, lambda: _compute(cfg, m), reads=READS,
                          data=mri_split(cfg).heldout.images, wait=wait)


def all_heads(cfg: Config, models: dict) -> dict[str, list]:
    """:func:`analysis` of every model of the kinds with attention: {kind: [per replicate]}."""
    att = {k: ms for k, ms in models.items() if head_sites(ms[0].model)}
    return each_of(att, lambda key, m, wait=True: analysis(cfg, m, wait))


def frames(cfg: Config, heads: dict[str, list]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(entropy, ablation): :func:`entropy_table` and :func:`ablation_table` rows of every model with dataset,
    kind and replicate."""
    ent = [a["entropy"].assign(dataset=source(cfg), kind=k, replicate=r) for k, items in heads.items()
           for r, a in enumerate(items)]
    abl = [a["ablation"].assign(dataset=source(cfg), kind=k, replicate=r) for k, items in heads.items()
           for r, a in enumerate(items)]
    return (pd.concat(ent, ignore_index=True) if ent else pd.DataFrame(),
            pd.concat(abl, ignore_index=True) if abl else pd.DataFrame())
