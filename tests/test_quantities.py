"""The paper's undefined quantities, head-function tests and circuit size, on analytic and toy cases."""
import numpy as np
import pytest
import torch

import circuitnb.core.config as C
from circuitnb.data import synthetic_faces
from circuitnb.interventions import circuits
from circuitnb.interventions.impact import impact, impacts
from circuitnb.interventions.registry import Intervention
from circuitnb.measures import head_functions as hf
from circuitnb.measures import quantities as q
from circuitnb.modeling.unet import build_scheduler

from conftest import random_unet


def test_prediction_accuracy_is_noise_r2():
    assert q.prediction_accuracy([0.0, 1.0, 0.05]).tolist() == pytest.approx([100.0, 0.0, 95.0])


def test_circuit_complexity_counts_participating_heads():
    one = np.zeros((1, 8))
    one[0, 3] = 2.0
    assert q.circuit_complexity(one)[0] == pytest.approx(1 / 8)
    assert q.circuit_complexity(np.ones((1, 8)))[0] == pytest.approx(1.0)
    half = np.r_[np.ones(4), np.zeros(4)][None]
    assert q.circuit_complexity(half)[0] == pytest.approx(0.5)
    assert q.circuit_complexity(np.zeros((1, 8)))[0] == 0.0


def test_feature_hierarchy_is_depth_slope():
    c = np.array([[0.1, 0.2, 0.3], [0.3, 0.3, 0.3], [0.3, 0.2, 0.1]])
    assert q.feature_hierarchy(c).tolist() == pytest.approx([0.2, 0.0, -0.2])


def test_divergence():
    a = np.array([[1.0, 2.0], [3.0, 2.0]])            # head means 2, 2
    b = np.array([[1.5, 1.0], [2.5, 1.0]])            # head means 2, 1
    assert q.divergence(a, b) == pytest.approx(0.5)
    assert q.divergence(a, a) == 0.0
    with pytest.raises(ValueError, match="same heads"):
        q.divergence(a, np.ones((2, 3)))


def test_linear_cka_invariances_and_independence():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 16))
    rot, _ = np.linalg.qr(rng.normal(size=(16, 16)))
    assert q.linear_cka(x, x) == pytest.approx(1.0)
    assert q.linear_cka(x, 3.0 * x @ rot + 1.0) == pytest.approx(1.0)
    assert q.linear_cka(x, rng.normal(size=(200, 16))) < 0.15
    assert q.feature_transferability([q.linear_cka(x, x), q.linear_cka(x, x @ rot)]) == pytest.approx(100.0)
    assert q.feature_transferability([0.5, 0.7]) == pytest.approx(60.0)


def test_circuit_robustness():
    assert q.circuit_robustness([0.0, 0.05, 0.5, 2.0]) == 50.0
    assert q.circuit_robustness([0.2], threshold=0.3) == 100.0
    with pytest.raises(ValueError):
        q.circuit_robustness([])


# --- head functions ------------------------------------------------------------------------------
def test_pool_and_targets_shapes():
    faces = synthetic_faces(C.load("smoke", n_images=8, n_analysis=4, n_samples=4))
    t = hf.function_targets(faces.images, faces.labels, grid=4)
    assert set(t) == {"edge detection", "texture analysis", "semantic integration"}
    assert all(v.shape == (8, 16) for v in t.values())
    assert set(hf.function_targets(faces.images, None, grid=4)) == {"edge detection", "texture analysis"}
    with pytest.raises(ValueError, match="multiple"):
        hf.pool(np.zeros((1, 10, 10)), 4)


def test_map_score_detects_a_head_that_follows_the_target():
    rng = np.random.default_rng(0)
    target = rng.random((60, 64))
    follows = target + 0.1 * rng.random((60, 64))
    unrelated = rng.random((60, 64))
    r, p = hf.map_score(follows, target, n_permutations=500)
    assert r > 0.9 and p < 0.01
    r0, p0 = hf.map_score(unrelated, target, n_permutations=500)
    assert abs(r0) < 0.1 and p0 > 0.01


def test_score_heads_labels_planted_functions():
    rng = np.random.default_rng(1)
    n, k = 50, 16
    edge, tex = rng.random((n, k)), rng.random((n, k))
    received = np.stack([edge + 0.05 * rng.random((n, k)), tex + 0.05 * rng.random((n, k)),
                         np.full((n, k), 1 / k), rng.random((n, k))], 1)
    uniformity = np.stack([np.full(n, 0.5), np.full(n, 0.5), 0.99 + 0.005 * rng.random(n), np.full(n, 0.6)], 1)
    table = hf.score_heads(received, {"edge detection": edge, "texture analysis": tex}, uniformity,
                           ["h0", "h1", "h2", "h3"], n_permutations=300)
    labels = hf.assign_functions(table).set_index("head").function
    assert labels.to_dict() == {"h0": "edge detection", "h1": "texture analysis",
                                "h2": "global structure", "h3": "unassigned"}
    assert (table.p_bonferroni >= table.p).all()


# --- causal quantities on a small random model -----------------------------------------------------
@pytest.fixture(scope="module")
def model():
    return random_unet(0), build_scheduler(C.load("smoke"))


def test_impacts_share_the_base_pass_with_impact(model):
    unet, sched = model
    x0 = torch.rand(4, 3, 16, 16) * 2 - 1
    spec = [Intervention("mean", "middle")]
    many = impacts(unet, sched, x0, 300, {"a": spec, "none": []})
    assert many["a"].impact == pytest.approx(impact(unet, sched, x0, 300, spec).impact)
    assert many["none"].impact == 0.0


def test_head_importance_covers_every_head(model):
    unet, sched = model
    x0 = torch.rand(4, 3, 16, 16) * 2 - 1
    imp = circuits.head_importance(unet, sched, x0, 300)
    assert len(imp) == 24 and imp["head"].is_unique
    assert (imp.importance != 0).any()
    one = imp.iloc[5]
    direct = impact(unet, sched, x0, 300, [Intervention("head_ablate", one.layer, head=int(one["index"]))])
    assert one.importance == pytest.approx(direct.impact)


def test_retained_curve():
    curve = circuits.retained_curve([2.0, 1.5, 1.1, 1.0])
    assert curve.retained.tolist() == pytest.approx([0.0, 0.5, 0.9, 1.0])
    assert curve.fraction.tolist() == pytest.approx([0, 1 / 3, 2 / 3, 1])
    assert circuits.retained_curve([1.0, 1.2, 1.1]).retained.tolist() == [1.0, 1.0, 1.0]   # nothing to lose


def test_effective_circuit_size_curve(model):
    unet, sched = model
    x0 = torch.rand(6, 3, 16, 16) * 2 - 1
    groups = ["enc_early", "enc_middle", "enc_late", "middle", "dec_early", "dec_middle", "dec_late"]
    size = circuits.effective_circuit_size(unet, sched, x0, 300, groups)
    curve = size.curve
    none = impact(unet, sched, x0, 300, [Intervention("mean", g) for g in groups])
    assert curve.mse.iloc[0] == pytest.approx(none.mse_int) and curve.mse.iloc[-1] == pytest.approx(none.mse_base)
    assert sorted(size.order) == sorted(groups) and size.n_components == 7
    assert size.n_kept == int(curve.loc[curve.retained >= 0.9, "n_kept"].min())
    kept = impact(unet, sched, x0, 300, [Intervention("mean", g) for g in size.order[2:]])
    assert curve.mse.iloc[2] == pytest.approx(kept.mse_int)
    heads = circuits.effective_circuit_size(unet, sched, x0, 300, circuits.head_sites(unet)[:8])
    assert heads.n_components == 8 and len(heads.curve) == 9


def test_bonferroni_can_be_passed_with_many_heads():
    # 24 heads x 3 functions: with too few permutations no map test could ever survive Bonferroni.
    rng = np.random.default_rng(2)
    n, k, heads = 40, 16, 24
    edge = rng.random((n, k))
    received = rng.random((n, heads, k))
    received[:, 7] = edge + 0.05 * rng.random((n, k))
    uniformity = np.full((n, heads), 0.5)
    table = hf.score_heads(received, {"edge detection": edge, "texture analysis": rng.random((n, k))}, uniformity,
                           [f"h{i}" for i in range(heads)], n_permutations=100)
    labels = hf.assign_functions(table).set_index("head").function
    assert labels["h7"] == "edge detection"
    assert (labels.drop("h7") == "unassigned").all()


def test_anti_correlated_head_is_not_a_detector():
    # Matched maps less negative than mismatched ones: a small permutation p, but no positive tracking.
    rng = np.random.default_rng(3)
    n, k = 40, 16
    common = rng.random(k)
    edge = common + 0.5 * rng.random((n, k))
    received = (-common + 0.3 * (edge - common) + 0.05 * rng.random((n, k)))[:, None]
    table = hf.score_heads(received, {"edge detection": edge}, np.full((n, 1), 0.5), ["h0"])
    row = table[table.function == "edge detection"].iloc[0]
    assert row.score < 0 and row.p_bonferroni < 0.05 and not row.significant


def test_cka_table_is_feature_transferability_per_block_and_over_all_blocks():
    """Chapter 9's table: 100 x each pair's mean CKA per block and over every block, t and image set; the
    "other data" pairs averaged, the "same data" pair as the null range."""
    import pandas as pd

    from circuitnb.analysis import transfer
    cka = {("other data", 0): {"b0": [0.5, 0.7], "b1": [0.9, 0.9]},      # 60, 90; all 75
           ("other data", 1): {"b0": [0.4, 0.4], "b1": [0.6, 0.8]},      # 40, 70; all 55
           ("same data", 0): {"b0": [0.2, 0.2], "b1": [1.0, 1.0]}}       # 20, 100; all 60
    rows = [dict(dataset="synthetic", replicate=r, source=src, data="synthetic", t=t, block=b, n=10, cka=v)
            for (src, r), blocks in cka.items() for b, values in blocks.items() for t, v in zip((100, 900), values)]
    table = transfer.cka_table(pd.DataFrame(rows)).set_index("block")
    assert table.cka.to_dict() == pytest.approx({"b0": 50.0, "b1": 80.0, "all": 65.0})
    assert table.null_low.to_dict() == pytest.approx({"b0": 20.0, "b1": 100.0, "all": 60.0})
