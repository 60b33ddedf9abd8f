"""Chapter 6 (§4.6, Table 3, Fig. 7): every intervention family on every replicate model, patching, circuit size.

    res = causal.run(cfg)       # tables: table3, families, patching, circuit_size, claims; figure data in res.data

The model is the unit. A replicate model's impact of one intervention is Eq. 5 on its mean MSEs over the
held-out images (the paper's Table 3 divides mean MSEs: ablated / baseline - 1); a table shows the mean over
models with a t-interval over models (:func:`circuitnb.analysis.replicates.across_replicates`), and each
model's own interval (a paired bootstrap over its images) carries that model's verdict in the scorecard.
"""
from __future__ import annotations

import functools

import numpy as np
import pandas as pd
import torch
from scipy import stats as sps
from tqdm.auto import tqdm

from circuitnb.analysis import replicates
from circuitnb.analysis.model_stats import EQ, beside_null, image_bootstrap, over_models, sources
from circuitnb.chapters import common
from circuitnb.chapters.common import intervention_images
from circuitnb.chapters.report import ChapterResult
from circuitnb.core import results
from circuitnb.core.config import Config
from circuitnb.core.readings import READINGS, options
from circuitnb.hooking.sites import groups, site_names
from circuitnb.interventions.circuits import RETAIN, effective_circuit_size, head_sites
from circuitnb.interventions.impact import impacts, paired_inputs, patch_from
from circuitnb.interventions.registry import Intervention
from circuitnb.measures import claims, stats, verdicts
from circuitnb.measures.metrics import impact_score

CHAPTER = "06_interventions"
SCALES = (0.5, 1.5)
ATTENTION = (("uniform", None), ("temperature", 0.5), ("temperature", 2.0), ("noise", 1.0), ("shuffle", None))
TABLE3 = {"enc_early": "abl_enc_early", "enc_middle": "abl_enc_middle", "enc_late": "abl_enc_late",
          "middle": "abl_middle", "dec_early": "abl_dec_early", "dec_middle": "abl_dec_middle",
          "dec_late": "abl_dec_late"}
MODEL = ["dataset", "replicate"]
ABLATION = READINGS["ablation"].default         # Table 3's reading; the others are columns beside it


def family(unet) -> dict:
    """The chapter's interventions: name -> (family, target, kind, strength, [Intervention])."""
    out = {}
    for g in groups(unet):
        out[f"zero {g}"] = ("layer ablation", g, "zero", None, [Intervention("zero", g)])
        out[f"mean {g}"] = ("mean ablation", g, "mean", None, [Intervention("mean", g)])
        out[f"bypass {g}"] = ("bypass ablation", g, "bypass", None, [Intervention("bypass", g)])
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
    rows = [common.claim_row("abl_baseline_mse", replicates.estimate(lv),
                             replicates.image_estimates(base, ["dataset"], "mse_base")[("synthetic",)], unit="MSE",
                             reason="noise-prediction MSE of the intact model, mean over models")]
    own = summ[(summ.t == t) & (summ.kind == kind) & (summ.dataset == "synthetic")]      # by replicate
    for _, r in t3[(t3.dataset == "synthetic") & t3.group.isin(list(TABLE3))].iterrows():
        rows.append(common.claim_row(
            TABLE3[r["group"]], replicates.estimate(r.rename({"impact": "mean"})),
            list(own[own.target == r["group"]].est), unit="Eq. 5",
            reason=f"{kind} ablation ({READINGS['ablation'].options[kind]}), rank {r['rank']} of {len(TABLE3)} "
                   f"(per model: {r['model_ranks']})"))
    return rows


def families(summ: pd.DataFrame) -> pd.DataFrame:
    """Each family's median impact over its interventions, per model, dataset and t; mean over models."""
    med = summ.groupby([*MODEL, "family", "t"], as_index=False, sort=False).agg(impact=("impact", "median"),
                                                                                n=("n", "min"))
    return over_models(med, ["dataset", "family", "t"], "impact").rename(columns={"mean": "impact"})


@torch.no_grad()
def _patch(cfg: Config, target, source, x0, t: int, blocks) -> dict:
    x0, _, tt, x_t, _ = paired_inputs(target.unet, target.scheduler, x0, t, cfg.run.seed)   # impacts' own draw
    acts = patch_from(source.unet, blocks, x_t, tt)
    specs = {b: [Intervention("patch", b, source={b: acts[b]})] for b in blocks}
    return impacts(target.unet, target.scheduler, x0, t, specs, cfg.run.seed)


def _patch_rows(cfg: Config, target, source, x0, t: int) -> list[dict]:
    blocks = site_names(target.unet, "block")
    return [dict(t=int(t), block=b, mse_base=r.mse_base, mse_patched=r.mse_int, impact=r.impact)
            for b, r in _patch(cfg, target, source, x0, t, blocks).items()]


def patching(cfg: Config, models: dict[str, list], t: int) -> pd.DataFrame:
    """Activation patching at t (cached): each block of a target model gets a source model's (:func:`sources`)
    output at that block on the same noisy input (the target's held-out images). One timestep: with every
    replicate and its same-data null, all t would cost as much as chapter 6's whole sweep.

    Columns: dataset, replicate, source, source_dataset, source_replicate, t, block, mse_base, mse_patched,
    impact, n (images).
    """
    x0 = {name: intervention_images(cfg, name) for name in models}
    pairs = [(name, r, kind, sd, sr) for name, ms in models.items() for r in range(len(ms))
             for kind, sd, sr in sources(models, name, r)]

    def one(name, r, sd, sr, wait=True):
        tgt, src = models[name][r], models[sd][sr]
        return results.cached(cfg, "patching_at", [tgt, src], lambda: _patch_rows(cfg, tgt, src, x0[name], t),
                              t=t, data=x0[name], wait=wait)
    rows = results.each([functools.partial(one, name, r, sd, sr) for name, r, _, sd, sr in pairs])
    return pd.concat([pd.DataFrame(rw).assign(dataset=name, replicate=r, source=kind, source_dataset=sd,
                                              source_replicate=sr, n=len(x0[name]))
                      for (name, r, kind, sd, sr), rw in zip(pairs, rows)], ignore_index=True)


def patch_table(patch: pd.DataFrame) -> pd.DataFrame:
    """Per target dataset and block: the patching impact from the other dataset's model, over models, beside
    the same-data null (each same-data source its own value)."""
    return beside_null(patch, ["dataset", "block"], "impact")


def circuit_sizes(cfg: Config, models: dict[str, list], t: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Effective circuit size (:func:`circuitnb.interventions.circuits.effective_circuit_size`) of every
    replicate model at t, over its attention heads and over its Table 3 groups (cached).

    Returns (one row per model and component kind, the curves: performance retained by share kept).
    """
    x0 = {name: intervention_images(cfg, name) for name in models}
    jobs = [(name, r, kind) for name, ms in models.items() for r in range(len(ms)) for kind in ("heads", "groups")]

    def one(name, r, kind, wait=True):
        m = models[name][r]
        comps = head_sites(m.unet) if kind == "heads" else list(groups(m.unet))
        return results.cached(cfg, "circuit_size", m, lambda: effective_circuit_size(
            m.unet, m.scheduler, x0[name], t, comps, seed=cfg.run.seed), t=t, kind=kind, data=x0[name], wait=wait)
    sizes = results.each([functools.partial(one, *job) for job in jobs])
    rows = [dict(dataset=name, replicate=r, components=kind, n_components=size.n_components,
                 share=100 * size.fraction, most_important=size.order[0], n=len(x0[name]))
            for (name, r, kind), size in zip(jobs, sizes)]
    curves = [size.curve.assign(dataset=name, replicate=r, components=kind)
              for (name, r, kind), size in zip(jobs, sizes)]
    return pd.DataFrame(rows), pd.concat(curves, ignore_index=True)


def size_table(sizes: pd.DataFrame) -> pd.DataFrame:
    """Effective circuit size (% of components kept) per dataset and component kind, mean over models."""
    out = over_models(sizes, ["dataset", "components"], "share").rename(columns={"mean": "share"})
    extra = sizes.groupby(["dataset", "components"], sort=False).agg(
        n_components=("n_components", "first"), most_important=("most_important", ", ".join))
    return out.merge(extra.reset_index(), on=["dataset", "components"])[
        ["dataset", "components", "n_components", "share", "ci_low", "ci_high", "per_model", "most_important",
         "n_models", "n_images"]]


def _impact_matrices(summ: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """log10(1 + impact) per intervention (rows, family order) and t, mean over models (Fig. 7a-d);
    negative impacts (the intervention helps) drawn as 0."""
    mean = summ.groupby(["dataset", "name", "t"], sort=False).impact.mean().reset_index()
    return {d: np.log10(1 + g.pivot_table(index="name", columns="t", values="impact", sort=False).clip(lower=0))
            for d, g in mean.groupby("dataset", sort=False)}


def _patch_matrix(raw: pd.DataFrame) -> pd.DataFrame:
    """log10(1 + impact) of patching per target block (rows) and source kind (columns), mean over models;
    negative impacts drawn as 0."""
    rows = raw.assign(row=raw.dataset + ": " + raw.block)
    return np.log10(1 + rows.pivot_table(index="row", columns="source", values="impact", sort=False).clip(lower=0))


def with_readings(t3: pd.DataFrame, summ: pd.DataFrame, t: int, alpha: float = 0.05) -> pd.DataFrame:
    """Table 3 with the other ablation readings' impacts beside the default's: ``impact_<kind>`` and its
    ``ci_low_<kind>`` / ``ci_high_<kind>`` (t-interval over models) for each kind in READINGS["ablation"]."""
    out = t3
    for kind in options("ablation")[1:]:
        other = table3(summ, t, alpha, kind)[["dataset", "group", "impact", "ci_low", "ci_high"]]
        out = out.merge(other.rename(columns={c: f"{c}_{kind}" for c in ("impact", "ci_low", "ci_high")}),
                        on=["dataset", "group"], how="left")
    return out


def _with_paper(t3: pd.DataFrame, t: int) -> pd.DataFrame:
    """Table 3 with the paper's impact beside ours (synthetic rows, at the paper's timestep; from claims.csv)."""
    paper = claims.load().set_index("id")
    ids = [TABLE3.get(g) if d == "synthetic" else None for d, g in zip(t3.dataset, t3.group)]
    value = [paper.paper_value[i] if i and paper.timestep[i] == t else np.nan for i in ids]
    return t3.assign(paper=value)


@common.cached_chapter()
def run(cfg: Config) -> ChapterResult:
    """Chapter 6: Table 3, every family by t, patching and circuit size, on every replicate model."""
    models, _ = common.models_and_sweeps(cfg)
    ivs = replicate_sweeps(cfg, models)
    summ = summary(ivs, cfg.analysis.n_bootstrap, cfg.run.seed)
    t = table_t(cfg)
    t3 = with_readings(_with_paper(table3(summ, t, cfg.analysis.alpha), t), summ, t, cfg.analysis.alpha)
    raw = patching(cfg, models, t)
    patch = patch_table(raw)
    sizes, curves = circuit_sizes(cfg, models, t)
    rows = claims.known(table3_claims(ivs, summ, t3, t))
    res = ChapterResult(CHAPTER)
    res.tables.update(table3=t3, families=families(summ), patching=patch, circuit_size=size_table(sizes),
                      claims=pd.DataFrame(rows, columns=list(verdicts.measured_row("").keys())))
    res.data.update(impact=_impact_matrices(summ), size_curves=curves, patching=_patch_matrix(raw),
                    table3={d: g for d, g in t3.groupby("dataset", sort=False)})
    top = t3.sort_values("rank").groupby("dataset").first()
    size = res.tables["circuit_size"].set_index(["dataset", "components"]).share
    res.values = dict(profile=cfg.profile, seed=cfg.run.seed, n=int(t3.n_images.min()),
                      n_models=int(t3.n_models.min()), timesteps=", ".join(map(str, cfg.analysis.timesteps)),
                      t3=t, n_interventions=int(summ.name.nunique()), n_families=int(summ.family.nunique()),
                      base_mse=float(t3[t3.dataset == "synthetic"].mse_base.iloc[0]),
                      top_syn=top.loc["synthetic", "group"],
                      top_syn_impact=top.loc["synthetic", "impact"], top_syn_lo=top.loc["synthetic", "ci_low"],
                      top_syn_hi=top.loc["synthetic", "ci_high"], top_syn_ranks=top.loc["synthetic", "model_ranks"],
                      top_cel=top.loc["celeba", "group"], top_cel_impact=top.loc["celeba", "impact"],
                      n_patch_beyond=int(patch.beyond_null.sum()), n_patch=len(patch),
                      n_heads=int(sizes[sizes.components == "heads"].n_components.iloc[0]),
                      retain=100 * RETAIN, n_groups=int(sizes[sizes.components == "groups"].n_components.iloc[0]),
                      **{f"size_{k}_{d[:3]}": size[(d, k)] for d, k in size.index})
    return res
