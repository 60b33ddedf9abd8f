"""The VAEs of Part II (circuitnb.modeling.vae.model): training, determinism, named sites, helpers."""
import math

import numpy as np
import pytest
import torch

from circuitnb.data.shapes import shapes_dataset
from circuitnb.modeling.vae.model import KINDS, VAE, decode, encode_mean, kl_terms, permute_dims, train_vae

# Smoke size: 16 px, three stride-2 layers down to 2x2, a small FactorVAE discriminator.
SMALL = dict(widths=(8, 16, 16), latent_dim=4, hidden=32, batch_size=32, lr=1e-3, seed=0,
             disc_hidden=32, disc_layers=2, progress=False)


@pytest.fixture(scope="module")
def images():
    return shapes_dataset(512, 16, seed=0).images


@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_trains(images, kind):
    model, disc, losses = train_vae(kind, images, steps=50, **SMALL)
    assert len(losses) == 50 and all(math.isfinite(v) for v in losses)
    assert np.mean(losses[-10:]) < np.mean(losses[:10]), (kind, losses[:10], losses[-10:])
    assert (disc is not None) == (kind == "factor_vae")
    assert not model.training and model.kind == kind
    # β weighs the KL term of beta_vae and beta_tc_vae only; FactorVAE is recon + KL + γ TC (Kim & Mnih 2018).
    assert model.beta == (4.0 if kind in ("beta_vae", "beta_tc_vae") else 1.0)


def test_same_seed_same_weights(images):
    state = torch.get_rng_state()
    a, disc_a, la = train_vae("factor_vae", images, steps=15, **SMALL)
    b, disc_b, lb = train_vae("factor_vae", images, steps=15, **SMALL)
    assert torch.equal(state, torch.get_rng_state())                    # global RNG untouched
    assert la == lb
    for (name, p), q in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(p, q), name
    for p, q in zip(disc_a.parameters(), disc_b.parameters()):
        assert torch.equal(p, q)
    c, _, _ = train_vae("factor_vae", images, steps=15, **{**SMALL, "seed": 1})
    assert not torch.equal(a.encoder.fc_mu.weight, c.encoder.fc_mu.weight)


def test_named_sites_and_shapes():
    model = VAE(16, (8, 16, 16), latent_dim=4, hidden=32)
    names = dict(model.named_modules())
    for site in ("encoder.conv0", "encoder.conv2", "encoder.fc", "encoder.fc_mu", "encoder.fc_logvar",
                 "decoder.fc", "decoder.fc_up", "decoder.deconv0", "decoder.deconv2"):
        assert site in names, site
    shapes = model.site_shapes()
    assert shapes["encoder.conv0"] == (8, 8, 8) and shapes["encoder.conv2"] == (16, 2, 2)
    assert shapes["encoder.fc_mu"] == (4,) and shapes["decoder.fc_up"] == (16 * 2 * 2,)
    assert shapes["decoder.deconv0"] == (16, 4, 4) and shapes["decoder.deconv2"] == (1, 16, 16)
    for size in (32, 64):
        big = VAE(size, (32, 32, 64, 64), latent_dim=10).eval()
        logits, mu, logvar, z = big(torch.zeros(2, 1, size, size))
        assert logits.shape == (2, 1, size, size) and torch.equal(z, mu)   # eval: z = mu
    with pytest.raises(ValueError, match="divisible"):
        VAE(16, (8, 8, 8, 8, 8))


def test_encode_decode_helpers(images):
    model, _, _ = train_vae("beta_vae", images, steps=5, beta=4.0, **SMALL)
    z = encode_mean(model, images[:40])
    assert z.shape == (40, 4) and z.dtype == np.float32
    np.testing.assert_allclose(encode_mean(model, images[:40]), z)
    x = decode(model, z)
    assert x.shape == (40, 1, 16, 16) and -1 <= x.min() and x.max() <= 1


def test_kl_split_sums_to_monte_carlo_kl():
    # β-TCVAE's three terms telescope to E[log q(z|x) - log p(z)] whatever the estimator's offsets;
    # the reference is computed with torch.distributions, not with the module's own density.
    g = torch.Generator().manual_seed(0)
    mu, logvar = torch.randn(32, 5, generator=g), torch.randn(32, 5, generator=g) * 0.3
    z = mu + torch.exp(0.5 * logvar) * torch.randn(32, 5, generator=g)
    q, p = torch.distributions.Normal(mu, torch.exp(0.5 * logvar)), torch.distributions.Normal(0.0, 1.0)
    mc_kl = (q.log_prob(z) - p.log_prob(z)).sum(1).mean()
    t = kl_terms(z, mu, logvar, n_data=1000)
    torch.testing.assert_close(t["mi"] + t["tc"] + t["dwkl"], mc_kl)


def test_permute_dims_keeps_marginals_breaks_pairs():
    z = torch.arange(200.0).view(100, 2) * torch.tensor([1.0, -1.0])
    zp = permute_dims(z, torch.Generator().manual_seed(0))
    for j in range(2):                                                   # each column a permutation
        torch.testing.assert_close(torch.sort(zp[:, j]).values, torch.sort(z[:, j]).values)
    assert (zp[:, 0] != -zp[:, 1]).any()                                 # joint pairing broken


def test_errors_name_kind_and_step(images):
    bad = images[:64].copy()
    bad[:] = np.nan
    with pytest.raises(FloatingPointError, match=r"'beta_tc_vae'.*step 1"):
        train_vae("beta_tc_vae", bad, steps=3, **SMALL)
    with pytest.raises(ValueError, match="kind"):
        train_vae("vqvae", images, steps=1, **SMALL)
    with pytest.raises(ValueError, match=r"\[N, 1, S, S\]"):
        train_vae("vae", images[:, 0], steps=1, **SMALL)
