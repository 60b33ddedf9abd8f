"""Part IV's hybrid VAE-SAE: the sparsity schedule, Top-k, AuxK, the L1 controller, and the verified cache (a hit
returns the same weights and snapshots, a training field changes the key, a NaN names 'sae.lr')."""
import math

import numpy as np
import pytest
import torch

import circuitnb.modeling.sae.training as training
from circuitnb.core import cache
from circuitnb.core.config import ConfigError, load, with_overrides
from circuitnb.modeling.sae import (
    METHODS,
    HybridVAE,
    L1Controller,
    active_units,
    aux_k_loss,
    decay_end,
    load_or_train_sae,
    model_key,
    over_schedule,
    sae_data,
    schedule,
    snapshot_steps,
    top_k,
    train_hybrid,
)
from circuitnb.modeling.train import TrainingError


# --- the schedule ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", ["linear", "geometric"])
def test_schedule_starts_dense_and_ends_at_exactly_k(shape):
    ks = schedule(1000, 500, 50, 0.5, shape)
    assert ks[0] == 500 and decay_end(1000, 0.5) == 500
    assert all(k == 50 for k in ks[499:]) and ks[490] > 50            # exactly k_end from the decay's end on
    assert all(a >= b for a, b in zip(ks, ks[1:]))                     # never rises
    assert min(ks) == 50 and max(ks) == 500


def test_schedule_interpolates_as_stated():
    # linear: step s of a decay ending at step 101 sits at 500 - 450 (s - 1) / 100
    assert [active_units(s, 200, 500, 50, 0.505) for s in (1, 26, 51, 76, 101)] == [500, 388, 275, 162, 50]
    # geometric: log k linear, halfway between 500 and 50 is sqrt(500 * 50) = 158.1
    assert active_units(51, 200, 500, 50, 0.505, "geometric") == 158
    assert active_units(51, 200, 500, 50, 0.505, "linear") == 275
    with pytest.raises(ValueError, match="shape"):
        active_units(1, 10, 5, 1, 0.5, "cosine")


# --- Top-k and AuxK -------------------------------------------------------------------------------------------
def test_top_k_leaves_exactly_k_nonzero_per_row():
    g = torch.Generator().manual_seed(0)
    pre = torch.rand((16, 500), generator=g) + 0.01                 # all positive: exactly k survive
    for k in (500, 137, 50, 1):
        codes = top_k(pre, k)
        assert ((codes != 0).sum(1) == k).all()
        kept = codes.topk(k, dim=1).values
        assert torch.equal(kept, pre.topk(k, dim=1).values)        # the k largest, unchanged
    mixed = torch.randn((16, 500), generator=g)                     # ReLU after Top-k: at most k
    assert ((top_k(mixed, 50) != 0).sum(1) <= 50).all()


def test_model_forward_has_k_active_units_and_the_stated_shapes():
    torch.manual_seed(0)
    model = HybridVAE(3, 16, (8, 16), latent_dim=4, hidden=40, method="topk").eval()
    model.k = 7
    out = model(torch.rand(5, 3, 16, 16) * 2 - 1)
    assert out.logits.shape == (5, 3, 16, 16) and out.codes.shape == (5, 40) and out.mu.shape == (5, 4)
    assert ((out.codes > 0).sum(1) <= 7).all() and torch.equal(out.z, out.mu)
    assert torch.allclose(model.sae.decode.weight.norm(dim=0), torch.ones(40), atol=1e-5)


def test_aux_k_loss_is_zero_without_dead_units_and_positive_with_them():
    g = torch.Generator().manual_seed(1)
    pre = torch.rand((8, 20), generator=g)
    w = torch.randn((6, 20), generator=g)
    residual = torch.randn((8, 6), generator=g)
    none_dead = torch.zeros(20, dtype=torch.bool)
    assert aux_k_loss(pre, none_dead, residual, w, 4).item() == 0.0
    dead = none_dead.clone()
    dead[:5] = True
    loss = aux_k_loss(pre, dead, residual, w, 4)
    assert loss.item() > 0
    # by hand: the 4 largest of the 5 dead pre-activations per row reconstruct the residual
    z = torch.zeros_like(pre)
    vals, idx = pre[:, :5].topk(4, dim=1)
    z.scatter_(1, idx, vals)
    assert loss.item() == pytest.approx((residual - z @ w.T).pow(2).sum(1).mean().item(), rel=1e-5)
    # its gradient reaches dead units only
    pre.requires_grad_(True)
    aux_k_loss(pre, dead, residual, w, 4).backward()
    assert pre.grad[:, 5:].abs().sum() == 0 and pre.grad[:, :5].abs().sum() > 0


def test_dead_tracking_counts_images_since_each_unit_fired():
    model = HybridVAE(1, 16, (8, 16), latent_dim=2, hidden=4)
    model.track_firing(torch.tensor([[1.0, 0, 0, 0], [0, 0, 2.0, 0]]))
    model.track_firing(torch.tensor([[1.0, 0, 0, 0]]))
    assert model.since_fired.tolist() == [0, 3, 1, 3]
    assert model.dead_mask(3).tolist() == [False, True, False, True]


# --- the L1 controller ---------------------------------------------------------------------------------------
def test_l1_controller_reaches_the_target_mean_activity_on_a_toy_problem():
    """Toy: 200 units whose codes are ReLU(u - lambda) (soft thresholding, the L1 proximal step) on standard
    normal u; the controller must steer lambda until the mean number of active units per input is k."""
    rng = np.random.default_rng(0)
    ctl = L1Controller(init=1e-3, gain=0.1)
    for target in (100, 20):
        for _ in range(600):
            u = rng.standard_normal((64, 200))
            active = float((u - ctl.lam > 0).sum(1).mean())
            ctl.update(active, target)
        u = rng.standard_normal((4096, 200))
        assert float((u - ctl.lam > 0).sum(1).mean()) == pytest.approx(target, rel=0.05)


def test_l1_training_follows_the_schedule():
    x = sae_images()
    _, hist = train_hybrid("l1", x, widths=(8, 16), latent_dim=3, hidden=48, active_fraction=0.25, steps=400,
                           batch_size=32, l1_gain=0.05, progress=False)
    assert hist["k"][-1] == 12 and hist["lam"][-1] > 100 * hist["lam"][0]
    assert np.mean(hist["l0"][:20]) > 20 and np.mean(hist["l0"][-40:]) == pytest.approx(12, rel=0.5)


def sae_images(n: int = 96, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1, 1, (n, 1, 16, 16)).astype(np.float32)


@pytest.mark.parametrize("method", METHODS)
def test_training_is_seeded_and_ends_at_the_final_k(method):
    x = sae_images()
    kw = dict(widths=(8, 16), latent_dim=3, hidden=24, active_fraction=0.25, steps=12, batch_size=16,
              auxk_k=4, dead_window=16, progress=False)
    m1, h1 = train_hybrid(method, x, seed=3, **kw)
    m2, h2 = train_hybrid(method, x, seed=3, **kw)
    assert h1["loss"] == h2["loss"]
    assert all(torch.equal(a, b) for a, b in zip(m1.state_dict().values(), m2.state_dict().values()))
    assert h1["k"][0] == 24 and h1["k"][-1] == 6
    if method != "l1":
        assert m1.k == 6 and h1["l0"][-1] <= 6


# --- the cache ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cfg(tmp_path_factory):
    return load("smoke", device="cpu", cache_dir=str(tmp_path_factory.mktemp("cache")),
                sae=dict(steps=16, n_images=160, n_analysis=48))


def test_split_keeps_held_out_images_apart(cfg):
    train0, train1 = sae_data(cfg, "dsprites", "train", 0), sae_data(cfg, "dsprites", "train", 1)
    held = sae_data(cfg, "dsprites", "analysis")
    assert len(train0) == 112 and len(held) == 48 and held.images.shape[1] == 1
    assert not np.array_equal(train0.images, train1.images)                  # each replicate its own draw
    assert np.array_equal(held.images, sae_data(cfg, "dsprites", "analysis", replicate=1).images)
    assert sae_data(cfg, "shapes3d", "analysis").images.shape[1:] == (3, 16, 16)


def test_cache_hit_returns_the_same_model_and_snapshots(cfg):
    first = load_or_train_sae(cfg, "topk_auxk", "shapes3d", replicate=1, progress=False)
    meta = first.meta
    assert not first.from_cache and meta["replicate"] == 1 and meta["heldout_steps"] == snapshot_steps(cfg)
    assert meta["convergence"]["status"] in ("converged", "improving", "worsening")
    assert first.snapshots[16]["codes"].shape == (48, cfg.sae.hidden)
    second = load_or_train_sae(cfg, "topk_auxk", "shapes3d", replicate=1, progress=False)
    assert second.from_cache and second.meta == meta and second.model.k == first.model.k == 3
    for a, b in zip(first.model.state_dict().values(), second.model.state_dict().values()):
        assert torch.equal(a, b)
    np.testing.assert_array_equal(first.snapshots[16]["codes"], second.snapshots[16]["codes"])
    folder = cfg.cache_path / "models" / meta["key"] / "final"
    assert cache.verify(folder) is None
    table = over_schedule(cfg, second)
    assert list(table["step"]) == snapshot_steps(cfg) and (table["k"].iloc[-1] == 3)
    (folder / "snapshots.safetensors").write_bytes(b"damaged")
    with pytest.warns(cache.CacheWarning, match="snapshots.safetensors"):
        third = load_or_train_sae(cfg, "topk_auxk", "shapes3d", replicate=1, progress=False)
    assert not third.from_cache and third.meta["history"] == meta["history"]     # retrained, identically


def test_key_changes_with_a_training_field_only(cfg):
    key = model_key(cfg, "topk", "dsprites")
    assert model_key(with_overrides(cfg, sae=dict(lr=2e-3)), "topk", "dsprites") != key
    assert model_key(with_overrides(cfg, sae=dict(decay_fraction=0.25)), "topk", "dsprites") != key
    assert model_key(with_overrides(cfg, sae=dict(dci_trees=3)), "topk", "dsprites") == key         # analysis only
    assert model_key(with_overrides(cfg, sae=dict(l1_gain=0.5)), "topk", "dsprites") == key         # l1's field
    assert model_key(with_overrides(cfg, sae=dict(l1_gain=0.5)), "l1", "dsprites") != model_key(cfg, "l1", "dsprites")
    assert model_key(cfg, "topk", "dsprites", 1) != key


def test_nan_loss_names_the_parameter(cfg, monkeypatch):
    monkeypatch.setattr(training, "_kl", lambda mu, logvar: torch.full((len(mu),), math.nan))
    with pytest.raises(TrainingError, match="sae.lr"):
        load_or_train_sae(cfg, "l1", "dsprites", replicate=0, progress=False)


def test_config_rejects_bad_sae_values():
    with pytest.raises(ConfigError, match="sae.decay_fraction"):
        load("smoke", sae=dict(decay_fraction=0.9), device="cpu")
    with pytest.raises(ConfigError, match="sae.methods"):
        load("smoke", sae=dict(methods=["topk", "jumprelu"]), device="cpu")
    with pytest.raises(ConfigError, match="sae.n_analysis"):
        load("smoke", sae=dict(n_analysis=300), device="cpu")
