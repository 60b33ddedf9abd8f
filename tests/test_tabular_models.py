"""Part III's tabular VAEs: hand-computed likelihoods, the five objectives, DIP-VAE-II's penalty, determinism,
and the verified cache (a hit returns the same weights, a damaged file is caught, a NaN names 'tabular.lr')."""
import math
import warnings

import numpy as np
import pytest
import torch

import circuitnb.modeling.tabular.training as training
from circuitnb.core import cache
from circuitnb.core.config import ConfigError, load
from circuitnb.data.tabular import tabular_data
from circuitnb.modeling.tabular import (
    TAB_KINDS,
    ColumnLikelihood,
    aggregate_covariance,
    categorical_nll,
    dip_ii_penalty,
    gaussian_nll,
    load_or_train_tabular,
    nelbo_terms,
    objective,
    ordinal_nll,
    reconstruct,
    train_tabular_vae,
)
from circuitnb.modeling.tabular import model as tab_model
from circuitnb.modeling.train import TrainingError
from circuitnb.modeling.vae import model as part2


def sigmoid(v: float) -> float:
    return 1 / (1 + math.exp(-v))


def test_gaussian_nll_by_hand():
    got = gaussian_nll(torch.tensor([1.0, -0.5]), torch.tensor([0.5, 0.5]), 2.0)
    want = [0.5 * (0.5 / 2) ** 2 + math.log(2) + 0.5 * math.log(2 * math.pi),
            0.5 * (1.0 / 2) ** 2 + math.log(2) + 0.5 * math.log(2 * math.pi)]
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-6)


def test_categorical_nll_by_hand():
    got = categorical_nll(torch.tensor([[1.0, 2.0, 3.0]]), torch.tensor([0]))
    want = -math.log(math.exp(1) / (math.exp(1) + math.exp(2) + math.exp(3)))
    assert got.item() == pytest.approx(want, rel=1e-6)


def test_ordinal_nll_by_hand():
    cuts, eta = torch.tensor([-1.0, 1.0]), torch.tensor([0.5, 0.5, 0.5])
    p = [sigmoid(-1 - 0.5), sigmoid(1 - 0.5) - sigmoid(-1 - 0.5), 1 - sigmoid(1 - 0.5)]
    got = ordinal_nll(eta, cuts, torch.tensor([0, 1, 2]))
    np.testing.assert_allclose(got.numpy(), [-math.log(v) for v in p], rtol=1e-5)
    assert sum(p) == pytest.approx(1.0)
    # far tails stay finite, with finite gradients
    eta = torch.tensor([30.0, -30.0], requires_grad=True)
    nll = ordinal_nll(eta, cuts, torch.tensor([0, 2]))
    nll.sum().backward()
    assert torch.isfinite(nll).all() and torch.isfinite(eta.grad).all()


LAYOUT = (("a", "continuous", 1), ("c", "categorical", 3), ("o", "ordinal", 3), ("o2", "ordinal", 5),
          ("c2", "categorical", 2), ("b", "continuous", 1))


def test_column_likelihood_matches_the_functions_column_by_column():
    lik = ColumnLikelihood(LAYOUT, sigma=0.7)
    g = torch.Generator().manual_seed(0)
    out = torch.randn(6, lik.width, generator=g)
    x = torch.tensor([[0.5, 1, 0, 0, 2, 4, 0, 1, -1.0], [0.1, 0, 1, 0, 0, 0, 1, 0, 0.3],
                      [0, 0, 0, 1, 1, 2, 1, 0, 2.0], [-1, 1, 0, 0, 0, 3, 0, 1, 0.0],
                      [2, 0, 0, 1, 2, 1, 1, 0, 1.0], [0, 0, 1, 0, 1, 0, 0, 1, -2.0]])
    got = lik.nll(out, x)
    assert list(got) == [c[0] for c in LAYOUT]
    torch.testing.assert_close(got["a"], gaussian_nll(x[:, 0], out[:, 0], 0.7))
    torch.testing.assert_close(got["b"], gaussian_nll(x[:, 8], out[:, 8], 0.7))
    torch.testing.assert_close(got["c"], categorical_nll(out[:, 1:4], x[:, 1:4].argmax(1)))
    torch.testing.assert_close(got["c2"], categorical_nll(out[:, 6:8], x[:, 6:8].argmax(1)))
    for i, (name, col) in enumerate((("o", 4), ("o2", 5))):
        cuts = lik.cuts(i)
        assert len(cuts) == dict((n, k) for n, _, k in LAYOUT)[name] - 1 and (cuts.diff() > 0).all()
        torch.testing.assert_close(got[name], ordinal_nll(out[:, col], cuts, x[:, col].long()))
    mean = lik.expected(out)
    torch.testing.assert_close(mean[:, 1:4].sum(1), torch.ones(6))
    assert ((mean[:, 5] >= 0) & (mean[:, 5] <= 4)).all()
    # initial cut points: equal level frequencies at eta = 0
    np.testing.assert_allclose(lik.cuts(1).detach().numpy(), np.log(np.arange(1, 5) / (5 - np.arange(1, 5))),
                               atol=1e-5)


def test_dip_ii_penalty_is_zero_at_identity_covariance_and_positive_otherwise():
    mu = math.sqrt(0.5) * torch.tensor([[1.0, 1.0], [1.0, -1.0], [-1.0, 1.0], [-1.0, -1.0]])
    logvar = torch.full((4, 2), math.log(0.5))
    torch.testing.assert_close(aggregate_covariance(mu, logvar), torch.eye(2))
    assert dip_ii_penalty(mu, logvar, 10.0, 10.0).item() == pytest.approx(0.0, abs=1e-10)
    skewed = mu * torch.tensor([1.0, 2.0])                       # diagonal off 1
    correlated = mu + mu[:, :1]                                   # off-diagonal covariance
    assert dip_ii_penalty(skewed, logvar, 0.0, 1.0).item() == pytest.approx((0.5 + 2.0 - 1) ** 2)
    assert dip_ii_penalty(correlated, logvar, 1.0, 0.0).item() > 0.1
    # the encoder variances count ("II"): the same means with larger variances are penalised
    assert dip_ii_penalty(mu, logvar + 1.0, 10.0, 10.0).item() > 0


def test_part2_pieces_are_reused_not_copied():
    assert tab_model.kl_terms is part2.kl_terms
    assert training.discriminator is part2.discriminator and training.discriminator_step is part2.discriminator_step


@pytest.fixture(scope="module")
def cfg(tmp_path_factory):
    return load("smoke", device="cpu", cache_dir=str(tmp_path_factory.mktemp("cache")))


@pytest.mark.parametrize("kind", TAB_KINDS)
def test_each_architecture_trains_and_its_terms_are_finite(cfg, kind):
    d = tabular_data(cfg, "world", "train")
    model, disc, losses = train_tabular_vae(kind, d.x, d.layout, latent_dim=3, hidden=16, steps=8, batch_size=32,
                                            disc_hidden=8, disc_layers=2, progress=False)
    assert len(losses) == 8 and all(math.isfinite(v) for v in losses)
    assert (disc is not None) == (kind == "factor_vae") and not model.training
    x = torch.as_tensor(d.x[:64])
    model.train()
    out, mu, logvar, z = model(x, torch.Generator().manual_seed(1))
    terms = objective(model, x, out, mu, logvar, z, len(d.x), disc, per_column=True)
    expected = {"vae": {"kl"}, "beta_vae": {"kl"}, "factor_vae": {"kl", "tc_disc"}, "beta_tc_vae": {"mi", "tc", "dwkl"},
                "dip_vae_ii": {"kl", "dip"}}[kind]
    assert expected | {"recon", "loss"} <= set(terms) and all(torch.isfinite(v) for v in terms.values())
    assert sum(terms[f"recon:{c[0]}"] for c in d.layout).item() == pytest.approx(terms["recon"].item(), rel=1e-5)
    rows = nelbo_terms(model.eval(), d.x[:50])
    assert list(rows.columns) == [*(c[0] for c in d.layout), "recon", "kl", "nelbo"] and len(rows) == 50
    np.testing.assert_allclose(rows.nelbo, rows.recon + rows.kl)
    assert reconstruct(model, d.x[:5]).shape == (5, d.x.shape[1])


def test_training_is_bit_identical_for_a_seed(cfg):
    d = tabular_data(cfg, "heart", "train")
    kw = dict(latent_dim=3, hidden=16, steps=15, batch_size=16, disc_hidden=8, disc_layers=2, progress=False)
    a = train_tabular_vae("factor_vae", d.x, d.layout, seed=4, **kw)
    torch.manual_seed(123)                                        # the global RNG plays no part
    b = train_tabular_vae("factor_vae", d.x, d.layout, seed=4, **kw)
    c = train_tabular_vae("factor_vae", d.x, d.layout, seed=5, **kw)
    assert a[2] == b[2] and a[2] != c[2]
    for k, v in a[0].state_dict().items():
        assert torch.equal(v, b[0].state_dict()[k])
    for k, v in a[1].state_dict().items():
        assert torch.equal(v, b[1].state_dict()[k])


def _weights(m) -> dict:
    return {k: v.clone() for k, v in m.model.state_dict().items()}


def test_cache_hit_returns_the_same_weights_and_damage_is_caught(cfg):
    first = load_or_train_tabular(cfg, "factor_vae", "penguins", replicate=1, progress=False)
    meta = first.meta
    assert not first.from_cache and meta["replicate"] == 1 and meta["convergence"]["status"] in (
        "converged", "improving", "worsening")
    assert len(meta["heldout_steps"]) == cfg.train.n_snapshots and meta["heldout_steps"][-1] == cfg.tabular.steps
    assert len(meta["heldout_nelbo"][-1]) == meta["n_heldout"] == len(tabular_data(cfg, "penguins", "heldout"))
    second = load_or_train_tabular(cfg, "factor_vae", "penguins", replicate=1, progress=False)
    assert second.from_cache and second.meta == meta and second.disc is not None
    for k, v in _weights(first).items():
        assert torch.equal(v, second.model.state_dict()[k])
    folder = cfg.cache_path / "models" / meta["key"] / "final"
    assert cache.verify(folder) is None
    blob = bytearray((folder / "vae.safetensors").read_bytes())
    blob[-3] ^= 0xFF
    (folder / "vae.safetensors").write_bytes(bytes(blob))
    with pytest.warns(cache.CacheWarning, match="vae.safetensors"):
        third = load_or_train_tabular(cfg, "factor_vae", "penguins", replicate=1, progress=False)
    assert not third.from_cache                                                        # retrained, identically
    for k, v in _weights(first).items():
        assert torch.equal(v, third.model.state_dict()[k])
    other = load_or_train_tabular(cfg, "factor_vae", "penguins", replicate=0, progress=False)
    assert other.meta["key"] != meta["key"] and other.meta["seed"] != meta["seed"]


def test_nan_loss_names_the_parameter(cfg, monkeypatch):
    def nan_objective(model, x, *args, **kwargs):
        return {"loss": model.lik.nll_matrix(torch.full_like(x, float("nan")), x).sum()}
    monkeypatch.setattr(training, "objective", nan_objective)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(TrainingError) as e:
            load_or_train_tabular(cfg, "vae", "anes96", progress=False)
    assert "'tabular.lr'" in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(TrainingError, match="'tabular.kinds'"):
        load_or_train_tabular(cfg, "dip_vae_i", "anes96", progress=False)


def test_config_section_values_and_checks():
    smoke, quick = load("smoke"), load("quick")
    assert smoke.tabular.replicates == 2 and quick.tabular.replicates >= 3
    assert set(quick.tabular.kinds) == set(TAB_KINDS) and len(quick.tabular.datasets) >= 5
    assert smoke.tabular.steps < quick.tabular.steps
    for field, value in [("kinds", ["vae", "ae"]), ("datasets", ["iris"]), ("sigma", 0.1), ("heldout_fraction", 0.9),
                         ("replicates", 0), ("lr", 0)]:
        bad, name = {f"tabular.{field}": value}, f"tabular.{field}"
        with pytest.raises(ConfigError, match=f"'{name}'"):
            load("smoke", **bad)
