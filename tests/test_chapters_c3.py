"""Chapters 6 (interventions), 9 (robustness) and 11 (explorers) as run(cfg), and their model-level statistics."""
import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

import circuitnb.core.config as C
from circuitnb.analysis import interventions, model_stats
from circuitnb.analysis import readings as reading_rows
from circuitnb.analysis import transfer as xfer
from circuitnb.chapters import common
from circuitnb.chapters.diffusion import explorers, robustness
from circuitnb.chapters.diffusion import interventions as interventions_chapter
from circuitnb.measures import claims, quantities
from circuitnb.measures.verdicts import replicate_ci


@pytest.fixture(scope="module")
def cfg(tmp_path_factory, celeba_root):
    """Two tiny models per dataset (a few training steps), 4 held-out images, t = 100 and the Table 3 t."""
    root = tmp_path_factory.mktemp("c3")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CIRCUITNB_CACHE", str(root / "cache"))
        mp.setenv("CIRCUITNB_TABLES", str(root / "tables"))
        mp.setenv("CIRCUITNB_CELEBA", str(celeba_root))
        yield C.load("smoke", replicates=2, device="cpu", n_images=16, n_analysis=8, n_samples=4, batch_size=4,
                     train_steps=4, checkpoint_every=2, warmup_steps=1, block_out_channels=(8, 16, 16),
                     timesteps=[100, 300], head_t=300, n_bootstrap=100)


@pytest.fixture(scope="module")
def ch6(cfg):
    return interventions_chapter.run(cfg)


@pytest.fixture(scope="module")
def ch9(cfg, ch6):                       # after chapter 6: the intervention sweeps are cached
    return robustness.run(cfg)


def _written(res) -> None:
    from circuitnb.chapters.report import tables_dir
    for name in res.tables:
        res.show(name)
        assert (tables_dir() / res.chapter / f"{name}.csv").is_file(), name


def _claims_ok(frame: pd.DataFrame, ids: set) -> None:
    assert set(frame.id) == ids and ids <= set(claims.load().id)
    assert np.isfinite(frame[["ours", "ci_low", "ci_high", "eq_low", "eq_high"]].to_numpy(float)).all()
    assert (frame.ci_low <= frame.eq_low).all() and (frame.eq_high <= frame.ci_high).all()


def test_chapter6_tables_claims_and_csvs(ch6, cfg):
    t3 = ch6.tables["table3"]
    assert len(t3) == 2 * len(interventions.TABLE3) and list(t3.dataset.unique()) == ["synthetic", "celeba"]
    assert (t3.n_models == 2).all() and (t3.n_images == 4).all()
    assert np.isfinite(t3[["mse_base", "mse_ablated", "impact", "ci_low", "ci_high", "p_holm"]].to_numpy()).all()
    assert t3.paper.notna().sum() == len(interventions.TABLE3)              # the paper's column, synthetic rows only
    fam = ch6.tables["families"]
    assert set(fam.family) == {"layer ablation", "mean ablation", "bypass ablation", "feature scaling",
                               "attention perturbation", "circuit interruption"} and set(fam.t) == {100, 300}
    patch = ch6.tables["patching"]
    assert {"impact", "null_low", "null_high", "beyond_null"} <= set(patch.columns) and len(patch) == 14
    assert "same_init" not in patch and patch.null_low.notna().all() and (patch.null_low <= patch.null_high).all()
    assert (patch.n_models == 2).all()                          # each target model's other-data source once
    size = ch6.tables["circuit_size"]
    assert set(zip(size.dataset, size.components)) == {(d, k) for d in ("synthetic", "celeba")
                                                      for k in ("heads", "groups")}
    assert size.share.between(0, 100).all()
    claims_frame = ch6.tables["claims"]
    _claims_ok(claims_frame, {"abl_baseline_mse", *interventions.TABLE3.values()})
    assert all(len(r) == 2 for r in claims_frame.replicates)              # each model's own verdict
    assert ch6.values["t3"] == 300 and ch6.values["n_models"] == 2
    _written(ch6)


def test_chapter6_has_no_claims_off_the_papers_timestep(cfg):
    t3 = pd.DataFrame(dict(dataset=["synthetic"], group=["middle"]))
    assert interventions.table3_claims(pd.DataFrame(), pd.DataFrame(), t3, 100) == []
    assert interventions.table_t(C.load("smoke", timesteps=[100, 600], head_t=300)) == 100      # nearest analysed


def test_chapter9_tables_claims_and_csvs(ch9, cfg):
    acc = ch9.tables["accuracy"]
    assert len(acc) == 4 and acc.cross.sum() == 2 and (acc.n_models == 2).all()
    assert len(ch9.tables["transfer_gap"]) == 2
    cka = ch9.tables["cka"]
    assert "all" in set(cka.block) and cka.cka.between(0, 100 + 1e-9).all()
    assert cka.null_low.notna().all() and "same_init" not in cka     # the same-data null is there
    assert "feat_same_init" not in ch9.values
    rob = ch9.tables["robustness"].set_index("dataset")
    assert list(rob.index) == ["synthetic", "celeba", "both"]
    claims_frame = ch9.tables["claims"].set_index("id")
    _claims_ok(claims_frame.reset_index(), {"xfer_accuracy", "xfer_features", "xfer_robustness"})
    # xfer_robustness is ONE estimate over replicate pairs (a t-interval of the pair means), never a union of
    # the models' intervals.
    models, _ = common.models_and_sweeps(cfg)
    per, _ = xfer.robustness(interventions.replicate_sweeps(cfg, models), cfg.analysis.n_bootstrap)
    est = replicate_ci(per.groupby("replicate").robustness.mean())      # pair r: mean of its two models
    row = claims_frame.loc["xfer_robustness"]
    assert (row.ours, row.ci_low, row.ci_high) == pytest.approx((est.mean, est.low, est.high))
    assert rob.loc["both", "robustness"] == pytest.approx(est.mean)
    assert len(row.replicates) == 2 and claims_frame.loc["xfer_features", "replicates"] == ()
    feat = claims_frame.loc["xfer_features"]                         # the claim is the table's "all" row
    assert (feat.ours, feat.ci_low, feat.ci_high) == pytest.approx(tuple(cka.set_index("block").loc["all", [
        "cka", "ci_low", "ci_high"]]))
    _written(ch9)


def test_chapter11_builds_the_three_explorers_for_replicate_0(cfg):
    res = explorers.run(cfg, scrub_steps=3)
    assert set(res.data) == {"attention", "intervention", "scrub"}
    assert all(isinstance(e, explorers.Explorer) and e.nbytes > 0 for e in res.data.values())
    assert res.data["intervention"].data["datasets"] == ["synthetic", "celeba"] and res.values["n_steps"] == 3


# --- known answers for the model-level statistics ----------------------------------------------------------
def test_image_bootstrap_resamples_pairs_together():
    rng = np.random.default_rng(0)
    base = rng.lognormal(size=200)
    # Every resample of pairs gives exactly 1.5 / 1 - 1: a paired bootstrap has no spread at all; resampling
    # base and intervened separately would.
    est = model_stats.image_bootstrap(interventions._eq5, (base, 1.5 * base), 500)
    assert est.mean == pytest.approx(0.5) and (est.low, est.high) == pytest.approx((0.5, 0.5))
    # A mean: the percentile interval is close to the t-interval for n = 400, and the 90% one nests inside.
    x = rng.normal(size=400)
    est = model_stats.image_bootstrap(lambda v, axis=-1: v.mean(axis), (x,), 4000, seed=1)
    lo, hi = sps.t.interval(0.95, len(x) - 1, loc=x.mean(), scale=sps.sem(x))
    assert est.low == pytest.approx(lo, abs=0.02) and est.high == pytest.approx(hi, abs=0.02)
    assert est.low < est.ci(0.9)[0] < est.ci(0.9)[1] < est.high
    assert np.isnan(model_stats.image_bootstrap(lambda v, axis=-1: v.mean(axis), ([1.0],), 100).low)


def test_over_models_and_beside_null():
    per = pd.DataFrame(dict(dataset="synthetic", replicate=[0, 1, 2], group="g", v=[1.0, 2.0, 4.0], n=9))
    row = model_stats.over_models(per, ["group"], "v").iloc[0]
    lo, hi = sps.t.interval(0.95, 2, loc=7 / 3, scale=sps.sem([1.0, 2.0, 4.0]))
    assert (row["mean"], row.ci_low, row.ci_high) == pytest.approx((7 / 3, lo, hi))
    assert row.n_models == 3 and row.n_images == 9 and row.per_model == "1, 2, 4"
    rows = [("other data", 0, 10.0), ("other data", 1, 10.4), ("same data", 0, 1.0), ("same data", 1, 2.0)]
    frame = pd.DataFrame([dict(dataset="synthetic", replicate=r, source=s, block="b", x=x, n=5) for s, r, x in rows])
    out = model_stats.beside_null(frame, ["block"], "x").iloc[0]
    lo, hi = sps.t.interval(0.95, 1, loc=10.2, scale=sps.sem([10.0, 10.4]))
    assert (out.x, out.ci_low, out.ci_high) == pytest.approx((10.2, lo, hi))
    assert (out.null_low, out.null_high) == (1, 2) and out.beyond_null and out.n_models == 2
    frame.loc[frame.source == "same data", "x"] = [9.0, 11.0]           # seeds differ as much as the data
    assert not model_stats.beside_null(frame, ["block"], "x").iloc[0].beyond_null
    frame.loc[frame.source == "same data", "x"] = [1.0, 8.0]            # the mean is outside, its interval not
    assert hi > lo > 1 and lo < 8 < 10.2 and not model_stats.beside_null(frame, ["block"], "x").iloc[0].beyond_null
    one = model_stats.beside_null(frame[frame.source == "other data"], ["block"], "x").iloc[0]
    assert np.isnan(one.null_low) and not one.beyond_null               # no null (one model per dataset)


def test_sources_pair_replicate_r_as_dataset_contrast_does():
    # Replicate r with the other dataset's replicate r (no two models share a seed, so no same-init pair to
    # avoid), and every other replicate of its own dataset as the null.
    models = {"synthetic": [0, 1, 2], "celeba": [0, 1, 2]}
    assert model_stats.sources(models, "synthetic", 2) == [
        ("other data", "celeba", 2), ("same data", "synthetic", 0), ("same data", "synthetic", 1)]
    assert model_stats.sources(models, "celeba", 0) == [
        ("other data", "synthetic", 0), ("same data", "celeba", 1), ("same data", "celeba", 2)]
    assert model_stats.sources({"synthetic": [0], "celeba": [0]}, "celeba", 0) == [("other data", "synthetic", 0)]


@pytest.mark.parametrize("n, width", [(12, 40), (30, 8)])
def test_cka_of_gram_factors_equals_cka_of_activations(n, width):
    import torch
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(n, width, 2, generator=g), torch.randn(n, 3 * width, generator=g)
    y[:, :width] += x[:, :, 0]                                       # related, so CKA is far from 0 and 1
    assert quantities.linear_cka(xfer._factor(x), xfer._factor(y)) == pytest.approx(
        quantities.linear_cka(x, y), rel=1e-5)


def test_robustness_is_the_share_of_tolerated_interventions():
    base = np.ones((4, 6))
    inter = base * (1 + np.array([0.0, 0.05, 0.2, 0.5]))[:, None]
    assert xfer._robustness(base, inter) == pytest.approx(50.0)
    assert xfer._robustness(base, inter, base, base) == pytest.approx(75.0)    # mean of two models


def test_readings_chapter_judges_every_reading_and_flags_flips(cfg, ch6):
    from circuitnb.chapters.diffusion import readings
    from circuitnb.chapters.report import tables_dir
    res = readings.run(cfg)
    s = res.tables["sensitivity"]
    assert list(s.columns) == reading_rows.COLUMNS and s.quantity.nunique() >= 10
    assert (s.groupby(["id", "undefined"])["default"].sum() == 1).all()        # one scorecard reading each
    assert (s.flips == (s.groupby(["id", "undefined"]).verdict.transform("nunique") > 1)).all()
    assert set(s[s.undefined == "ablation"].reading) == {"zero", "mean", "bypass"}
    # the default reading's row is chapter 6's scorecard row
    ours = s[(s.undefined == "ablation") & s["default"]].set_index("id").ours
    assert np.allclose(ours, ch6.tables["claims"].set_index("id").ours[ours.index])
    assert {"impact_mean", "impact_bypass"} <= set(ch6.tables["table3"].columns)
    assert set(res.tables["phases"].verdict) <= {"no phases", *(f"{k} phases" for k in range(2, 7))}
    _written(res)
    assert (tables_dir() / "sensitivity" / "sensitivity.csv").is_file()
