"""The MRI abstract's claims (``circuitnb/measures/paper/claims_mri.csv``) measured, with readings, and the
abstract's "modeling uncertainty ... enhancing ... performance" as measured contrasts.

    det = mri_common.detection_frame(cfg)
    out = claims(cfg, det)                     # out["rows"]: scorecard rows; out["readings"]: every reading
    card = scorecard(out["rows"], cfg.analysis.alpha)     # verdicts.scorecard against claims_mri / margins_mri
    contrasts(det)                             # paired differences between models / readings, CI over replicates

Our readings of what the abstract leaves open:

* the AUCs are the *paper's model* (``attention``: attention, MC dropout, heteroscedastic decoder) scored with its
  uncertainty (pixel reading "standardized", slice mean over the brain; :mod:`circuitnb.analysis.mri.common`),
  at *slice level* (lesion against healthy held-out slices); every other reading (plain error, 99th percentile,
  pixel level) is in ``out["readings"]``. Mean over the ``mri.replicates`` models, t-interval over them.
* on the phantom (``mri.root`` empty) the rows are "not comparable": the stand-in's lesions, contrasts and
  share of lesion slices are not BraTS2020's, so its AUC says nothing about the paper's number; with a BraTS
  folder they are judged by the book's rule (margins in ``margins_mri.csv``).
* "uncertainty helps" (:data:`CONTRASTS`): replicate r of every kind shares its seed, so differences are paired
  by replicate; "helps" when the 95% CI of the difference is above 0, "hurts" when below, else "no difference
  shown" (undefined with one replicate).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from circuitnb.analysis.mri.common import PIXEL_READING, SLICE_READING, primary
from circuitnb.core.config import Config
from circuitnb.measures import claims as claims_mod
from circuitnb.measures import verdicts
from circuitnb.measures.verdicts import replicate_ci
from circuitnb.modeling.mri import mri_split

PAPER = claims_mod.PAPER_DATA / "claims_mri.csv"
MARGINS = claims_mod.PAPER_DATA / "margins_mri.csv"
PAPER_KIND = "attention"
CLAIM_MEASURES = {"mri_roc_auc": "slice_roc_auc", "mri_pr_auc": "slice_pr_auc"}
# (name, (kind, pixel reading) of a, of b, what a - b > 0 would mean)
CONTRASTS = (
    ("uncertainty weighting", ("attention", "standardized"), ("attention", "error"),
     "the paper's model scored with its uncertainty beats its own plain error"),
    ("Bayesian against deterministic", ("attention", "standardized"), ("non_bayesian", "error"),
     "MC dropout and a heteroscedastic decoder beat the same attention VAE without them"),
    ("attention against none", ("attention", "standardized"), ("no_attention", "standardized"),
     "attention layers beat the same Bayesian VAE without them"),
)
CONTRAST_MEASURES = ("slice_roc_auc", "slice_pr_auc", "pixel_roc_auc", "dice")


def paper() -> pd.DataFrame:
    return claims_mod.load(str(PAPER))


def margins() -> pd.DataFrame:
    return verdicts.load_margins(str(MARGINS))


def _values(det: pd.DataFrame, kind: str, measure: str, pixel: str = PIXEL_READING,
            slice_: str = SLICE_READING) -> pd.Series:
    sub = primary(det[det.kind == kind], measure, pixel, slice_)
    return sub.set_index("replicate").value.sort_index()


def outcome(est) -> str:
    """"helps" / "hurts" / "no difference shown" / "undefined" for a paired difference's estimate."""
    if not np.isfinite(est.low):
        return "undefined"
    return "helps" if est.low > 0 else "hurts" if est.high < 0 else "no difference shown"


def contrasts(det: pd.DataFrame, alpha: float = 0.05) -> pd.DataFrame:
    """One row per contrast of :data:`CONTRASTS` and measure: mean paired difference a - b over replicates, its
    (1 - alpha) CI, the per-replicate differences and the outcome (:func:`outcome`). Kinds not trained are left
    out."""
    rows = []
    kinds = set(det.kind)
    for name, (ka, pa), (kb, pb), meaning in CONTRASTS:
        if not {ka, kb} <= kinds:
            continue
        for measure in CONTRAST_MEASURES:
            a, b = _values(det, ka, measure, pa), _values(det, kb, measure, pb)
            diff = (a - b).dropna()
            est = replicate_ci(diff.to_numpy(), 1 - alpha)
            rows.append(dict(contrast=name, measure=measure, a=f"{ka} ({pa})", b=f"{kb} ({pb})",
                             mean_a=float(a.mean()), mean_b=float(b.mean()), difference=est.mean,
                             ci_low=est.low, ci_high=est.high, n_pairs=est.n,
                             per_pair=", ".join(f"{v:+.3g}" for v in diff), outcome=outcome(est), meaning=meaning))
    return pd.DataFrame(rows)


def stand_in_reason(cfg: Config) -> str:
    """Why a phantom AUC is not the paper's ("" with a BraTS folder)."""
    if cfg.mri.root:
        return ""
    return ("measured on the procedural phantom, a stand-in for BraTS2020 (mri.root is empty): its lesions, "
            "contrasts and share of lesion slices are drawn, not BraTS's, so the AUC is not the paper's quantity")


def _reading_rows(cfg: Config, det: pd.DataFrame, alpha: float) -> pd.DataFrame:
    p, m = paper().set_index("id"), margins().set_index("id")
    why = stand_in_reason(cfg)
    out = []
    for cid, measure in CLAIM_MEASURES.items():
        level = measure.split("_", 1)[1]
        for g, sub in det[(det.kind == PAPER_KIND) & det.measure.str.endswith(level)].groupby(
                ["measure", "pixel_reading", "slice_reading"], sort=False):
            est = replicate_ci(sub.sort_values("replicate").value.to_numpy(), 1 - alpha)
            v = verdicts.labelled("not comparable", why, cid) if why else verdicts.equivalence_verdict(
                float(p.loc[cid, "paper_value"]), est, m.loc[cid, "margin"], m.loc[cid, "margin_kind"], alpha=alpha,
                claim_id=cid)
            out.append(dict(id=cid, measure=g[0], pixel_reading=g[1], slice_reading=g[2],
                            primary=bool(g[0] == measure and g[1] == PIXEL_READING and g[2] == SLICE_READING),
                            paper=float(p.loc[cid, "paper_value"]), ours=est.mean, ci_low=est.low, ci_high=est.high,
                            n=est.n, verdict=v.label))
    return pd.DataFrame(out)


def claims(cfg: Config, det: pd.DataFrame) -> dict:
    """Every claim of the abstract from :func:`circuitnb.analysis.mri.common.detection_frame` (readings of the
    module docstring): ``rows`` (scorecard rows), ``readings`` (each AUC under every reading and level)."""
    alpha = cfg.analysis.alpha
    held = mri_split(cfg).heldout
    why = stand_in_reason(cfg)
    n_les, n = int(held.lesion.sum()), len(held.lesion)
    rows = []
    for cid, measure in CLAIM_MEASURES.items():
        vals = _values(det, PAPER_KIND, measure)
        est = replicate_ci(vals.to_numpy(), 1 - alpha)
        base = (f"slice level, the {PAPER_KIND} model scored by {PIXEL_READING} error averaged over the brain; "
                f"{n_les} lesion of {n} held-out slices (chance PR AUC {n_les / max(n, 1):.3g}); per model: "
                + ", ".join(f"{v:.3g}" for v in vals))
        rows.append(verdicts.measured_row(cid, est, alpha=alpha, unit="AUC", label="not comparable" if why else None,
                                          reason=f"{why}; ours: {base}" if why else base))
    return dict(rows=rows, readings=_reading_rows(cfg, det, alpha))


def scorecard(rows: list[dict], alpha: float = 0.05) -> pd.DataFrame:
    """Every claim of ``claims_mri.csv`` with our value and its verdict (:func:`circuitnb.measures.verdicts.
    scorecard`, margins of ``margins_mri.csv``)."""
    return verdicts.scorecard(paper(), margins(), rows, alpha)
