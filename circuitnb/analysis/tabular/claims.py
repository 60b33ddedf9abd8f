"""The tabular-VAE abstract's claims (``circuitnb/measures/paper/claims_tabular.csv``) measured, with readings.

    out = comparison(cfg, per, img)          # per-model frames of analysis.tabular.common: tables, shapes VAEs
    out["rows"]                              # scorecard rows, one per claim id we measure or label
    card = scorecard(out["rows"], cfg.analysis.alpha)   # verdicts.scorecard against claims_tabular / margins_tabular
    out["contrast"], out["correlations"], out["holm"], out["holm_readings"]

Our readings of what the abstract leaves open (each stated where it is computed, alternatives side by side):

* (i) "modularity ... lower than their image counterparts": 1 - (tabular / image) of Part II's modularity
  (level-3 patching of the encoder's hidden units), pooled over the architectures that have an image counterpart,
  tabular model r = seed r on every table; CI over seed pairs, beside the same-data null
  (:func:`~circuitnb.analysis.tabular.compare.domain_contrast`).
* (ii) β-VAE CES on tables and on images: ours is on another scale (latent sds, posterior-calibrated), the
  abstract's is not stated, so "not comparable" with that reason; the CES-MSE r is over every tabular model.
* (iii) "CES captures ... statistically significant architecture differences": the reference differences are
  the architecture pairs per table whose held-out negative ELBO differs under Holm-Sidak (:data:`REFERENCE`; MSE and
  AUC as other readings); CES detects one when its own Holm-Sidak test on the same pair and table is significant
  in the same direction. The counts depend on the design (tables, pairs, seeds): "not comparable", ours given.
* (iv) specificity vs downstream AUC: Pearson r over every tabular model.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from circuitnb.analysis.claim_rows import labelled_row
from circuitnb.analysis.tabular.common import SHARED, image_kinds
from circuitnb.analysis.tabular.compare import correlation, detected, domain_contrast, pairwise
from circuitnb.core.config import Config
from circuitnb.measures import claims, verdicts
from circuitnb.measures.verdicts import Estimate, replicate_ci

PAPER = claims.PAPER_DATA / "claims_tabular.csv"
MARGINS = claims.PAPER_DATA / "margins_tabular.csv"
REFERENCE = "nelbo"                                   # (iii): the differences CES should detect
REFERENCES = ("nelbo", "mse", "auc")                  # its readings
SCALE_REASON = ("the abstract gives no scale for CES; ours is the largest posterior-calibrated level-1 effect on a "
                "latent, in that latent's standard deviations, averaged over intervened sources, then over tables")
COUNT_REASON = ("a count of significant differences depends on the design (number of tables, architecture pairs "
                "and seeds per architecture, and what counts as a reference difference); ours: {ours} of {of} "
                "reference differences ({ref}) on {pairs} pairs")


def paper() -> pd.DataFrame:
    return claims.load(str(PAPER))


def margins() -> pd.DataFrame:
    return verdicts.load_margins(str(MARGINS))


def wide(per: pd.DataFrame) -> pd.DataFrame:
    """One row per model (kind, dataset, replicate), one column per measure."""
    return per.pivot_table(index=["kind", "dataset", "replicate"], columns="measure", values="value",
                           dropna=False).reset_index()


def _centred(w: pd.DataFrame, col: str) -> pd.Series:
    return w[col] - w.groupby("dataset")[col].transform("mean")


def _correlations(w: pd.DataFrame) -> list[dict]:
    """(ii) and (iv) under each reading: pooled over models (primary), within tables (each table's mean taken
    out), and with Part II's raw (uncalibrated) CES or specificity."""
    out = []
    for cid, x, y in (("tab_ces_mse_r", "ces", "mse"), ("tab_spec_auc_r", "specificity", "auc")):
        raw = x.replace("ces", "ces_raw") if x == "ces" else "specificity_raw"
        for reading, xs, ys in (("pooled over models", w[x], w[y]),
                                ("within tables", _centred(w, x), _centred(w, y)),
                                (f"pooled, {raw}", w[raw], w[y])):
            c = correlation(xs, ys)
            out.append(dict(id=cid, x=x if "raw" not in reading else raw, y=y, reading=reading,
                            primary=reading == "pooled over models",
                            **{k: v for k, v in c.items() if k != "estimate"}, estimate=c["estimate"]))
    return out


def _reduction(row: pd.Series) -> Estimate:
    """1 - ratio of a domain_contrast row, intervals turned round."""
    return Estimate(1 - row["effect"], 1 - row["ci_high"], 1 - row["ci_low"], int(row["n_pairs"]), 0.95,
                    more=((0.90, 1 - row["eq_high"], 1 - row["eq_low"]),))


def _by_replicate(frame: pd.DataFrame) -> Estimate:
    """Mean over seeds of each seed's mean (over tables), with a t-interval over seeds."""
    return replicate_ci(frame.groupby("replicate").value.mean().to_numpy())


def comparison(cfg: Config, per: pd.DataFrame, img: pd.DataFrame) -> dict:
    """Every comparison of the abstract from the per-model frames; see the module docstring for the readings."""
    t = cfg.tabular
    kinds = image_kinds(cfg)
    shared_tab = per[per.measure.isin(SHARED) & per.kind.isin(kinds)]
    contrast = domain_contrast(shared_tab, img, by=["kind", "measure"])
    pooled = domain_contrast(shared_tab, img, by=["measure"]).assign(kind="all (pooled)")
    per_table = pd.concat([domain_contrast(shared_tab[shared_tab.dataset == ds], img, by=["kind", "measure"])
                           .assign(table=ds) for ds in t.datasets], ignore_index=True)
    w = wide(per)
    corr = _correlations(w)
    tests = {m: pairwise(per, m, alpha=cfg.analysis.alpha, kinds=list(t.kinds)) for m in ("ces", *REFERENCES)}
    found = {ref: detected(tests["ces"], tests[ref]) for ref in REFERENCES}
    rows = _rows(cfg, per, img, pooled, corr, found, w)
    return dict(contrast=pd.concat([contrast, pooled], ignore_index=True), contrast_tables=per_table,
                correlations=pd.DataFrame(corr).drop(columns="estimate"), wide=w,
                holm=found[REFERENCE]["table"], holm_ces=tests["ces"],
                holm_readings=pd.DataFrame([dict(reference=ref, primary=ref == REFERENCE,
                                                 **{k: v for k, v in f.items() if k != "table"})
                                            for ref, f in found.items()]),
                rows=rows, found=found[REFERENCE], corr={(c["id"], c["reading"]): c for c in corr})


def _rows(cfg: Config, per, img, pooled, corr, found, w) -> list[dict]:
    t, rows = cfg.tabular, []
    n_real = sum(ds != "world" for ds in t.datasets)
    design = {
        "tab_n_tabular_sets": (len(t.datasets), f"tabular.datasets: {n_real} real tables and the synthetic world "
                                                    f"({', '.join(t.datasets)})"),
        "tab_n_image_sets": (1, "Part II's shapes benchmark (dSprites-style) is the image side"),
        "tab_n_architectures": (len(t.kinds), f"tabular.kinds: {', '.join(t.kinds)}; "
                                                  f"{len(image_kinds(cfg))} of them also trained on images"),
        "tab_runs_per_architecture": (len(t.datasets) * t.replicates,
                                      f"{len(t.datasets)} tables x {t.replicates} seeds (tabular.replicates)"),
        "tab_seeds_per_run": (t.replicates, "tabular.replicates: seeds per architecture and table"),
        "tab_n_techniques": (3, "posterior-calibrated CES, path-specific activation patching and FGD "
                                "(circuitnb.measures.tabular, circuitnb.interventions.tabular)")}
    for cid, (ours, reason) in design.items():
        rows.append(labelled_row(cid, ours, "by design", f"a parameter: {reason}"))
    mod = pooled[pooled.measure == "modularity"]
    if len(mod):
        r = mod.iloc[0]
        rows.append(verdicts.measured_row(
            "tab_modularity_reduction", _reduction(r), alpha=cfg.analysis.alpha, unit="1 - tabular / image",
            reason=(f"pooled over {', '.join(image_kinds(cfg))}; same-data null of the ratio "
                    f"[{r.null_low:.3g}, {r.null_high:.3g}], beyond it: {bool(r.beyond_null)}")))
    for cid, frame in (("tab_ces_beta_vae_tabular", per), ("tab_ces_beta_vae_image", img)):
        sub = frame[(frame.kind == "beta_vae") & (frame.measure == "ces")]
        if len(sub):
            rows.append(labelled_row(cid, _by_replicate(sub).mean, "not comparable", SCALE_REASON,
                                     unit="latent sd (calibrated)"))
    for c in corr:
        if c["primary"]:
            rows.append(verdicts.measured_row(c["id"], c["estimate"], alpha=cfg.analysis.alpha, unit="Pearson r",
                                              reason=f"over {c['n']} tabular models; p = {c['p']:.3g}"))
    reason = COUNT_REASON.format(ours=found[REFERENCE]["n_detected"], of=found[REFERENCE]["n_reference"],
                                 ref=f"held-out {REFERENCE}", pairs=found[REFERENCE]["n_pairs"])
    rows.append(labelled_row("tab_holm_detected", found[REFERENCE]["n_detected"], "not comparable", reason))
    rows.append(labelled_row("tab_holm_reference", found[REFERENCE]["n_reference"], "not comparable", reason))
    return rows


def scorecard(rows: list[dict], alpha: float = 0.05) -> pd.DataFrame:
    """Every claim of ``claims_tabular.csv`` with our value and its verdict (:func:`circuitnb.measures.verdicts.
    scorecard`, margins of ``margins_tabular.csv``)."""
    return verdicts.scorecard(paper(), margins(), rows, alpha)


def readings_verdicts(corr: pd.DataFrame, alpha: float = 0.05) -> pd.DataFrame:
    """The correlation claims under every reading, each judged by the same rule: which verdicts flip."""
    p, m = paper().set_index("id"), margins().set_index("id")
    out = []
    for r in corr.itertuples():
        est = Estimate(r.r, r.ci_low, r.ci_high, r.n, 1 - alpha, more=((1 - 2 * alpha, r.eq_low, r.eq_high),))
        v = (verdicts.equivalence_verdict(float(p.loc[r.id, "paper_value"]), est, m.loc[r.id, "margin"],
                                          m.loc[r.id, "margin_kind"], alpha=alpha, claim_id=r.id)
             if np.isfinite(r.r) else verdicts.Verdict("inconclusive", "r undefined"))
        out.append(dict(id=r.id, reading=r.reading, paper=float(p.loc[r.id, "paper_value"]), ours=r.r, ci_low=r.ci_low,
                        ci_high=r.ci_high, n=r.n, verdict=v.label, reason=v.reason))
    return pd.DataFrame(out)
