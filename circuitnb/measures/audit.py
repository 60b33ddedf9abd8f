"""The paper's numbers checked against each other (chapter 10's audit); no model is involved.

    audit(claims.load())        # check, paper says, recomputed, consistent

Uses only the paper's reported values: claims.csv and ``paper/audit.csv`` (the
numbers the audit needs beyond the claim list, kept as printed so that "0.80"
stays "0.80"). The heads of Table 2 and the groups of Table 3 are read from the
claim ids, so nothing here names a paper number.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pingouin as pg
from scipy import stats as sps

from circuitnb.measures import claims
from circuitnb.measures.verdicts import minimum_detectable_effect

AUDIT_CSV = claims.PAPER_DATA / "audit.csv"
_IDS = claims.load()["id"]
TABLE2_HEADS = [i[len("head_"):-len("_entropy")] for i in _IDS if i.startswith("head_") and i.endswith("_entropy")]
TABLE3_IDS = [i for i in _IDS if i.startswith("abl_") and i != "abl_baseline_mse"]


def _pooled_d(m1, s1, m2, s2) -> float:
    return (m2 - m1) / np.sqrt((s1 ** 2 + s2 ** 2) / 2)


def audit(paper: pd.DataFrame, n: int | None = None, numbers: str | Path | None = None) -> pd.DataFrame:
    """The paper's numbers checked against each other. Columns: check, paper says, recomputed, consistent.

    Uses only the paper's reported values: ``paper`` (claims.csv) and ``numbers``
    (circuitnb/measures/paper/audit.csv, kept as printed so that "0.80" stays "0.80"); ``n`` defaults to the
    paper's stated N per condition.
    """
    v = paper.set_index("id").paper_value
    sd = paper.set_index("id").paper_sd
    a = pd.read_csv(numbers or AUDIT_CSV, dtype=str).set_index("key").value     # text as printed
    f = a.astype(float)
    n = int(v["n_per_condition"]) if n is None else n
    rows = []
    for s, label in (("cc", "circuit complexity"), ("ent", "attention entropy"),
                     ("fh", "feature hierarchy"), ("ii", "intervention impact")):
        d_rep = f[f"table4_d_{s}"]
        m1, s1, m2, s2 = v[f"t4_{s}_syn"], sd[f"t4_{s}_syn"], v[f"t4_{s}_cel"], sd[f"t4_{s}_cel"]
        d = _pooled_d(m1, s1, m2, s2)
        # The means are printed to 3 decimals: allow each to be off by half a unit of the last digit.
        d_hi = (abs(m2 - m1) + 0.001) / np.sqrt((s1 ** 2 + s2 ** 2) / 2)
        p = sps.ttest_ind_from_stats(m1, s1, n, m2, s2, n, equal_var=False).pvalue
        rows.append(dict(check=f"Table 4 {label}: Cohen's d from the reported means and SDs",
                         paper=f"d = {a[f'table4_d_{s}']}, p {paper.set_index('id').p_value[f't4_{s}_cel']}",
                         recomputed=f"d = {d:.2f} (at most {d_hi:.2f} allowing for rounding), Welch p = {p:.2g} "
                                    f"(n = {n} per group)",
                         consistent=bool(d_hi >= d_rep)))
    for key in TABLE2_HEADS:
        h, s = v[f"head_{key}_entropy"], v[f"head_{key}_spec"]
        rows.append(dict(check=f"Table 2 {key} head: Hmax implied by S = (Hmax - H) / Hmax",
                         paper=f"H = {h}, S = {s}", recomputed=f"Hmax = H / (1 - S) = {h / (1 - s):.2f} bits",
                         consistent=None))
    hm = [v[f"head_{k}_entropy"] / (1 - v[f"head_{k}_spec"]) for k in TABLE2_HEADS]
    rows.append(dict(check="Table 2: one Hmax for all heads (same layer size)", paper="one Hmax implied",
                     recomputed=f"implied Hmax ranges {min(hm):.2f}-{max(hm):.2f} bits",
                     consistent=bool(max(hm) - min(hm) < 0.1)))
    ratio = [v[f"ent_div_{t}"] / v[f"spec_div_{t}"] for t in (100, 300, 600, 900)]
    rows.append(dict(check="§4.8: entropy divergence / specialization divergence should equal Hmax",
                     paper="divergences at t = 100..900", recomputed=f"{', '.join(f'{r:.1f}' for r in ratio)}",
                     consistent=bool(max(ratio) < 1.1 * max(hm) and min(ratio) > 0.9 * min(hm))))
    for key, name in (("texture", "texture-analysis head"), ("semantic", "semantic head")):
        rows.append(dict(check=f"Abstract vs Table 2: {name} entropy",
                         paper=f"abstract {a[f'abstract_{key}_entropy']} +- {a[f'abstract_{key}_entropy_sd']}",
                         recomputed=f"Table 2: {v[f'head_{key}_entropy']} +- {sd[f'head_{key}_entropy']}",
                         consistent=bool(abs(v[f"head_{key}_entropy"] - f[f"abstract_{key}_entropy"]) < 0.02)))
    fc = [v[f"fc_syn_{t}"] for t in (100, 300, 600, 900)]
    rows.append(dict(check="§4.1: synthetic feature complexity 'monotonic increase'",
                     paper="monotonic increase", recomputed=" -> ".join(f"{x}" for x in fc),
                     consistent=bool(np.all(np.diff(fc) > 0))))
    for t in (100, 300, 600, 900):
        c, y = v[f"cc_cel_{t}"], v[f"cc_syn_{t}"]
        lo, hi = (c - 0.0005) / (y + 0.0005), (c + 0.0005) / (y - 0.0005)      # means printed to 3 decimals
        rows.append(dict(check=f"Table 1 t={t}: ratio from the reported means", paper=f"{v[f'cc_ratio_{t}']}",
                         recomputed=f"{c / y:.3f} (rounding allows {lo:.3f}-{hi:.3f})",
                         consistent=bool(lo <= v[f"cc_ratio_{t}"] <= hi)))
    abl = {k: v[k] for k in TABLE3_IDS}
    ranks = pd.Series(abl).rank(ascending=False, method="min").astype(int)
    published = [int(f[f"rank_{k}"]) for k in TABLE3_IDS]
    rows.append(dict(check="Table 3: ranks from the reported impact scores",
                     paper=f"ranks {', '.join(map(str, published))}", recomputed=", ".join(str(r) for r in ranks),
                     consistent=list(ranks) == published))
    impacts = [(v[k] * 100) for k in TABLE3_IDS]
    rows.append(dict(check="Abstract vs Table 3: range of ablation degradation",
                     paper=f"abstract {a['abstract_ablation_lo']}%-{a['abstract_ablation_hi']}%",
                     recomputed=f"Table 3: {min(impacts):.1f}%-{max(impacts):.1f}%",
                     consistent=bool(abs(min(impacts) - f["abstract_ablation_lo"]) < 0.5
                                     and abs(max(impacts) - f["abstract_ablation_hi"]) < 0.5)))
    rows.append(dict(check="Abstract vs §4.8: entropy divergence range",
                     paper=f"abstract {a['abstract_ent_div_lo']}-{a['abstract_ent_div_hi']}",
                     recomputed=f"§4.8: {v['ent_div_900']}-{v['ent_div_100']}",
                     consistent=bool(abs(v["ent_div_900"] - f["abstract_ent_div_lo"]) < 0.001)))
    pct = a["complexity_increase_pct"]
    rows.append(dict(check=f"Abstract vs Table 4: 'CelebA needs {pct}% more circuit complexity'",
                     paper=f"{pct}% (the t=100 ratio)",
                     recomputed=f"over all timesteps, Table 4: {100 * (v['t4_cc_cel'] / v['t4_cc_syn'] - 1):.1f}%",
                     consistent=bool(abs(100 * (v["t4_cc_cel"] / v["t4_cc_syn"] - 1) - float(pct)) < 0.5)))
    d_key = min((k for k in a.index if k.startswith("table4_d_")), key=lambda k: f[k])     # the smallest d
    claimed = f["claimed_power"]
    power = pg.power_ttest(d=f[d_key], n=n, alpha=0.05)
    mde = minimum_detectable_effect(n)
    rows.append(dict(check=f"§1.1: the smallest effect N = {n} per condition detects with 80% power",
                     paper=f"smallest reported d = {a[d_key]}", recomputed=f"minimum detectable d = {mde:.2f}",
                     consistent=bool(mde <= f[d_key])))
    rows.append(dict(check=f"§1.1: power > {a['claimed_power']} with N = {int(v['n_per_condition'])} per condition, "
                           f"for the smallest reported d ({a[d_key]})",
                     paper=f"power > {a['claimed_power']}",
                     recomputed=f"power = {power:.2f}; n for {a['claimed_power']} = "
                     f"{int(np.ceil(pg.power_ttest(d=f[d_key], power=claimed, alpha=0.05)))} per group",
                     consistent=bool(power > claimed)))
    layers, per_layer = int(f["attention_layers"]), int(f["heads_per_layer"])
    rows.append(dict(check=f"§4.3: eight functionally distinct heads vs Table 2's four functions and {layers} x "
                           f"{per_layer} = {layers * per_layer} heads",
                     paper=f"{int(v['n_distinct_heads'])} distinct heads",
                     recomputed=f"Table 2 lists {len(TABLE2_HEADS)} heads with {len(TABLE2_HEADS)} functions",
                     consistent=len(TABLE2_HEADS) == v["n_distinct_heads"]))
    return pd.DataFrame(rows)
