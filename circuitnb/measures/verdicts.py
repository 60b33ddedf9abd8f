"""Three-outcome verdicts for the paper's claims: reproduced, contradicted or inconclusive.

    est = replicate_ci([2.03, 1.98, 2.05])                  # mean and t-interval over replicate models
    equivalence_verdict(2.0, est, 0.1).label                # "reproduced", "contradicted" or "inconclusive"

The rule is equivalence testing (Lakens 2017, Soc. Psychol. Personal. Sci. 8:355; Lakens, Scheel & Isager
2018). Each claim has a margin m (``circuitnb/measures/paper/margins.csv``), absolute, or relative
(m * |paper|) when its kind is "rel", and an equivalence region R = [paper - m, paper + m]. With alpha = 0.05:

* **reproduced**: our (1 - 2 alpha) CI (90%) lies inside R, a bound exactly on R's edge counting as inside.
  This is the two one-sided tests (TOST) at alpha: both reject "at least m away" exactly when it holds.
* **contradicted**: our (1 - alpha) CI (95%) lies entirely outside R (disjoint from it; touching is not).
* **inconclusive**: otherwise, and whenever our value is NaN or its CI undefined (n = 1 replicate model).

A one-sided CI (a bound at -inf or +inf) is never inside R, so never reproduced; it is contradicted when its
finite bound excludes R. A wide CI is inconclusive however close its centre is to the paper's value.
Two verdicts are set by hand and need a reason: "by design" (a number we fix, not measure, e.g. n per
condition) and "not comparable" (the paper never defines the quantity, so ours is on another scale).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd
import pingouin as pg
from scipy import stats

OUTCOMES = ("reproduced", "contradicted", "inconclusive")
LABELS = ("by design", "not comparable")
VERDICTS = OUTCOMES + LABELS + ("not measured",)
KINDS = ("abs", "rel")
MARGINS_CSV = resources.files("circuitnb.measures") / "paper" / "margins.csv"   # package data
MARGIN_COLUMNS = ["id", "margin", "margin_kind", "unit", "justification"]
_EDGE = 1e-12      # relative slack at R's edges: float rounding (0.1 + 0.2) must not move a bound off the edge


@dataclass(frozen=True)
class Estimate:
    """Our value and its CI: ``Estimate(1.08, 1.05, 1.11, n=3).ci(0.95)`` -> (1.05, 1.11).

    A t-interval (``se``, ``df`` set, as :func:`replicate_ci` makes) gives its CI at any level; an interval
    known only by its bounds (a bootstrap) carries its other levels in ``more``.
    """
    mean: float
    low: float                  # CI at `level`
    high: float
    n: int                      # values behind the mean (replicate models, or images), NaNs not counted
    level: float = 0.95
    se: float = math.nan        # standard error of the mean, for a t-interval
    df: float = math.nan        # its degrees of freedom (n - 1)
    dropped: int = 0            # NaN values left out of n
    more: tuple = ()            # further (level, low, high) triples, e.g. a bootstrap's 90% interval

    def ci(self, level: float) -> tuple[float, float]:
        """(low, high) at ``level``; (nan, nan) when undefined (fewer than 2 values)."""
        for lv, lo, hi in ((self.level, self.low, self.high), *self.more):
            if math.isclose(lv, level):
                return float(lo), float(hi)
        if math.isfinite(self.se) and self.df >= 1:
            half = float(stats.t.ppf(0.5 + level / 2, self.df)) * self.se
            return self.mean - half, self.mean + half
        if self.n < 2:
            return math.nan, math.nan
        raise ValueError(f"no {level:.0%} CI: this estimate has bounds at {self.level:.0%} only; "
                         "give se and df, or the bounds at that level in 'more'")


@dataclass(frozen=True)
class Verdict:
    """One outcome and why: ``Verdict("inconclusive", "CI undefined (n = 1)")``."""
    label: str
    reason: str


@dataclass(frozen=True)
class ReplicateVerdicts:
    """Each replicate model's verdict alone: ``rv.labels`` -> ("reproduced", "inconclusive"), ``rv.disagree``."""
    verdicts: tuple[Verdict, ...]
    labels: tuple[str, ...]
    disagree: bool              # the replicates' verdicts differ: the claim's verdict hangs on which model


def replicate_ci(values: Iterable[float], level: float = 0.95) -> Estimate:
    """Mean and t-interval (n - 1 df) over replicate models: ``replicate_ci([2.03, 1.98, 2.05])``.

    NaN values (a replicate whose measurement failed) are dropped and counted in ``dropped``; ``n`` counts
    the rest, so a table can say on how many models a CI stands. n = 1: the CI is undefined (nan, nan), not
    zero-width; n = 0: the mean is nan as well.
    """
    if not 0 < level < 1:
        raise ValueError(f"parameter 'level' = {level}; choose a number between 0 and 1, e.g. 0.95")
    x = np.asarray(list(values), dtype=float)
    ok, dropped = x[~np.isnan(x)], int(np.isnan(x).sum())
    n = len(ok)
    if n < 2:
        return Estimate(float(ok[0]) if n else math.nan, math.nan, math.nan, n, level, dropped=dropped)
    mean, se = float(ok.mean()), float(ok.std(ddof=1) / math.sqrt(n))
    half = float(stats.t.ppf(0.5 + level / 2, n - 1)) * se
    return Estimate(mean, mean - half, mean + half, n, level, se, n - 1, dropped)


def region(paper: float, margin: float, kind: str = "abs", claim_id: str = "") -> tuple[float, float]:
    """The equivalence region R: ``region(2.0, 0.1)`` -> (1.9, 2.1); "rel" means m = margin * |paper|."""
    name = claim_id or "claim"
    if kind not in KINDS:
        raise ValueError(f"{name}: margin kind {kind!r}; choose 'abs' or 'rel'")
    if not (math.isfinite(paper) and math.isfinite(margin) and margin > 0):
        raise ValueError(f"{name}: paper value {paper}, margin {margin}; both must be finite, the margin positive")
    if kind == "rel" and paper == 0:
        raise ValueError(f"{name}: a relative margin of a paper value of 0 is 0; state an absolute margin")
    m = margin * abs(paper) if kind == "rel" else margin
    return paper - m, paper + m


def _defined(ci: tuple[float, float]) -> bool:
    return not any(math.isnan(b) for b in ci)


def equivalence_verdict(paper: float, ours: Estimate | Sequence[float], margin: float, kind: str = "abs", *,
                        alpha: float = 0.05, wide: Sequence[float] | None = None, claim_id: str = "") -> Verdict:
    """The module's rule: ``equivalence_verdict(2.0, replicate_ci(values), 0.1)``.

    ``ours`` is an :class:`Estimate` (both CIs come from it), or its (1 - 2 alpha) CI as (low, high) with
    the (1 - alpha) CI in ``wide``; a NaN bound makes that CI undefined.
    """
    lo_r, hi_r = region(paper, margin, kind, claim_id)
    where = f"{paper:.4g} ± {(hi_r - lo_r) / 2:.4g}"
    if isinstance(ours, Estimate):
        if math.isnan(ours.mean):
            return Verdict("inconclusive", "our value is NaN")
        tight, wide = ours.ci(1 - 2 * alpha), ours.ci(1 - alpha)
    elif wide is None:
        raise ValueError(f"{claim_id or 'claim'}: give the (1 - alpha) CI as 'wide' beside the (1 - 2 alpha) CI")
    else:
        tight, wide = (float(ours[0]), float(ours[1])), (float(wide[0]), float(wide[1]))
    if any(_defined(ci) and ci[0] > ci[1] for ci in (tight, wide)) or (
            _defined(tight) and _defined(wide) and not wide[0] <= tight[0] <= tight[1] <= wide[1]):
        raise ValueError(f"{claim_id or 'claim'}: CIs {tight} ({1 - 2 * alpha:.0%}) and {wide} ({1 - alpha:.0%}) "
                         "must be ordered (low <= high) and nested")
    t_txt, w_txt = (f"{lv:.0%} CI [{ci[0]:.4g}, {ci[1]:.4g}]" if _defined(ci) else f"{lv:.0%} CI undefined"
                    for lv, ci in ((1 - 2 * alpha, tight), (1 - alpha, wide)))
    slack = _EDGE * max(abs(lo_r), abs(hi_r))
    if _defined(tight) and lo_r - slack <= tight[0] and tight[1] <= hi_r + slack:
        return Verdict("reproduced", f"{t_txt} inside {where}")
    if _defined(wide) and (wide[1] < lo_r - slack or wide[0] > hi_r + slack):
        return Verdict("contradicted", f"{w_txt} outside {where}")
    if not _defined(tight) and not _defined(wide):
        return Verdict("inconclusive", "CI undefined" + (f" (n = {ours.n})" if isinstance(ours, Estimate) else ""))
    return Verdict("inconclusive", f"{t_txt} not inside {where}, and the {1 - alpha:.0%} CI overlaps it"
                   if _defined(tight) else f"{t_txt}; {w_txt} overlaps {where}")


def labelled(label: str, reason: str, claim_id: str = "") -> Verdict:
    """A verdict set by hand: ``labelled("by design", "n is a parameter", "n_per_condition")``."""
    if label not in LABELS:
        raise ValueError(f"{claim_id or 'claim'}: label {label!r}; choose one of {LABELS}")
    if not isinstance(reason, str) or not reason.strip():
        raise ValueError(f"{claim_id or 'claim'}: a {label!r} verdict needs a reason")
    return Verdict(label, reason.strip())


def tost_p(values: Iterable[float], paper: float, margin: float, kind: str = "abs", claim_id: str = "") -> float:
    """TOST p-value of replicate values against the paper's (pingouin.tost, one sample): ``tost_p(values, 2.0, 0.1)``.

    p <= alpha exactly when the (1 - 2 alpha) t-interval of :func:`replicate_ci` is inside R (reproduced);
    NaNs are dropped as there, and fewer than 2 values give nan.
    """
    lo_r, hi_r = region(paper, margin, kind, claim_id)
    x = np.asarray(list(values), dtype=float)
    x = x[~np.isnan(x)]
    if len(x) < 2:
        return math.nan
    return float(pg.tost(x, float(paper), bound=float((hi_r - lo_r) / 2)).at["TOST", "pval"])


def per_replicate_verdicts(paper: float, values_per_replicate: Sequence[Estimate], margin: float, kind: str = "abs",
                           *, alpha: float = 0.05, claim_id: str = "") -> ReplicateVerdicts:
    """Each replicate model judged alone on its image-level CI: ``per_replicate_verdicts(2.0, [e0, e1], 0.1)``.

    Each Estimate must give its CI at 1 - 2 alpha and 1 - alpha (a t-interval, or bounds in ``more``).
    """
    vs = tuple(equivalence_verdict(paper, e, margin, kind, alpha=alpha, claim_id=claim_id)
               for e in values_per_replicate)
    return ReplicateVerdicts(vs, tuple(v.label for v in vs), len({v.label for v in vs}) > 1)


def minimum_detectable_effect(n1: int, n2: int | None = None, alpha: float = 0.05, power: float = 0.80) -> float:
    """Cohen's d a two-sided two-sample t-test detects with ``power``: ``minimum_detectable_effect(100)`` ~ 0.40.

    ``n2 = None``: two groups of ``n1`` each (the paper's "N = 100 per condition").
    """
    if n1 < 2 or (n2 is not None and n2 < 2):
        raise ValueError(f"group sizes {n1}, {n2}: each group needs at least 2 values")
    if n2 is None or n2 == n1:          # pingouin solves power(d) = power for d (a root search)
        return float(pg.power_ttest(d=None, n=n1, power=power, alpha=alpha))
    return float(pg.power_ttest2n(nx=n1, ny=n2, d=None, power=power, alpha=alpha))


def load_margins(path: str | Path | None = None) -> pd.DataFrame:
    """Every claim's equivalence margin: ``load_margins().set_index("id").loc["cc_ratio_100", "margin"]``."""
    frame = pd.read_csv(path or MARGINS_CSV, dtype={"id": str, "margin_kind": str, "unit": str,
                                                    "justification": str})
    if list(frame.columns) != MARGIN_COLUMNS:
        raise ValueError(f"{path or MARGINS_CSV}: columns {list(frame.columns)}; expected {MARGIN_COLUMNS}")
    frame["justification"] = frame["justification"].fillna("").str.strip()
    bad = {"duplicated": frame.id[frame.id.duplicated()], "margin not positive": frame.id[~(frame.margin > 0)],
           "kind not abs/rel": frame.id[~frame.margin_kind.isin(KINDS)],
           "no justification": frame.id[frame.justification == ""]}
    problems = "; ".join(f"{what}: {sorted(ids)}" for what, ids in bad.items() if len(ids))
    if problems:
        raise ValueError(f"{path or MARGINS_CSV}: {problems}")
    return frame


def measured_row(claim_id: str, est: Estimate | None = None, *, alpha: float = 0.05, unit: str = "",
                 label: str | None = None, reason: str = "", replicates: Sequence = ()) -> dict:
    """One measured row for :func:`scorecard`: ``measured_row("cc_ratio_100", replicate_ci(values), unit="ratio")``.

    ``replicates``: each replicate model's verdict (Verdicts or labels): ``per_replicate_verdicts(...).labels``.
    """
    est = est or Estimate(math.nan, math.nan, math.nan, 0)
    tight, wide = est.ci(1 - 2 * alpha), est.ci(1 - alpha)
    return dict(id=claim_id, ours=est.mean, ci_low=wide[0], ci_high=wide[1],
                eq_low=tight[0], eq_high=tight[1], unit=unit, label=label, reason=reason,
                replicates=tuple(getattr(v, "label", v) for v in replicates))


def _row_verdict(paper: float, r: dict, margin: pd.Series, alpha: float) -> Verdict:
    reason = r["reason"] if isinstance(r["reason"], str) else ""
    if isinstance(r["label"], str) and r["label"]:
        return labelled(r["label"], reason, r["id"])
    v = Verdict("inconclusive", "our value is NaN") if math.isnan(r["ours"]) else equivalence_verdict(
        paper, (r["eq_low"], r["eq_high"]), margin.margin, margin.margin_kind, alpha=alpha, claim_id=r["id"],
        wide=(r["ci_low"], r["ci_high"]))
    return Verdict(v.label, f"{v.reason}; {reason}" if reason.strip() else v.reason)


def scorecard(paper: pd.DataFrame, margins: pd.DataFrame, measured, alpha: float = 0.05) -> pd.DataFrame:
    """One row per claim of ``paper``, in its order: ``scorecard(claims.load(), load_margins(), rows)``.

    Columns: id, paper, ours, ci_low, ci_high, unit, verdict, reason, verdict_r0, verdict_r1, ...,
    replicates_disagree. ``measured``: rows of :func:`measured_row` (dicts or a frame); ci_low/ci_high are the
    (1 - alpha) CI, eq_low/eq_high the (1 - 2 alpha) CI (a row without it cannot be reproduced).
    """
    rows = measured.to_dict("records") if isinstance(measured, pd.DataFrame) else [dict(r) for r in measured]
    ids = pd.Series([r["id"] for r in rows], dtype=object)
    marg = margins.set_index("id")
    for problem, bad in (("claim ids measured twice", set(ids[ids.duplicated()])),
                         ("measured rows for claim ids the paper does not have", set(ids) - set(paper["id"])),
                         ("claims without a margin", set(paper["id"]) - set(marg.index))):
        if bad:
            raise ValueError(f"{problem}: {sorted(bad)}")
    by_id, out = {r["id"]: {**measured_row(r["id"]), **r} for r in rows}, []
    for cid, value in zip(paper["id"], paper["paper_value"].astype(float)):
        r, mg = by_id.get(cid), marg.loc[cid]
        v = _row_verdict(value, r, mg, alpha) if r else Verdict("not measured", "no measured row")
        r = r or measured_row(cid)
        reps = r["replicates"] if isinstance(r["replicates"], (list, tuple)) else ()      # NaN in a frame
        reps = tuple(getattr(x, "label", x) for x in reps)
        out.append(dict(id=cid, paper=value, ours=float(r["ours"]), ci_low=float(r["ci_low"]),
                        ci_high=float(r["ci_high"]), unit=r["unit"] if isinstance(r["unit"], str) and r["unit"]
                        else mg.unit, verdict=v.label, reason=v.reason, reps=reps))
    k = max((len(o["reps"]) for o in out), default=0)
    for o in out:
        reps = o.pop("reps")
        o.update({f"verdict_r{i}": reps[i] if i < len(reps) else "" for i in range(k)},
                 replicates_disagree=len(set(reps)) > 1)
    columns = ["id", "paper", "ours", "ci_low", "ci_high", "unit", "verdict", "reason"]
    return pd.DataFrame(out, columns=columns + [f"verdict_r{i}" for i in range(k)] + ["replicates_disagree"])
