"""Part V's measures on hand-built scores with known answers."""
import numpy as np
import pytest
from scipy import stats as sps
from sklearn.metrics import roc_auc_score

from circuitnb.measures.mri import (
    best_dice,
    brain_mask,
    dice,
    ence,
    pixel_scores,
    pr_auc,
    reliability_table,
    roc_auc,
    slice_scores,
    uncertainty_spearman,
)


def test_perfect_separation_gives_one_and_reversed_gives_zero():
    y = np.r_[np.zeros(50), np.ones(50)].astype(bool)
    s = np.r_[np.linspace(0, 1, 50), np.linspace(2, 3, 50)]
    assert roc_auc(s, y) == 1.0 and pr_auc(s, y) == 1.0
    assert roc_auc(-s, y) == 0.0


def test_random_scores_give_chance():
    rng = np.random.default_rng(0)
    y = rng.random(20_000) < 0.2
    s = rng.random(20_000)
    assert roc_auc(s, y) == pytest.approx(0.5, abs=0.02)
    assert pr_auc(s, y) == pytest.approx(0.2, abs=0.02)                    # chance = the positive rate


def test_auc_hand_case_with_a_tie():
    # normals 0, 1; anomalies 1, 2: pairs (1>0, 1=1 half, 2>0, 2>1) -> 3.5 / 4
    assert roc_auc([0, 1, 1, 2], [0, 0, 1, 1]) == pytest.approx(0.875)
    # AP: ranked 2 (+), then a tie 1 (+, -): precision 1 at recall .5, 2/3 at recall 1 -> (1 + 2/3) / 2
    assert pr_auc([0, 1, 1, 2], [0, 0, 1, 1]) == pytest.approx(5 / 6)
    with pytest.raises(ValueError, match="both classes"):
        roc_auc([0.1, 0.2], [1, 1])


def test_dice_on_a_hand_mask():
    truth = np.zeros((4, 4), bool)
    truth[1:3, 1:3] = True                                                 # 4 pixels
    pred = np.zeros((4, 4), bool)
    pred[1:3, 1:4] = True                                                  # 6 pixels, 4 of them right
    assert dice(pred, truth) == pytest.approx(2 * 4 / (6 + 4))
    assert dice(truth, truth) == 1.0 and dice(~truth, truth) == 0.0
    assert dice(np.zeros(3, bool), np.zeros(3, bool)) == 1.0


def test_best_dice_finds_the_best_threshold():
    truth = np.zeros((4, 4), bool)
    truth[1:3, 1:3] = True
    score = truth * 5.0 + np.arange(16).reshape(4, 4) / 100                # lesion pixels score highest
    d, thr = best_dice(score, truth)
    assert d == 1.0 and thr == pytest.approx(score[truth].min())
    # one normal pixel above every lesion pixel: best is to take all five (2 * 4 / 9) or none of the errors
    score2 = score.copy()
    score2[0, 0] = 9.0
    d2, _ = best_dice(score2, truth)
    brute = max(dice(score2 >= t, truth) for t in np.unique(score2))
    assert d2 == pytest.approx(brute) == pytest.approx(8 / 9)
    rng = np.random.default_rng(1)                                         # against brute force
    s, y = rng.random(200), rng.random(200) < 0.3
    assert best_dice(s, y)[0] == pytest.approx(max(dice(s >= t, y) for t in np.unique(s)))


def test_pixel_and_slice_scores_by_hand():
    x = np.zeros((1, 2, 2, 2))
    x[0, :, 0, 0] = [1.0, 3.0]
    pred = dict(mean=np.zeros((1, 2, 2, 2)), aleatoric=np.full((1, 2, 2, 2), 0.5),
                epistemic=np.full((1, 2, 2, 2), 0.5))
    pred["aleatoric"][0, :, 0, 0] = 3.5                                    # total variance 4 at the bright pixel
    err = pixel_scores(x, pred)
    assert err[0, 0, 0] == pytest.approx((1 + 9) / 2) and err[0, 1, 1] == 0
    std = pixel_scores(x, pred, "standardized")
    assert std[0, 0, 0] == pytest.approx((1 + 9) / 2 / 4)
    mask = np.array([[[True, True], [False, False]]])
    assert slice_scores(err, mask)[0] == pytest.approx(2.5)               # (5 + 0) / 2 over masked pixels
    assert slice_scores(err)[0] == pytest.approx(1.25)
    assert slice_scores(err, mask, "q99")[0] == pytest.approx(np.quantile([5.0, 0.0], 0.99))
    imgs = -np.ones((1, 4, 2, 2))
    imgs[0, 2, 1, 0] = 0.3
    np.testing.assert_array_equal(brain_mask(imgs)[0], [[False, False], [True, False]])


def test_standardized_score_ranks_like_error_under_one_variance():
    rng = np.random.default_rng(2)
    x, m = rng.normal(size=(3, 4, 5, 5)), rng.normal(size=(3, 4, 5, 5))
    pred = dict(mean=m, aleatoric=np.full(x.shape, 0.3), epistemic=np.zeros(x.shape))
    a, b = pixel_scores(x, pred), pixel_scores(x, pred, "standardized")
    np.testing.assert_allclose(b, a / 0.3)


def test_calibration_of_a_calibrated_gaussian():
    rng = np.random.default_rng(3)
    var = rng.uniform(0.1, 4, 200_000)
    err = var * rng.standard_normal(var.size) ** 2                        # squared error of N(0, var): E = var
    table = reliability_table(var, err, n_bins=10)
    assert len(table) == 10 and table["n"].sum() == var.size
    assert np.all(np.diff(table["mean_uncertainty"]) > 0)
    np.testing.assert_allclose(table["ratio"], 1, atol=0.05)
    assert ence(table) < 0.03
    rho, p = uncertainty_spearman(var, err)
    assert rho > 0.2 and p < 1e-10
    want = sps.spearmanr(var, err).statistic
    assert rho == pytest.approx(want)


def test_calibration_when_uncertainty_says_nothing():
    rng = np.random.default_rng(4)
    var = rng.uniform(0.1, 4, 50_000)
    err = rng.standard_normal(var.size) ** 2                               # error of unit variance everywhere
    rho, _ = uncertainty_spearman(var, err)
    assert abs(rho) < 0.02
    table = reliability_table(var, err, n_bins=5)
    assert ence(table) > 0.3                                               # wrong in scale at both ends
    assert np.ptp(table["mean_error"]) < 0.1                               # and flat: no ordering
    mask = var > 2
    assert reliability_table(var, err, 5, mask=mask)["n"].sum() == mask.sum()


def test_roc_auc_matches_sklearn_on_random_data():
    rng = np.random.default_rng(5)
    s, y = rng.normal(size=300), rng.random(300) < 0.4
    assert roc_auc(s + y, y) == pytest.approx(roc_auc_score(y, s + y))
