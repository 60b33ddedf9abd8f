"""Part V's library (circuitnb.analysis.mri) on cases with a known answer: detection and calibration rows, the
explorer's slices, head entropy of uniform attention, ablations that cannot matter, and the paired contrasts
(checked against scipy's t-interval)."""
import math

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats

from circuitnb.analysis.mri import claims as mri_claims
from circuitnb.analysis.mri import common as mri_common
from circuitnb.analysis.mri import heads as mri_heads
from circuitnb.modeling.mri import MriVAE

S = 8


def _slices(n_lesion=3, n_healthy=5, seed=0):
    """Slices with a brain square and, on lesion slices, a 2 x 2 lesion; a 'prediction' that reconstructs the brain
    exactly and misses the lesion by ``miss``, with a variance the caller chooses."""
    rng = np.random.default_rng(seed)
    n = n_lesion + n_healthy
    x = np.full((n, 4, S, S), -1.0, np.float32)
    x[:, :, 1:7, 1:7] = rng.uniform(-0.5, 0.5, (n, 4, 6, 6))
    masks = np.zeros((n, S, S), np.uint8)
    for i in range(n_lesion):
        masks[i, 2 + i % 3:4 + i % 3, 3:5] = 2
    lesion = masks.reshape(n, -1).any(1)
    return x, masks, lesion


def _pred(x, masks, miss=0.5, var=None):
    mean = x.copy()
    mean[:, :, :, :][np.broadcast_to(masks[:, None] > 0, x.shape)] -= miss
    v = np.full(x.shape, 0.01, np.float32) if var is None else var
    return dict(mean=mean, aleatoric=v, epistemic=np.zeros_like(v))


def test_detection_rows_of_a_perfect_detector():
    x, masks, lesion = _slices()
    rows = mri_common.detection_rows(x, _pred(x, masks), masks, lesion)
    slices, pixels = rows[rows.slice_reading != "-"], rows[rows.slice_reading == "-"]
    assert len(slices) == 4 and len(pixels) == 2
    assert np.allclose(slices.slice_roc_auc, 1) and np.allclose(slices.slice_pr_auc, 1)
    assert np.allclose(pixels.pixel_roc_auc, 1) and np.allclose(pixels.dice, 1)


def test_detection_rows_without_a_lesion_are_nan_not_errors():
    x, masks, lesion = _slices(n_lesion=0)
    rows = mri_common.detection_rows(x, _pred(x, masks), masks, lesion)
    assert rows.slice_roc_auc.isna().all() or rows.slice_roc_auc.dropna().empty
    assert rows.dice.isna().all() or rows.dice.dropna().empty


def test_calibration_orders_and_scales():
    x, masks, lesion = _slices(n_lesion=0, n_healthy=6)
    rng = np.random.default_rng(1)
    var = rng.uniform(0.001, 0.1, x.shape).astype(np.float32)
    pred = dict(mean=x + np.sqrt(var) * rng.choice([-1, 1], x.shape), aleatoric=var, epistemic=np.zeros_like(var))
    summ, rel = mri_common.calibration(x, pred, ~lesion, bins=4)
    total = summ.set_index("uncertainty").loc["total"]
    # the error is exactly the variance per channel: ranks agree far better than chance, and in scale ratio 1
    assert total.spearman > 0.5 and total.scale_ratio == pytest.approx(1.0, rel=1e-6)
    assert total.n_pixels == 6 * 36 and not summ.set_index("uncertainty").loc["epistemic"].varies
    assert math.isnan(summ.set_index("uncertainty").loc["epistemic"].spearman)
    assert rel[rel.uncertainty == "total"].n.sum() == 6 * 36


def test_explore_rows_takes_the_largest_lesions_first():
    lesion = np.array([False, True, True, False, True])
    masks = np.zeros((5, 4, 4), np.uint8)
    masks[1, :1, :1] = 1
    masks[2, :2, :2] = 2
    masks[4, :3, :3] = 4
    assert mri_common.explore_rows(lesion, masks, n=4).tolist() == [4, 2, 1, 0]
    assert mri_common.explore_rows(lesion, masks, n=8).tolist() == [4, 2, 1, 0, 3]


def _vae(kind="attention"):
    torch.manual_seed(0)
    return MriVAE(4, 16, (8, 16), latent_dim=6, heads=2, kind=kind, dropout=0.1).eval()


def test_uniform_attention_has_log2_k_bits_and_no_specialization():
    vae = _vae()
    for layer in (vae.encoder.attn, vae.decoder.attn):        # q and k zero: every score equal
        for lin in (layer.to_q, layer.to_k):
            torch.nn.init.zeros_(lin.weight)
            torch.nn.init.zeros_(lin.bias)
    x = np.random.default_rng(0).uniform(-1, 1, (5, 4, 16, 16)).astype(np.float32)
    hm = mri_heads.head_measures(vae, x)
    assert set(hm) == {"encoder.attn", "decoder.attn"}
    for m in hm.values():                                     # 4 x 4 positions at the deepest level
        assert m["entropy"].shape == (5, 2) and np.allclose(m["entropy"], 4.0, atol=1e-5)
        assert np.allclose(m["specialization"], 0, atol=1e-5)
        assert np.allclose(m["received"], 1 / 16, atol=1e-6)
    assert not vae.training


def test_entropy_table_means_by_group():
    measures = {"a": dict(entropy=np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 8.0]]),
                          specialization=np.zeros((3, 2)))}
    t = mri_heads.entropy_table(measures, np.array([True, False, False])).set_index(["group", "head"])
    assert t.loc[("lesion", 0), "entropy"] == 1 and t.loc[("healthy", 1), "entropy"] == 6
    assert t.loc[("healthy", -1), "entropy"] == 5 and t.loc[("healthy", 0), "n_slices"] == 2


def test_ablating_heads_whose_output_is_projected_away_changes_nothing():
    vae = _vae()
    torch.nn.init.zeros_(vae.decoder.attn.to_out[0].weight)   # the decoder heads' outputs reach nothing
    x, masks, lesion = _slices(n_lesion=3, n_healthy=5)
    x16 = np.repeat(np.repeat(x, 2, axis=2), 2, axis=3)
    t = mri_heads.ablation_table(vae, x16, lesion, passes=3, seed=0).set_index("target")
    assert list(t.index) == ["none", "encoder.attn.h0", "encoder.attn.h1", "encoder.attn",
                             "decoder.attn.h0", "decoder.attn.h1", "decoder.attn"]
    assert t.loc["none", "delta_auc"] == 0
    for target in ("decoder.attn.h0", "decoder.attn.h1", "decoder.attn"):
        assert t.loc[target, "mean_lesion"] == pytest.approx(t.loc["none", "mean_lesion"], rel=1e-5)
        assert t.loc[target, "mean_healthy"] == pytest.approx(t.loc["none", "mean_healthy"], rel=1e-5)
    assert t.loc["encoder.attn", "mean_healthy"] != pytest.approx(t.loc["none", "mean_healthy"], rel=1e-5)
    assert mri_heads.top_heads(t.reset_index()).target.startswith(("encoder", "decoder"))
    assert list(mri_heads.ablation_table(_vae("no_attention"), x16, lesion, passes=2).target) == ["none"]


def _det(values):
    """A detection frame: values[(kind, pixel_reading)] = per-replicate slice ROC AUCs."""
    return pd.DataFrame([dict(dataset="phantom", kind=k, replicate=r, pixel_reading=p, slice_reading="mean",
                              measure="slice_roc_auc", value=v) for (k, p), vs in values.items()
                         for r, v in enumerate(vs)])


def test_contrasts_are_paired_t_intervals():
    a, b = np.array([0.7, 0.75, 0.72]), np.array([0.6, 0.62, 0.64])
    det = _det({("attention", "standardized"): a, ("attention", "error"): b,
                ("non_bayesian", "error"): a + 0.0})
    con = mri_claims.contrasts(det).set_index(["contrast", "measure"])
    row = con.loc[("uncertainty weighting", "slice_roc_auc")]
    lo, hi = stats.t.interval(0.95, 2, loc=np.mean(a - b), scale=stats.sem(a - b))
    assert row.difference == pytest.approx(np.mean(a - b)) and (row.ci_low, row.ci_high) == pytest.approx((lo, hi))
    assert row.outcome == "helps" and row.n_pairs == 3
    same = con.loc[("Bayesian against deterministic", "slice_roc_auc")]
    assert same.difference == 0 and same.outcome == "no difference shown"     # identical models
    assert "attention against none" not in con.index.get_level_values(0)      # no_attention not trained
    assert np.isnan(con.loc[("uncertainty weighting", "dice")].difference)


def test_outcome_rule():
    est = lambda lo, hi: type("E", (), dict(low=lo, high=hi))()               # noqa: E731
    assert mri_claims.outcome(est(0.01, 0.2)) == "helps"
    assert mri_claims.outcome(est(-0.2, -0.01)) == "hurts"
    assert mri_claims.outcome(est(-0.1, 0.1)) == "no difference shown"
    assert mri_claims.outcome(est(float("nan"), float("nan"))) == "undefined"
