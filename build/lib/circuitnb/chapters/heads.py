"""Chapter 4 (§4.3, Table 2, Fig. 4) and chapter 8 (§4.8, Fig. 9): every head, its function, and divergence."""
from __future__ import annotations

import numpy as np
import pandas as pd

from circuitnb.interventions import circuits
from circuitnb.measures import claims, head_functions, metrics, quantities
from circuitnb import data
from circuitnb.core import results
from circuitnb.core.config import Config
from circuitnb.chapters.common import analysis_images

TABLE2 = {"edge": "edge detection", "global": "global structure", "texture": "texture analysis",
          "semantic": "semantic integration"}


def head_table(sw, t: int) -> pd.DataFrame:
    """Entropy (Eq. 1) and specialization (Eq. 2) of every head at t: mean and SD over images."""
    g = sw.heads[sw.heads.t == t].groupby("head_id", sort=False)
    out = g.agg(entropy=("entropy", "mean"), entropy_sd=("entropy", "std"), specialization=("specialization", "mean"),
                specialization_sd=("specialization", "std"), n=("image", "size"))
    return out.reset_index().rename(columns={"head_id": "head"})


def importance(cfg: Config, models: dict, t: int) -> pd.DataFrame:
    """Head importance (:func:`circuitnb.circuits.head_importance`) of each model at t (cached)."""
    frames = []
    for name, m in models.items():
        x0 = analysis_images(cfg, name)
        f = results.cached(cfg, "head_importance", m,
                           lambda: circuits.head_importance(m.unet, m.scheduler, x0, t, seed=cfg.run.seed), t=t)
        frames.append(f.assign(dataset=name))
    return pd.concat(frames, ignore_index=True)


def functions(cfg: Config, sw, t: int, n_permutations: int = 1000) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Score every head of one model at t against each function (:mod:`circuitnb.head_functions`).

    The semantic target needs part labels, so it exists for the synthetic data only.
    Returns (scores: one row per head and function, labels: one row per head).
    """
    x0 = analysis_images(cfg, sw.dataset)
    labels = data.analysis_labels(cfg)[: len(x0)] if sw.dataset == "synthetic" else None
    targets = head_functions.function_targets(x0, labels, sw.grid)
    received = np.concatenate([sw.received[(t, layer)] for layer in sw.layers], 1)   # [N, all heads, K]
    n_keys = received.shape[-1]
    uniformity = sw.head_matrix(t, "entropy") / metrics.max_entropy(n_keys)
    scores = head_functions.score_heads(received, targets, uniformity, sw.head_ids, n_permutations=n_permutations,
                                        seed=cfg.run.seed, alpha=cfg.analysis.alpha)
    return scores, head_functions.assign_functions(scores)


def inter_head_correlation(sw, t: int) -> pd.DataFrame:
    """Pearson correlation between heads of their per-image entropies at t (Fig. 4c)."""
    m = sw.head_matrix(t, "entropy")
    return pd.DataFrame(np.corrcoef(m, rowvar=False), index=sw.head_ids, columns=sw.head_ids)


def table2_claims(heads: pd.DataFrame, labels: pd.DataFrame, imp: pd.DataFrame) -> list[dict]:
    """Table 2 rows: for each function, the head of ours that carries that tested label (highest score).

    ``heads`` from :func:`head_table`, ``labels`` from :func:`functions`, ``imp``
    from :func:`importance` (one model's rows), all for the synthetic model at t = 300.
    """
    rows = []
    labelled = labels.dropna(subset=["score"]).sort_values("score", ascending=False)
    for key, func in TABLE2.items():
        hit = labelled[labelled.function == func]
        if hit.empty:
            why = f"no head of ours passes the '{func}' test (Bonferroni, alpha 0.05)"
            for q in ("entropy", "spec", "importance"):
                rows.append(claims.row(f"head_{key}_{q}", np.nan, comparable=False, why=why,
                                       definition="head_functions.assign_functions"))
            continue
        head = hit.iloc[0]["head"]
        h = heads.set_index("head").loc[head]
        se_e, se_s = h.entropy_sd / np.sqrt(h.n), h.specialization_sd / np.sqrt(h.n)
        note = f"our head {head}"
        rows.append(claims.row(f"head_{key}_entropy", h.entropy, h.entropy - 1.96 * se_e, h.entropy + 1.96 * se_e,
                               definition=f"metrics.attention_entropy; {note}"))
        rows.append(claims.row(f"head_{key}_spec", h.specialization, h.specialization - 1.96 * se_s,
                               h.specialization + 1.96 * se_s, definition=f"metrics.specialization; {note}"))
        rows.append(claims.row(f"head_{key}_importance", imp.set_index("head").loc[head, "importance"],
                               definition=f"circuits.head_importance; {note}"))
    return rows


def distinct_heads_claim(labels_by_dataset: dict) -> dict:
    """How many heads carry a tested function label (either model)."""
    n = max(int((lab.function != "unassigned").sum()) for lab in labels_by_dataset.values())
    return claims.row("n_distinct_heads", n, definition="head_functions.assign_functions (heads with a tested label)")


def divergence_table(sweeps: dict) -> pd.DataFrame:
    """Entropy and specialization divergence (:func:`circuitnb.quantities.divergence`) per t."""
    syn, cel = sweeps["synthetic"], sweeps["celeba"]
    rows = []
    for t in syn.timesteps:
        rows.append(dict(t=t, entropy_divergence=quantities.divergence(syn.head_matrix(t), cel.head_matrix(t)),
                         specialization_divergence=quantities.divergence(syn.head_matrix(t, "specialization"),
                                                                         cel.head_matrix(t, "specialization"))))
    return pd.DataFrame(rows)


def divergence_claims(div: pd.DataFrame) -> list[dict]:
    rows = []
    for r in div.itertuples():
        rows.append(claims.row(f"ent_div_{r.t}", r.entropy_divergence, definition="quantities.divergence (bits)"))
        rows.append(claims.row(f"spec_div_{r.t}", r.specialization_divergence, definition="quantities.divergence"))
    return rows
