"""Part IV's measures on hand-built cases: dead units at each threshold, the correlation ratio and
monosemanticity, and the per-snapshot table."""
import numpy as np
import pandas as pd
import pytest
import scipy.stats

from circuitnb.measures.sae import (
    dead_rate_curve,
    dead_units,
    eta_squared,
    firing_rates,
    mean_monosemanticity,
    monosemanticity,
    schedule_measures,
)


def hand_codes() -> np.ndarray:
    """200 inputs x 5 units, firing on exactly 0, 1, 3, 10 and 200 inputs."""
    codes = np.zeros((200, 5))
    for unit, n in enumerate((0, 1, 3, 10, 200)):
        codes[:n, unit] = 0.5 + np.arange(n) % 3
    return codes


def test_firing_rates_and_dead_units_by_hand():
    codes = hand_codes()
    np.testing.assert_allclose(firing_rates(codes), [0, 0.005, 0.015, 0.05, 1.0])
    assert dead_units(codes, 0).tolist() == [True, False, False, False, False]          # never active
    assert dead_units(codes, 0.01).tolist() == [True, True, False, False, False]         # 1 / 200 < 0.01
    assert dead_units(codes, 0.05).tolist() == [True, True, True, False, False]          # 10 / 200 is not < 0.05
    assert firing_rates(codes, eps=1.0).tolist() == pytest.approx([0, 0, 0.01, 0.03, 0.665])   # 1.5, 2.5 fire
    with pytest.raises(ValueError, match="threshold"):
        dead_units(codes, 1.0)


def test_dead_rate_curve_has_the_known_counts_and_is_monotone():
    curve = dead_rate_curve(hand_codes(), (0.1, 0, 0.005, 0.01, 0.02, 0.06, 0.9999))
    assert curve["threshold"].tolist() == [0, 0.005, 0.01, 0.02, 0.06, 0.1, 0.9999]
    assert curve["n_dead"].tolist() == [1, 1, 2, 3, 4, 4, 4]
    assert curve["dead_rate"].tolist() == pytest.approx([0.2, 0.2, 0.4, 0.6, 0.8, 0.8, 0.8])
    assert (np.diff(curve["dead_rate"]) >= 0).all()
    assert curve["reading"].iloc[0] == "never active" and (curve["n_units"] == 5).all()
    rng = np.random.default_rng(0)
    random_codes = np.maximum(rng.standard_normal((300, 40)) - 2.5 * rng.uniform(0, 1.5, 40), 0)
    rates = dead_rate_curve(random_codes, np.linspace(0, 0.5, 26))["dead_rate"]
    assert (np.diff(rates) >= 0).all() and rates.iloc[-1] > rates.iloc[0]


def grid_factors(n: int = 600, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.stack([rng.integers(0, 4, n), rng.integers(0, 4, n), rng.integers(0, 3, n)], 1)


def test_eta_squared_matches_a_one_way_anova():
    f = grid_factors()
    rng = np.random.default_rng(1)
    a = f[:, 0] * 1.5 + rng.standard_normal(len(f))
    groups = [a[f[:, 0] == v] for v in range(4)]
    stat = scipy.stats.f_oneway(*groups).statistic             # F = (SSB / (g-1)) / (SSW / (n-g))
    ssb_over_ssw = stat * 3 / (len(a) - 4)
    assert eta_squared(a, f)[0, 0] == pytest.approx(ssb_over_ssw / (1 + ssb_over_ssw), rel=1e-10)


def test_monosemanticity_is_one_for_a_function_of_one_factor_and_low_for_a_mixture():
    f = grid_factors()
    pure = np.array([0.0, 2.0, 0.5, 3.0])[f[:, 1]]                     # a nonlinear function of factor 1
    mixed = f[:, 0] + f[:, 1]                                           # two factors, equal influence
    dead = np.zeros(len(f))
    codes = np.stack([pure, mixed, dead], 1)
    table = monosemanticity(codes, f, factor_names=("a", "b", "c"))
    assert table["score"].iloc[0] == pytest.approx(1.0) and table["best_factor"].iloc[0] == "b"
    assert 0.4 < table["score"].iloc[1] < 0.6 and table["eta2_second"].iloc[1] > 0.4
    assert np.isnan(table["score"].iloc[2]) and pd.isna(table["best_factor"].iloc[2])
    margin = monosemanticity(codes, f, reading="margin")["score"]
    assert margin.iloc[0] > 0.95 and margin.iloc[1] < 0.15                # two factors at once: no margin
    assert mean_monosemanticity(codes, f) == pytest.approx((1 + table["score"].iloc[1]) / 2)
    with pytest.raises(ValueError, match="reading"):
        monosemanticity(codes, f, reading="best")


def test_schedule_measures_one_row_per_snapshot():
    f = grid_factors(200)
    rng = np.random.default_rng(2)
    mu = np.stack([f[:, 0] + 0.01 * rng.standard_normal(200), f[:, 1] + 0.01 * rng.standard_normal(200),
                   rng.standard_normal(200)], 1)
    dense = np.abs(rng.standard_normal((200, 8)))
    sparse = dense.copy()
    sparse[:, 4:] = 0                                                  # half of the units die
    snaps = {20: {"codes": sparse, "mu": mu}, 10: {"codes": dense, "mu": mu}}
    table = schedule_measures(snaps, f, thresholds=(0, 0.01), dci_trees=5, state=[{"k": 8}, {"k": 4}],
                              unit_mig=True)
    assert isinstance(table, pd.DataFrame) and table["step"].tolist() == [10, 20] and table["k"].tolist() == [8, 4]
    assert table["dead@0"].tolist() == [0.0, 0.5] and table["n_varying"].tolist() == [8, 4]
    assert table["active_per_input"].tolist() == pytest.approx([8, 4])
    assert table["mig_latent"].iloc[0] == table["mig_latent"].iloc[1] > 0.3       # the same latents
    assert 0 <= table["dci_d"].iloc[0] <= 1 and table["dci_i"].iloc[0] > 0.5
    assert table["mig_units"].between(0, 1).all()
