"""Chapter 3 (§4.2, Table 1) and chapter 7 (§4.7, Table 4): circuit complexity and the cross-dataset tests."""
from __future__ import annotations

import numpy as np
import pandas as pd

from circuitnb.measures import claims, quantities, stats
from circuitnb.chapters.common import ratio_ci

def circuit_complexity_per_image(sw) -> pd.DataFrame:
    """Circuit complexity (:func:`circuitnb.quantities.circuit_complexity`) per image and t."""
    frames = []
    for t in sw.timesteps:
        cc = quantities.circuit_complexity(sw.head_matrix(t, "energy"))
        frames.append(pd.DataFrame(dict(dataset=sw.dataset, t=t, image=np.arange(len(cc)), value=cc)))
    return pd.concat(frames, ignore_index=True)


def feature_hierarchy_per_image(sw) -> pd.DataFrame:
    """Feature hierarchy (:func:`circuitnb.quantities.feature_hierarchy`) per image and t."""
    frames = []
    for t, g in sw.blocks.groupby("t"):
        wide = g.pivot_table(index="image", columns="block", values="complexity", sort=False)[sw.block_names]
        frames.append(pd.DataFrame(dict(dataset=sw.dataset, t=t, image=wide.index,
                                        value=quantities.feature_hierarchy(wide.to_numpy()))))
    return pd.concat(frames, ignore_index=True)


def entropy_per_image(sw) -> pd.DataFrame:
    """Attention entropy (Eq. 1, bits) per image and t: the mean over all heads."""
    return sw.heads.groupby(["dataset", "t", "image"], as_index=False).entropy.mean().rename(
        columns={"entropy": "value"})


def table1(sweeps: dict, n_bootstrap: int = 2000, seed: int = 0, alpha: float = 0.05) -> pd.DataFrame:
    """Table 1: circuit complexity per t, both datasets, ratio CelebA / synthetic with CI, Welch tests.

    The timesteps form one family for Bonferroni and Holm.
    """
    per = {name: circuit_complexity_per_image(sw) for name, sw in sweeps.items()}
    ts = sweeps["synthetic"].timesteps
    groups = {f"t={t}": (per["synthetic"].query("t == @t").value.to_numpy(),
                         per["celeba"].query("t == @t").value.to_numpy()) for t in ts}
    table = stats.compare_table(groups, alpha=alpha, n_bootstrap=n_bootstrap, seed=seed)
    ratios = [ratio_ci(a, b, n_bootstrap, seed) for a, b in groups.values()]
    table.insert(1, "timestep", list(ts))
    table["ratio"], table["ratio_ci_low"], table["ratio_ci_high"] = zip(*ratios)
    return table


def table1_claims(t1: pd.DataFrame) -> list[dict]:
    rows = []
    why = "our circuit complexity is the share of heads that carry the output (in [1/24, 1]); the paper's scale is undefined"
    for r in t1.itertuples():
        rows.append(claims.row(f"cc_syn_{r.timestep}", r.mean_a, comparable=False, why=why,
                               definition="quantities.circuit_complexity"))
        rows.append(claims.row(f"cc_cel_{r.timestep}", r.mean_b, comparable=False, why=why,
                               definition="quantities.circuit_complexity"))
        rows.append(claims.row(f"cc_ratio_{r.timestep}", r.ratio, r.ratio_ci_low, r.ratio_ci_high, null=1.0,
                               definition="quantities.circuit_complexity (ratio of means, bootstrap CI)"))
    return rows


def intervention_impact_per_image(ivs: pd.DataFrame) -> pd.DataFrame:
    """Table 4 "intervention impact": per image and t, the mean impact (Eq. 5) over the layer-ablation family."""
    sub = ivs[ivs.family == "layer ablation"]
    return sub.groupby(["dataset", "t", "image"], as_index=False).impact.mean().rename(columns={"impact": "value"})


METRICS = {"Circuit Complexity": ("cc", circuit_complexity_per_image),
           "Attention Entropy": ("ent", entropy_per_image),
           "Feature Hierarchy": ("fh", feature_hierarchy_per_image)}


def table4(sweeps: dict, per_image_impacts: pd.DataFrame, n_bootstrap: int = 2000, seed: int = 0,
           alpha: float = 0.05) -> pd.DataFrame:
    """Table 4: each metric pooled over timesteps (images x t per dataset), synthetic vs CelebA.

    Rows: circuit complexity, attention entropy, feature hierarchy, intervention
    impact; one Bonferroni/Holm family. Pooling over t follows the paper's
    "all timesteps"; each image contributes one value per t.
    """
    values = {label: {n: fn(sw).value.to_numpy() for n, sw in sweeps.items()} for label, (_, fn) in METRICS.items()}
    ii = intervention_impact_per_image(per_image_impacts)
    values["Intervention Impact"] = {n: ii[ii.dataset == n].value.to_numpy() for n in sweeps}
    groups = {label: (v["synthetic"], v["celeba"]) for label, v in values.items()}
    return stats.compare_table(groups, alpha=alpha, n_bootstrap=n_bootstrap, seed=seed)


def table4_claims(t4: pd.DataFrame, paper: pd.DataFrame) -> list[dict]:
    short = {"Circuit Complexity": "cc", "Attention Entropy": "ent", "Feature Hierarchy": "fh",
             "Intervention Impact": "ii"}
    p_claim = paper.set_index("id").p_value
    values = paper.set_index("id").paper_value
    rows = []
    for r in t4.itertuples():
        s = short[r.comparison]
        scale_free = s in ("ent", "ii")
        why = "" if scale_free else "our definition's scale is not the paper's (undefined there)"
        rows.append(claims.row(f"t4_{s}_syn", r.mean_a, comparable=scale_free, why=why,
                               definition=f"experiments.complexity.table4 ({r.comparison})"))
        # The CelebA row's claim is the test: CelebA differs from synthetic at the stated p (Bonferroni
        # here), in the direction of the paper's means.
        bound = _p_bound(p_claim[f"t4_{s}_cel"])
        same_way = np.sign(r.mean_b - r.mean_a) == np.sign(values[f"t4_{s}_cel"] - values[f"t4_{s}_syn"])
        rows.append(claims.row(f"t4_{s}_cel", r.mean_b, kind="direction",
                               holds=bool(r.p_bonferroni < bound and same_way),
                               definition=f"Welch t-test, Bonferroni over Table 4 (ours: p = {r.p_bonferroni:.2g}, "
                                          f"d = {r.cohen_d:.2f}; paper: p {p_claim[f't4_{s}_cel']})"))
    return rows


def _p_bound(text: str) -> float:
    text = str(text).strip()
    return float(text.lstrip("<")) if text else 0.05
