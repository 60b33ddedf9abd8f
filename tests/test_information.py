"""Readings of Eq. 4 against known answers: Gaussian pairs of known mutual information."""
import math

import numpy as np
import pytest

from circuitnb.measures import information as I


def gaussian_pair(rho: float, n: int, seed: int = 0):
    return np.random.default_rng(seed).multivariate_normal([0, 0], [[1, rho], [rho, 1]], size=n).T


@pytest.mark.parametrize("rho", [0.0, 0.6, 0.9, 0.99])
def test_ksg_recovers_the_known_mutual_information(rho):
    a, b = gaussian_pair(rho, 2000)
    # KSG's bias at n = 2000, k = 3 is a few hundredths of a bit (Kraskov et al. 2004, Fig. 4); 0.06 bits
    # is about 4 standard deviations of the estimate at these sizes.
    assert I.ksg_mutual_information(a, b) == pytest.approx(I.gaussian_mi(rho), abs=0.06)


def test_knn_reading_is_rho_squared_and_invariant_to_monotone_maps():
    a, b = gaussian_pair(0.95, 2000)
    assert I.ife_knn(a, b) == pytest.approx(0.95 ** 2, abs=0.02)
    # MI (and so the reading) does not change under strictly monotone maps of either variable; KSG keeps
    # that only approximately (neighbourhoods change), within its sampling error.
    assert I.ife_knn(np.exp(a), b ** 3) == pytest.approx(I.ife_knn(a, b), abs=0.05)


def test_binned_reading_converges_to_its_exact_value_and_has_a_ceiling():
    truth = I.binned_ife_exact(0.95, n_bins=4)
    means = [I.calibration([0.95], n=100, n_rep=40, seed=s).binned_mean.iloc[0] for s in (0, 1)]
    assert np.mean(means) == pytest.approx(truth, abs=0.03)
    # The ceiling the issue names: with 4 bins a correlation of 0.95 reads about one half, and even 0.999
    # stays below 0.9, while the kNN reading is near rho^2.
    assert 0.45 < truth < 0.55 and I.binned_ife_exact(0.999, 4) < 0.9
    assert I.binned_ife_exact(0.0, 4) == pytest.approx(0.0, abs=1e-9)


def test_ksg_rejects_unpaired_input():
    with pytest.raises(ValueError, match="paired"):
        I.ksg_mutual_information(np.zeros(10), np.zeros(9))
    assert math.isclose(I.gaussian_mi(0.0), 0.0, abs_tol=1e-12)


def _ksg_tree(a, b, k=3):
    """The estimator by k-d tree queries, one pair at a time (how it was first written): the oracle."""
    from scipy import special
    from scipy.spatial import cKDTree
    n = len(a)
    rng = np.random.default_rng(0)
    a = a + 1e-10 * (np.std(a) or 1.0) * rng.standard_normal(n)
    b = b + 1e-10 * (np.std(b) or 1.0) * rng.standard_normal(n)
    joint = np.c_[a, b]
    radius = np.nextafter(cKDTree(joint).query(joint, k=k + 1, p=np.inf)[0][:, -1], 0)
    n_a = cKDTree(a[:, None]).query_ball_point(a[:, None], radius, p=np.inf, return_length=True) - 1
    n_b = cKDTree(b[:, None]).query_ball_point(b[:, None], radius, p=np.inf, return_length=True) - 1
    mean_psi = np.mean(special.digamma(n_a + 1) + special.digamma(n_b + 1))
    return max(special.digamma(k) + special.digamma(n) - mean_psi, 0)


@pytest.mark.parametrize("block", [None, 500])
def test_batched_ksg_matches_a_kd_tree_on_every_pair(monkeypatch, block):
    # Bootstrap resamples repeat points (ties broken only by the jitter): the case chapter 5 runs 2,000
    # times per model. block=500 forces the distances to be taken a few rows at a time.
    if block:
        monkeypatch.setattr(I, "_BLOCK", block)
    rng = np.random.default_rng(1)
    base = rng.multivariate_normal([0, 0], [[1, 0.8], [0.8, 1]], size=60)
    a = np.stack([[base[rng.integers(0, 60, 60), 0] for _ in range(4)] for _ in range(3)])    # [3, 4, 60]
    b = np.stack([[base[rng.integers(0, 60, 60), 1] for _ in range(4)] for _ in range(3)])
    b[0, 0] = 1.0                                             # a constant sample: MI 0, no division by zero
    got = I.ksg_nats(a, b)
    assert got.shape == (3, 4)
    want = np.array([[_ksg_tree(a[i, j], b[i, j]) for j in range(4)] for i in range(3)])
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)
    assert I.ife_knn(a[1, 2], b[1, 2]) == pytest.approx(1 - math.exp(-2 * want[1, 2]), abs=1e-12)
    assert isinstance(I.ife_knn(a[1, 2], b[1, 2]), float) and I.ife_knn(a, b).shape == (3, 4)
