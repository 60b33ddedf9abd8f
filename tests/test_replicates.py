"""Model-level statistics: means over replicate models, dataset contrasts beside the same-data null."""
import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from circuitnb.analysis import replicates as R
from circuitnb.measures.verdicts import equivalence_verdict


def frame(model_means: dict, n_images: int = 50, sd: float = 0.05, seed: int = 0) -> pd.DataFrame:
    """Per-image values around each model's mean: {dataset: [mean of model 0, model 1, ...]}."""
    rng = np.random.default_rng(seed)
    rows = []
    for ds, means in model_means.items():
        for r, m in enumerate(means):
            v = m + sd * rng.standard_normal(n_images)
            rows.append(pd.DataFrame(dict(dataset=ds, replicate=r, t=100, image=np.arange(n_images), value=v)))
    return pd.concat(rows, ignore_index=True)


def test_across_replicates_is_a_t_interval_over_model_means():
    f = frame({"synthetic": [1.0, 1.2, 0.9], "celeba": [2.0, 2.1, 1.8]})
    out = R.across_replicates(f, ["dataset", "t"]).set_index("dataset")
    means = f[f.dataset == "synthetic"].groupby("replicate").value.mean().to_numpy()
    lo, hi = sps.t.interval(0.95, 2, loc=means.mean(), scale=sps.sem(means))
    assert out.loc["synthetic", "mean"] == pytest.approx(means.mean())
    assert (out.loc["synthetic", "ci_low"], out.loc["synthetic", "ci_high"]) == pytest.approx((lo, hi))
    assert out.loc["synthetic", "n_models"] == 3 and out.loc["synthetic", "n_images"] == 50
    # The 90% interval an equivalence test uses sits inside the 95% one.
    assert lo < out.loc["synthetic", "eq_low"] < out.loc["synthetic", "eq_high"] < hi


def test_one_model_has_no_interval():
    out = R.across_replicates(frame({"synthetic": [1.0], "celeba": [2.0]}), ["dataset", "t"])
    assert out.ci_low.isna().all() and out.ci_high.isna().all() and (out.n_models == 1).all()


def test_a_real_dataset_effect_lies_beyond_the_same_data_null():
    # Models of one dataset agree to ~5%; the datasets differ twofold.
    f = frame({"synthetic": [1.0, 1.05, 0.97], "celeba": [2.0, 2.08, 1.95]})
    row = R.dataset_contrast(f, ["t"], "ratio").iloc[0]
    assert row.effect == pytest.approx(2.0, rel=0.05) and row.ci_low < row.effect < row.ci_high
    assert 0.9 < row.null_low < 1 < row.null_high < 1.1
    assert row.beyond_null and row.n_pairs == 3


def test_a_seed_sized_difference_is_not_a_dataset_effect():
    # One image-precise model per dataset would call 1.3 vs 1.0 a "dataset effect"; the seed spread is as
    # large, so the contrast must not be claimed.
    f = frame({"synthetic": [1.0, 1.4, 0.8], "celeba": [1.3, 1.0, 1.5]})
    row = R.dataset_contrast(f, ["t"], "ratio").iloc[0]
    assert not row.beyond_null
    first_pair = row.pair_estimates[0]
    assert first_pair.mean == pytest.approx(1.3, rel=0.05) and first_pair.low > 1   # one pair alone "finds" it
    assert equivalence_verdict(1.0, R.estimate(row), 0.05).label != "contradicted"


def test_d_pairs_use_pingouin_and_differences_use_welch():
    f = frame({"synthetic": [1.0, 1.0], "celeba": [1.1, 1.1]}, sd=0.1)
    d = R.dataset_contrast(f, ["t"], "d").iloc[0]
    a = f[(f.dataset == "synthetic") & (f.replicate == 0)].value
    b = f[(f.dataset == "celeba") & (f.replicate == 0)].value
    import pingouin as pg
    assert d.pair_estimates[0].mean == pytest.approx(pg.compute_effsize(b, a, eftype="cohen"))
    diff = R.dataset_contrast(f, ["t"], "difference").iloc[0]
    welch = sps.ttest_ind(b, a, equal_var=False).confidence_interval(0.95)
    assert (diff.pair_estimates[0].low, diff.pair_estimates[0].high) == pytest.approx((welch.low, welch.high))
    with pytest.raises(ValueError, match="'measure'"):
        R.dataset_contrast(f, ["t"], "odds")
