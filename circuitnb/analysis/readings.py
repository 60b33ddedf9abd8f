"""Every named reading of the paper's undefined quantities, judged, and which verdicts flip between them.

    table, classified = sensitivity(cfg, models, sweeps)   # claim x reading: value, verdict, flips (cached)
    BY_QUANTITY["ife"](cfg, models, sweeps, h)             # the IFE claims under each reading of Eq. 4

Each reading (:data:`circuitnb.core.readings.READINGS`) is computed from the same cached models,
sweeps and intervention grid as the chapter that owns the quantity; only the after-``to_out`` head
energies need one extra recording pass (:mod:`circuitnb.analysis.head_energies`). Verdicts come from
:func:`circuitnb.measures.verdicts.scorecard` with the claim's own margin, so the default reading's row is
the scorecard's row. Chapter 12 shows the table; the scorecard (chapter 10) flags the claims that flip and
swaps in the rows of the readings the config chooses.
"""
from __future__ import annotations

from typing import Callable

import pandas as pd

from circuitnb.analysis import complexity, divergence, heads, information_flow, interventions
from circuitnb.analysis.claim_sources import cached_on_models
from circuitnb.analysis.head_energies import complexity_per_image
from circuitnb.core.config import Config
from circuitnb.core.readings import READINGS, options
from circuitnb.measures import claims, head_functions, verdicts

COLUMNS = ["id", "quantity", "undefined", "reading", "default", "ours", "ci_low", "ci_high", "unit", "paper",
           "verdict", "flips", "reason"]


# --- verdicts of one reading's rows ------------------------------------------------------------------
def judged(rows: list[dict], undefined: str, reading: str, paper_from: dict | None = None) -> pd.DataFrame:
    """Scorecard verdicts of measured ``rows`` under one reading; ``paper_from`` maps a claim id to another
    claim whose paper value (and margin) it is judged against, e.g. H / Hmax against 1 - S (see
    :func:`entropy_rows`). Columns as :data:`COLUMNS` without flips."""
    if not rows:
        return pd.DataFrame(columns=[c for c in COLUMNS if c != "flips"])
    paper, margins = claims.load(), verdicts.load_margins()
    ids = [r["id"] for r in rows]
    paper, margins = paper[paper.id.isin(ids)].copy(), margins[margins.id.isin(ids)].copy()
    for cid, (other, fn) in (paper_from or {}).items():
        src = claims.load().set_index("id").paper_value.astype(float)[other]
        paper.loc[paper.id == cid, "paper_value"] = fn(src)
        m = verdicts.load_margins().set_index("id").loc[other]
        margins.loc[margins.id == cid, ["margin", "margin_kind"]] = [m.margin, m.margin_kind]
    sc = verdicts.scorecard(paper, margins, rows)
    quantity = claims.load().set_index("id").quantity
    return pd.DataFrame(dict(id=sc.id, quantity=sc.id.map(quantity), undefined=undefined, reading=reading,
                             default=reading == READINGS[undefined].default, ours=sc.ours, ci_low=sc.ci_low,
                             ci_high=sc.ci_high, unit=sc.unit, paper=sc.paper, verdict=sc.verdict, reason=sc.reason))


def flips(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with ``flips``: True on every row of a (claim, undefined quantity) whose verdict differs
    between readings."""
    n = table.groupby(["id", "undefined"]).verdict.transform("nunique")
    return table.assign(flips=n > 1)[COLUMNS]


# --- one block of rows per undefined quantity --------------------------------------------------------
def ablation_rows(cfg: Config, models: dict) -> list[pd.DataFrame]:
    """Table 3's impacts under zero, mean and bypass ablation (chapter 6's cached intervention grid)."""
    ivs = interventions.replicate_sweeps(cfg, models)
    summ = interventions.summary(ivs, cfg.analysis.n_bootstrap, cfg.run.seed)
    t = interventions.table_t(cfg)
    out = []
    for kind in options("ablation"):
        rows = interventions.table3_claims(ivs, summ, interventions.table3(summ, t, cfg.analysis.alpha, kind), t, kind)
        out.append(judged([r for r in rows if r["id"] != "abl_baseline_mse"], "ablation", kind))
    return out


def ife_rows(cfg: Config, models: dict, sweeps: dict) -> list[pd.DataFrame]:
    """The IFE claims under the binned and the kNN reading of Eq. 4 (from the sweeps' first-PC scores)."""
    return [judged(information_flow.ife_claims(information_flow.ife_models(cfg, models, sweeps, r)["ranges"]), "ife", r)
            for r in options("ife")]


def relabelled(tests: pd.DataFrame, uniformity: dict, threshold: float, alpha: float) -> pd.DataFrame:
    """Chapter 4's function tests with the global test redone at ``threshold`` and every head relabelled."""
    out = []
    for (name, r), g in tests.groupby(["dataset", "replicate"], sort=False):
        table = head_functions.with_global_threshold(g.drop(columns="label"), uniformity[(name, r)], threshold,
                                                     alpha)
        label = head_functions.assign_functions(table).set_index("head").function
        out.append(table.assign(label=table["head"].map(label)))
    return pd.concat(out, ignore_index=True)


def global_rule_rows(h: dict, alpha: float) -> list[pd.DataFrame]:
    """Table 2 and the count of distinct heads under each global-head threshold."""
    out = []
    for name in options("global_rule"):
        tests = relabelled(h["tests"], h["uniformity"], head_functions.GLOBAL_THRESHOLDS[name], alpha)
        per_model = heads.heads_per_model(h["per_image"], h["imp"], tests)
        distinct = heads.distinct_heads(per_model)
        rows = heads.table2_claims(heads.table2_matches(tests), per_model, h["per_image"])
        out.append(judged(rows + [heads.distinct_heads_claim(distinct)], "global_rule", name))
    return out


def global_heads(h: dict, alpha: float) -> pd.DataFrame:
    """The classification under each global-head threshold: per threshold and model, the heads labelled with
    each function and the count of distinct heads (:func:`circuitnb.analysis.heads.distinct_heads`)."""
    counts = []
    for name in options("global_rule"):
        tests = relabelled(h["tests"], h["uniformity"], head_functions.GLOBAL_THRESHOLDS[name], alpha)
        distinct = heads.distinct_heads(heads.heads_per_model(h["per_image"], h["imp"], tests))
        counts.append(distinct.assign(reading=name, threshold=head_functions.GLOBAL_THRESHOLDS[name]))
    return pd.concat(counts, ignore_index=True)


def entropy_rows(h: dict) -> list[pd.DataFrame]:
    """Table 2's head entropies in bits (Eq. 1) and as H / log2 K; the latter judged against the paper's
    own implied H / Hmax = 1 - S (Eq. 2) with the specialization claim's margin."""
    per_model = heads.heads_per_model(h["per_image"], h["imp"], h["tests"])
    matches = heads.table2_matches(h["tests"])
    bits = [r for r in heads.table2_claims(matches, per_model, h["per_image"]) if r["id"].endswith("_entropy")]
    norm = h["per_image"].assign(entropy=h["per_image"].entropy_norm)
    per_norm = per_model.assign(entropy=per_model.entropy_norm)
    rows = [{**r, "unit": "H / log2 K"} for r in heads.table2_claims(matches, per_norm, norm)
            if r["id"].endswith("_entropy")]
    implied = {r["id"]: (r["id"].replace("_entropy", "_spec"), lambda s: 1.0 - s) for r in rows}
    return [judged(bits, "entropy", "bits"), judged(rows, "entropy", "normalised", implied)]


def divergence_rows(cfg: Config, sweeps: dict) -> list[pd.DataFrame]:
    """§4.8's divergences with heads matched by index and by optimal assignment."""
    out = []
    for m in options("head_matching"):
        pairs = divergence.divergence_pairs(sweeps, cfg.analysis.n_bootstrap, cfg.run.seed, matching=m)
        out.append(judged(divergence.divergence_claims(divergence.divergence_table(pairs), pairs), "head_matching", m))
    return out


def complexity_rows(cfg: Config, models: dict) -> list[pd.DataFrame]:
    """Table 1's ratio CelebA / synthetic with head energies taken before and after the output projection."""
    out = []
    for site in options("complexity_site"):
        rows = complexity.table1_claims(complexity_per_image(cfg, models, site))
        out.append(judged([r for r in rows if r["id"].startswith("cc_ratio")], "complexity_site", site))
    return out


# READINGS quantity -> its judged rows, one frame per reading: fn(cfg, models, sweeps, h), h being
# :func:`circuitnb.analysis.heads.head_tests` at ``head_t``. In the sensitivity table's order. The others
# have no Part I claim rows of their own: chapter 12 tests "phases" (segments against a smooth fit), both
# readings of "heads_profile" are the reason text of n_distinct_heads, and "dead_threshold" is Part IV's
# (chapter 41 judges every threshold side by side, analysis.sae.claims).
Rows = Callable[[Config, dict, dict, dict], list[pd.DataFrame]]
BY_QUANTITY: dict[str, Rows] = {
    "ablation": lambda cfg, models, sweeps, h: ablation_rows(cfg, models),
    "ife": lambda cfg, models, sweeps, h: ife_rows(cfg, models, sweeps),
    "global_rule": lambda cfg, models, sweeps, h: global_rule_rows(h, cfg.analysis.alpha),
    "entropy": lambda cfg, models, sweeps, h: entropy_rows(h),
    "head_matching": lambda cfg, models, sweeps, h: divergence_rows(cfg, sweeps),
    "complexity_site": lambda cfg, models, sweeps, h: complexity_rows(cfg, models),
}
NO_ROWS = ("phases", "heads_profile", "dead_threshold")


def sensitivity(cfg: Config, models: dict[str, list], sweeps: dict[str, list]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The sensitivity table (every claim under every reading of :data:`BY_QUANTITY`, with ``flips``) and the
    global-head classification under each threshold (:func:`global_heads`), cached; the scorecard's
    ``flips_across_readings`` comes from here."""
    def compute() -> tuple[pd.DataFrame, pd.DataFrame]:
        h = heads.head_tests(cfg, models, heads.head_sweeps(cfg, models, sweeps), cfg.analysis.head_t)
        blocks = [frame for rows in BY_QUANTITY.values() for frame in rows(cfg, models, sweeps, h)]
        return flips(pd.concat(blocks, ignore_index=True)), global_heads(h, cfg.analysis.alpha)
    return cached_on_models(cfg, "sensitivity", models, compute)
