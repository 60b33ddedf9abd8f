"""Chapter 52 (Part V): the attention heads through Part I's lens (entropy and specialization on healthy against
lesion slices; which heads carry the detection, by ablation), the explorer, and the abstract's claims.

    res = circuits.run(cfg)
    res.tables["entropy_layers"]    # per kind and layer: lesion - healthy entropy, mean [95% CI] over models
    res.tables["entropy_heads"]     # per kind, layer, head index, group: entropy / specialization, CI over models
    res.tables["ablation_targets"]  # per kind and target (head or layer): AUC change when zeroed, CI over models
    res.tables["top_heads"]         # per model: the head whose ablation lowers the slice AUC most
    res.tables["scorecard"]         # claims_mri.csv beside ours, verdicts (also CSV)
    display(res.data["explorer"])   # slice, reconstruction, error, uncertainty, mask, head maps; offline

Head measures and ablations come from :mod:`circuitnb.analysis.mri.heads` (cached per model; the heads are reached
by site name, with no model-specific hook code); claims from :mod:`circuitnb.analysis.mri.claims`.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from circuitnb.analysis.mri import claims as mri_claims
from circuitnb.analysis.mri import common as mri_common
from circuitnb.analysis.mri import heads as mri_heads
from circuitnb.analysis.replicates import across_replicates
from circuitnb.chapters.report import ChapterResult
from circuitnb.core.config import Config
from circuitnb.measures import verdicts
from circuitnb.modeling.mri import mri_split
from circuitnb.viz.mri.explorer import MriExplorer, mri_explorer_data

CHAPTER = "52_mri_circuits"


def _entropy_long(ent: pd.DataFrame) -> pd.DataFrame:
    """Per model, layer and head: entropy / specialization on healthy and lesion slices and lesion - healthy."""
    keys = ["dataset", "kind", "replicate", "layer", "head"]
    long = ent.melt(id_vars=[*keys, "group"], value_vars=["entropy", "specialization"], var_name="measure")
    wide = long.pivot_table(index=[*keys, "measure"], columns="group", values="value").reset_index()
    diff = wide.assign(group="lesion - healthy", value=wide.get("lesion", np.nan) - wide.get("healthy", np.nan))
    return pd.concat([long, diff[[*keys, "measure", "group", "value"]]], ignore_index=True)


def explorer(cfg: Config, analyses: dict, heads: dict) -> MriExplorer:
    """Replicate 0 of every kind on the explorer's held-out slices (:func:`circuitnb.analysis.mri.common.
    explore_rows`)."""
    held = mri_split(cfg).heldout
    first = next(iter(analyses.values()))[0]["explore"]
    rows = first["rows"]
    per_model = {k: {n: items[0]["explore"][n] for n in ("mean", "error", "uncertainty")}
                 for k, items in analyses.items()}
    maps = {k: {layer: rec[rows] for layer, rec in items[0]["received"].items()} for k, items in heads.items()}
    keys = {rec.shape[-1] for layers in maps.values() for rec in layers.values()}
    res = int(round(np.sqrt(keys.pop()))) if keys else 1          # self-attention over a square map
    labels = [f"{held.subject[i]} slice {int(held.slice_index[i])}" for i in rows]
    return MriExplorer(mri_explorer_data(held.images[rows], held.masks[rows], held.lesion[rows], labels, per_model,
                                         maps, res))


def run(cfg: Config) -> ChapterResult:
    """Chapter 52: head entropy on healthy vs lesion slices, head ablations, top heads, the scorecard, the explorer."""
    mr, alpha = cfg.mri, cfg.analysis.alpha
    models = mri_common.models(cfg)
    analyses = mri_common.all_analyses(cfg)
    heads = mri_heads.all_heads(cfg, models)
    ent, abl = mri_heads.frames(cfg, heads)
    det = mri_common.detection_frame(cfg)
    out = mri_claims.claims(cfg, det)
    card = mri_claims.scorecard(out["rows"], alpha)
    res = ChapterResult(CHAPTER)
    res.tables["scorecard"] = card
    res.tables["readings"] = out["readings"]
    res.data["explorer"] = explorer(cfg, analyses, heads)
    vals = dict(profile=cfg.profile, seed=cfg.run.seed, n_models=mr.replicates, n_claims=len(card),
                source_line=mri_common.source_line(cfg), reason_stand_in=mri_claims.stand_in_reason(cfg) or "-",
                kb_explorer=res.data["explorer"].nbytes / 1024, mc_passes=mr.mc_passes,
                **{f"n_{v.replace(' ', '_')}": int(card.verdict.value_counts().get(v, 0)) for v in verdicts.VERDICTS})
    for r in card.itertuples():
        vals |= {f"{r.id}_ours": r.ours, f"{r.id}_low": r.ci_low, f"{r.id}_high": r.ci_high,
                 f"{r.id}_verdict": r.verdict}
    if not len(ent):                                       # no kind with attention was trained
        res.values = dict(vals, n_heads=0, layers="none")
        return res
    elong = _entropy_long(ent)
    res.tables["entropy_per_model"] = ent
    res.tables["entropy_heads"] = across_replicates(elong, by=["kind", "layer", "head", "group", "measure"],
                                                    level=1 - alpha).drop(columns="n_images")
    lay = elong[(elong["head"] == -1)]
    res.tables["entropy_layers"] = across_replicates(lay, by=["kind", "layer", "measure", "group"],
                                                     level=1 - alpha).drop(columns="n_images")
    targets = abl[abl.target != "none"].melt(id_vars=["dataset", "kind", "replicate", "target", "layer", "head"],
                                             value_vars=["delta_auc", "delta_pr", "rel_gap"], var_name="measure")
    res.tables["ablation_per_model"] = abl
    res.tables["ablation_targets"] = across_replicates(targets, by=["kind", "target", "layer", "head", "measure"],
                                                       level=1 - alpha).drop(columns="n_images")
    top = pd.DataFrame([dict(kind=k, replicate=r, **mri_heads.top_heads(a["ablation"])[
        ["target", "roc_auc", "delta_auc", "delta_pr", "rel_gap"]].to_dict()) for k, items in heads.items()
        for r, a in enumerate(items)])
    res.tables["top_heads"] = top
    layer_abl = res.tables["ablation_targets"]
    layer_abl = layer_abl[(layer_abl["head"] == -1) & (layer_abl.measure == "delta_auc")]
    res.tables["ablation_layers"] = layer_abl
    el = res.tables["entropy_layers"]
    el = el[(el.measure == "entropy") & (el.group == "lesion - healthy")]
    first = next(iter(heads.values()))[0]
    vals |= dict(n_heads=int(sum(v.shape[1] for v in first["received"].values())),
                 layers=", ".join(first["received"]), heads_per_layer=mr.heads,
                 n_carry=int((layer_abl.ci_high < 0).sum()), n_layer_rows=len(layer_abl),
                 n_head_drop=int(((abl["head"] >= 0) & (abl.delta_auc < 0)).sum()),
                 n_head_rows=int((abl["head"] >= 0).sum()),
                 top_line="; ".join(f"{t.kind} r{t.replicate}: {t.target} ({t.delta_auc:+.3f})"
                                    for t in top.itertuples()))
    for r in el.itertuples():
        key = f"{r.kind}_{r.layer.split('.')[0]}"
        vals |= {f"dH_{key}": r.mean, f"dH_{key}_low": r.ci_low, f"dH_{key}_high": r.ci_high}
    for r in layer_abl.itertuples():
        key = f"{r.kind}_{r.layer.split('.')[0]}"
        vals |= {f"dauc_{key}": r.mean, f"dauc_{key}_low": r.ci_low, f"dauc_{key}_high": r.ci_high}
    res.values = vals
    return res
