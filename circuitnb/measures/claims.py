"""The paper's numeric claims, as the paper states them (its numbers, never ours).

    paper = load()                              # id, section, quantity, dataset, timestep, paper_value, ...
    rows = known(rows)                          # the measured rows whose claim id the paper has
    series = by_timestep(paper, "acc")          # {dataset: {t: value}}, drawn beside our curves

The verdicts against these numbers are :mod:`circuitnb.measures.verdicts`'s.
"""
from __future__ import annotations

from importlib import resources
from pathlib import Path

import pandas as pd

# Package data (importlib.resources), so a non-editable install finds it too.
PAPER_DATA = resources.files("circuitnb.measures") / "paper"      # claims, margins, audit inputs
CLAIMS_CSV = PAPER_DATA / "claims.csv"


def load(path: str | Path | None = None) -> pd.DataFrame:
    """The paper's claims (``circuitnb/measures/paper/claims.csv``, copied verbatim from the paper's claim list)."""
    frame = pd.read_csv(path or CLAIMS_CSV, dtype={"p_value": str, "note": str})
    frame["p_value"] = frame["p_value"].fillna("")
    frame["note"] = frame["note"].fillna("")
    return frame


def known(rows, paper: pd.DataFrame | None = None) -> list[dict]:
    """The rows whose id the paper has (a chapter run at other timesteps measures rows it does not)."""
    ids = set((load() if paper is None else paper)["id"])
    return [r for r in rows if r["id"] in ids]


def by_timestep(paper: pd.DataFrame, prefix: str) -> dict:
    """The paper's per-timestep series for one quantity: ``{dataset: {t: value}}`` (ids ``prefix_xxx_t``)."""
    out: dict = {}
    for r in paper[paper["id"].str.startswith(prefix + "_")].itertuples():
        if r.dataset in ("synthetic", "celeba") and pd.notna(r.timestep):
            out.setdefault(r.dataset, {})[int(r.timestep)] = float(r.paper_value)
    return out
