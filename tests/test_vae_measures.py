"""Part II's measures (circuitnb.measures.causal_effects) on planted effect matrices with hand-worked answers."""
import numpy as np
import pytest

from circuitnb.measures.causal_effects import (
    causal_effect_strength,
    circuit_modularity,
    effect_matrix,
    intervention_specificity,
)


def test_a_latent_per_factor_is_perfectly_specific_and_modular():
    # Latent k is exactly factor k (3 factors, 5 latents, 2 unused): each intervention moves one latent.
    e = np.zeros((3, 5))
    e[[0, 1, 2], [0, 1, 2]] = [2.0, 4.0, 6.0]
    assert intervention_specificity(e) == 1.0
    assert circuit_modularity(e) == 1.0
    assert causal_effect_strength(e) == pytest.approx((2 + 4 + 6) / 3)


def test_uniform_effects_are_neither_specific_nor_modular():
    e = np.ones((4, 6))
    assert intervention_specificity(e) == pytest.approx(0.0)
    assert circuit_modularity(e) == pytest.approx(0.0)
    assert causal_effect_strength(e) == 1.0


def test_hand_worked_mixture():
    # Factor 0 moves units (3, 1, 0): share 3/4, d = 3 -> (3/4 - 1/3) / (2/3) = 5/8.
    # Factor 1 moves units (0, 1, 1): share 1/2 -> (1/2 - 1/3) / (2/3) = 1/4.   Mean: 7/16.
    e = np.array([[3.0, 1.0, 0.0], [0.0, 1.0, 1.0]])
    assert intervention_specificity(e) == pytest.approx(7 / 16)
    # Units, K = 2: u0 (3, 0) -> 1; u1 (1, 1) -> 1 - 1/1 = 0; u2 (0, 1) -> 1. Weights 3, 2, 1 (of 6).
    assert circuit_modularity(e) == pytest.approx((3 * 1 + 2 * 0 + 1 * 1) / 6)
    # CES: largest effect per factor, 3 and 1, mean 2.
    assert causal_effect_strength(e) == pytest.approx(2.0)


def test_entangled_pair_is_specific_but_not_modular():
    # Two factors both moving only unit 0: each intervention hits one unit (specific) but the unit
    # answers to both factors (not modular).
    e = np.array([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
    assert intervention_specificity(e) == 1.0
    assert circuit_modularity(e) == pytest.approx(0.0)


def test_nothing_moves_and_bad_input():
    assert np.isnan(intervention_specificity(np.zeros((2, 3))))
    assert np.isnan(circuit_modularity(np.zeros((2, 3))))
    assert causal_effect_strength(np.zeros((2, 3))) == 0.0
    with pytest.raises(ValueError, match="non-negative"):
        causal_effect_strength(np.array([[1.0, -1.0]]))
    with pytest.raises(ValueError, match="effect matrix"):
        intervention_specificity(np.ones(3))
    with pytest.raises(ValueError, match="2 factors"):
        circuit_modularity(np.ones((1, 3)))


def test_effect_matrix_standardises_and_ignores_dead_units():
    deltas = np.zeros((2, 4, 3))
    deltas[0, :, 0] = [1, -1, 1, -1]          # factor 0 moves unit 0 by 1 (sd 2) -> 0.5
    deltas[1, :, 1] = [3, 3, -3, -3]          # factor 1 moves unit 1 by 3 (sd 1) -> 3
    deltas[1, :, 2] = 5                       # unit 2 is dead (sd 0) -> 0 whatever it does
    e = effect_matrix(deltas, np.array([2.0, 1.0, 0.0]))
    np.testing.assert_allclose(e, [[0.5, 0, 0], [0, 3, 0]])
    with pytest.raises(ValueError, match="deltas"):
        effect_matrix(np.zeros((2, 3)), np.ones(3))
