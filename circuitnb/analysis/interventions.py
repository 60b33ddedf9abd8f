"""§4.6, Table 3: every intervention family swept over the analysed timesteps, per replicate model.

    ivs = replicate_sweeps(cfg, models)          # per image: dataset, replicate, t, name, ..., mse_base, mse_int
    summ = summary(ivs, cfg.analysis.n_bootstrap, cfg.run.seed)    # Eq. 5 on mean MSEs per model, with its CI
    t3 = table3(summ, table_t(cfg))               # Table 3: mean over models, t-interval over models

The model is the unit. A replicate model's impact of one intervention is Eq. 5 on its mean MSEs over the
held-out images (the paper's Table 3 divides mean MSEs: ablated / baseline - 1); a table shows the mean over
models with a t-interval over models (:func:`circuitnb.analysis.replicates.across_replicates`), and each
model's own interval (a paired bootstrap over its images) carries that model's verdict in the scorecard.
Chapters 6, 7, 9, 11 and 12 read these sweeps.
"""
from __future__ import annotations

import functools

import numpy as np
import pandas as pd
from scipy import stats as sps
from tqdm.auto import tqdm

from circuitnb.analysis import replicates
from circuitnb.analysis.claim_rows import claim_row
from circuitnb.analysis.convergence import heldout_images
from circuitnb.analysis.model_stats import EQ, image_bootstrap, over_models
from circuitnb.core import results
from circuitnb.core.config import Config
from circuitnb.core.readings import READINGS
from circuitnb.hooking.sites import groups, site_names
from circuitnb.interventions.impact import impacts
from circuitnb.interventions.registry import Intervention
from circuitnb.measures import claims, stats
from circuitnb.measures.metrics import impact_score

SCALES = (0.5, 1.5)
ATTENTION = (("uniform", None), ("temperature", 0.5), ("temperature", 2.0), ("noise", 1.0), ("shuffle", None))
TABLE3 = {"enc_early": "abl_enc_early", "enc_middle": "abl_enc_middle", "enc_late": "abl_enc_late",
          "middle": "abl_middle", "dec_early": "abl_dec_early", "dec_middle": "abl_dec_middle",
          "dec_late": "abl_dec_late"}
MODEL = ["dataset", "replicate"]
ABLATION = READINGS["ablation"].default         # Table 3's reading; the others are columns beside it


def intervention_images(cfg: Config, dataset: str) -> np.ndarray:
    """The images chapter 6's interventions run on: the first ``n_intervention_samples`` held-out images
    (:func:`circuitnb.analysis.convergence.heldout_images`; every intervention at every timestep costs one
    forward pass per image)."""
    return heldout_images(cfg, dataset)[: cfg.analysis.n_intervention_samples]


def family(unet) -> dict:
    """The chapter's interventions: name -> (family, target, kind, strength, [Intervention])."""
    out: dict[str, tuple[str, str, str, float | None, list[Intervention]]] = {}
    for g in groups(unet):
        out[f"zero {g}"] = ("layer ablation", g, "zero", None, [Intervention("zero", g)])
        out[f"mean {g}"] = ("mean ablation", g, "mean", None, [Intervention("mean", g)])
        out[f"bypass {g}"] = ("bypass ablation", g, "bypass", None, [Intervention("bypass", g)])
        for s in SCALES:
            out[f"scale {s} {g}"] = ("feature scaling", g, "scale", s, [Intervention("scale", g, s)])
    for layer in site_names(unet, "attn"):
        for kind, strength in ATTENTION:
            name = f"{kind}{'' if strength is None else ' ' + str(strength)} {layer}"
            out[name] = ("attention perturbation", layer, kind, strength, [Intervention(kind, layer, strength)])
    for up in [n for n in site_names(unet, "block") if n.startswith("up")]:
        out[f"cut_skip {up}"] = ("circuit interruption", up, "cut_skip", None, [Intervention("cut_skip", up)])
    if "mid" in site_names(unet, "block"):                 # a UNet2DModel may have no mid block
        out["cut_mid"] = ("circuit interruption", "mid", "cut_mid", None, [Intervention("cut_mid")])
    return out


def _run(model, x0, timesteps, seed: int, progress: bool) -> pd.DataFrame:
    fam = family(model.unet)
    frames = []
    for t in tqdm(list(timesteps), desc="interventions", disable=not progress):
        res = impacts(model.unet, model.scheduler, x0, t, {n: v[4] for n, v in fam.items()}, seed)
        for name, r in res.items():
            fam_name, target, kind, strength, _ = fam[name]
            frames.append(pd.DataFrame(dict(t=int(t), name=name, family=fam_name, target=target, kind=kind,
                                            strength=np.nan if strength is None else strength,
                                            image=np.arange(len(r.per_image_base)), mse_base=r.per_image_base,
                                            mse_int=r.per_image_int,
                                            impact=impact_score(r.per_image_int, r.per_image_base))))
    return pd.concat(frames, ignore_index=True)


def intervention_sweep(cfg: Config, models: dict, progress: bool = False) -> pd.DataFrame:
    """Per-image MSEs and impacts of :func:`family` for one model per dataset at each t (cached).

    Columns: dataset, t, name, family, target, kind, strength, image, mse_base, mse_int, impact.
    Note the per-image impact averages differently from Eq. 5 on mean MSEs; :func:`summary` gives the latter.
    """
    frames = results.each([functools.partial(_interventions, cfg, name, m, progress) for name, m in models.items()])
    return pd.concat([f.assign(dataset=name) for name, f in zip(models, frames)], ignore_index=True)


def _interventions(cfg: Config, dataset: str, m, progress: bool = False, wait: bool = True) -> pd.DataFrame:
    """One model's cached intervention sweep (:func:`intervention_sweep`'s rows, without ``dataset``)."""
    x0 = intervention_images(cfg, dataset)
    return results.cached(cfg, "interventions", m, lambda: _run(m, x0, cfg.analysis.timesteps, cfg.run.seed, progress),
                          timesteps=cfg.analysis.timesteps, data=x0, wait=wait)


def replicate_sweeps(cfg: Config, models: dict[str, list]) -> pd.DataFrame:
    """:func:`intervention_sweep` of every replicate model, with ``dataset`` and ``replicate`` columns."""
    return replicates.per_replicate(models, lambda m, wait=True: _interventions(cfg, m.meta["dataset"], m, wait=wait),
                                    cached=True)


def _eq5(base, intervened, axis=-1):
    return impact_score(intervened.mean(axis), base.mean(axis))          # Eq. 5 on mean MSEs (Table 3)


def summary(ivs: pd.DataFrame, n_bootstrap: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Eq. 5 on each model's mean MSEs per t and intervention, with its image-bootstrap CIs (95% and 90%).

    One row per (dataset[, replicate], t, name); columns as :func:`intervention_sweep` without image, plus
    impact, ci_low, ci_high, eq_low, eq_high, n (images) and est (that
    :class:`circuitnb.measures.verdicts.Estimate`, the model's own verdict in the scorecard).
    """
    keys = [k for k in ("dataset", "replicate", "t", "name") if k in ivs]
    rows = []
    for key, g in ivs.groupby(keys, sort=False):
        est = image_bootstrap(_eq5, (g.mse_base, g.mse_int), n_bootstrap, seed)
        rows.append({**dict(zip(keys, key)), **g.iloc[0][["family", "target", "kind", "strength"]].to_dict(),
                     "mse_base": g.mse_base.mean(), "mse_int": g.mse_int.mean(), "impact": est.mean,
                     "ci_low": est.low, "ci_high": est.high, "eq_low": est.ci(EQ)[0], "eq_high": est.ci(EQ)[1],
                     "n": est.n, "est": est})
    return pd.DataFrame(rows)


def table_t(cfg: Config) -> int:
    """The timestep of Table 3: ``head_t`` when it is analysed, else the nearest analysed timestep."""
    return min(cfg.analysis.timesteps, key=lambda t: (abs(t - cfg.analysis.head_t), t))


def table3(summ: pd.DataFrame, t: int, alpha: float = 0.05, kind: str = ABLATION) -> pd.DataFrame:
    """Table 3 for both datasets: ``kind`` ablation (a reading of READINGS["ablation"]) of each group at t,
    mean over models of each model's baseline MSE, ablated MSE and Eq. 5 impact (t-interval over models);
    the rank of the mean impact (1 = most harmful) beside each model's own ranks; p of a one-sample t-test
    over models (impact = 0), Holm over the table's rows (one family)."""
    sub = summ[(summ.t == t) & (summ.kind == kind)]            # rows by dataset, then replicate
    sub = sub.assign(rank=sub.groupby(MODEL).impact.rank(ascending=False, method="min").astype(int))
    by = ["dataset", "target"]
    extra = sub.groupby(by, sort=False).agg(
        mse_base=("mse_base", "mean"), mse_ablated=("mse_int", "mean"), model_ranks=("rank", replicates.listed),
        p_models=("impact", lambda v: sps.ttest_1samp(v, 0.0).pvalue if len(v) > 1 else np.nan))
    out = over_models(sub, by, "impact").merge(extra.reset_index(), on=by)
    out["rank"] = out.groupby("dataset")["mean"].rank(ascending=False, method="min").astype(int)
    out["p_holm"] = stats.correct(out.p_models.fillna(1.0).to_numpy(), alpha).p_holm.to_numpy()
    return out.rename(columns={"target": "group", "mean": "impact"})[
        ["dataset", "group", "mse_base", "mse_ablated", "impact", "ci_low", "ci_high", "eq_low", "eq_high",
         "per_model", "rank", "model_ranks", "p_models", "p_holm", "n_models", "n_images"]]


def table3_claims(ivs: pd.DataFrame, summ: pd.DataFrame, t3: pd.DataFrame, t: int,
                  kind: str = ABLATION) -> list[dict]:
    """Scorecard rows of Table 3 (synthetic models): the baseline MSE and each group's impact, judged as
    levels, each model's own verdict beside; none when t is not the paper's Table 3 timestep. ``kind``
    names the ablation reading ``t3`` was made with."""
    if t != claims.load().set_index("id").timestep["abl_middle"]:
        return []
    base = ivs[(ivs.t == t) & (ivs.name == ivs.name.iloc[0]) & (ivs.dataset == "synthetic")]
    lv = replicates.across_replicates(base, ["dataset"], "mse_base").iloc[0]
    rows = [claim_row("abl_baseline_mse", replicates.estimate(lv),
                      replicates.image_estimates(base, ["dataset"], "mse_base")[("synthetic",)], unit="MSE",
                      reason="noise-prediction MSE of the intact model, mean over models")]
    own = summ[(summ.t == t) & (summ.kind == kind) & (summ.dataset == "synthetic")]      # by replicate
    for _, r in t3[(t3.dataset == "synthetic") & t3.group.isin(list(TABLE3))].iterrows():
        rows.append(claim_row(
            TABLE3[r["group"]], replicates.estimate(r.rename({"impact": "mean"})),
            list(own[own.target == r["group"]].est), unit="Eq. 5",
            reason=f"{kind} ablation ({READINGS['ablation'].options[kind]}), rank {r['rank']} of {len(TABLE3)} "
                   f"(per model: {r['model_ranks']})"))
    return rows
