"""Chapter 13: the headline quantities at every saved training step, on tiny replicate models.

The values at the last step must be the very numbers chapters 2, 3, 4 and 7 give on the final models (the
same quantity, not a look-alike), and a snapshot's sweep must be cached apart from the final model's.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import circuitnb.core.config as C
from circuitnb.analysis import replicates, sweep
from circuitnb.chapters import common
from circuitnb.chapters.diffusion import (
    attention_specialization,
    circuit_complexity,
    cross_dataset,
    over_training,
    performance,
)
from circuitnb.core import results
from circuitnb.modeling import train


@pytest.fixture(scope="module")
def cfg(tmp_path_factory, celeba_root):
    return C.load("smoke", replicates=2, device="cpu", n_images=24, n_analysis=8, batch_size=4, train_steps=6,
                  checkpoint_every=2, warmup_steps=1, block_out_channels=(8, 16, 16), timesteps=[100, 300],
                  n_permutations=100, celeba_root=str(celeba_root), cache_dir=str(tmp_path_factory.mktemp("cache")))


@pytest.fixture(scope="module")
def res(cfg):
    return over_training.run(cfg)


def _final(long: pd.DataFrame, quantity: str, cfg) -> pd.DataFrame:
    return long[(long.quantity == quantity) & (long.step == train.snapshot_steps(cfg)[-1])]


def test_every_quantity_at_every_snapshot_step(cfg, res, tmp_path, monkeypatch):
    long, steps = res.tables["quantities"], train.snapshot_steps(cfg)
    assert len(steps) == cfg.train.n_snapshots >= 4
    for q in over_training.UNITS:
        g = long[long.quantity == q]
        assert sorted(g.step.unique()) == steps, q
        n_t = g.t.nunique() or 1                      # per t, or one value over all t
        n_ds = g.dataset.nunique()
        assert len(g) == len(steps) * n_t * n_ds and n_ds in (1, 2), q
        assert np.isfinite(g[["mean", "ci_low", "ci_high"]].to_numpy(float)).all(), q
    assert (long.n_models == cfg.run.replicates).all()
    assert set(long[long.quantity == "noise R²"].t) == set(cfg.analysis.timesteps)
    assert set(long[long.quantity == "head entropy"].t) == {cfg.analysis.head_t}
    # Snapshots really differ: the noise R² moves between the first and the last step.
    r2 = long[long.quantity == "noise R²"].set_index(["dataset", "t", "step"])["mean"]
    assert not np.allclose(r2.xs(steps[0], level="step"), r2.xs(steps[-1], level="step"))
    v = res.tables["verdicts"]
    assert sorted(v.step.unique()) == steps and v.id.str.startswith(over_training.FOLLOWED).all()
    assert {"acc_syn_100", "cc_ratio_100", "t4_ent_syn", "t4_ent_cel"} <= set(v.id)
    assert (v.groupby("id").size() == len(steps)).all()
    flips = v.groupby("id").verdict.nunique() > 1
    assert (v.groupby("id").changes_over_training.first() == flips).all()
    assert len(res.tables["verdicts_wide"]) == v.id.nunique()
    monkeypatch.setenv("CIRCUITNB_TABLES", str(tmp_path))
    for name in res.tables:
        res.show(name)
        assert (tmp_path / over_training.CHAPTER / f"{name}.csv").is_file()
    assert res.values["n_steps"] == len(steps) and np.isfinite(res.values["diff_last"])


def test_final_step_is_the_chapters_own_numbers(cfg, res, monkeypatch, tmp_path):
    monkeypatch.setenv("CIRCUITNB_TABLES", str(tmp_path))
    long = res.tables["quantities"]
    acc = performance.run(cfg).tables["accuracy"].set_index(["dataset", "t"])
    ours = _final(long, "noise R²", cfg).set_index(["dataset", "t"])
    assert np.allclose(ours.loc[acc.index, ["mean", "ci_low", "ci_high"]].astype(float),
                       acc[["mean", "ci_low", "ci_high"]])
    t1 = circuit_complexity.run(cfg).tables["table1"].set_index("timestep")
    ratio = _final(long, "circuit complexity ratio", cfg).set_index("t")
    assert np.allclose(ratio.loc[t1.index, ["mean", "ci_low", "ci_high", "null_low", "null_high"]].astype(float),
                       t1[["ratio", "ratio_ci_low", "ratio_ci_high", "ratio_null_low", "ratio_null_high"]])
    cc = _final(long, "circuit complexity", cfg).set_index(["dataset", "t"])["mean"]
    assert np.allclose([cc[("synthetic", t)] for t in t1.index], t1.syn)
    # Chapter 4: the mean over all heads of each model's per-head image means, then over models.
    per_model = attention_specialization.run(cfg).tables["heads_per_model"]
    for col, q in (("entropy", "head entropy"), ("entropy_norm", "head entropy / log2 K")):
        expect = per_model.groupby(["dataset", "replicate"])[col].mean().groupby("dataset").mean()
        got = _final(long, q, cfg).set_index("dataset")["mean"]
        assert np.allclose(got[expect.index], expect), q
    ch7 = cross_dataset.run(cfg)
    t4 = ch7.tables["table4"].set_index("metric").loc["Attention Entropy"]
    diff = _final(long, "entropy difference", cfg).iloc[0]
    assert np.allclose([diff["mean"], diff.ci_low, diff.ci_high], [t4["diff"], t4.diff_ci_low, t4.diff_ci_high])
    # The verdicts at the last step are the chapters' claim rows' own.
    v = res.tables["verdicts"]
    last = v[v.step == v.step.max()].set_index("id").ours
    claims7 = ch7.tables["claims"].set_index("id").ours
    assert np.allclose(last[["t4_ent_syn", "t4_ent_cel"]], claims7[["t4_ent_syn", "t4_ent_cel"]])


def test_snapshot_sweeps_are_cached_apart_from_the_final(cfg, res):
    steps = train.snapshot_steps(cfg)
    final = replicates.load_models(cfg)["synthetic"][0]
    early = replicates.load_models(cfg, at_step=steps[0])["synthetic"][0]
    last = replicates.load_models(cfg, at_step=steps[-1])["synthetic"][0]
    assert early.meta["key"] != final.meta["key"] and early.meta["at_step"] == steps[0]
    assert len(early.meta["losses"]) == steps[0] and early.meta["steps"] == steps[0]
    assert last.meta["key"] == final.meta["key"]          # the last snapshot is the final model, cache and all
    ts = tuple(cfg.analysis.timesteps)
    x0 = common.analysis_images(cfg, "synthetic")
    paths = [results.result_path(cfg, "sweep", [m.meta["key"]], dataset="synthetic", timesteps=ts, data=x0)
             for m in (early, final)]
    assert paths[0] != paths[1] and all(p.is_file() for p in paths)   # both swept (by the chapter), apart
    a, b = (sweep.sweep(cfg, "synthetic", m) for m in (early, final))
    assert not np.allclose(a.mse.mse, b.mse.mse)
    assert np.allclose(b.mse.mse, common.models_and_sweeps(cfg)[1]["synthetic"][0].mse.mse)
