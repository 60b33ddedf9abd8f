"""The paper's numeric claims beside ours, with a verdict each (chapter 10, and every chapter's tables).

    paper = load()                                  # measures/paper/claims.csv: the paper's numbers, not ours
    card = scorecard(measured, paper)               # one row per claim id: paper, ours, CI, verdict, why

``measured`` rows come from the chapters' experiment functions, built with
:func:`row`. Verdict rules (stated once, here):

* ``value`` rows: **reproduced** when the paper's value lies inside our 95% CI
  or within ``TOLERANCE`` (10%) of our estimate; otherwise **contradicted**.
  Two refinements keep the tolerance honest: a row with ``complement`` (e.g.
  100 for accuracies near 100%) is compared on ``complement - value`` (the error
  rate), and a row with ``null`` (e.g. 1 for a ratio) is contradicted when our
  CI excludes the null on the other side from the paper's value.
* ``direction`` rows test the claim's qualitative content (e.g. "CelebA differs
  from synthetic, p < 0.001"); **reproduced** when it holds in our data.
* rows marked not comparable carry the reason (usually: the paper never
  defines the quantity, so our number is on another scale).
A claim id with no measured row is "not measured"; the test suite asserts there are none.
"""
from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

TOLERANCE = 0.10
# Package data (importlib.resources), so a non-editable install finds it too.
PAPER_DATA = resources.files("circuitnb.measures") / "paper"      # claims, margins, audit inputs
CLAIMS_CSV = PAPER_DATA / "claims.csv"
VERDICTS = ("reproduced", "contradicted", "not comparable", "not measured")


def load(path: str | Path | None = None) -> pd.DataFrame:
    """The paper's claims (``circuitnb/measures/paper/claims.csv``, copied verbatim from the paper's claim list)."""
    path = Path(path) if path else CLAIMS_CSV
    frame = pd.read_csv(path, dtype={"p_value": str, "note": str})
    frame["p_value"] = frame["p_value"].fillna("")
    frame["note"] = frame["note"].fillna("")
    return frame


def row(claim_id: str, ours: float, ci_low: float = np.nan, ci_high: float = np.nan, *, kind: str = "value",
        holds: bool | None = None, comparable: bool = True, why: str = "", definition: str = "",
        null: float | None = None, complement: float | None = None) -> dict:
    """One measured row for :func:`scorecard`; ``definition`` names the circuitnb function used."""
    if kind not in ("value", "direction"):
        raise ValueError(f"parameter 'kind' = {kind!r}; choose 'value' or 'direction'")
    if kind == "direction" and holds is None:
        raise ValueError(f"{claim_id}: a 'direction' row needs 'holds'")
    if not comparable and not why:
        raise ValueError(f"{claim_id}: say why the row is not comparable")
    return dict(id=claim_id, ours=float(ours), ci_low=float(ci_low), ci_high=float(ci_high), kind=kind,
                holds=holds, comparable=comparable, why=why, definition=definition,
                null=np.nan if null is None else float(null),
                complement=np.nan if complement is None else float(complement))


def known(rows, paper: pd.DataFrame | None = None) -> list[dict]:
    """The rows whose id the paper has (a chapter run at other timesteps measures rows it does not)."""
    ids = set((load() if paper is None else paper)["id"])
    return [r for r in rows if r["id"] in ids]


def _verdict(r) -> str:
    if not r.comparable:
        return "not comparable"
    if r.kind == "direction":
        return "reproduced" if r.holds else "contradicted"
    paper, ours, lo, hi = r.paper_value, r.ours, r.ci_low, r.ci_high
    if np.isfinite(r.null) and np.isfinite(lo) and not lo <= r.null <= hi \
            and np.sign(paper - r.null) != np.sign(ours - r.null):
        return "contradicted"                       # the effect points the other way
    if np.isfinite(r.complement):                    # compare error rates, not near-ceiling percentages
        paper, ours, lo, hi = r.complement - paper, r.complement - ours, r.complement - hi, r.complement - lo
    inside = np.isfinite(lo) and lo <= paper <= hi
    close = abs(ours - paper) <= TOLERANCE * abs(paper) if paper != 0 else ours == 0
    return "reproduced" if inside or close else "contradicted"


def scorecard(measured, paper: pd.DataFrame | None = None) -> pd.DataFrame:
    """Every claim of the paper with our value, CI and verdict (one row per claim id, paper order)."""
    paper = load() if paper is None else paper
    m = pd.DataFrame(list(measured)) if not isinstance(measured, pd.DataFrame) else measured
    unknown = sorted(set(m["id"]) - set(paper["id"]))
    if unknown:
        raise ValueError(f"measured rows for claim ids the paper does not have: {unknown}")
    if m["id"].duplicated().any():
        raise ValueError(f"claim ids measured twice: {sorted(m.loc[m['id'].duplicated(), 'id'])}")
    card = paper.merge(m, on="id", how="left")
    card["verdict"] = [("not measured" if pd.isna(r.kind) else _verdict(r)) for r in card.itertuples()]
    return card[["id", "section", "quantity", "dataset", "timestep", "paper_value", "paper_sd", "p_value",
                 "ours", "ci_low", "ci_high", "verdict", "why", "definition"]]


def table(rows, paper: pd.DataFrame | None = None) -> pd.DataFrame:
    """A chapter's claims: the paper's value beside ours with the verdict, for the ids in ``rows`` only."""
    ids = [r["id"] for r in rows]
    cols = ["id", "quantity", "paper_value", "paper_sd", "ours", "ci_low", "ci_high", "verdict"]
    if not known(rows, paper):
        return pd.DataFrame(columns=cols)
    card = scorecard(known(rows, paper), paper)
    card = card[card["id"].isin(ids)]
    return card[cols].reset_index(drop=True)


def by_timestep(paper: pd.DataFrame, prefix: str) -> dict:
    """The paper's per-timestep series for one quantity: ``{dataset: {t: value}}`` (ids ``prefix_xxx_t``)."""
    out: dict = {}
    for r in paper[paper["id"].str.startswith(prefix + "_")].itertuples():
        if r.dataset in ("synthetic", "celeba") and pd.notna(r.timestep):
            out.setdefault(r.dataset, {})[int(r.timestep)] = float(r.paper_value)
    return out
