"""Chapter 6 (§4.6, Table 3, Fig. 7): every intervention family by group and timestep, and patching."""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from circuitnb.measures import claims
from circuitnb.core import results
from circuitnb.core.config import Config
from circuitnb.interventions.kinds import Intervention, impacts, paired_inputs, patch_from
from circuitnb.measures.metrics import impact_score
from circuitnb.measures.quantities import ROBUSTNESS_THRESHOLD, circuit_robustness
from circuitnb.hooking.sites import groups, site_names
from circuitnb.chapters.common import analysis_images, mean_ci

SCALES = (0.5, 1.5)
ATTENTION = (("uniform", None), ("temperature", 0.5), ("temperature", 2.0), ("noise", 1.0), ("shuffle", None))
TABLE3 = {"enc_early": "abl_enc_early", "enc_middle": "abl_enc_middle", "enc_late": "abl_enc_late",
          "middle": "abl_middle", "dec_early": "abl_dec_early", "dec_middle": "abl_dec_middle",
          "dec_late": "abl_dec_late"}


def family(unet) -> dict:
    """The chapter's interventions: name -> (family, target, kind, strength, [Intervention])."""
    out = {}
    for g in groups(unet):
        out[f"zero {g}"] = ("layer ablation", g, "zero", None, [Intervention("zero", g)])
        out[f"mean {g}"] = ("mean ablation", g, "mean", None, [Intervention("mean", g)])
        for s in SCALES:
            out[f"scale {s} {g}"] = ("feature scaling", g, "scale", s, [Intervention("scale", g, s)])
    for layer in site_names(unet, "attn"):
        for kind, s in ATTENTION:
            name = f"{kind}{'' if s is None else ' ' + str(s)} {layer}"
            out[name] = ("attention perturbation", layer, kind, s, [Intervention(kind, layer, s)])
    for up in [n for n in site_names(unet, "block") if n.startswith("up")]:
        out[f"cut_skip {up}"] = ("circuit interruption", up, "cut_skip", None, [Intervention("cut_skip", up)])
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
    """Per-image MSEs and impacts of :func:`family` for each model at each t (cached).

    Columns: dataset, t, name, family, target, kind, strength, image, mse_base, mse_int, impact.
    Note the per-image impact averages differently from Eq. 5 on mean MSEs; :func:`summary` reports both.
    """
    frames = []
    for name, m in models.items():
        x0 = analysis_images(cfg, name)
        f = results.cached(cfg, "interventions", m, lambda: _run(m, x0, cfg.analysis.timesteps, cfg.run.seed,
                                                                   progress), timesteps=cfg.analysis.timesteps)
        frames.append(f.assign(dataset=name))
    return pd.concat(frames, ignore_index=True)


def summary(ivs: pd.DataFrame, n_bootstrap: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Eq. 5 on the mean MSEs per (dataset, t, intervention), with a bootstrap 95% CI over images."""
    rng = np.random.default_rng(seed)
    rows = []
    for (ds, t, name), g in ivs.groupby(["dataset", "t", "name"], sort=False):
        b, i = g.mse_base.to_numpy(), g.mse_int.to_numpy()
        idx = rng.integers(0, len(b), (n_bootstrap, len(b)))
        boots = i[idx].mean(1) / b[idx].mean(1) - 1
        first = g.iloc[0]
        rows.append(dict(dataset=ds, t=t, name=name, family=first.family, target=first.target, kind=first.kind,
                         strength=first.strength, mse_base=b.mean(), mse_int=i.mean(),
                         impact=impact_score(i.mean(), b.mean()),
                         ci_low=np.percentile(boots, 2.5), ci_high=np.percentile(boots, 97.5), n=len(b)))
    return pd.DataFrame(rows)


def table3(summ: pd.DataFrame, dataset: str = "synthetic", t: int = 300) -> pd.DataFrame:
    """Table 3: zero ablation of each group at t, baseline and ablated MSE, impact with CI, rank."""
    sub = summ[(summ.dataset == dataset) & (summ.t == t) & (summ.kind == "zero")].copy()
    sub["rank"] = sub.impact.rank(ascending=False, method="min").astype(int)
    return sub[["target", "mse_base", "mse_int", "impact", "ci_low", "ci_high", "rank"]].reset_index(drop=True)


def table3_claims(t3: pd.DataFrame) -> list[dict]:
    rows = [claims.row("abl_baseline_mse", t3.mse_base.iloc[0], definition="interventions.impacts (base pass)")]
    for r in t3.itertuples():
        if r.target in TABLE3:
            rows.append(claims.row(TABLE3[r.target], r.impact, r.ci_low, r.ci_high,
                                   definition="metrics.impact_score of a zero ablation"))
    return rows


@torch.no_grad()
def _patch(cfg: Config, target, source, x0, t: int, blocks) -> dict:
    x0, _, tt, x_t, _ = paired_inputs(target.unet, target.scheduler, x0, t, cfg.run.seed)   # impacts' own draw
    acts = patch_from(source.unet, blocks, x_t, tt)
    specs = {b: [Intervention("patch", b, source={b: acts[b]})] for b in blocks}
    return impacts(target.unet, target.scheduler, x0, t, specs, cfg.run.seed)


def patching(cfg: Config, models: dict) -> pd.DataFrame:
    """Activation patching between the models: each block of the target model gets the other model's
    output at that block on the same noisy input (target's own images). Cached.

    Columns: target_model, source_model, t, block, mse_base, mse_patched, impact.
    """
    rows = []
    names = list(models)
    for tgt in names:
        src = [n for n in names if n != tgt][0]
        x0 = analysis_images(cfg, tgt)
        blocks = site_names(models[tgt].unet, "block")

        def compute(tgt=tgt, src=src, x0=x0, blocks=blocks):
            out = []
            for t in cfg.analysis.timesteps:
                for b, r in _patch(cfg, models[tgt], models[src], x0, t, blocks).items():
                    out.append(dict(target_model=tgt, source_model=src, t=int(t), block=b, mse_base=r.mse_base,
                                    mse_patched=r.mse_int, impact=r.impact))
            return out
        rows += results.cached(cfg, "patching", [models[tgt], models[src]], compute,
                               timesteps=cfg.analysis.timesteps)
    return pd.DataFrame(rows)


def robustness(summ: pd.DataFrame, n_bootstrap: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Circuit robustness (:func:`circuitnb.quantities.circuit_robustness`) per dataset over the family, CI
    by bootstrap over interventions."""
    rows = []
    for ds, g in summ.groupby("dataset"):
        m, lo, hi = mean_ci((g.impact <= ROBUSTNESS_THRESHOLD).astype(float) * 100, n_bootstrap, seed)
        rows.append(dict(dataset=ds, robustness=circuit_robustness(g.impact), ci_low=lo, ci_high=hi,
                         n_interventions=len(g)))
    return pd.DataFrame(rows)


def circuit_sizes(cfg: Config, models: dict, t: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Effective circuit size (:func:`circuitnb.circuits.effective_circuit_size`) of each model at t,
    over its attention heads and over its Table 3 groups (cached).

    Returns (summary: one row per model and component kind, curves: retained performance by share kept).
    """
    from circuitnb.interventions.circuits import effective_circuit_size, head_sites
    rows, curves = [], []
    for name, m in models.items():
        x0 = analysis_images(cfg, name)
        for kind, comps in (("heads", head_sites(m.unet)), ("groups", list(groups(m.unet)))):
            size = results.cached(cfg, "circuit_size", m, lambda: effective_circuit_size(
                m.unet, m.scheduler, x0, t, comps, seed=cfg.run.seed), t=t, kind=kind)
            rows.append(dict(dataset=name, components=kind, n=size.n_components, n_kept=size.n_kept,
                             fraction=size.fraction, most_important=", ".join(size.order[:3])))
            curves.append(size.curve.assign(dataset=name, components=kind))
    return pd.DataFrame(rows), pd.concat(curves, ignore_index=True)
