import math

import numpy as np
import pingouin as pg
import pytest
import torch
from scipy import stats as sps

from circuitnb.measures import metrics, stats


def test_entropy_and_specialization_analytic_cases():
    k = 64
    onehot = torch.zeros(2, 8, 10, k)
    onehot[..., 3] = 1
    uniform = torch.full((2, 8, 10, k), 1 / k)
    assert torch.allclose(metrics.attention_entropy(onehot), torch.zeros(2, 8))
    assert torch.allclose(metrics.specialization(onehot), torch.ones(2, 8))
    assert torch.allclose(metrics.attention_entropy(uniform), torch.full((2, 8), math.log2(k)))
    assert torch.allclose(metrics.specialization(uniform), torch.zeros(2, 8), atol=1e-6)
    half = torch.zeros(1, 1, 1, 4)
    half[..., :2] = 0.5                                   # two equal keys: 1 bit, S = 1 - 1/2
    assert metrics.attention_entropy(half).item() == pytest.approx(1.0)
    assert metrics.specialization(half).item() == pytest.approx(0.5)


def test_specialization_from_a_given_entropy_and_normalised_entropy_per_key_count():
    probs = torch.softmax(torch.randn(3, 4, 5, 16, generator=torch.Generator().manual_seed(0)), -1)
    assert torch.equal(metrics.specialization(probs, metrics.attention_entropy(probs)), metrics.specialization(probs))
    # H / log2 K with one K for all or one K per entry (layers at different resolutions): 2 of 2 bits, 3 of 6.
    assert metrics.normalised_entropy(np.array([2.0, 3.0]), 4).tolist() == [1.0, 1.5]
    assert metrics.normalised_entropy(np.array([2.0, 3.0]), np.array([4, 64])).tolist() == [1.0, 0.5]


def test_entropy_is_mean_over_query_rows():
    rows = torch.stack([torch.tensor([1.0, 0, 0, 0]), torch.full((4,), 0.25)])[None, None]   # H = 0 and 2
    assert metrics.attention_entropy(rows).item() == pytest.approx(1.0)


def test_feature_complexity():
    assert torch.equal(metrics.feature_complexity(torch.full((3, 4, 5, 5), 2.5)), torch.zeros(3))
    assert torch.equal(metrics.feature_complexity(torch.zeros(2, 4, 5, 5)), torch.zeros(2))
    x = torch.randn(4, 8, 6, 6, generator=torch.Generator().manual_seed(0))
    c = metrics.feature_complexity(x)
    assert ((c > 0) & (c <= 1)).all()
    assert torch.allclose(metrics.feature_complexity(7.0 * x), c, atol=1e-6)          # scale-free
    wide = x.repeat(1, 4, 1, 1)                                                        # 4x the channels
    # Width-free up to Hoyer's (sqrt(n) - 1) denominator: within 5% for a 4x wider copy.
    assert torch.allclose(metrics.feature_complexity(wide), c, rtol=0.05)
    spike = torch.zeros(1, 100)
    spike[0, 0] = 1
    assert metrics.hoyer_sparsity(spike).item() == pytest.approx(1.0)
    assert metrics.hoyer_sparsity(torch.ones(1, 100)).item() == pytest.approx(0.0, abs=1e-6)


def test_information_flow_efficiency():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(400, 16, 4, 4, generator=g)
    assert metrics.information_flow_efficiency(a, a) == pytest.approx(1.0)
    # Two layers of different shapes dominated by one shared latent (through a monotone map):
    # high; the estimator summarises each layer by its first principal component.
    z = torch.randn(400, generator=g)
    la = z[:, None, None, None] * torch.randn(1, 16, 4, 4, generator=g) + 0.1 * torch.randn(400, 16, 4, 4, generator=g)
    lb = (torch.tanh(z)[:, None, None, None] * torch.randn(1, 8, 2, 2, generator=g)
          + 0.1 * torch.randn(400, 8, 2, 2, generator=g))
    assert metrics.information_flow_efficiency(la, lb) > 0.6
    indep = torch.randn(400, 8, 2, 2, generator=g)
    assert metrics.information_flow_efficiency(a, indep) < 0.05
    with pytest.raises(ValueError, match="same batch"):
        metrics.information_flow_efficiency(a, indep[:10])


def test_impact_score():
    assert metrics.impact_score(0.3, 0.3) == 0
    assert metrics.impact_score(0.0624, 0.0246) == pytest.approx(1.5366, abs=1e-3)   # Table 3's arithmetic
    with pytest.raises(ValueError):
        metrics.impact_score(1.0, 0.0)


@pytest.fixture(scope="module")
def samples():
    rng = np.random.default_rng(0)
    return rng.normal(0.0, 1.0, 40), rng.normal(0.6, 1.3, 55)


def test_compare_matches_direct_calls(samples):
    a, b = samples
    row = stats.compare(a, b, "x", n_bootstrap=1000)
    ref = sps.ttest_ind(a, b, equal_var=False)                       # Welch
    assert row["t"] == pytest.approx(ref.statistic) and row["p"] == pytest.approx(ref.pvalue)
    pooled = math.sqrt(((len(a) - 1) * a.var(ddof=1) + (len(b) - 1) * b.var(ddof=1)) / (len(a) + len(b) - 2))
    assert row["cohen_d"] == pytest.approx((a.mean() - b.mean()) / pooled)
    assert row["d_ci_low"] < row["cohen_d"] < row["d_ci_high"]
    assert row["diff_ci_low"] < row["diff"] < row["diff_ci_high"]
    assert row["ks_p"] == pytest.approx(sps.ks_2samp(a, b).pvalue)
    assert row["power"] == pytest.approx(pg.power_ttest2n(len(a), len(b), d=abs(row["cohen_d"])))
    # The bootstrap CI brackets the Welch CI's centre and has a similar width.
    welch_ci = pg.ttest(a, b, correction=True)["CI95"].iloc[0]
    assert abs((row["diff_ci_high"] - row["diff_ci_low"]) - (welch_ci[1] - welch_ci[0])) < 0.2


def test_power_textbook_value():
    # Cohen (1988): d = 0.5, alpha = 0.05 two-sided, 64 per group -> power 0.80.
    assert stats._power(0.5, 64, 64, 0.05) == pytest.approx(0.80, abs=0.01)
    assert stats._n_for_power(0.5, 0.80, 0.05) == 64


def test_compare_table_corrections(samples):
    a, b = samples
    rng = np.random.default_rng(1)
    table = stats.compare_table({"shifted": (a, b), "null1": (rng.normal(size=30), rng.normal(size=30)),
                                 "null2": (rng.normal(size=30), rng.normal(size=30))}, n_bootstrap=500)
    assert list(table.comparison) == ["shifted", "null1", "null2"]
    assert np.allclose(table.p_bonferroni, np.minimum(table.p * 3, 1))
    _, holm = pg.multicomp(table.p.to_numpy(), method="holm")
    assert np.allclose(table.p_holm, holm)
    assert table.n_for_095_power.iloc[0] < table.n_for_095_power.iloc[1]
