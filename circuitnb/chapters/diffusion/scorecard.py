"""Chapter 10: every claim of the paper beside our value, with a three-outcome verdict; the paper's audit.

    res = scorecard.run(cfg)
    res.tables["scorecard"]     # id, paper, ours, ci_low, ci_high, unit, verdict, reason, verdict_r0, ...

The measured rows are the ``claims`` tables of the chapters that measure them, read from the registered
claims sources (:mod:`circuitnb.analysis.claim_sources`: the same cached tables the chapters show), so
nothing is typed in. The verdicts are :func:`circuitnb.measures.verdicts.scorecard`'s equivalence tests
against the per-claim margins in ``circuitnb/measures/paper/margins.csv``.
"""
from __future__ import annotations

import pandas as pd

from circuitnb.analysis import claim_sources, convergence
from circuitnb.analysis.claim_rows import labelled_row
from circuitnb.analysis.readings import sensitivity
from circuitnb.chapters import common
from circuitnb.chapters.report import ChapterResult
from circuitnb.core.config import Config
from circuitnb.core.readings import READINGS, chosen
from circuitnb.measures import audit, claims, verdicts

CHAPTER = "10_scorecard"


def measured_rows(cfg: Config) -> pd.DataFrame:
    """Every chapter's measured claim rows (:func:`circuitnb.analysis.claim_sources.measured`, in book order),
    plus the rows that are ours by design."""
    frames = claim_sources.measured(cfg, *common.models_and_sweeps(cfg))
    n = cfg.analysis.n_samples
    by_design = labelled_row(
        "n_per_condition", n, "by design",
        f"a parameter (n_samples): {n} held-out images per model and timestep, on {cfg.run.replicates} models "
        f"per dataset ({min(n, cfg.analysis.n_intervention_samples)} in chapter 6's interventions, "
        "n_intervention_samples); the model is the unit of every dataset contrast")
    return pd.concat([*frames, pd.DataFrame([by_design])], ignore_index=True)


def with_readings(card: pd.DataFrame, sens: pd.DataFrame, picked: dict[str, str]) -> pd.DataFrame:
    """``card`` with the rows of every non-default reading in ``picked`` taken from chapter 12's sensitivity
    table (value, interval, verdict, reason); ``reading`` names it. Each replicate's own verdict exists for
    the default reading only, so those columns read "–" on a swapped row."""
    card = card.assign(reading="")
    replicate_cols = [c for c in card.columns if c.startswith("verdict_r")]
    for quantity, reading in picked.items():
        if reading == READINGS[quantity].default:
            continue
        for r in sens[(sens.undefined == quantity) & (sens.reading == reading)].itertuples():
            at = card.id == r.id
            card.loc[at, ["ours", "ci_low", "ci_high", "verdict"]] = [r.ours, r.ci_low, r.ci_high, r.verdict]
            card.loc[at, "reason"] = f"reading {quantity}={reading}: {r.reason}"
            card.loc[at, "reading"] = f"{quantity}={reading}"
            card.loc[at, replicate_cols] = None
            card.loc[at, "replicates_disagree"] = False     # not judged per replicate under this reading
    return card


@common.cached_chapter()
def run(cfg: Config) -> ChapterResult:
    """Chapter 10: the scorecard (all claim ids), the verdict counts, the margins used and the audit."""
    if (res := common.on_your_model(cfg, CHAPTER)) is not None:
        return res                                  # cannot run on a model of your own: its line says why
    paper, margins = claims.load(), verdicts.load_margins()
    card = verdicts.scorecard(paper, margins, measured_rows(cfg), cfg.analysis.alpha)
    # Chapter 12: a claim whose verdict differs between readings of an undefined quantity is flagged,
    # and the config's `readings` choose which reading's row the scorecard shows.
    sens = sensitivity(cfg, *common.models_and_sweeps(cfg))[0]
    card["flips_across_readings"] = card.id.isin(set(sens.query("flips").id))
    card = with_readings(card, sens, chosen(cfg))
    # Every measured row reads all replicate UNets: a verdict on an unfinished model is not evidence.
    conv = convergence.unet_convergence(cfg)["summary"]
    card["converged"] = conv["all_converged"]
    counts = card.verdict.value_counts().reindex(verdicts.VERDICTS, fill_value=0)
    checks = audit.audit(paper)
    res = ChapterResult(CHAPTER)
    res.tables["scorecard"] = card
    res.tables["counts"] = counts.rename_axis("verdict").reset_index(name="claims")
    res.tables["margins"] = margins
    res.tables["audit"] = checks
    pick = lambda start: checks[checks.check.str.startswith(start)].recomputed.iloc[0]   # noqa: E731
    res.values = {**{f"n_{v.replace(' ', '_')}": int(counts[v]) for v in verdicts.VERDICTS},
                  "n_claims": len(card), "n_disagree": int(card.replicates_disagree.sum()),
                  "n_flips": int(card.flips_across_readings.sum()),
                  "n_models": cfg.run.replicates, "profile": cfg.profile, "seed": cfg.run.seed,
                  "converged_line": conv["line"],
                  "n_audit": len(checks), "n_inconsistent": int((checks.consistent == False).sum()),  # noqa: E712
                  "t4_cc": pick("Table 4 circuit complexity"), "hmax": pick("Table 2: one Hmax"),
                  "div_ratio": pick("§4.8"), "mde": pick("§1.1: the smallest effect"),
                  "power": pick("§1.1: power"), "t3_ranks": pick("Table 3: ranks")}
    return res
