"""Chapter 13 (the paper's future work): the headline quantities and their verdicts over training.

    res = over_training.run(cfg)
    res.tables["quantities"]    # quantity, unit, dataset, t, step, mean, ci_low, ci_high, null_low, null_high, n_models
    res.tables["verdicts"]      # id, step, paper, ours, ci_low, ci_high, unit, verdict, changes_over_training

The paper measures one finished model per dataset and asks, as future work, how its circuits form during
training. Training keeps each replicate model's EMA weights at ``cfg.train.n_snapshots`` evenly spaced
steps (:func:`circuitnb.modeling.train.snapshot_steps`, the last one being the final model). At every
step, every replicate model of each dataset is swept on its held-out images
(:func:`circuitnb.analysis.replicates.load_models` with ``at_step``; a snapshot carries its own cache key,
so its sweep is never confused with the final model's) and the headline quantities are recomputed by
the library functions the chapters call (:mod:`circuitnb.analysis`), so a value at the final step is the
very number the chapter shows:

* noise-prediction R² per t (chapter 2, :func:`circuitnb.analysis.per_image.accuracy_per_image`);
* circuit complexity per t and its CelebA / synthetic ratio with the same-data null (chapter 3, Table 1);
* mean head entropy at ``head_t`` in bits and as a fraction of log2 K (chapter 4, Eq. 1);
* the CelebA - synthetic attention-entropy difference over all t (chapter 7, Table 4) with its null;
* the scorecard verdict of the claims these answer (acc_*, cc_ratio_*, t4_ent_*) at each step.

The model is the unit throughout: mean over replicate models with a t-interval.
"""
from __future__ import annotations

import pandas as pd
from tqdm.auto import tqdm

from circuitnb.analysis import complexity, cross_dataset, heads, per_image, performance, replicates
from circuitnb.chapters import common
from circuitnb.chapters.report import ChapterResult
from circuitnb.core.config import Config
from circuitnb.measures import claims, verdicts
from circuitnb.modeling import train

CHAPTER = "13_over_training"
CONTRAST = "celeba vs synthetic"          # the dataset column of a between-dataset effect
# Quantity -> its unit (axis labels and the table's unit column).
UNITS = {"noise R²": "%", "circuit complexity": "share of heads", "circuit complexity ratio": "CelebA / synthetic",
         "head entropy": "bits", "head entropy / log2 K": "fraction of the maximum",
         "entropy difference": "bits, CelebA − synthetic"}
FOLLOWED = ("acc_", "cc_ratio_", "t4_ent_")   # claim ids whose verdict is followed over training
COLUMNS = ["quantity", "unit", "dataset", "t", "step", "mean", "ci_low", "ci_high", "null_low", "null_high",
           "n_models"]


def _rows(quantity: str, frame: pd.DataFrame, dataset=None, t=None, mean: str = "mean", lo: str = "ci_low",
          hi: str = "ci_high", null: tuple = (), n: str = "n_models") -> pd.DataFrame:
    """Rows of the long table from a chapter's table (column names say where each number is)."""
    out = pd.DataFrame({"quantity": quantity, "unit": UNITS[quantity],
                        "dataset": frame["dataset"] if dataset is None else dataset,
                        "t": frame[t] if t else pd.NA, "mean": frame[mean], "ci_low": frame[lo],
                        "ci_high": frame[hi], "n_models": frame[n]})
    out["null_low"], out["null_high"] = (frame[null[0]], frame[null[1]]) if null else (float("nan"),) * 2
    return out


def step_tables(cfg: Config, sweeps: dict, head_sweeps: dict) -> tuple[pd.DataFrame, list[dict]]:
    """Every headline quantity of one step's sweeps (long rows without ``step``) and its claim rows.

    ``sweeps`` {dataset: [sweep of replicate r]} at the profile's timesteps; ``head_sweeps`` the same
    at ``head_t`` (the same objects when ``head_t`` is one of the timesteps).
    """
    alpha, t_head = cfg.analysis.alpha, cfg.analysis.head_t
    acc = replicates.per_replicate(sweeps, per_image.accuracy_per_image)
    fc = replicates.per_replicate(sweeps, per_image.complexity_per_image)
    cc = replicates.per_replicate(sweeps, per_image.circuit_complexity_per_image)
    per_head = replicates.per_replicate(head_sweeps, lambda sw: heads.head_values_per_image(sw, t_head).groupby(
        ["dataset", "image"], as_index=False)[["entropy", "entropy_norm"]].mean())       # mean over all heads
    img = cross_dataset.image_level(cross_dataset.per_image_metrics(sweeps, []))
    t1 = complexity.table1(cc, alpha)
    ent = cross_dataset.table4(img, alpha).set_index("metric").loc[["Attention Entropy"]]
    frames = [_rows("noise R²", replicates.across_replicates(acc, ["dataset", "t"]), t="t"),
              _rows("circuit complexity", replicates.across_replicates(cc, ["dataset", "t"]), t="t"),
              _rows("circuit complexity ratio", t1, CONTRAST, "timestep", "ratio", "ratio_ci_low", "ratio_ci_high",
                    ("ratio_null_low", "ratio_null_high")),
              _rows("entropy difference", ent, CONTRAST, None, "diff", "diff_ci_low", "diff_ci_high",
                    ("diff_null_low", "diff_null_high"))]
    for q, col in (("head entropy", "entropy"), ("head entropy / log2 K", "entropy_norm")):
        frames.append(_rows(q, replicates.across_replicates(per_head, ["dataset"], value=col)).assign(t=t_head))
    rows = (performance.claim_rows(acc, fc) + complexity.table1_claims(cc)
            + cross_dataset.table4_claims(img))
    return pd.concat(frames, ignore_index=True), [r for r in rows if r["id"].startswith(FOLLOWED)]


def step_sweeps(cfg: Config, step: int) -> tuple[dict, dict]:
    """The sweeps of every replicate model at training ``step`` (cached per snapshot), and those at ``head_t``."""
    models = replicates.load_models(cfg, at_step=step)
    sweeps = replicates.load_sweeps(cfg, models)
    return sweeps, heads.head_sweeps(cfg, models, sweeps)


def stability(long: pd.DataFrame, verdict: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """Are the followed values still moving? Per value (quantity, dataset, t): the last step's mean against the
    previous step's 95% CI; and the followed verdicts that change between the last two steps.

    A value outside the previous snapshot's interval is still moving (the stability line).
    """
    steps = sorted(long.step.unique())
    if len(steps) < 2:
        return pd.DataFrame(), dict(n_values=0, n_stable=0, n_verdicts=0, n_verdict_changes=0, stable_line="one step")
    prev, last = steps[-2], steps[-1]
    keys = ["quantity", "dataset", "t"]
    a = long[long.step == prev].set_index(keys)[["mean", "ci_low", "ci_high"]]
    b = long[long.step == last].set_index(keys)[["mean"]].rename(columns={"mean": "mean_last"})
    table = a.join(b, how="inner").reset_index()
    table["inside_previous_ci"] = (table.mean_last >= table.ci_low) & (table.mean_last <= table.ci_high)
    table = table.rename(columns={"mean": "mean_previous", "ci_low": "previous_ci_low", "ci_high": "previous_ci_high"})
    v = verdict[verdict.step.isin([prev, last])].pivot(index="id", columns="step", values="verdict")
    changed = v[v[prev] != v[last]].index.tolist()
    n, ok = len(table), int(table.inside_previous_ci.sum())
    line = (f"{ok} of {n} followed values at step {last} lie inside the step-{prev} 95% CI; "
            f"{len(changed)} of {len(v)} followed verdicts change between the two steps")
    return table.assign(previous_step=prev, last_step=last), dict(
        n_values=n, n_stable=ok, n_verdicts=len(v), n_verdict_changes=len(changed),
        verdict_changes=", ".join(changed) if changed else "none", stable_line=line)


def verdicts_by_step(rows: pd.DataFrame, alpha: float) -> pd.DataFrame:
    """The scorecard verdict of each followed claim at each step; ``changes_over_training`` when they differ."""
    paper, margins = claims.load(), verdicts.load_margins()
    frames = []
    for step, g in rows.groupby("step", sort=True):
        card = verdicts.scorecard(paper, margins, g.drop(columns="step"), alpha)
        frames.append(card[card.id.isin(g.id)].assign(step=step))
    out = pd.concat(frames, ignore_index=True)
    out["changes_over_training"] = out.groupby("id").verdict.transform("nunique") > 1
    order = {cid: i for i, cid in enumerate(paper.id)}
    out = out.sort_values(["id", "step"], key=lambda s: s.map(order) if s.name == "id" else s, ignore_index=True)
    return out[["id", "step", "paper", "ours", "ci_low", "ci_high", "unit", "verdict", "replicates_disagree",
                "changes_over_training", "reason"]]


@common.cached_chapter()
def run(cfg: Config) -> ChapterResult:
    """Chapter 13: the headline quantities and followed verdicts at every saved training step."""
    if (res := common.on_your_model(cfg, CHAPTER)) is not None:
        return res                                  # cannot run on a model of your own: its line says why
    steps = train.snapshot_steps(cfg)
    quantities, rows = [], []
    for step in tqdm(steps, desc="snapshots (sweeps of every model)"):
        q, r = step_tables(cfg, *step_sweeps(cfg, step))
        quantities.append(q.assign(step=step))
        rows += [{**row, "step": step} for row in r]
    long = pd.concat(quantities, ignore_index=True)[COLUMNS]
    long["t"] = long["t"].astype("Int64")
    verdict = verdicts_by_step(pd.DataFrame(rows), cfg.analysis.alpha)
    res = ChapterResult(CHAPTER)
    res.tables["quantities"] = long
    res.tables["verdicts"] = verdict
    wide = verdict.pivot(index="id", columns="step", values="verdict").reindex(verdict.id.unique())
    wide.columns = [f"step {s}" for s in wide.columns]
    res.tables["verdicts_wide"] = wide.join(verdict.groupby("id").changes_over_training.first()).reset_index()
    res.data["quantities"] = long
    res.tables["stability"], stable = stability(long, verdict)
    res.values = {**_values(cfg, steps, long, verdict), **stable}
    return res


def _values(cfg: Config, steps: list[int], long: pd.DataFrame, verdict: pd.DataFrame) -> dict:
    """Prose numbers: the design, and each quantity at the first and the last saved step."""
    t0 = min(cfg.analysis.timesteps)
    changing = verdict[verdict.changes_over_training].id.unique()
    out = dict(profile=cfg.profile, seed=cfg.run.seed, n_models=int(long.n_models.min()), n=cfg.analysis.n_samples,
               steps=", ".join(map(str, steps)), n_steps=len(steps), train_steps=cfg.train.train_steps,
               timesteps=", ".join(map(str, cfg.analysis.timesteps)), t_first=t0, head_t=cfg.analysis.head_t,
               n_claims=int(verdict.id.nunique()), n_changing=len(changing),
               changing=", ".join(changing) if len(changing) else "none")
    picks = {"r2": ("noise R²", t0), "cc": ("circuit complexity", t0), "ratio": ("circuit complexity ratio", t0),
             "ent": ("head entropy", cfg.analysis.head_t), "entn": ("head entropy / log2 K", cfg.analysis.head_t),
             "diff": ("entropy difference", None)}
    short = {"synthetic": "syn", "celeba": "cel", CONTRAST: ""}
    for key, (q, t) in picks.items():
        g = long[(long.quantity == q) & (long.t.isna() if t is None else long.t == t)]
        for which, step in (("first", steps[0]), ("last", steps[-1])):
            for r in g[g.step == step].itertuples():
                name = "_".join(filter(None, (key, short[r.dataset], which)))
                out.update({name: r.mean, f"{name}_lo": r.ci_low, f"{name}_hi": r.ci_high})
    return out
