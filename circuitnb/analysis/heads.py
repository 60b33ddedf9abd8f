"""§4.3, Table 2: every head of every replicate model, its tested function, and Table 2's scorecard rows.

    h = head_tests(cfg, models, head_sweeps(cfg, models, sweeps), cfg.analysis.head_t)
    per_model = heads_per_model(h["per_image"], h["imp"], h["tests"])
    rows = table2_claims(table2_matches(h["tests"]), per_model, h["per_image"])

The paper names four heads by function (edge detection, global structure, texture analysis, semantic
integration) without saying how the functions were assigned. We test every head of every model
(:mod:`circuitnb.measures.head_functions`: permutation tests, Bonferroni over heads x functions within a
model) and match Table 2's "edge head" in a model to the head whose tested label is edge detection (the
highest score if several). A model with no such head contributes NaN to that row; each row says on how
many models it stands. Chapters 4, 12 (the global-head rule, entropy units) and 13 read them.
"""
from __future__ import annotations

import functools

import numpy as np
import pandas as pd

from circuitnb import data
from circuitnb.analysis import replicates
from circuitnb.analysis.claim_rows import claim_row, labelled_row
from circuitnb.analysis.convergence import heldout_images
from circuitnb.core import results
from circuitnb.core.config import Config, load
from circuitnb.core.readings import READINGS, options
from circuitnb.interventions import circuits
from circuitnb.measures import claims, head_functions, metrics
from circuitnb.measures.verdicts import Estimate, replicate_ci
from circuitnb.modeling.unet import build_unet, n_parameters

TABLE2 = {"edge": "edge detection", "global": "global structure", "texture": "texture analysis",
          "semantic": "semantic integration"}
QUANTITIES = {"entropy": ("entropy", "bits"), "spec": ("specialization", "fraction 0-1"),
              "importance": ("importance", "a.u.")}          # Table 2 column -> our column, unit


def head_values_per_image(sw, t: int) -> pd.DataFrame:
    """Entropy (Eq. 1, bits), H / log2 K and specialization (Eq. 2) of every head on every image at t.

    Columns: dataset, image, layer, head, n_keys, entropy, entropy_norm, specialization.
    """
    sub = sw.heads[sw.heads.t == t].rename(columns={"head": "index", "head_id": "head"})
    keys = {layer: sw.received[(t, layer)].shape[-1] for layer in sw.layers}   # K differs between layers
    out = sub[["dataset", "image", "layer", "head", "entropy", "specialization"]].copy()
    out["n_keys"] = out.layer.map(keys)
    out["entropy_norm"] = metrics.normalised_entropy(out.entropy, out.n_keys)
    return out


def importance(cfg: Config, model, t: int, wait: bool = True) -> pd.DataFrame:
    """Head importance (:func:`circuitnb.interventions.circuits.head_importance`) of one model at t (cached)."""
    x0 = heldout_images(cfg, model.meta["dataset"])
    return results.cached(cfg, "head_importance", model,
                          lambda: circuits.head_importance(model.unet, model.scheduler, x0, t, seed=cfg.run.seed), t=t,
                          data=x0, wait=wait)


def functions(cfg: Config, sw, model, t: int, wait: bool = True) -> pd.DataFrame:
    """Every (head, function) test of one model at t (cached): head, function, score, p, p_bonferroni,
    significant, and ``label`` (the head's one assigned function, :func:`head_functions.assign_functions`).

    The semantic target needs part labels, so it exists for the synthetic data only.
    """
    def compute() -> pd.DataFrame:
        x0 = heldout_images(cfg, sw.dataset)
        labels = data.analysis_labels(cfg)[: len(x0)] if sw.dataset == "synthetic" else None
        entropy = sw.head_matrix(t, "entropy")
        # Layers at different resolutions (a model of your own) are scored against targets at their own grid,
        # Bonferroni over every head of the model; the book's models have one grid, so one part.
        parts: dict[int, list[str]] = {}
        for layer in sw.layers:
            parts.setdefault(sw.keys(layer), []).append(layer)
        targets = {keys: head_functions.function_targets(x0, labels, int(round(np.sqrt(keys)))) for keys in parts}
        n_tests = len(sw.head_ids) * (len(next(iter(targets.values()))) + 1)        # + the global test
        frames = []
        for keys, layers in parts.items():
            received = np.concatenate([sw.received[(t, layer)] for layer in layers], 1)   # [N, heads, K]
            ids = [f"{layer}.h{k}" for layer in layers for k in range(sw.received[(t, layer)].shape[1])]
            cols = [sw.head_ids.index(h) for h in ids]
            frames.append(head_functions.score_heads(
                received, targets[keys], metrics.normalised_entropy(entropy[:, cols], keys), ids,
                n_permutations=cfg.analysis.n_permutations, seed=cfg.run.seed + cols[0], alpha=cfg.analysis.alpha,
                family_size=n_tests))
        order = {h: i for i, h in enumerate(sw.head_ids)}        # rows in head order, as the global re-tests read
        scores = pd.concat(frames, ignore_index=True).sort_values("head", key=lambda h: h.map(order), kind="stable",
                                                                 ignore_index=True)
        label = head_functions.assign_functions(scores).set_index("head").function
        return scores.assign(label=scores["head"].map(label))
    return results.cached(cfg, "head_functions", model, compute, t=t, dataset=sw.dataset,
                          data=heldout_images(cfg, sw.dataset), wait=wait)


def heads_per_model(per_image: pd.DataFrame, imp: pd.DataFrame, tests: pd.DataFrame) -> pd.DataFrame:
    """One row per (model, head): image means and SDs, importance and tested function label."""
    g = per_image.groupby(["dataset", "replicate", "layer", "head"], sort=False)
    out = g.agg(n_keys=("n_keys", "first"), entropy=("entropy", "mean"), entropy_sd=("entropy", "std"),
                entropy_norm=("entropy_norm", "mean"), specialization=("specialization", "mean"),
                specialization_sd=("specialization", "std"), n_images=("image", "size")).reset_index()
    labels = tests.drop_duplicates(["dataset", "replicate", "head"])[["dataset", "replicate", "head", "label"]]
    keys = ["dataset", "replicate", "head"]
    return (out.merge(imp[keys + ["importance"]], on=keys, how="left")
            .merge(labels.rename(columns={"label": "function"}), on=keys, how="left"))


def table2_matches(tests: pd.DataFrame) -> pd.DataFrame:
    """Each synthetic model's head for each Table 2 function: the head labelled with it (highest score),
    else NaN. Columns: key, function, replicate, head."""
    syn = tests[(tests.dataset == "synthetic") & (tests.function == tests.label)]
    rows = []
    for r in sorted(tests[tests.dataset == "synthetic"].replicate.unique()):
        for key, func in TABLE2.items():
            hit = syn[(syn.replicate == r) & (syn.function == func)].sort_values("score", ascending=False)
            rows.append(dict(key=key, function=func, replicate=r, head=hit["head"].iloc[0] if len(hit) else np.nan))
    return pd.DataFrame(rows)


def _matched(matches: pd.DataFrame, per_model: pd.DataFrame) -> pd.DataFrame:
    keys = ["replicate", "head"]
    return matches.merge(per_model[per_model.dataset == "synthetic"], on=keys, how="left")


def table2(matches: pd.DataFrame, per_model: pd.DataFrame) -> pd.DataFrame:
    """Table 2 at the model level: per function, the matched head of each synthetic model and the mean
    over the models that have one (t-interval) of entropy, H / log2 K, specialization and importance."""
    rows = []
    for key, g in _matched(matches, per_model).groupby("key", sort=False):
        row: dict[str, object] = dict(function=TABLE2[key], heads="; ".join(f"r{r}: {h if isinstance(h, str) else '–'}"
                                                         for r, h in zip(g.replicate, g["head"])))
        for col in ("entropy", "entropy_norm", "specialization", "importance"):
            est = replicate_ci(g[col])
            row.update({col: est.mean, f"{col}_ci_low": est.low, f"{col}_ci_high": est.high})
        row.update(n_models_matched=int(g["head"].notna().sum()), n_models=len(g))
        rows.append(row)
    return pd.DataFrame(rows)


def table2_claims(matches: pd.DataFrame, per_model: pd.DataFrame, per_image: pd.DataFrame) -> list[dict]:
    """Scorecard rows of Table 2 (levels, judged as levels). Each model's own estimate: the t-interval over
    images of its matched head (entropy, specialization); importance is one number per model, so it has
    no per-model verdict. A function no head of any model carries is "not comparable"."""
    rows = []
    images = per_image[per_image.dataset == "synthetic"].set_index(["replicate", "head"]).sort_index()
    for key, g in _matched(matches, per_model).groupby("key", sort=False):
        heads = ", ".join(f"r{r}: {h if isinstance(h, str) else '–'}" for r, h in zip(g.replicate, g["head"]))
        n_ok = int(g["head"].notna().sum())
        for q, (col, unit) in QUANTITIES.items():
            cid = f"head_{key}_{q}"
            if n_ok == 0:
                rows.append(labelled_row(cid, np.nan, "not comparable", f"no head of any of the {len(g)} "
                                         f"synthetic models passes the '{TABLE2[key]}' test", unit=unit))
                continue
            per = [] if q == "importance" else [
                replicate_ci(images.loc[(r, h), col]) if isinstance(h, str) else Estimate(np.nan, np.nan, np.nan, 0)
                for r, h in zip(g.replicate, g["head"])]
            why = f"on {n_ok} of {len(g)} synthetic models (the head labelled '{TABLE2[key]}': {heads})"
            if q == "entropy":                                 # bits depend on the layer's key count
                why += "; K = " + ", ".join(str(int(k)) for k in sorted(g.n_keys.dropna().unique())) + " keys"
            rows.append(claim_row(cid, replicate_ci(g[col]), per, unit=unit, reason=why))
    return rows


def distinct_heads(per_model: pd.DataFrame) -> pd.DataFrame:
    """Per model: how many heads carry a tested function label, and how many carry each function."""
    counts = per_model.assign(n=1).pivot_table(index=["dataset", "replicate"], columns="function", values="n",
                                               aggfunc="sum", fill_value=0)
    counts = counts.reindex(columns=[*head_functions.FUNCTIONS, "unassigned"], fill_value=0)
    counts.insert(0, "n_distinct", counts[list(head_functions.FUNCTIONS)].sum(axis=1))
    return counts.reset_index()


@functools.lru_cache(maxsize=1)
def heads_profile() -> pd.DataFrame:
    """§3.1's "8 attention heads distributed across 3 transformer layers" under both readings: heads in
    the model, and parameters of the paper profile's U-Net (by its stated widths) beside the paper's §5.4."""
    n_params = n_parameters(build_unet(load("paper"), seed=0)) / 1e6
    a = pd.read_csv(claims.PAPER_DATA / "audit.csv").set_index("key").value.astype(float)
    per_layer, layers = int(a["heads_per_layer"]), int(a["attention_layers"])
    return pd.DataFrame([dict(reading=r, description=READINGS["heads_profile"].options[r],
                              heads=per_layer * layers if r == "per_layer" else per_layer,
                              params_millions=n_params, paper_params_millions=a["parameters_millions"])
                         for r in options("heads_profile")])


def heads_profile_reason(profile: pd.DataFrame) -> str:
    """The scorecard's reason text for both readings of the heads sentence (for n_distinct_heads)."""
    r = profile.set_index("reading")
    return (f"'8 heads across 3 layers' read as 8 per layer ({int(r.heads['per_layer'])} heads, our default) or "
            f"8 in total; the paper profile's U-Net has {r.params_millions.iloc[0]:.2f}M parameters under both "
            f"(heads split a layer's width), against the {r.paper_params_millions.iloc[0]:.0f}M of §5.4")


def distinct_heads_claim(distinct: pd.DataFrame) -> dict:
    """n_distinct_heads: heads with a tested label per model, the mean over every model of both datasets;
    the reason carries both readings of §3.1's heads sentence (:func:`heads_profile_reason`)."""
    per = ", ".join(f"{d[:3]} r{r}: {n}" for d, r, n in distinct[["dataset", "replicate", "n_distinct"]].values)
    return claim_row("n_distinct_heads", replicate_ci(distinct.n_distinct), unit="count",
                     reason=f"heads with a tested function label, per model ({per}); "
                            f"mean over {len(distinct)} models of both datasets; "
                            + heads_profile_reason(heads_profile()))


def head_sweeps(cfg: Config, models: dict, sweeps: dict) -> dict:
    """The sweeps at ``head_t``: ``sweeps`` when ``head_t`` is one of the analysed timesteps, else a sweep
    of every model at ``head_t`` alone (cached)."""
    t = cfg.analysis.head_t
    return sweeps if t in cfg.analysis.timesteps else replicates.load_sweeps(cfg, models, timesteps=(t,))


def head_tests(cfg: Config, models: dict, sweeps: dict, t: int) -> dict:
    """Chapter 4's cached inputs at t: per_image values, importance, function tests and H / Hmax per model."""
    pairs = {name: list(zip(sweeps[name], models[name])) for name in models}
    uniformity = {(name, r): metrics.normalised_entropy(sw.head_matrix(t, "entropy"), sw.head_keys())
                  for name in sweeps for r, sw in enumerate(sweeps[name])}
    return dict(per_image=replicates.per_replicate(sweeps, lambda sw: head_values_per_image(sw, t)),
                imp=replicates.per_replicate(models, lambda m, wait=True: importance(cfg, m, t, wait), cached=True),
                tests=replicates.per_replicate(pairs, lambda p, wait=True: functions(cfg, p[0], p[1], t, wait),
                                               cached=True),
                uniformity=uniformity)
