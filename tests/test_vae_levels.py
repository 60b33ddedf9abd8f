"""Part II: counterfactual inputs, the four intervention levels on the shared hooks, cached VAE training and
the VaeConfig section, with known answers (a chain network: patching or mediating through a whole layer
that every path crosses restores everything; an edit that returns its input changes nothing)."""
import numpy as np
import pytest
import torch

import circuitnb.core.config as C
from circuitnb.core.errors import UserError
from circuitnb.data.shapes import CAUSAL_ORDER, descendants
from circuitnb.data.vae.datasets import codes, counterfactual, subset, vae_data
from circuitnb.hooking.hooks import edit, record
from circuitnb.hooking.sites import groups, site_names
from circuitnb.interventions.vae.levels import (
    activations,
    latent_traversal,
    mediation,
    patched_outputs,
    patching_effects,
)
from circuitnb.measures.causal_effects import circuit_modularity, effect_matrix, intervention_specificity
from circuitnb.modeling.vae.cache import load_or_train_vae
from circuitnb.modeling.vae.model import VAE


@pytest.fixture
def vcfg(cache):
    return C.load("smoke", vae=dict(n_images=96, n_analysis=32, n_samples=8, steps=3), device="cpu")


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return VAE(16, (8, 16, 16), latent_dim=4, hidden=32).eval()


def test_splits_are_disjoint_deterministic_and_per_replicate(vcfg):
    a, b = vae_data(vcfg, "shapes", "train", 0), vae_data(vcfg, "shapes", "train", 1)
    held = vae_data(vcfg, "shapes", "analysis")
    assert len(a) == 64 and len(held) == 32 and len(codes(held)) == 32
    assert not np.array_equal(a.images, b.images)                       # replicate 1: its own draw
    assert np.array_equal(held.images, vae_data(vcfg, "shapes", "analysis").images)
    assert held.images.shape[1:] == (1, 16, 16)
    with pytest.raises(UserError, match="parameter 'dataset'"):
        vae_data(vcfg, "dsprites")


@pytest.mark.parametrize("dataset", ["shapes", "causal"])
def test_input_manipulation_changes_one_factor(vcfg, dataset):
    held = subset(vae_data(vcfg, dataset, "analysis"), slice(0, 12))
    names = list(held.factor_names)
    for f in names:
        x_f = counterfactual(held, f, seed=3)
        assert x_f.shape == held.images.shape
        assert np.array_equal(x_f, counterfactual(held, f, seed=3))      # deterministic
        changed = np.abs(x_f - held.images).reshape(len(x_f), -1).max(1) > 0
        if f in ("scale", "pos_x", "size"):                               # always visible when changed
            assert changed.mean() >= 0.5, (f, changed)
        if dataset == "shapes":
            # re-rendering the unchanged codes gives the images back bit for bit; the changed ones differ
            assert np.array_equal(held.render(held.factors), held.images)
    if dataset == "causal":
        # do(pos_y): no other factor of the graph depends on it, so nothing else moves in the image
        # except through pos_y itself; do(size) moves size's descendants (brightness, background).
        assert descendants("pos_y") == set() and {"brightness", "background"} <= descendants("size")
        assert set(names) == set(CAUSAL_ORDER)
        # Holding brightness at its own value: only the shape's size moves, so the change is smaller, and
        # holding every path's end (size -> brightness -> background) redraws each image's own background.
        total, direct = counterfactual(held, "size", 3), counterfactual(held, "size", 3, hold="brightness")
        assert np.abs(direct - held.images).sum() < np.abs(total - held.images).sum()
        corner = (0, 0, 0)                                 # a background pixel: far from every shape
        assert np.allclose(direct[(slice(None), *corner)], held.images[(slice(None), *corner)])
        with pytest.raises(UserError, match="parameter 'hold'"):
            counterfactual(held, "size", hold="pos_y")    # not a descendant of size
    with pytest.raises(UserError, match="parameter 'factor'"):
        counterfactual(held, "colour")


def test_generic_site_table_reaches_vae_units(model):
    names = site_names(model)
    assert {"encoder.conv0", "encoder.fc", "encoder.fc_mu", "decoder.fc", "decoder.deconv2"} <= set(names)
    assert "encoder" not in names                          # returns (mu, logvar): not a tensor site
    assert groups(model)["encoder"][0] == "encoder.conv0"
    x = torch.randn(5, 1, 16, 16)
    seen = []
    with record(model, ["encoder.fc_mu"]) as rec, edit(model, {"decoder.fc": lambda h, ctx: seen.append(ctx) or h}):
        logits = model(x)[0]
    assert torch.equal(logits, model(x)[0])                # an identity edit changes nothing
    assert seen[0].site == "decoder.fc" and seen[0].t is None and seen[0].batch == 5
    assert torch.equal(rec["encoder.fc_mu"], model.encoder(x)[0])


def test_patching_and_mediation_known_answers(model):
    g = np.random.default_rng(0)
    x, x_do = g.normal(size=(6, 1, 16, 16)).astype(np.float32), g.normal(size=(6, 1, 16, 16)).astype(np.float32)
    fwd = patched_outputs(model, x, x_do, "encoder.fc_mu", [None, 0, 1, 2, 3])
    back = patched_outputs(model, x_do, x, "encoder.fc_mu", [None, 0, 1, 2, 3])
    np.testing.assert_allclose(fwd["patched"][0], fwd["out_from"], atol=1e-6)   # whole layer: x becomes x_do
    eff = patching_effects(fwd)
    assert eff[0] == pytest.approx(1.0) and (eff[1:] >= 0).all()
    med = mediation(fwd, back)
    assert med["indirect"][0] == pytest.approx(1.0, abs=1e-5) and med["direct"][0] == pytest.approx(0.0, abs=1e-5)
    # fc_logvar never reaches the output in eval mode (z = mu): patching it does nothing.
    assert patching_effects(patched_outputs(model, x, x_do, "encoder.fc_logvar", [None]))[0] == pytest.approx(0)
    # Patching a unit from identical images changes nothing.
    same = patched_outputs(model, x, x, "encoder.fc", [None, 5])
    np.testing.assert_allclose(same["patched"], np.broadcast_to(same["out_to"], same["patched"].shape), atol=1e-6)
    assert patching_effects(same).tolist() == [0.0, 0.0]


def test_latent_traversal_shapes_and_centre(model):
    x = np.zeros((2, 1, 16, 16), np.float32)
    z = activations(model, x, ["encoder.fc_mu"])["encoder.fc_mu"]
    t = latent_traversal(model, z, steps=5, half_width=2.0)
    assert t["grid"].tolist() == [-2.0, -1.0, 0.0, 1.0, 2.0]
    assert t["images"].shape == (4, 5, 2, 16, 16) and t["recoded"].shape == (4, 4)
    assert (t["pixel"] > 0).all() and ((t["images"] >= 0) & (t["images"] <= 1)).all()
    z0 = z.copy()
    z0[:, 1] = 0.0                                          # grid point 2 of latent 1: the prior mean
    expect = torch.sigmoid(model.decoder(torch.as_tensor(z0))).detach().numpy()[:, 0]
    np.testing.assert_allclose(t["images"][1, 2], expect, atol=1e-6)


def test_planted_latents_through_input_manipulation(vcfg):
    # A "model" whose latent k is exactly factor k: its level-1 deltas are the code changes themselves.
    held = subset(vae_data(vcfg, "shapes", "analysis"), slice(0, 16))
    c = codes(held).astype(float)
    deltas = []
    for i in range(len(held.factor_names)):
        new = c.copy()
        new[:, i] = (c[:, i] + 1) % held.n_values[i]
        deltas.append(new - c)
    e = effect_matrix(np.stack(deltas), c.std(0, ddof=1))
    assert intervention_specificity(e) == 1.0 and circuit_modularity(e) == 1.0


def test_vae_training_is_cached_and_locked(vcfg):
    a = load_or_train_vae(vcfg, "factor_vae", "shapes", 0, progress=False)
    b = load_or_train_vae(vcfg, "factor_vae", "shapes", 0, progress=False)
    assert not a.from_cache and b.from_cache and a.meta == b.meta and b.disc is not None
    for p, q in zip(a.model.state_dict().values(), b.model.state_dict().values()):
        assert torch.equal(p, q)
    entry = vcfg.cache_path / "models" / a.meta["key"] / "final"
    assert (entry / "manifest.json").exists() and (vcfg.cache_path / "models" / f".{a.meta['key']}.lock").exists()
    from circuitnb.core import inventory
    listed = [e for e in inventory.scan(vcfg.cache_path) if a.meta["key"] in str(e.path)]
    assert [(e.kind, e.status) for e in listed] == [("model", "ok")]           # `circuitnb cache ls` sees it
    other = load_or_train_vae(C.with_overrides(vcfg, vae=dict(beta=2.0)), "factor_vae", "shapes", 0, progress=False)
    assert other.meta["key"] != a.meta["key"] and not other.from_cache     # every training field keys the entry
    with pytest.raises(UserError, match="vae.kinds"):
        load_or_train_vae(vcfg, "ae", "shapes")


def test_vae_config_is_validated():
    cfg = C.load("smoke")
    assert cfg.vae.image_size == 16 and C.load("paper").vae.widths == (32, 32, 64, 64)
    for name, value in [("kinds", ["vae", "gan"]), ("widths", [8]), ("n_samples", 80), ("image_size", 24),
                        ("datasets", ["shapes", "shapes"]), ("latent_dim", 1)]:
        bad, match = {f"vae.{name}": value}, f"'vae.{name}'"
        with pytest.raises(C.ConfigError, match=match):
            C.load("smoke", **bad)


def test_factor_vae_score_renders_are_kept_exactly():
    from circuitnb.analysis.vae.common import _render_memo
    from circuitnb.data.shapes import shapes_dataset
    d = shapes_dataset(40, 16, seed=1)
    for _ in range(2):                                       # computed, then from the memo: bit for bit
        assert np.array_equal(_render_memo(d, d.factors.to_numpy()), d.images)
