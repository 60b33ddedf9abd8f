"""Chapter 12: every named reading of the paper's undefined quantities, and which verdicts flip between them.

    res = readings.run(cfg)
    res.show("sensitivity")       # _build/tables/sensitivity/sensitivity.csv: claim, quantity, reading, verdict, flips
    res.show("phases")            # per model: segments (BIC) against a cubic fit; bootstrap stability
    res.show("ife_calibration")   # both IFE readings on Gaussian pairs of known MI

Each reading (:data:`circuitnb.core.readings.READINGS`) is computed from the same cached models,
sweeps and intervention grid as the chapter that owns the quantity; only the after-``to_out`` head
energies need one extra recording pass (heads only, cached). Verdicts come from
:func:`circuitnb.measures.verdicts.scorecard` with the claim's own margin, so the default reading's row is
the scorecard's row.
"""
from __future__ import annotations

import functools

import numpy as np
import pandas as pd
import torch

from circuitnb.analysis import replicates
from circuitnb.chapters import causal, common, complexity, evolution, heads, temporal
from circuitnb.chapters.report import ChapterResult
from circuitnb.core import results
from circuitnb.core.config import Config
from circuitnb.core.readings import READINGS, options, readings_table
from circuitnb.data.noise import paired_noise
from circuitnb.hooking.hooks import record
from circuitnb.hooking.sites import site_names, site_table
from circuitnb.measures import claims, head_functions, information, metrics, quantities, verdicts

CHAPTER = "sensitivity"             # tables go to _build/tables/sensitivity/ (the notebook is 12_readings)
RHOS = (0.5, 0.8, 0.9, 0.95, 0.99, 0.999)
N_PAPER = 100                       # the paper's images per condition, for the calibration at its n
N_PHASE_BOOTSTRAP = 100
COLUMNS = ["id", "quantity", "undefined", "reading", "default", "ours", "ci_low", "ci_high", "unit", "paper",
           "verdict", "flips", "reason"]


# --- verdicts of one reading's rows ------------------------------------------------------------------
def judged(rows: list[dict], undefined: str, reading: str, paper_from: dict | None = None) -> pd.DataFrame:
    """Scorecard verdicts of measured ``rows`` under one reading; ``paper_from`` maps a claim id to another
    claim whose paper value (and margin) it is judged against, e.g. H / Hmax against 1 - S (see
    :func:`entropy_rows`). Columns as :data:`COLUMNS` without flips."""
    if not rows:
        return pd.DataFrame(columns=[c for c in COLUMNS if c != "flips"])
    paper, margins = claims.load(), verdicts.load_margins()
    ids = [r["id"] for r in rows]
    paper, margins = paper[paper.id.isin(ids)].copy(), margins[margins.id.isin(ids)].copy()
    for cid, (other, fn) in (paper_from or {}).items():
        src = claims.load().set_index("id").paper_value.astype(float)[other]
        paper.loc[paper.id == cid, "paper_value"] = fn(src)
        m = verdicts.load_margins().set_index("id").loc[other]
        margins.loc[margins.id == cid, ["margin", "margin_kind"]] = [m.margin, m.margin_kind]
    sc = verdicts.scorecard(paper, margins, rows)
    quantity = claims.load().set_index("id").quantity
    return pd.DataFrame(dict(id=sc.id, quantity=sc.id.map(quantity), undefined=undefined, reading=reading,
                             default=reading == READINGS[undefined].default, ours=sc.ours, ci_low=sc.ci_low,
                             ci_high=sc.ci_high, unit=sc.unit, paper=sc.paper, verdict=sc.verdict, reason=sc.reason))


def flips(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with ``flips``: True on every row of a (claim, undefined quantity) whose verdict differs
    between readings."""
    n = table.groupby(["id", "undefined"]).verdict.transform("nunique")
    return table.assign(flips=n > 1)[COLUMNS]


# --- one block of rows per undefined quantity --------------------------------------------------------
def ablation_rows(cfg: Config, models: dict) -> list[pd.DataFrame]:
    """Table 3's impacts under zero, mean and bypass ablation (chapter 6's cached intervention grid)."""
    ivs = causal.replicate_sweeps(cfg, models)
    summ = causal.summary(ivs, cfg.analysis.n_bootstrap, cfg.run.seed)
    t = causal.table_t(cfg)
    out = []
    for kind in options("ablation"):
        rows = causal.table3_claims(ivs, summ, causal.table3(summ, t, cfg.analysis.alpha, kind), t, kind)
        out.append(judged([r for r in rows if r["id"] != "abl_baseline_mse"], "ablation", kind))
    return out


def ife_rows(cfg: Config, models: dict, sweeps: dict) -> list[pd.DataFrame]:
    """The IFE claims under the binned and the kNN reading of Eq. 4 (from the sweeps' first-PC scores)."""
    return [judged(temporal.ife_claims(temporal.ife_models(cfg, models, sweeps, r)["ranges"]), "ife", r)
            for r in options("ife")]


def head_tests(cfg: Config, models: dict, sweeps: dict, t: int) -> dict:
    """Chapter 4's cached inputs at t: per_image values, importance, function tests and H / Hmax per model."""
    pairs = {name: list(zip(sweeps[name], models[name])) for name in models}
    uniformity = {(name, r): metrics.normalised_entropy(sw.head_matrix(t, "entropy"),
                                                        sw.received[(t, sw.layers[0])].shape[-1])
                  for name in sweeps for r, sw in enumerate(sweeps[name])}
    return dict(per_image=replicates.per_replicate(sweeps, lambda sw: heads.head_values_per_image(sw, t)),
                imp=replicates.per_replicate(models, lambda m, wait=True: heads.importance(cfg, m, t, wait),
                                             cached=True),
                tests=replicates.per_replicate(pairs, lambda p, wait=True: heads.functions(cfg, p[0], p[1], t, wait),
                                               cached=True),
                uniformity=uniformity)


def relabelled(tests: pd.DataFrame, uniformity: dict, threshold: float, alpha: float) -> pd.DataFrame:
    """Chapter 4's function tests with the global test redone at ``threshold`` and every head relabelled."""
    out = []
    for (name, r), g in tests.groupby(["dataset", "replicate"], sort=False):
        table = head_functions.with_global_threshold(g.drop(columns="label"), uniformity[(name, r)], threshold,
                                                     alpha)
        label = head_functions.assign_functions(table).set_index("head").function
        out.append(table.assign(label=table["head"].map(label)))
    return pd.concat(out, ignore_index=True)


def global_rule_rows(h: dict, alpha: float) -> tuple[list[pd.DataFrame], pd.DataFrame]:
    """Table 2 and the count of distinct heads under each global-head threshold; and the classification
    table (per threshold and model: heads labelled global, heads with any label)."""
    out, counts = [], []
    for name in options("global_rule"):
        tests = relabelled(h["tests"], h["uniformity"], head_functions.GLOBAL_THRESHOLDS[name], alpha)
        per_model = heads.heads_per_model(h["per_image"], h["imp"], tests)
        distinct = heads.distinct_heads(per_model)
        rows = heads.table2_claims(heads.table2_matches(tests), per_model, h["per_image"])
        out.append(judged(rows + [heads.distinct_heads_claim(distinct)], "global_rule", name))
        counts.append(distinct.assign(reading=name, threshold=head_functions.GLOBAL_THRESHOLDS[name]))
    return out, pd.concat(counts, ignore_index=True)


def entropy_rows(h: dict) -> list[pd.DataFrame]:
    """Table 2's head entropies in bits (Eq. 1) and as H / log2 K; the latter judged against the paper's
    own implied H / Hmax = 1 - S (Eq. 2) with the specialization claim's margin."""
    per_model = heads.heads_per_model(h["per_image"], h["imp"], h["tests"])
    matches = heads.table2_matches(h["tests"])
    bits = [r for r in heads.table2_claims(matches, per_model, h["per_image"]) if r["id"].endswith("_entropy")]
    norm = h["per_image"].assign(entropy=h["per_image"].entropy_norm)
    per_norm = per_model.assign(entropy=per_model.entropy_norm)
    rows = [{**r, "unit": "H / log2 K"} for r in heads.table2_claims(matches, per_norm, norm)
            if r["id"].endswith("_entropy")]
    implied = {r["id"]: (r["id"].replace("_entropy", "_spec"), lambda s: 1.0 - s) for r in rows}
    return [judged(bits, "entropy", "bits"), judged(rows, "entropy", "normalised", implied)]


def divergence_rows(cfg: Config, sweeps: dict) -> list[pd.DataFrame]:
    """§4.8's divergences with heads matched by index and by optimal assignment."""
    out = []
    for m in options("head_matching"):
        pairs = evolution.divergence_pairs(sweeps, cfg.analysis.n_bootstrap, cfg.run.seed, matching=m)
        out.append(judged(evolution.divergence_claims(evolution.divergence_table(pairs), pairs), "head_matching", m))
    return out


@torch.no_grad()
def head_energies(unet, scheduler, x0, timesteps, seed: int = 0) -> pd.DataFrame:
    """Each head's mean squared output before the output projection and of its contribution after it
    (``to_out``: W_k h_k, the part of the layer's output that head k writes), per image and t.

    The noise is the sweep's (:func:`circuitnb.data.noise.paired_noise` of ``seed``). Columns: t, image, head,
    before, after.
    """
    table, modules = site_table(unet), dict(unet.named_modules())
    names = site_names(unet, "head")

    def both(name):                                               # [B, Q, head_dim] -> [B, 2]
        s = table[name]
        d = s.shape[-1]
        w_k = modules[s.path].to_out[0].weight[:, s.index * d:(s.index + 1) * d].float()   # [C, head_dim]
        return lambda x: torch.stack([x.float().pow(2).mean((1, 2)), (x.float() @ w_k.T).pow(2).mean((1, 2))], 1)
    x0 = torch.as_tensor(np.asarray(x0))
    eps, _ = paired_noise(x0.shape, seed)
    device = next(unet.parameters()).device
    frames = []
    for t in timesteps:
        tt = torch.full((len(x0),), int(t), device=device, dtype=torch.long)
        x_t = scheduler.add_noise(x0.to(device), eps.to(device), tt)
        with record(unet, names, reduce={n: both(n) for n in names}) as rec:
            unet(x_t, tt)
        for n in names:
            e = rec[n].cpu().numpy()
            frames.append(pd.DataFrame(dict(t=int(t), image=np.arange(len(x0)), head=n, before=e[:, 0], after=e[:, 1])))
    return pd.concat(frames, ignore_index=True)


def complexity_per_image(cfg: Config, models: dict, site: str) -> pd.DataFrame:
    """Circuit complexity per image, t and model from the head energies at ``site`` (before / after to_out)."""
    col = {"heads": "before", "to_out": "after"}[site]

    def energies(m, wait=True):
        x0 = common.analysis_images(cfg, m.meta["dataset"])
        return results.cached(cfg, "head_energies", m, lambda: head_energies(m.unet, m.scheduler, x0,
                                                                             cfg.analysis.timesteps, cfg.run.seed),
                              data=x0, wait=wait)

    def one(e, m):
        frames = []
        for t, g in e.groupby("t", sort=False):
            wide = g.pivot_table(index="image", columns="head", values=col, sort=False)
            frames.append(pd.DataFrame(dict(dataset=m.meta["dataset"], t=t, image=wide.index,
                                            value=quantities.circuit_complexity(wide.to_numpy()))))
        return pd.concat(frames, ignore_index=True)
    jobs = [(name, r, m) for name, ms in models.items() for r, m in enumerate(ms)]
    found = results.each([functools.partial(energies, m) for *_, m in jobs])
    return pd.concat([one(e, m).assign(dataset=name, replicate=r) for (name, r, m), e in zip(jobs, found)],
                     ignore_index=True)


def complexity_rows(cfg: Config, models: dict) -> list[pd.DataFrame]:
    """Table 1's ratio CelebA / synthetic with head energies taken before and after the output projection."""
    out = []
    for site in options("complexity_site"):
        rows = complexity.table1_claims(complexity_per_image(cfg, models, site))
        out.append(judged([r for r in rows if r["id"].startswith("cc_ratio")], "complexity_site", site))
    return out


# --- phases, calibration, the heads profile ----------------------------------------------------------
def phase_table(cfg: Config, models: dict) -> pd.DataFrame:
    """Per model: the BIC-best segmentation against a cubic fit (:func:`temporal.phase_test`) on the dense
    profile, and over image-bootstrap profiles the share giving the same verdict and the share "no phases"."""
    dense = replicates.load_sweeps(cfg, models, timesteps=temporal.dense_timesteps(cfg))
    rows = []
    for name, sws in dense.items():
        for r, sw in enumerate(sws):
            test = temporal.phase_test(temporal.profile(sw))
            boot = results.cached(cfg, "phase_bootstrap", models[name][r], lambda sw=sw: temporal.phase_bootstrap(
                sw, N_PHASE_BOOTSTRAP, cfg.run.seed), dataset=name, timesteps=temporal.dense_timesteps(cfg),
                data=common.analysis_images(cfg, name))
            rows.append(dict(dataset=name, replicate=r, **test,
                             same_verdict=float((boot.verdict == test["verdict"]).mean()),
                             boot_no_phases=float((boot.phases == 0).mean()), n_bootstrap=len(boot),
                             n_timesteps=len(sw.timesteps)))
    return pd.DataFrame(rows)


@common.cached_chapter()
def sensitivity(cfg: Config) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The sensitivity table (every claim under every reading, with ``flips``) and the global-head
    classification under each threshold; the scorecard's ``flips_across_readings`` comes from here."""
    models, sweeps = common.models_and_sweeps(cfg)
    t = cfg.analysis.head_t
    hs = sweeps if t in cfg.analysis.timesteps else replicates.load_sweeps(cfg, models, timesteps=(t,))
    h = head_tests(cfg, models, hs, t)
    glob, classified = global_rule_rows(h, cfg.analysis.alpha)
    blocks = [*ablation_rows(cfg, models), *ife_rows(cfg, models, sweeps), *glob, *entropy_rows(h),
              *divergence_rows(cfg, sweeps), *complexity_rows(cfg, models)]
    return flips(pd.concat(blocks, ignore_index=True)), classified


@common.cached_chapter()
def run(cfg: Config) -> ChapterResult:
    """Chapter 12: the sensitivity table over every reading, phases vs smooth, IFE calibration."""
    table, classified = sensitivity(cfg)
    profile = heads.heads_profile()
    reason = heads.heads_profile_reason(profile)
    calib = pd.concat([information.calibration(RHOS, n=n, n_rep=50, seed=cfg.run.seed)
                       for n in sorted({cfg.analysis.n_samples, N_PAPER})], ignore_index=True)
    ph = phase_table(cfg, common.models_and_sweeps(cfg)[0])
    res = ChapterResult(CHAPTER)
    flipped = table[table.flips]
    res.tables.update(sensitivity=table, flipped=flipped, readings=readings_table(), phases=ph,
                      ife_calibration=calib, global_heads=classified, heads_profile=profile)
    res.data.update(calibration=calib)
    at_paper = calib[calib.n == N_PAPER].set_index("rho")
    res.values = dict(profile=cfg.profile, seed=cfg.run.seed, n=cfg.analysis.n_samples, n_models=cfg.run.replicates,
                      n_rows=len(table), n_quantities=int(table.quantity.nunique()),
                      n_undefined=int(table.undefined.nunique()), n_claims=int(table.id.nunique()),
                      n_flipped=int(flipped.id.nunique()), flipped_ids=", ".join(flipped.id.unique()) or "none",
                      n_no_phases=int((ph.phases == 0).sum()), n_phase_models=len(ph),
                      phase_stability=float(ph.same_verdict.mean()), n_phase_bootstrap=N_PHASE_BOOTSTRAP,
                      n_calib=N_PAPER, heads_reason=reason,
                      **{f"binned_{k}": at_paper.binned_mean[r] for k, r in (("95", 0.95), ("999", 0.999))},
                      **{f"knn_{k}": at_paper.knn_mean[r] for k, r in (("95", 0.95), ("999", 0.999))})
    return res
