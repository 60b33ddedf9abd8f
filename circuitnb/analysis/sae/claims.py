"""The hybrid VAE-SAE abstract's claims (``circuitnb/measures/paper/claims_sae.csv``) measured, with readings.

    out = claims(cfg, dead, per_model, analyses)     # frames of analysis.sae.common; analyses: all_analyses(cfg)
    out["rows"]                                      # scorecard rows, one per claim id
    card = scorecard(out["rows"], cfg.analysis.alpha)  # verdicts.scorecard against claims_sae / margins_sae
    out["ratios"], out["auxk"], out["revival"], out["readings"]

Our readings of what the abstract leaves open (alternatives computed side by side in ``out["readings"]``):

* **dead rate** "at k = 50": the share of hidden units active on no held-out image (threshold 0,
  the default of ``READINGS["dead_threshold"]``, or the config's ``readings``: :func:`threshold`) at the last
  snapshot (``when = "final"``: after the extension, the model the convergence rule judges); the readings are
  every ``sae.dead_fractions`` threshold, at the last snapshot and at the schedule's end.
  Mean over the ``sae.replicates`` models with a t-interval over them.
* **Shapes3D / dSprites**: dead rate of Shapes3D replicate r over dSprites replicate r, geometric mean over pairs
  with a t-interval on the log scale, the same-data null beside it (:func:`circuitnb.analysis.sae.dead.pair_ratio`).
* **no recovery**: the share of units dead at the schedule's end that are alive at the last snapshot, mean over
  every Top-k and L1 model with any dead unit (the abstract's methods; both sets pooled), t-interval over models.
* the study's size (k from/to, epochs, sets, methods, factors) is ours by design; the reason gives ours.
* beyond the paper, Top-k + AuxK against Top-k at the same k (:func:`circuitnb.analysis.sae.dead.auxk_vs_topk`):
  not a claim of the abstract but a test of its conclusion ("intrinsic to the compression"), reported beside.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from circuitnb.analysis.claim_rows import labelled_row
from circuitnb.analysis.sae.common import epochs, extension_epochs, schedule_end
from circuitnb.analysis.sae.dead import auxk_vs_topk, pair_ratio
from circuitnb.core import readings
from circuitnb.core.config import Config
from circuitnb.measures import claims as claims_mod
from circuitnb.measures import verdicts
from circuitnb.measures.verdicts import Estimate, replicate_ci
from circuitnb.modeling.sae import final_k, sae_data

PAPER = claims_mod.PAPER_DATA / "claims_sae.csv"
MARGINS = claims_mod.PAPER_DATA / "margins_sae.csv"
WHEN = "final"                       # primary reading: at the last snapshot (after the extension)
PAPER_METHODS = ("topk", "l1")       # the abstract's sparsifiers (AuxK is ours)
# READINGS["dead_threshold"] -> what 'dead' means in a scorecard row's reason
_DEAD_MEANING = {"never": "active on no held-out image", "rare": "active on fewer than 1% of the held-out images"}


def paper() -> pd.DataFrame:
    return claims_mod.load(str(PAPER))


def margins() -> pd.DataFrame:
    return verdicts.load_margins(str(MARGINS))


def threshold(cfg: Config) -> float:
    """The firing-rate threshold of the config's reading of 'dead' (``READINGS["dead_threshold"]``; default 0)."""
    return readings.value(cfg, "dead_threshold")


def dead_values(dead: pd.DataFrame, method: str, dataset: str, threshold: float,
                when: str = WHEN) -> np.ndarray:
    """Dead rates of the replicate models of (method, dataset) under one reading, in replicate order."""
    sub = dead[(dead.method == method) & (dead.dataset == dataset) & np.isclose(dead.threshold, threshold)
               & (dead.when == when)]
    return sub.sort_values("replicate").dead_rate.to_numpy()


def ratios(dead: pd.DataFrame, methods, threshold: float, when: str = WHEN,
           level: float = 0.95) -> pd.DataFrame:
    """Shapes3D / dSprites per method (:func:`~circuitnb.analysis.sae.dead.pair_ratio`), one row each."""
    rows = []
    for k in methods:
        r = pair_ratio(dead_values(dead, k, "dsprites", threshold, when), dead_values(dead, k, "shapes3d",
                                                                                      threshold, when), level)
        e = r["estimate"]
        tight = e.ci(2 * level - 1) if np.isfinite(e.mean) else (np.nan, np.nan)
        rows.append(dict(method=k, threshold=threshold, when=when, ratio=e.mean, ci_low=e.low, ci_high=e.high,
                         eq_low=tight[0], eq_high=tight[1], null_low=r["null_low"], null_high=r["null_high"],
                         beyond_null=r["beyond_null"], n_pairs=e.n,
                         per_pair=", ".join(f"{v:.3g}" for v in r["per_pair"]), reason=r["reason"]))
    return pd.DataFrame(rows)


def auxk_table(dead: pd.DataFrame, per_model: pd.DataFrame, datasets, threshold: float) -> pd.DataFrame:
    """Top-k + AuxK against Top-k per set (:func:`~circuitnb.analysis.sae.dead.auxk_vs_topk`), one row each."""
    def vals(method, ds, measure):
        sub = per_model[(per_model.method == method) & (per_model.dataset == ds) & (per_model.measure == measure)]
        return sub.sort_values("replicate").value.to_numpy()
    rows = []
    for ds in datasets:
        topk, auxk = dead_values(dead, "topk", ds, threshold), dead_values(dead, "topk_auxk", ds, threshold)
        c = auxk_vs_topk(topk, auxk,
                         vals("topk", ds, "nelbo"), vals("topk_auxk", ds, "nelbo"),
                         vals("topk", ds, "active_per_input"), vals("topk_auxk", ds, "active_per_input"))
        s, r = c["dead_saved"], c["recon_change"]
        rows.append(dict(dataset=ds, dead_topk=float(np.mean(topk)), dead_auxk=float(np.mean(auxk)), dead_saved=s.mean,
                         saved_low=s.low, saved_high=s.high, recon_change=r.mean, recon_low=r.low, recon_high=r.high,
                         sparsity_change=c["sparsity_change"], n_pairs=c["n_pairs"], outcome=c["outcome"],
                         reason=c["reason"]))
    return pd.DataFrame(rows)


def revival_frame(analyses: dict) -> pd.DataFrame:
    """Every model's revival counts per threshold: method, dataset, replicate and the columns of
    :func:`~circuitnb.analysis.sae.dead.revival`."""
    return pd.concat([a["revival"].assign(method=k, dataset=ds, replicate=r)
                      for (k, ds), items in analyses.items() for r, a in enumerate(items)], ignore_index=True)


def _dead_readings(dead: pd.DataFrame, alpha: float, primary: float) -> pd.DataFrame:
    """Every dead-rate claim under every threshold and moment, each judged by the scorecard's rule."""
    p, m = paper().set_index("id"), margins().set_index("id")
    out = []
    for (k, ds) in (("topk", "dsprites"), ("topk", "shapes3d"), ("l1", "dsprites"), ("l1", "shapes3d")):
        cid = f"sae_dead_{k}_{ds}"
        for (t, when), _ in dead.groupby(["threshold", "when"]):
            vals = dead_values(dead, k, ds, t, when)
            if not len(vals):
                continue
            est = replicate_ci(vals, 1 - alpha)
            v = verdicts.equivalence_verdict(float(p.loc[cid, "paper_value"]), est, m.loc[cid, "margin"],
                                             m.loc[cid, "margin_kind"], alpha=alpha, claim_id=cid)
            out.append(dict(id=cid, threshold=t, when=when, primary=bool(np.isclose(t, primary) and when == WHEN),
                            paper=float(p.loc[cid, "paper_value"]), ours=est.mean, ci_low=est.low,
                            ci_high=est.high, n=est.n, verdict=v.label))
    return pd.DataFrame(out)


def claims(cfg: Config, dead: pd.DataFrame, per_model: pd.DataFrame, analyses: dict) -> dict:
    """Every claim of the abstract from the per-model frames; see the module docstring for the readings."""
    s, alpha, tau = cfg.sae, cfg.analysis.alpha, threshold(cfg)
    methods = [k for k in PAPER_METHODS if k in s.methods]
    both = {"dsprites", "shapes3d"} <= set(s.datasets)
    rat = ratios(dead, methods, tau, level=1 - alpha) if both else pd.DataFrame()
    rat_readings = (pd.concat([ratios(dead, methods, t, w, 1 - alpha) for t in sorted(set(dead.threshold))
                               for w in ("final", "schedule end")], ignore_index=True) if both else pd.DataFrame())
    auxk = (auxk_table(dead, per_model, s.datasets, tau) if {"topk", "topk_auxk"} <= set(s.methods)
            else pd.DataFrame())
    rev = revival_frame(analyses)
    rows = _design_rows(cfg)
    for k in methods:
        for ds in s.datasets:
            vals = dead_values(dead, k, ds, tau)
            rows.append(verdicts.measured_row(
                f"sae_dead_{k}_{ds}", replicate_ci(vals, 1 - alpha), alpha=alpha, unit="fraction of units",
                reason=(f"{_DEAD_MEANING[readings.chosen(cfg)['dead_threshold']]} at the last snapshot "
                        f"(step {s.steps}, k = "
                        f"{final_k(s.hidden, s.active_fraction)} of {s.hidden}); per model: "
                        + ", ".join(f"{v:.3g}" for v in vals))))
    for r in rat.itertuples() if len(rat) else ():
        est = Estimate(r.ratio, r.ci_low, r.ci_high, int(r.n_pairs), 1 - alpha,
                       more=((1 - 2 * alpha, r.eq_low, r.eq_high),))
        rows.append(verdicts.measured_row(
            f"sae_ratio_{r.method}", est, alpha=alpha, unit="ratio",
            reason=r.reason or (f"over {r.n_pairs} replicate pairs ({r.per_pair}); same-data null "
                                f"[{r.null_low:.3g}, {r.null_high:.3g}], beyond it: {bool(r.beyond_null)}")))
    prim = rev[np.isclose(rev.threshold, tau) & rev.method.isin(methods)]
    shares = prim.revived_share.to_numpy()
    est = replicate_ci(shares[np.isfinite(shares)], 1 - alpha)
    rows.append(verdicts.measured_row(
        "sae_revived_share", est, alpha=alpha, unit="fraction of dead units",
        reason=(f"dead at the schedule's end (step {schedule_end(cfg)}) and active at the last snapshot, "
                f"{extension_epochs(cfg):.3g} epochs later; {int(prim.n_revived.sum())} of "
                f"{int(prim.n_dead_end.sum())} dead units over {int(np.isfinite(shares).sum())} "
                f"{'/'.join(methods)} models with any dead unit")))
    return dict(rows=rows, ratios=rat, ratio_readings=rat_readings, auxk=auxk, revival=rev,
                readings=_dead_readings(dead, alpha, tau))


def _design_rows(cfg: Config) -> list[dict]:
    s = cfg.sae
    k_end = final_k(s.hidden, s.active_fraction)
    end = schedule_end(cfg)
    n_train = s.n_images - s.n_analysis
    design = {
        "sae_k_start": (s.hidden, f"sae.hidden = {s.hidden} units, all active at step 1"),
        "sae_k_end": (k_end, f"round(sae.active_fraction x sae.hidden) = {k_end}"),
        "sae_activation_reduction": (1 - k_end / s.hidden, f"1 - {k_end} / {s.hidden}"),
        "sae_schedule_epochs": (epochs(cfg, end), f"the decay over {end} steps of {s.batch_size} on {n_train} "
                                                  f"training images"),
        "sae_extension_epochs": (extension_epochs(cfg), f"steps {end + 1}-{s.steps} at the final k, in the same "
                                                        f"run (the extension, scaled with the profile)"),
        "sae_n_datasets": (len(s.datasets), f"sae.datasets: {', '.join(s.datasets)} (drawn stand-ins)"),
        "sae_n_methods": (len([k for k in PAPER_METHODS if k in s.methods]),
                          f"sae.methods: {', '.join(s.methods)} (topk_auxk is ours, beyond the paper)"),
    }
    for ds in s.datasets:
        names = sae_data(cfg, ds, "analysis").factor_names
        design[f"sae_factors_{ds}"] = (len(names), f"the drawn {ds}-style set's factors: {', '.join(names)}")
    return [labelled_row(cid, ours, "by design", f"a parameter: {reason}") for cid, (ours, reason) in design.items()]


def scorecard(rows: list[dict], alpha: float = 0.05) -> pd.DataFrame:
    """Every claim of ``claims_sae.csv`` with our value and its verdict (:func:`circuitnb.measures.verdicts.
    scorecard`, margins of ``margins_sae.csv``)."""
    return verdicts.scorecard(paper(), margins(), rows, alpha)
