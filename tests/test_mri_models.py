"""Part V's models: shapes, MC dropout, the heteroscedastic NLL, the subject split, caching, hooks."""
import math

import numpy as np
import pytest
import torch

from circuitnb.core import cache
from circuitnb.core.config import ConfigError, load, with_overrides
from circuitnb.hooking.attention import attention_hook, attention_modules
from circuitnb.modeling.mri import (
    KINDS,
    MriVAE,
    gaussian_nll,
    load_or_train_mri,
    mc_dropout,
    mc_predict,
    model_key,
    mri_split,
    negative_elbo_per_image,
    snapshot_steps,
    split_subjects,
    train_mri,
)
from circuitnb.modeling.mri import model as mri_model
from circuitnb.modeling.train import TrainingError


def tiny(kind: str) -> MriVAE:
    torch.manual_seed(0)
    return MriVAE(4, 16, (8, 16), latent_dim=6, heads=2, kind=kind, dropout=0.2)


@pytest.mark.parametrize("kind", KINDS)
def test_forward_shapes(kind):
    model = tiny(kind).eval()
    out = model(torch.rand(3, 4, 16, 16) * 2 - 1)
    assert out.mean.shape == out.logvar.shape == (3, 4, 16, 16)
    assert out.mu.shape == out.logvar_z.shape == out.z.shape == (3, 6)
    assert torch.equal(out.z, out.mu)                                     # eval mode: z = mu
    lo, hi = mri_model.LOGVAR_RANGE
    assert out.logvar.min() >= lo and out.logvar.max() <= hi
    if kind == "non_bayesian":                                            # homoscedastic: one variance
        assert torch.all(out.logvar == out.logvar.flatten()[0])
    else:
        assert out.logvar.flatten().unique().numel() > 1
    assert bool(attention_modules(model)) == (kind != "no_attention")


def test_mc_dropout_passes_differ_and_the_baseline_is_deterministic():
    x = torch.rand(2, 4, 16, 16) * 2 - 1
    bayes = tiny("attention").eval()
    with torch.no_grad(), mc_dropout(bayes):
        a, b = bayes(x).mean, bayes(x).mean
        assert not bayes.training and bayes.encoder.convs[0][3].training   # dropout on, the rest in eval mode
    assert not torch.equal(a, b)
    assert not any(m.training for m in bayes.modules())                  # restored on exit
    pred = mc_predict(bayes, x, passes=6, seed=1)
    assert pred["epistemic"].min() >= 0 and pred["epistemic"].mean() > 0
    np.testing.assert_array_equal(pred["mean"], mc_predict(bayes, x, passes=6, seed=1)["mean"])   # seeded
    base = tiny("non_bayesian").eval()
    with torch.no_grad():
        assert torch.equal(base(x).mean, base(x).mean)
    p = mc_predict(base, x, passes=6)
    assert np.all(p["epistemic"] == 0)
    with torch.no_grad():
        np.testing.assert_allclose(p["mean"], base(x).mean.numpy(), rtol=1e-6, atol=1e-6)


def test_mc_predict_is_the_law_of_total_variance():
    model = tiny("attention")
    x = torch.rand(2, 4, 16, 16) * 2 - 1
    torch.manual_seed(5)
    with torch.no_grad(), mc_dropout(model):
        outs = [model(x) for _ in range(4)]
    means = torch.stack([o.mean for o in outs]).double()
    pred = mc_predict(model, x, passes=4, seed=5)
    np.testing.assert_allclose(pred["mean"], means.mean(0).numpy(), atol=1e-5)
    np.testing.assert_allclose(pred["epistemic"], means.var(0, unbiased=False).numpy(), atol=1e-5)
    np.testing.assert_allclose(pred["aleatoric"],
                               torch.stack([o.logvar.exp() for o in outs]).mean(0).numpy(), rtol=1e-5)


def test_heteroscedastic_nll_by_hand():
    x, mean = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 0.0])
    logvar = torch.tensor([math.log(4.0), 0.0])
    # pixel 0: 0.5 (log 2 pi + log 4 + 1 / 4); pixel 1: 0.5 log 2 pi
    want = [0.5 * (math.log(2 * math.pi) + math.log(4) + 0.25), 0.5 * math.log(2 * math.pi)]
    np.testing.assert_allclose(gaussian_nll(x, mean, logvar).numpy(), want, rtol=1e-6)
    # the same error costs less where the decoder says the variance is larger (for error^2 > variance)
    big = gaussian_nll(torch.tensor(3.0), torch.tensor(0.0), torch.tensor(math.log(4.0)))
    assert big < gaussian_nll(torch.tensor(3.0), torch.tensor(0.0), torch.tensor(0.0))


def test_training_is_seeded_and_lowers_the_objective():
    x = np.random.default_rng(0).uniform(-1, 1, (24, 4, 16, 16)).astype(np.float32)
    kw = dict(widths=(8, 16), latent_dim=6, heads=2, steps=12, batch_size=8, seed=3, progress=False)
    m1, h1 = train_mri("attention", x, **kw)
    m2, h2 = train_mri("attention", x, **kw)
    assert h1 == h2 and not m1.training
    before = negative_elbo_per_image(tiny("attention"), x, seed=0)
    assert negative_elbo_per_image(m1, x, seed=0).mean() < before.mean()


def test_split_subjects_is_stratified_and_disjoint():
    subject = np.repeat([f"s{i}" for i in range(10)], 3)
    lesion = np.isin(subject, ["s1", "s2", "s3", "s4"]) & (np.arange(30) % 3 == 0)
    train, held = split_subjects(subject, lesion, 0.3, seed=0)
    assert not set(train) & set(held) and len(train) + len(held) == 10
    assert sum(s in held for s in ("s1", "s2", "s3", "s4")) == 1                # round(0.3 * 4)
    assert len(held) == 1 + 2                                                   # + round(0.3 * 6)


@pytest.fixture(scope="module")
def cfg(tmp_path_factory):
    return load("smoke", device="cpu", cache_dir=str(tmp_path_factory.mktemp("cache")), mri=dict(steps=12))


def test_split_trains_on_healthy_slices_of_training_subjects(cfg):
    s = mri_split(cfg)
    assert not s.train.lesion.any() and s.heldout.lesion.any() and (~s.heldout.lesion).any()
    assert not set(s.train.subject) & set(s.heldout.subject)
    assert set(s.heldout.subject) == set(s.heldout_subjects)


def test_cache_hit_key_and_damaged_entry(cfg):
    first = load_or_train_mri(cfg, "attention", replicate=1, progress=False)
    meta = first.meta
    assert not first.from_cache and meta["heldout_steps"] == snapshot_steps(cfg)
    assert meta["convergence"]["status"] in ("converged", "improving", "worsening")
    assert len(meta["heldout_nelbo"][-1]) == len(mri_split(cfg).heldout_healthy)
    second = load_or_train_mri(cfg, "attention", replicate=1, progress=False)
    assert second.from_cache and second.meta == meta
    for a, b in zip(first.model.state_dict().values(), second.model.state_dict().values()):
        assert torch.equal(a, b)
    key = model_key(cfg, "attention", 1)
    assert model_key(with_overrides(cfg, mri=dict(lr=2e-3)), "attention", 1) != key
    assert model_key(with_overrides(cfg, mri=dict(mc_passes=9)), "attention", 1) == key        # test time only
    assert model_key(cfg, "attention", 0) != key and model_key(cfg, "no_attention", 1) != key
    folder = cfg.cache_path / "models" / meta["key"] / "final"
    (folder / "model.safetensors").write_bytes(b"damaged")
    with pytest.warns(cache.CacheWarning, match="model.safetensors"):
        third = load_or_train_mri(cfg, "attention", replicate=1, progress=False)
    assert not third.from_cache and third.meta["history"] == meta["history"]      # retrained, identically


def test_nan_loss_names_the_lr_field(cfg, monkeypatch):
    from circuitnb.modeling.mri import training
    monkeypatch.setattr(training, "kl_normal", lambda mu, logvar: torch.full((len(mu),), math.nan))
    with pytest.raises(TrainingError, match="mri.lr"):
        load_or_train_mri(cfg, "no_attention", replicate=0, progress=False)


def test_hook_layer_records_per_head_attention_with_no_model_specific_code():
    model = tiny("attention").eval()
    x = torch.rand(2, 4, 16, 16) * 2 - 1
    with torch.no_grad():
        plain = model(x).mean
    mods = attention_modules(model)
    assert set(mods) == {"encoder.attn", "decoder.attn"}
    seen: dict[str, torch.Tensor] = {}
    with torch.no_grad(), attention_hook(mods["encoder.attn"], probs=lambda p: seen.setdefault("enc", p.clone())), \
            attention_hook(mods["decoder.attn"], probs=lambda p: seen.setdefault("dec", p.clone())):
        hooked = model(x).mean
    for p in seen.values():
        assert p.shape == (2, 2, 16, 16)                                 # [B, heads, Q, K]: 4 x 4 positions
        torch.testing.assert_close(p.sum(-1), torch.ones(2, 2, 16))
    torch.testing.assert_close(hooked, plain, rtol=1e-5, atol=1e-5)     # the classic processor: same output
    with torch.no_grad():                                               # ablating a head changes the output
        with attention_hook(mods["encoder.attn"], heads=lambda h: torch.zeros_like(h)):
            ablated = model(x).mean
    assert not torch.allclose(ablated, plain)
    assert all(type(m.get_processor()).__name__ != "HookedAttnProcessor" for m in mods.values())   # restored


def test_config_rejects_bad_mri_values():
    with pytest.raises(ConfigError, match="mri.kinds"):
        load("smoke", mri=dict(kinds=["attention", "gan"]), device="cpu")
    with pytest.raises(ConfigError, match="mri.heads"):
        load("smoke", mri=dict(heads=3), device="cpu")
    with pytest.raises(ConfigError, match="mri.dropout"):
        load("smoke", mri=dict(dropout=0.0), device="cpu")
