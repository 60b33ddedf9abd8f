"""Chapters 4, 5 and 8 as package functions: run(cfg) on tiny replicate models, and known answers for the
statistics these chapters add (Table 2 matching, IFE ranges per model, divergence beside its null)."""
from __future__ import annotations

import types

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

import circuitnb.core.config as C
from circuitnb.analysis import divergence, information_flow
from circuitnb.analysis import heads as head_tables
from circuitnb.chapters.diffusion import attention_evolution, attention_specialization, temporal_dynamics
from circuitnb.measures import claims, quantities

CHAPTERS = {"heads": attention_specialization, "temporal": temporal_dynamics, "evolution": attention_evolution}


@pytest.fixture(scope="module")
def ran(tmp_path_factory, celeba_root) -> dict:
    """Each chapter's result on two tiny models per dataset (trained once for the module)."""
    mp = pytest.MonkeyPatch()
    mp.setenv("CIRCUITNB_CACHE", str(tmp_path_factory.mktemp("cache")))
    mp.setenv("CIRCUITNB_TABLES", str(tmp_path_factory.mktemp("tables")))
    cfg = C.load("smoke", replicates=2, device="cpu", n_images=24, n_analysis=8, batch_size=4, train_steps=6,
                 checkpoint_every=2, warmup_steps=1, block_out_channels=(8, 16, 16), timesteps=[100, 300],
                 n_phase_timesteps=6, n_bootstrap=100, celeba_root=str(celeba_root))
    try:
        yield {name: mod.run(cfg) for name, mod in CHAPTERS.items()}
    finally:
        mp.undo()


def _check_claims(res, expected: set[str]) -> pd.DataFrame:
    rows = res.tables["claims"]
    assert set(rows["id"]) == expected and expected <= set(claims.load()["id"])
    assert not rows["id"].duplicated().any()
    return rows.set_index("id")


def _check_csvs(res, tmp_tables) -> None:
    for name in res.tables:
        res.show(name)
        assert (tmp_tables / res.chapter / f"{name}.csv").is_file()


def test_heads_run_measures_every_head_of_every_model(ran, tmp_path, monkeypatch):
    res = ran["heads"]
    per = res.tables["heads_per_model"]
    n_heads = per["head"].nunique()
    assert len(per) == 2 * 2 * n_heads and set(per.replicate) == {0, 1}
    assert np.isfinite(per[["entropy", "entropy_norm", "specialization", "importance"]]).all().all()
    # H / log2 K and S = 1 - H / log2 K are the same reading of one number (Eq. 2).
    assert np.allclose(per.entropy_norm, 1 - per.specialization, atol=1e-5)
    assert (per.entropy_norm > 0).all() and (per.entropy_norm <= 1 + 1e-6).all()
    summary = res.tables["heads"]
    assert len(summary) == 2 * n_heads and (summary.n_models == 2).all()
    assert {"entropy_ci_low", "entropy_ci_high", "importance_ci_low", "functions"} <= set(summary.columns)
    t2 = res.tables["table2"].set_index("function")
    assert list(t2.index) == list(head_tables.TABLE2.values()) and (t2.n_models == 2).all()
    assert set(res.tables["distinct_heads"].columns) >= {"dataset", "replicate", "n_distinct"}
    rows = _check_claims(res, {f"head_{k}_{q}" for k in head_tables.TABLE2 for q in head_tables.QUANTITIES}
                         | {"n_distinct_heads"})
    assert rows.loc["n_distinct_heads", "ours"] == res.tables["distinct_heads"].n_distinct.mean()
    monkeypatch.setenv("CIRCUITNB_TABLES", str(tmp_path))
    _check_csvs(res, tmp_path)


def test_temporal_run_gives_ranges_per_model_and_phases(ran, tmp_path, monkeypatch):
    res = ran["temporal"]
    per = res.tables["ife_per_model"]
    assert set(per.group) == set(information_flow.DEPTH_GROUPS) and len(per) == 2 * 2 * 3
    assert ((per.low <= per.high) & (per.low >= 0) & (per.high <= 1)).all()
    assert ((per.low_ci_low <= per.low_eq_low) & (per.low_eq_high <= per.low_ci_high)).all()   # 90% inside 95%
    both = res.tables["ife_ranges"].query("dataset == 'both'").set_index("group")
    assert (both.n_models == 4).all()
    assert both.loc["early", "low"] == pytest.approx(per[per.group == "early"].low.mean())
    phases = res.tables["phases"]
    assert len(phases) == 4 and phases.k.between(1, 6).all() and (phases.n_timesteps == 6).all()
    _check_claims(res, {f"ife_{g}_{e}" for g in information_flow.DEPTH_GROUPS for e in ("lo", "hi")})
    monkeypatch.setenv("CIRCUITNB_TABLES", str(tmp_path))
    _check_csvs(res, tmp_path)


def test_evolution_run_sets_divergence_beside_the_same_data_null(ran, tmp_path, monkeypatch):
    res = ran["evolution"]
    div = res.tables["divergence"]
    assert len(div) == 2 * 2 and (div.n_pairs == 2).all() and (div.n_null == 2).all()
    assert np.isfinite(div[["divergence", "ci_low", "ci_high", "null_low", "null_high"]]).all().all()
    pairs = res.tables["divergence_pairs"]
    assert (pairs.groupby(["quantity", "t"]).kind.value_counts() == 2).all()
    rows = _check_claims(res, {f"{p}_{t}" for p in ("ent_div", "spec_div") for t in (100, 300)})
    assert all(len(r) == 2 for r in rows.replicates)                    # one verdict per replicate pair
    assert set(res.data["maps"]) == {"synthetic", "celeba"}
    monkeypatch.setenv("CIRCUITNB_TABLES", str(tmp_path))
    _check_csvs(res, tmp_path)


# --- known answers ------------------------------------------------------------------------------------
def test_table2_matches_the_highest_scoring_labelled_head_and_leaves_others_nan():
    edge = "edge detection"
    tests = pd.DataFrame([
        dict(dataset="synthetic", replicate=0, head="a.h0", function=edge, score=0.3, label=edge),
        dict(dataset="synthetic", replicate=0, head="a.h1", function=edge, score=0.5, label=edge),
        # passes the edge test but keeps another label: not the edge head
        dict(dataset="synthetic", replicate=0, head="a.h2", function=edge, score=0.9, label="global structure"),
        dict(dataset="synthetic", replicate=1, head="a.h0", function=edge, score=0.2, label="unassigned"),
    ])
    m = head_tables.table2_matches(tests).set_index(["key", "replicate"])["head"]
    assert m[("edge", 0)] == "a.h1" and pd.isna(m[("edge", 1)]) and pd.isna(m[("texture", 0)])
    per_model = pd.DataFrame(dict(dataset="synthetic", replicate=[0, 0, 1], head=["a.h1", "a.h2", "a.h0"],
                                  entropy=[3.0, 4.0, 5.0], specialization=[0.25, 0.0, 0.1],
                                  entropy_norm=[0.75, 1.0, 0.9], importance=[1e-3, 0.0, 2e-3], n_keys=[16, 16, 64]))
    images = pd.DataFrame(dict(dataset="synthetic", replicate=0, head="a.h1", image=[0, 1, 2],
                               entropy=[2.9, 3.0, 3.1], specialization=[0.24, 0.25, 0.26]))
    rows = {r["id"]: r for r in head_tables.table2_claims(head_tables.table2_matches(tests), per_model, images)}
    edge = rows["head_edge_entropy"]
    assert edge["ours"] == 3.0 and np.isnan(edge["ci_low"]) and "1 of 2" in edge["reason"]   # one model: no CI
    assert "K = 16 keys" in edge["reason"]
    assert edge["replicates"][1] == "inconclusive"                      # the model without an edge head
    assert rows["head_texture_entropy"]["label"] == "not comparable"
    assert rows["head_edge_importance"]["replicates"] == ()


def test_distinct_heads_counts_labelled_heads_per_model():
    per_model = pd.DataFrame(dict(dataset="celeba", replicate=[0, 0, 0, 1], head=["h0", "h1", "h2", "h0"],
                                  function=["edge detection", "unassigned", "global structure", "unassigned"]))
    d = head_tables.distinct_heads(per_model).set_index("replicate")
    assert d.loc[0, "n_distinct"] == 2 and d.loc[1, "n_distinct"] == 0 and d.loc[0, "unassigned"] == 1
    row = head_tables.distinct_heads_claim(d.reset_index())
    assert row["ours"] == 1.0 and row["ci_low"] == pytest.approx(sps.t.interval(0.95, 1, 1.0, 1.0)[0])


def _fake_sweep(seed: int = 0, n: int = 60):
    """Four blocks, two timesteps: block b is a copy of a (IFE = 1); c and d are unrelated noise."""
    rng = np.random.default_rng(seed)
    s = rng.standard_normal(n)
    pc = {}
    for t in (10, 20):
        pc.update({(t, "a"): s, (t, "b"): 2 * s + 1, (t, "c"): rng.standard_normal(n),
                   (t, "d"): rng.standard_normal(n)})
    return types.SimpleNamespace(block_names=["a", "b", "c", "d"], timesteps=(10, 20), pc=pc)


def test_ife_model_ranges_are_the_min_and_max_per_depth_group():
    out = information_flow.ife_model(_fake_sweep(), n_bootstrap=200)
    values, ranges = out["values"], out["ranges"].set_index("group")
    # pairs a->b (depth 1/6, early), b->c (1/2, middle), c->d (5/6, late)
    assert list(values.group[:3]) == ["early", "middle", "late"]
    early = ranges.loc["early"]
    assert early.low == early.high == 1.0 and early.low_ci_low == early.low_ci_high == 1.0   # a copy, every resample
    late = values[values.group == "late"].ife
    assert ranges.loc["late", "low"] == late.min() < 0.5 and ranges.loc["late", "high"] == late.max()
    assert ranges.loc["late", "high_ci_low"] <= ranges.loc["late", "high_eq_low"] <= ranges.loc["late", "high_eq_high"]


def test_divergence_estimate_recovers_a_known_shift():
    rng = np.random.default_rng(0)
    a = rng.normal(0, 0.05, (400, 6))
    b = a[rng.permutation(400)] + np.array([1, -1, 1, -1, 1, -1]) * 0.5       # every head shifted by 0.5
    est = divergence.divergence_estimate(a, b, n_bootstrap=500)
    assert est.mean == pytest.approx(quantities.divergence(a, b)) == pytest.approx(0.5, abs=0.01)
    lo90, hi90 = est.ci(0.90)
    assert est.low <= lo90 < 0.5 < hi90 <= est.high and est.high - est.low < 0.02


def test_divergence_table_is_a_t_interval_over_pairs_judged_against_the_null():
    def pairs(between, null):
        return pd.DataFrame([dict(quantity="entropy", t=100, kind="between", divergence=v) for v in between]
                            + [dict(quantity="entropy", t=100, kind="same data", divergence=v) for v in null])
    row = divergence.divergence_table(pairs([0.30, 0.34, 0.32], [0.05, 0.08, 0.06])).iloc[0]
    lo, hi = sps.t.interval(0.95, 2, loc=0.32, scale=sps.sem([0.30, 0.34, 0.32]))
    assert (row.divergence, row.ci_low, row.ci_high) == pytest.approx((0.32, lo, hi))
    assert (row.null_low, row.null_high) == (0.05, 0.08) and row.beyond_null
    # A mean above the null range is not enough: its interval must clear the range too.
    wide = divergence.divergence_table(pairs([0.09, 0.15, 0.12], [0.05, 0.08, 0.10])).iloc[0]
    assert wide.divergence > wide.null_high and wide.ci_low < wide.null_high and not wide.beyond_null
    one = divergence.divergence_table(pairs([0.3], [0.05])).iloc[0]         # one pair: no interval, no claim
    assert np.isnan(one.ci_low) and not one.beyond_null
