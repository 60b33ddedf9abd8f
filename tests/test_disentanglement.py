"""Disentanglement scores on representations whose answer is known (circuitnb.measures.disentanglement).

Four independent uniform factors with (3, 6, 10, 16) values. Three representations:
* copy: latent j = factor j (+ 1e-3 noise): every score at its maximum;
* random: latents independent of the factors: MIG 0, FactorVAE score 1/k, DCI D and C near 0;
* mix: a 45° rotation of the standardised factors 0 and 1 into latents 0 and 1, factors 2 and 3
  copied. By symmetry each rotated latent carries half of each of the two factors, so, by hand:
  MIG = (0 + 0 + 1 + 1) / 4 = 0.5; DCI D = C = mean(0.5, 0.5, 1, 1) = 0.75 (a rotated latent
  spreads its importance evenly over two of four factors: 1 - log_4 2 = 0.5; equal importance
  shares weight the four equally); FactorVAE score = 0.75 (fixing factor 0 or 1 leaves latents
  0 and 1 equally variable, so those votes split over two latents, and one majority vote can be
  right for only half of them: 2/4 x 1 + 2/4 x 1/2).
"""
import numpy as np
import pytest

from circuitnb.measures.disentanglement import (
    dci,
    discretize,
    factor_vae_score,
    mig,
    mig_per_factor,
    mutual_information,
)

N_VALUES = (3, 6, 10, 16)
K = len(N_VALUES)


def _standard(codes):
    n = np.array(N_VALUES)
    return (codes - (n - 1) / 2) / np.sqrt((n ** 2 - 1) / 12)      # uniform discrete: mean 0, var 1


def make(kind: str, seed: int = 0):
    """to_latents(codes [b, k]) -> latents [b, 4] for one of the three representations."""
    rng = np.random.default_rng(seed)

    def to_latents(codes):
        if kind == "random":
            return rng.standard_normal((len(codes), 4))
        s = _standard(codes)
        z = s if kind == "copy" else np.stack([s[:, 0] + s[:, 1], s[:, 0] - s[:, 1], s[:, 2], s[:, 3]], 1)
        return z + 1e-3 * rng.standard_normal(z.shape)
    return to_latents


def sample(n: int, seed: int):
    return np.random.default_rng(seed).integers(0, N_VALUES, size=(n, K))


@pytest.fixture(scope="module")
def mig_scores():
    codes = sample(10000, 1)
    return {kind: mig(make(kind)(codes), codes) for kind in ("copy", "random", "mix")}


def test_mig_known_answers(mig_scores):
    # n = 10,000: the plug-in MI of an independent (20-bin latent, v-valued factor) pair is biased
    # up by (20-1)(v-1)/(2n) nats (Miller-Madow), <= 0.006 of H(v) here; 0.02 is 3x that.
    assert mig_scores["copy"] > 0.98
    assert mig_scores["random"] < 0.02
    assert mig_scores["mix"] == pytest.approx(0.5, abs=0.05)


def test_mig_per_factor_knows_which_factors_are_mixed():
    # "mix" writes factors 0 and 1 into two latents each (z0 = s0 + s1, z1 = s0 - s1): no gap for them; 2 and 3
    # are copied: full gap. mig() is the mean of these gaps.
    codes = sample(10000, 1)
    z = make("mix")(codes)
    gaps = mig_per_factor(z, codes)
    assert gaps.shape == (K,) and np.all(gaps[:2] < 0.1) and np.all(gaps[2:] > 0.95)
    assert mig(z, codes) == pytest.approx(gaps.mean())


def test_mig_discretisation_ceiling():
    # 40 values in 20 equal-width bins: each bin holds exactly two, I = H - log 2, so a copied factor
    # scores 1 - 1/log2(40) = 0.812, less the second latent's bias (19 x 39 / 2n nats / log 40 = 0.01).
    codes = np.random.default_rng(2).integers(0, 40, size=(10000, 2))
    z = codes + 1e-3 * np.random.default_rng(3).standard_normal(codes.shape)
    assert mig(z, codes) == pytest.approx(1 - 1 / np.log2(40), abs=0.02)
    assert discretize(z).max() - discretize(z).min() == 19


def test_mutual_information_matches_entropy():
    codes = sample(5000, 4)
    m = mutual_information(make("copy")(codes), codes)
    p = np.bincount(codes[:, 1]) / len(codes)
    assert m[1, 1] == pytest.approx(-(p * np.log(p)).sum(), rel=1e-9)   # I(v; v) = H(v), nats


def test_factor_vae_score_known_answers():
    # 5,000 held-out votes: binomial standard error <= 0.007, so 0.03 is over 4 standard errors.
    assert factor_vae_score(make("copy"), N_VALUES, seed=0) == 1.0
    assert factor_vae_score(make("random"), N_VALUES, seed=0) == pytest.approx(1 / K, abs=0.03)
    assert factor_vae_score(make("mix"), N_VALUES, seed=0) == pytest.approx(0.75, abs=0.03)


def test_factor_vae_score_skips_collapsed_latents():
    copy = make("copy")
    def with_dead(codes):                                                           # a collapsed dim
        return np.column_stack([copy(codes), np.zeros(len(codes))])
    assert factor_vae_score(with_dead, N_VALUES, n_train=1000, n_eval=1000) == 1.0
    assert factor_vae_score(lambda c: np.zeros((len(c), 3)), N_VALUES, n_train=100, n_eval=100) == 0.0


@pytest.fixture(scope="module")
def dci_scores():
    # 20 trees instead of disentanglement_lib's 100 keep the test fast; the known answers below
    # are the same to 0.01 with 100 trees (checked by hand, 7 s per case).
    train, test = sample(1000, 5), sample(500, 6)
    return {kind: dci(make(kind, 1)(train), train, make(kind, 2)(test), test, n_estimators=20)
            for kind in ("copy", "random", "mix")}


def test_dci_known_answers(dci_scores):
    copy, rand, mix = dci_scores["copy"], dci_scores["random"], dci_scores["mix"]
    assert copy["disentanglement"] > 0.95 and copy["completeness"] > 0.95
    assert copy["informativeness"] > 0.99
    assert np.argmax(copy["importance"], axis=1).tolist() == [0, 1, 2, 3]
    assert rand["disentanglement"] < 0.1 and rand["completeness"] < 0.1
    # Random latents predict no better than the majority class: mean of 1/v is 0.17.
    assert rand["informativeness"] < 0.25
    assert mix["disentanglement"] == pytest.approx(0.75, abs=0.05)
    assert mix["completeness"] == pytest.approx(0.75, abs=0.05)
    assert mix["informativeness"] > 0.99                                 # mixed, not lost


def test_inputs_checked():
    codes = sample(100, 7)
    with pytest.raises(ValueError, match="single value"):
        mig(np.random.default_rng(0).standard_normal((100, 3)), np.column_stack([codes[:, 0], np.zeros(100)]))
    with pytest.raises(ValueError, match=r"\[n, d\]"):
        mig(np.zeros((100, 3)), codes[:50])
