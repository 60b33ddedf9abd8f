"""Chapter 5 (§4.4-4.5, Figs. 5-6): information flow by depth, and denoising phases found from the data.

    res = circuitnb.chapters.temporal.run(cfg)
    res.show("ife_ranges")     # low and high end of IFE per depth group: mean over models, t-interval
    res.show("phases")         # each model's number of phases (BIC) and where they start

IFE (Eq. 4) is a property of a model on a set of images (mutual information across the images), so each
model gives one IFE per block pair and timestep. The paper's "ranges" per depth group become, per model,
the lowest and highest IFE over the group's block pairs and the timesteps; the claim is judged on their
mean over every model of both datasets (a t-interval over models), and each model's own value carries a
percentile-bootstrap CI over its held-out images (images resampled jointly for all pairs and timesteps).
Phases are found per model by segmenting a dense profile over ``cfg.analysis.n_phase_timesteps`` timesteps
(exact least squares, number of phases by BIC); the paper's four phases are not assumed.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from circuitnb import data
from circuitnb.analysis import replicates
from circuitnb.chapters import common
from circuitnb.chapters.report import ChapterResult
from circuitnb.core import results
from circuitnb.core.config import Config
from circuitnb.measures import claims, information, metrics
from circuitnb.measures.verdicts import Estimate, replicate_ci

CHAPTER = "05_temporal_dynamics"
DEPTH_GROUPS = ("early", "middle", "late")
ENDS = {"lo": ("low", np.min), "hi": ("high", np.max)}      # claim suffix -> column, reduction
SMOOTH_DEGREE = 3                # the smooth alternative to phases: a cubic in t per feature


def depth_group(depth: float) -> str:
    """Thirds of the normalised depth 0..1 (encoder input to decoder output)."""
    return DEPTH_GROUPS[min(int(depth * 3), 2)]


def _pairs(sw) -> pd.DataFrame:
    depth = np.linspace(0.0, 1.0, len(sw.block_names))
    mid = (depth[:-1] + depth[1:]) / 2                        # a pair's depth: its blocks' midpoint
    return pd.DataFrame(dict(pair=[f"{a}->{b}" for a, b in zip(sw.block_names[:-1], sw.block_names[1:])],
                             source=sw.block_names[:-1], target=sw.block_names[1:], depth=mid,
                             group=[depth_group(d) for d in mid]))


def _each_pair(ife):
    """A reading of Eq. 4 on one pair of samples, applied to every pair of ``[..., n]`` arrays."""
    return lambda a, b: np.array([ife(x, y) for x, y in zip(a.reshape(-1, a.shape[-1]), b.reshape(-1, b.shape[-1]))]
                                 ).reshape(a.shape[:-1])


# READINGS["ife"]: reading -> fn(a, b) with a, b [..., n] first-PC scores, giving IFE [...]
IFE_READINGS = {"binned": _each_pair(metrics.ife_from_scores), "knn": information.ife_knn}


def _ife_grid(sw, idx: np.ndarray, reading: str = "binned") -> np.ndarray:
    """IFE ``[timesteps, pairs]`` of one model on the images ``idx`` (Eq. 4 from first-PC scores), by one
    reading of Eq. 4 (``READINGS["ife"]``: binned, or the kNN estimator); the pairs are adjacent blocks."""
    scores = np.stack([[sw.pc[(t, block)][idx] for block in sw.block_names] for t in sw.timesteps])  # [T, blocks, n]
    return IFE_READINGS[reading](scores[:, :-1], scores[:, 1:])


def ife_model(sw, n_bootstrap: int, seed: int = 0, reading: str = "binned") -> dict[str, pd.DataFrame]:
    """One model's IFE: ``values`` (t, pair, depth, group, ife) and ``ranges`` (per group: low and high end
    over its pairs and timesteps, each with percentile-bootstrap 95% and 90% CIs over images)."""
    n = len(sw.pc[(sw.timesteps[0], sw.block_names[0])])
    pairs = _pairs(sw)
    grid = _ife_grid(sw, np.arange(n), reading)
    rng = np.random.default_rng(seed)
    boots = np.stack([_ife_grid(sw, rng.integers(0, n, n), reading) for _ in range(n_bootstrap)])   # [B, T, P]
    values = pd.concat([pairs.assign(t=t, ife=grid[i]) for i, t in enumerate(sw.timesteps)], ignore_index=True)
    rows = []
    for group in DEPTH_GROUPS:
        cols = (pairs.group == group).to_numpy()
        if not cols.any():
            continue
        row = dict(group=group, n_images=n)
        for name, reduce in ENDS.values():
            b = reduce(boots[:, :, cols], axis=(1, 2))
            row.update({name: float(reduce(grid[:, cols])),
                        **{f"{name}_{k}": float(np.percentile(b, q)) for k, q in
                           (("ci_low", 2.5), ("ci_high", 97.5), ("eq_low", 5), ("eq_high", 95))}})
        rows.append(row)
    return dict(values=values, ranges=pd.DataFrame(rows))


def ife_models(cfg: Config, models: dict, sweeps: dict, reading: str = "binned") -> dict[str, pd.DataFrame]:
    """:func:`ife_model` of every replicate model (cached), concatenated with dataset and replicate."""
    nb, seed = cfg.analysis.n_bootstrap, cfg.run.seed
    def one(name, model_and_sweep, wait=True):
        m, sw = model_and_sweep
        return results.cached(cfg, "ife_model", m, lambda: ife_model(sw, nb, seed, reading),
                              dataset=sw.dataset, reading=reading, data=common.analysis_images(cfg, name), wait=wait)
    out = replicates.each_of({name: list(zip(models[name], sweeps[name])) for name in models}, one)
    frames = {part: replicates.per_replicate(out, lambda d, part=part: d[part]) for part in ("values", "ranges")}
    return {part: f[["dataset", "replicate", *f.columns[:-2]]] for part, f in frames.items()}


def _model_estimate(r, name: str) -> Estimate:
    return Estimate(r[name], r[f"{name}_ci_low"], r[f"{name}_ci_high"], int(r["n_images"]),
                    more=((0.90, r[f"{name}_eq_low"], r[f"{name}_eq_high"]),))


def ife_ranges(per_model: pd.DataFrame) -> pd.DataFrame:
    """Per depth group, over every model of both datasets ("both") and per dataset: the mean over models of
    each model's low and high end of IFE, with a 95% t-interval over models."""
    rows = []
    for ds, sub in [("both", per_model), *per_model.groupby("dataset", sort=False)]:
        for group, g in sub.groupby("group", sort=False):
            row = dict(dataset=ds, group=group)
            for name, _ in ENDS.values():
                est = replicate_ci(g[name])
                row.update({name: est.mean, f"{name}_ci_low": est.low, f"{name}_ci_high": est.high,
                            f"{name}_per_model": replicates.listed(g[name])})
            row.update(n_models=len(g), n_images=int(g.n_images.min()))
            rows.append(row)
    return pd.DataFrame(rows)


def ife_claims(per_model: pd.DataFrame) -> list[dict]:
    """ife_{group}_{lo,hi}: the mean over all models of both datasets, each model judged on its bootstrap CI."""
    rows = []
    for group, g in per_model.groupby("group", sort=False):
        for suffix, (name, _) in ENDS.items():
            per = [_model_estimate(r, name) for _, r in g.iterrows()]
            rows.append(common.claim_row(f"ife_{group}_{suffix}", replicate_ci(g[name]), per, unit="fraction 0-1",
                                         reason=f"per model the {name} end over the {group} block pairs and "
                                                f"timesteps; mean over {len(g)} models of both datasets"))
    return rows


def profile(sw) -> pd.DataFrame:
    """One row per t: mean feature complexity of each block, mean entropy of each layer, accuracy."""
    fc = sw.blocks.pivot_table(index="t", columns="block", values="complexity")[sw.block_names]
    ent = sw.heads.pivot_table(index="t", columns="layer", values="entropy")[sw.layers]
    acc = sw.mse.groupby("t").accuracy.mean()
    return pd.concat([fc.add_prefix("complexity "), ent.add_prefix("entropy "), acc.rename("accuracy")], axis=1)


def segment(features: np.ndarray, k: int) -> tuple[list[int], float]:
    """Optimal split of the rows of ``features`` [T, F] into ``k`` contiguous segments (least squares).

    Dynamic programming over segment ends (exact, O(k T^2)). Returns the start
    index of each segment after the first, and the total within-segment SSE.
    """
    x = np.asarray(features, float)
    n = len(x)
    if not 1 <= k <= n:
        raise ValueError(f"parameter 'k' = {k} must be in [1, {n}]")
    csum = np.vstack([np.zeros(x.shape[1]), np.cumsum(x, 0)])
    csq = np.concatenate([[0.0], np.cumsum((x ** 2).sum(1))])

    def sse(i, j):                      # rows i..j-1
        s = csum[j] - csum[i]
        return csq[j] - csq[i] - (s ** 2).sum() / (j - i)
    cost = np.full((k + 1, n + 1), np.inf)
    arg = np.zeros((k + 1, n + 1), int)
    cost[0, 0] = 0.0
    for m in range(1, k + 1):
        for j in range(m, n + 1):
            options = [cost[m - 1, i] + sse(i, j) for i in range(m - 1, j)]
            best = int(np.argmin(options))
            cost[m, j], arg[m, j] = options[best], best + m - 1
    starts, j = [], n
    for m in range(k, 0, -1):
        i = arg[m, j]
        if m > 1:
            starts.append(int(i))
        j = i
    return sorted(starts), float(cost[k, n])


def phases(prof: pd.DataFrame, max_k: int = 6) -> pd.DataFrame:
    """Phase boundaries from the data: segment the standardised profile for k = 1..max_k.

    Each column is z-scored over t, so every feature weighs the same. The
    number of phases is chosen by BIC (Gaussian segments); the paper's four
    phases are not assumed. Rows are ordered by *denoising* order (high t first).
    Columns: k, sse, bic, chosen, boundaries (t values where a new phase starts).
    """
    prof = prof.sort_index(ascending=False)                 # denoising runs from t = T to 0
    z = _z(prof).to_numpy()
    n, f = z.shape
    rows = []
    for k in range(1, min(max_k, n) + 1):
        starts, sse = segment(z, k)
        params = k * f + (k - 1)
        bic = n * f * np.log(max(sse, 1e-12) / (n * f)) + params * np.log(n * f)
        rows.append(dict(k=k, sse=sse, bic=bic, boundaries=[int(prof.index[s]) for s in starts]))
    out = pd.DataFrame(rows)
    out["chosen"] = out.bic == out.bic.min()
    return out


def _z(prof: pd.DataFrame) -> pd.DataFrame:
    prof = prof.sort_index(ascending=False)                 # denoising runs from t = T to 0
    return (prof - prof.mean()) / prof.std(ddof=0).replace(0, 1)


def smooth_fit(prof: pd.DataFrame, degree: int = SMOOTH_DEGREE) -> dict:
    """The smooth alternative to phases: each z-scored column of the profile fitted by a polynomial of
    ``degree`` in t (least squares). Returns sse and bic on the same scale as :func:`phases`."""
    z = _z(prof)
    n, f = z.shape
    t = np.asarray(z.index, float)
    x = np.vander((t - t.mean()) / (np.ptp(t) or 1.0), degree + 1)
    coef = np.linalg.lstsq(x, z.to_numpy(), rcond=None)[0]
    sse = float(((z.to_numpy() - x @ coef) ** 2).sum())
    return dict(sse=sse, bic=n * f * np.log(max(sse, 1e-12) / (n * f)) + (degree + 1) * f * np.log(n * f))


def phase_test(prof: pd.DataFrame, max_k: int = 6, degree: int = SMOOTH_DEGREE) -> dict:
    """Phases or a smooth profile: the BIC-best segmentation (:func:`phases`) against :func:`smooth_fit`.

    "no phases" when the smooth fit's BIC is lower or one segment wins; else the segmentation's k. Keys:
    k_segments, bic_segments, bic_smooth, smooth_wins, phases (0 = no phases), boundaries, verdict.
    """
    seg = phases(prof, max_k)
    best = seg[seg.chosen].iloc[0]
    smooth = smooth_fit(prof, degree)
    none = bool(smooth["bic"] <= best.bic or best.k == 1)
    return dict(k_segments=int(best.k), bic_segments=float(best.bic), bic_smooth=smooth["bic"],
                smooth_wins=bool(smooth["bic"] <= best.bic), phases=0 if none else int(best.k),
                boundaries="none" if none else ", ".join(map(str, best.boundaries)),
                verdict="no phases" if none else f"{int(best.k)} phases")


def _profile_arrays(sw) -> tuple[list[int], dict[str, np.ndarray]]:
    """Per profile column (as :func:`profile`), its ``[t, image]`` values; heads averaged per layer first."""
    ent = sw.heads.groupby(["t", "layer", "image"], as_index=False).entropy.mean()
    cols = {**{f"complexity {b}": g.pivot_table(index="t", columns="image", values="complexity")
               for b, g in sw.blocks.groupby("block", sort=False)},
            **{f"entropy {a}": g.pivot_table(index="t", columns="image", values="entropy")
               for a, g in ent.groupby("layer", sort=False)},
            "accuracy": sw.mse.pivot_table(index="t", columns="image", values="accuracy")}
    t = list(next(iter(cols.values())).index)
    return t, {k: v.to_numpy() for k, v in cols.items()}


def phase_bootstrap(sw, n_bootstrap: int, seed: int = 0) -> pd.DataFrame:
    """:func:`phase_test` on ``n_bootstrap`` profiles from resampled images (one row each): how stable
    "no phases" / "k phases" is to which images were analysed."""
    t, arrays = _profile_arrays(sw)
    n = next(iter(arrays.values())).shape[1]
    rng = np.random.default_rng(seed)
    rows = []
    for b in range(n_bootstrap):
        w = np.bincount(rng.integers(0, n, n), minlength=n) / n
        prof = pd.DataFrame({k: v @ w for k, v in arrays.items()}, index=pd.Index(t, name="t"))
        rows.append(dict(resample=b, **phase_test(prof)))
    return pd.DataFrame(rows)


def dense_timesteps(cfg: Config) -> tuple[int, ...]:
    """``n_phase_timesteps`` timesteps spread evenly over the whole schedule (the profile that is segmented)."""
    t = np.linspace(0, cfg.model.num_train_timesteps - 1, cfg.analysis.n_phase_timesteps).round()
    return tuple(int(v) for v in np.unique(t))


def phase_tables(dense: dict) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Per model: the BIC table of every k (``phase_bic``), the chosen k and boundaries (``phases``), and
    {(dataset, replicate): (profile, boundaries)} for the figure."""
    bic, chosen, found = [], [], {}
    for name, sws in dense.items():
        for r, sw in enumerate(sws):
            prof = profile(sw)
            table = phases(prof).assign(dataset=name, replicate=r)
            best = table[table.chosen].iloc[0]
            found[(name, r)] = (prof, list(best.boundaries))
            gap = float(np.sort(table.bic.to_numpy())[1] - best.bic) if len(table) > 1 else np.nan
            smooth = phase_test(prof)["verdict"]                      # segments vs a cubic fit (chapter 12)
            chosen.append(dict(dataset=name, replicate=r, k=int(best.k), boundaries=", ".join(map(str, best.boundaries))
                               or "none", bic_gap=gap, against_smooth=smooth, n_timesteps=len(prof)))
            bic.append(table.assign(boundaries=table.boundaries.map(lambda b: ", ".join(map(str, b)) or "none")))
    return pd.DataFrame(chosen), pd.concat(bic, ignore_index=True), found


@common.cached_chapter()
def run(cfg: Config) -> ChapterResult:
    """Chapter 5: IFE ranges per depth group over every replicate model, and each model's phases."""
    models, sweeps = common.models_and_sweeps(cfg)
    ife = ife_models(cfg, models, sweeps)
    ranges = ife_ranges(ife["ranges"])
    found, bic, by_model = phase_tables(replicates.load_sweeps(cfg, models, timesteps=dense_timesteps(cfg)))
    res = ChapterResult(CHAPTER)
    res.tables.update(ife_ranges=ranges, ife_per_model=ife["ranges"], phases=found, phase_bic=bic,
                      claims=pd.DataFrame(claims.known(ife_claims(ife["ranges"]))))
    per_t = replicates.across_replicates(ife["values"].rename(columns={"ife": "value"}),
                                         ["dataset", "t", "pair", "depth"])
    fc = replicates.per_replicate(sweeps, lambda sw: sw.blocks.groupby(["block", "t"], sort=False, as_index=False)
                                  .complexity.mean())
    block_order = sweeps["synthetic"][0].block_names
    per_t = per_t.sort_values("dataset", key=lambda d: d.map(data.DATASETS.index), kind="stable")
    res.data.update(ife=per_t.rename(columns={"mean": "ife"}), phases=by_model,
                    complexity={name: g.pivot_table(index="block", columns="t", values="complexity").loc[block_order]
                                for name, g in fc.groupby("dataset", sort=False)})
    both = ranges[ranges.dataset == "both"].set_index("group")
    res.values = dict(profile=cfg.profile, seed=cfg.run.seed, n=int(ife["ranges"].n_images.min()),
                      n_models=cfg.run.replicates, n_all_models=int(both.n_models.max()), n_dense=len(
                          dense_timesteps(cfg)), n_bootstrap=cfg.analysis.n_bootstrap,
                      **{f"ife_{g}_{end}": both.loc[g, end] for g in both.index for end in ("low", "high")},
                      **{f"k_{name}": ", ".join(str(k) for k in g.k) for name, g in found.groupby("dataset")},
                      n_no_phases=int((found.against_smooth == "no phases").sum()), n_phase_models=len(found),
                      **{f"bounds_{name}": "; ".join(f"r{r.replicate}: {r.boundaries}" for r in g.itertuples())
                         for name, g in found.groupby("dataset")})
    return res
