"""Part III's three techniques against known answers: hand-built posteriors, effect matrices
and tiny TabularVAEs whose answer holds by construction, then the synthetic world's DAG on small trained VAEs
(an intervention on a factor moves its column group of FACTOR_GROUPS, and nothing outside its descendants)."""
import numpy as np
import pytest
import torch

import circuitnb.core.config as C
from circuitnb.data.tabular import tabular_data
from circuitnb.data.tabular.schema import Block
from circuitnb.data.tabular.world import FACTOR_GROUPS, FACTORS, descendants, intervene
from circuitnb.hooking.hooks import record
from circuitnb.interventions.tabular import latent_output_deltas, path_effect
from circuitnb.measures.causal_effects import causal_effect_strength, effect_matrix
from circuitnb.measures.disentanglement import dci_scores
from circuitnb.measures.tabular import (
    READINGS,
    calibrated_effects,
    column_groups,
    feature_group_disentanglement,
    group_codes,
    group_effects,
    per_group_scores,
    posterior_calibrated_ces,
    posterior_weights,
)
from circuitnb.modeling.tabular import encode_mean, reconstruct, train_tabular_vae
from circuitnb.modeling.tabular.model import TabularVAE

LAYOUT = (("a", "continuous", 1), ("b", "continuous", 1), ("c", "categorical", 3))
BLOCKS = (Block("a", "continuous", 0, 1, 1), Block("b", "continuous", 1, 2, 1), Block("c", "categorical", 2, 5, 3))


def rows(n: int, seed: int) -> np.ndarray:
    """Encoded rows of LAYOUT: two standard normal columns and a one-hot block."""
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.standard_normal((n, 2)), np.eye(3)[rng.integers(0, 3, n)]], 1)


# --- posterior-calibrated CES ------------------------------------------------------------------------------------
def posterior_case(n: int = 400):
    """Latents 0 and 1 informative (posterior sd 0.1), latent 2 collapsed (mean ~constant, posterior = prior).
    do(A) moves latent 0 by 0.5 and do(B) latent 1 by 0.8; both move the collapsed latent by 5e-3, which is
    five of its (tiny) row sds: Part II's raw CES is then carried by the collapsed latent."""
    rng = np.random.default_rng(0)
    mu = rng.standard_normal((n, 3)) * np.array([1.0, 1.0, 1e-3])
    logvar = np.log(np.broadcast_to([0.01, 0.01, 1.0], (n, 3))).copy()
    deltas = np.zeros((2, n, 3))
    deltas[0, :, 0], deltas[1, :, 1] = 0.5, 0.8
    deltas[:, :, 2] = 5e-3
    return deltas, mu, logvar


def test_posterior_weights_are_the_signal_share_of_the_aggregate_posterior():
    rng = np.random.default_rng(1)
    mu = rng.standard_normal((20000, 3)) * np.array([2.0, 0.5, 1e-3])
    logvar = np.log(np.broadcast_to([0.25, 0.75, 1.0], mu.shape))
    w = posterior_weights(mu, logvar)
    np.testing.assert_allclose(w[:2], [4 / 4.25, 0.25 / 1.0], rtol=0.03)      # Var(mu) / (Var(mu) + sigma^2)
    assert w[2] < 1e-5                                                        # collapsed: no weight
    info = 0.5 * np.log(1 + mu.var(0, ddof=1) / np.exp(logvar).mean(0))       # Gaussian-channel nats
    np.testing.assert_allclose(w, 1 - np.exp(-2 * info), rtol=1e-9)


def test_calibration_removes_a_collapsed_latents_raw_effect():
    deltas, mu, logvar = posterior_case()
    raw = causal_effect_strength(effect_matrix(deltas, mu.std(0, ddof=1)))
    assert raw > 4                                       # the collapsed latent's 5 row sds win both factors
    weighted = calibrated_effects(deltas, mu, logvar, "weighted")
    assert weighted[:, 2].max() < 1e-4                   # its calibrated effect does not count
    assert weighted.argmax(1).tolist() == [0, 1]         # each factor's largest effect: its informative latent
    w, sd = posterior_weights(mu, logvar), mu.std(0, ddof=1)
    want = np.mean([0.5 * w[0] / sd[0], 0.8 * w[1] / sd[1]])
    assert posterior_calibrated_ces(deltas, mu, logvar) == pytest.approx(want, rel=1e-9)
    # Normalised: the change in posterior sds, 0.5 / 0.1 and 0.8 / 0.1; the collapsed latent's 5e-3 / 1.
    assert posterior_calibrated_ces(deltas, mu, logvar, "normalised") == pytest.approx(6.5, rel=1e-9)
    assert calibrated_effects(deltas, mu, logvar, "normalised")[:, 2] == pytest.approx([5e-3, 5e-3])


def test_calibration_keeps_informative_latents():
    # With no collapsed latent and posterior sd << row sd, the weighted reading is Part II's CES (w ~ 1).
    deltas, mu, logvar = posterior_case()
    deltas, mu, logvar = deltas[:, :, :2], mu[:, :2], logvar[:, :2] - 4       # sigma^2 = 0.01 e^-4
    raw = causal_effect_strength(effect_matrix(deltas, mu.std(0, ddof=1)))
    assert posterior_calibrated_ces(deltas, mu, logvar) == pytest.approx(raw, rel=1e-3)


def test_posterior_ces_rejects_bad_input():
    deltas, mu, logvar = posterior_case(20)
    with pytest.raises(ValueError, match="parameter 'reading'"):
        posterior_calibrated_ces(deltas, mu, logvar, "scaled")
    with pytest.raises(ValueError, match="same shape"):
        posterior_calibrated_ces(deltas, mu, logvar[:, :2])
    with pytest.raises(ValueError, match="deltas"):
        posterior_calibrated_ces(deltas[:, :10], mu, logvar)
    with pytest.raises(ValueError, match="finite"):
        posterior_weights(np.full((4, 2), np.nan), np.zeros((4, 2)))


# --- Feature-Group Disentanglement --------------------------------------------------------------------------------
def test_fgd_is_one_when_each_latent_moves_one_group_and_zero_when_rotated():
    assert feature_group_disentanglement([[2.0, 0], [0, 0.3], [0, 0]]) == pytest.approx(1, abs=1e-6)   # dead: 0 weight
    assert feature_group_disentanglement([[1.0, 1.0], [1.0, 1.0]]) == pytest.approx(0, abs=1e-6)
    mixed = feature_group_disentanglement([[1.0, 0.3], [0.3, 1.0]])
    assert 0.1 < mixed < 0.9
    assert np.isnan(feature_group_disentanglement(np.zeros((2, 2))))


def linear_deltas(weights: np.ndarray, n: int) -> np.ndarray:
    """A linear decoder out = W z: moving latent k by 1 changes every row by column k of W. [d, n, D]."""
    return np.repeat(np.asarray(weights, float).T[:, None, :], n, axis=1)


def test_fgd_counts_a_one_hot_block_as_one_group():
    x = rows(300, 0)
    # Latent 0 moves level probability from level 0 to level 2 of c (two encoded columns, one variable);
    # latent 1 moves a; latent 2 moves nothing (collapsed).
    w = np.zeros((5, 3))
    w[2, 0], w[4, 0], w[0, 1] = -0.4, 0.4, 0.7
    deltas = linear_deltas(w, len(x))
    r = group_effects(deltas, x, column_groups(BLOCKS))
    assert r.shape == (3, 3) and r[2].sum() == 0
    assert feature_group_disentanglement(r) == pytest.approx(1, abs=1e-6)
    # Scored against the encoded columns one by one, latent 0 would drive two "factors".
    per_column = np.abs(deltas).mean(1)
    assert dci_scores(per_column)["disentanglement"] < 0.8


def test_fgd_falls_when_the_decoder_mixes_groups():
    t = np.linspace(-1, 1, 101)
    x = np.stack([t, -t], 1)                                 # two columns with the same spread
    groups = column_groups(BLOCKS[:2])
    aligned = np.eye(2)
    c, s = np.cos(np.pi / 8), np.sin(np.pi / 8)
    rotated = {22.5: np.array([[c, -s], [s, c]]), 45: np.array([[1, -1], [1, 1]]) / np.sqrt(2)}
    fgd = {0: feature_group_disentanglement(group_effects(linear_deltas(aligned, len(x)), x, groups))}
    fgd |= {a: feature_group_disentanglement(group_effects(linear_deltas(m, len(x)), x, groups))
            for a, m in rotated.items()}
    assert fgd[0] == pytest.approx(1, abs=1e-6)
    assert 0.05 < fgd[22.5] < 0.9
    assert fgd[45] == pytest.approx(0, abs=1e-6)


def test_group_effects_are_in_units_of_the_groups_spread():
    x = rows(500, 1)
    x[:, 0] *= 3.0                                           # column a: spread 3
    d = np.zeros((1, len(x), 5))
    d[0, :, 0] = 1.5
    r = group_effects(d, x, column_groups(BLOCKS))
    assert r[0, 0] == pytest.approx(1.5 / x[:, 0].std(ddof=1)) and r[0, 1:].sum() == 0


def test_per_group_mig_and_dci_see_which_latent_carries_which_group():
    rng = np.random.default_rng(2)
    n = 1200
    level, a = rng.integers(0, 3, n), rng.uniform(-1, 1, n)
    x = np.concatenate([a[:, None], rng.uniform(-1, 1, (n, 1)), np.eye(3)[level]], 1)
    groups = column_groups(BLOCKS, {"a": ("a",), "c": ("c",)})
    codes = group_codes(x, groups)
    assert codes[:, 1].tolist() == level.tolist() and len(np.unique(codes[:, 0])) == 10
    aligned = np.stack([a, level + 0.05 * rng.standard_normal(n)], 1)
    rotated = aligned @ (np.array([[1, -1], [1, 1]]) / np.sqrt(2))
    half = n // 2
    good = per_group_scores(aligned[:half], codes[:half], aligned[half:], codes[half:], n_estimators=20)
    bad = per_group_scores(rotated[:half], codes[:half], rotated[half:], codes[half:], n_estimators=20)
    assert good["mig"] == pytest.approx(good["mig_per_group"].mean(), rel=1e-9)     # the reused mig()
    assert good["mig_per_group"].min() > 0.7 and bad["mig"] < good["mig"] - 0.3
    assert good["dci_disentanglement"] > 0.8 and bad["dci_disentanglement"] < good["dci_disentanglement"] - 0.3
    assert good["completeness_per_group"].shape == (2,) and good["importance"].shape == (2, 2)


def test_feature_groups_reject_bad_input():
    x = rows(50, 3)
    with pytest.raises(ValueError, match="not a column"):
        column_groups(BLOCKS, {"g": ("a", "zzz")})
    with pytest.raises(ValueError, match="two groups"):
        column_groups(BLOCKS, {"g": ("a",), "h": ("a", "b")})
    with pytest.raises(ValueError, match="at least 2 column groups"):
        group_effects(np.zeros((2, 50, 5)), x, column_groups(BLOCKS, {"g": ("a", "b")}))
    with pytest.raises(ValueError, match="matching x"):
        group_effects(np.zeros((2, 49, 5)), x, column_groups(BLOCKS))
    with pytest.raises(ValueError, match="non-negative"):
        feature_group_disentanglement([[1.0, -1.0], [0.0, 1.0]])
    with pytest.raises(ValueError, match="'bins'"):
        group_codes(x, column_groups(BLOCKS), bins=1)


# --- path-specific activation patching ----------------------------------------------------------------------------
@pytest.fixture
def tiny():
    torch.manual_seed(0)
    model = TabularVAE(LAYOUT, latent_dim=2, hidden=4).double().eval()
    with torch.no_grad():                # default init shrinks a signal at every layer: scale it back up
        for p in model.parameters():
            p.mul_(3.0)
    x = rows(60, 4)
    x_do = x.copy()
    x_do[:, 0] += 1.0                                        # the input group (a, c) changes
    x_do[:, 2:] = np.roll(x[:, 2:], 1, axis=1)
    return model, x, x_do


def test_a_cut_path_has_no_effect_while_the_total_does(tiny):
    model, x, x_do = tiny
    # The largest path through latent 1, encoder unit u -> latent 1 -> decoder unit v, before any cut.
    sizes = {(u, v): path_effect(model, x, x_do, ("a", "c"), ("a", "b", "c"), latent=1, encoder_unit=u,
                                 decoder_unit=v)["path_size"] for u in range(4) for v in range(4)}
    u, v = max(sizes, key=sizes.get)
    assert sizes[u, v] > 1e-3
    spec = dict(latent=1, encoder_unit=u, decoder_unit=v)
    with torch.no_grad():
        model.decoder.fc1[0].weight[v, 1] = 0.0              # latent 1 -> decoder unit v: cut
    cut = path_effect(model, x, x_do, ("a", "c"), ("a", "b", "c"), **spec)
    assert cut["path_size"] == 0 and cut["share"] == 0
    assert cut["total_size"] > 1e-2
    assert path_effect(model, x, x_do, ("a", "c"), ("a", "b", "c"), latent=1, encoder_unit=u)["path_size"] > 0
    with torch.no_grad():
        model.encoder.fc_mu.weight[0, u] = 0.0               # encoder unit u -> latent 0: cut
    assert path_effect(model, x, x_do, ("a", "c"), ("a", "b", "c"), latent=0, encoder_unit=u)["path_size"] == 0


def test_the_path_through_every_unit_is_the_total_effect(tiny):
    model, x, x_do = tiny
    p = path_effect(model, x, x_do, ("a", "c"), ("b", "c"))
    np.testing.assert_allclose(p["path"], p["total"], atol=1e-12)
    assert p["share"] == pytest.approx(1) and p["total"].shape == (60, 4)
    # An input group that does not change has no effect on any path.
    assert path_effect(model, x, x_do, ("b",), ("a", "b", "c"))["total_size"] == 0


def test_paths_add_up_to_the_total_in_the_linear_regime(tiny):
    model, x, x_do = tiny
    with torch.no_grad():                                    # every ReLU in its linear range (checked below)
        model.encoder.fc1[0].bias.fill_(10.0)
        for layer in (model.encoder.fc2[0], model.decoder.fc1[0], model.decoder.fc2[0]):
            layer.weight.abs_()
        model.decoder.fc1[0].bias.fill_(20.0)
    sites = ["encoder.fc1", "encoder.fc2", "decoder.fc1", "decoder.fc2"]
    with torch.no_grad(), record(model, sites) as rec:
        model(torch.as_tensor(x))
        model(torch.as_tensor(x_do))
    assert all(float(rec[s].min()) > 0 for s in sites)
    paths = [path_effect(model, x, x_do, ("a", "c"), ("a", "b"), latent=k, encoder_unit=u, decoder_unit=v)
             for u in range(4) for k in range(2) for v in range(4)]
    total = paths[0]["total"]
    assert np.abs(total).mean() > 1e-3
    np.testing.assert_allclose(sum(p["path"] for p in paths), total, atol=1e-10)
    assert sum(p["share"] for p in paths) == pytest.approx(1, abs=1e-9)


def test_latent_output_deltas_move_one_latent(tiny):
    model, x, _ = tiny
    d = latent_output_deltas(model, x, step=0.5)
    assert d.shape == (2, 60, 5)
    z = torch.as_tensor(x)
    with torch.no_grad():
        mu = model.encoder(z)[0]
        moved = mu.clone()
        moved[:, 1] += 0.5
        want = model.lik.expected(model.decoder(moved)) - model.lik.expected(model.decoder(mu))
    np.testing.assert_allclose(d[1], want.numpy(), atol=1e-12)


def test_path_effect_rejects_bad_input(tiny):
    model, x, x_do = tiny
    with pytest.raises(ValueError, match="'inputs' has 'zzz'"):
        path_effect(model, x, x_do, ("zzz",), ("a",))
    with pytest.raises(ValueError, match="'outputs' is empty"):
        path_effect(model, x, x_do, ("a",), ())
    with pytest.raises(ValueError, match="'latent' = 2"):
        path_effect(model, x, x_do, ("a",), ("b",), latent=2)
    with pytest.raises(ValueError, match="'encoder_unit'"):
        path_effect(model, x, x_do, ("a",), ("b",), encoder_unit=-1)
    with pytest.raises(ValueError, match="'decoder_site'"):
        path_effect(model, x, x_do, ("a",), ("b",), decoder_site="decoder.out")
    with pytest.raises(ValueError, match="same shape"):
        path_effect(model, x, x_do[:10], ("a",), ("b",))
    with pytest.raises(ValueError, match=r"\[n >= 1, 5\]"):
        path_effect(model, x[:, :4], x_do[:, :4], ("a",), ("b",))
    with pytest.raises(ValueError, match="'step'"):
        latent_output_deltas(model, x, step=0)


# --- the synthetic world: the DAG's known answers on small trained VAEs ------------------------------------------
@pytest.fixture(scope="module")
def world():
    """A plain VAE (600 steps) and a beta-VAE (beta 4, 1000 steps: by then two of its four latents have
    collapsed) trained on the world's training rows (~3 and ~5 s on one CPU thread), the held-out rows, and each
    factor's intervention on them (size and grade + 1.5 sd, kind + 1 mod 3)."""
    cfg = C.load("smoke", tabular=dict(world_rows=2000))
    train, held = tabular_data(cfg, "world", "train"), tabular_data(cfg, "world", "heldout")
    models = {kind: train_tabular_vae(kind, train.x, train.layout, latent_dim=4, hidden=32, steps=steps, seed=0,
                                      progress=False)[0] for kind, steps in (("vae", 600), ("beta_vae", 1000))}
    x_do = {}
    for f in FACTORS:
        v = held.world.values[f]
        x_do[f] = held.encoding.transform(intervene(held.world, f, (v + 1) % 3 if f == "kind" else v + 1.5).frame)
    return dict(models=models, held=held, x_do=x_do, groups=column_groups(held.blocks, FACTOR_GROUPS))


def test_world_interventions_move_their_group_and_no_other(world):
    held, groups, vae = world["held"], world["groups"], world["models"]["vae"]
    rec = reconstruct(vae, held.x)
    data = group_effects(np.stack([world["x_do"][f] - held.x for f in FACTORS]), held.x, groups)
    model = group_effects(np.stack([reconstruct(vae, world["x_do"][f]) - rec for f in FACTORS]), held.x, groups)
    for i, f in enumerate(FACTORS):
        moved = set(descendants(f))
        for j, g in enumerate(FACTOR_GROUPS):
            if moved.isdisjoint(FACTOR_GROUPS[g]):
                assert data[i, j] == 0, (f, g)                # the DAG: no path from f to g
                assert model[i, j] < model[i, i] / 5, (f, g, model.round(2))
        assert model[i].argmax() == i and data[i].argmax() == i
    # FGD of the DAG itself, factors in the latents' place: kind and grade move one group each; size also moves
    # score (grade's group) through the cross-group edge weight -> score, so the world's own FGD is below 1.
    assert dci_scores(data)["per_latent"][1:] == pytest.approx([1, 1], abs=1e-6)
    assert 0.5 < feature_group_disentanglement(data) < 0.99


def test_world_path_through_the_factors_latent_carries_its_effect(world):
    m, held = world["models"]["vae"], world["held"]
    mu = encode_mean(m, held.x)
    for f in FACTORS:
        cols = FACTOR_GROUPS[f]
        per_latent = np.array([path_effect(m, held.x, world["x_do"][f], cols, cols, latent=k)["path_size"]
                               for k in range(4)])
        corr = np.abs([np.corrcoef(mu[:, k], held.world.values[f])[0, 1] for k in range(4)])
        assert per_latent.argmax() == corr.argmax(), (f, per_latent.round(3), corr.round(2))
        total = path_effect(m, held.x, world["x_do"][f], cols, cols)["total_size"]
        assert per_latent.max() > 0.4 * total


def test_world_calibrated_ces_ignores_the_beta_vaes_collapsed_latents(world):
    m, held = world["models"]["beta_vae"], world["held"]
    with torch.no_grad():
        mu, logvar = (t.numpy().astype(float) for t in m.encoder(torch.as_tensor(held.x)))
    deltas = np.stack([encode_mean(m, world["x_do"][f]) - mu for f in FACTORS])
    w = posterior_weights(mu, logvar)
    collapsed = w < 0.02
    assert 1 <= collapsed.sum() < 4, w.round(3)
    raw = effect_matrix(deltas, mu.std(0, ddof=1))
    # A tiny change over a tiny sd: the raw reading counts it, and for some factor it is the largest effect.
    assert raw[:, collapsed].max() > 0.5 and collapsed[raw.argmax(1)].any(), (w.round(3), raw.round(2))
    for reading in READINGS:
        e = calibrated_effects(deltas, mu, logvar, reading)
        assert e[:, collapsed].max() < 0.05 * e.max(), (reading, e.round(3))
        assert not collapsed[e.argmax(1)].any()
    assert posterior_calibrated_ces(deltas, mu, logvar) < causal_effect_strength(raw)


def test_world_fgd_and_per_group_scores_are_defined(world):
    held, groups = world["held"], world["groups"]
    for m in world["models"].values():
        fgd = feature_group_disentanglement(group_effects(latent_output_deltas(m, held.x), held.x, groups))
        assert 0 <= fgd <= 1
    codes = group_codes(held.x, groups)
    z = encode_mean(world["models"]["vae"], held.x)
    s = per_group_scores(z[:250], codes[:250], z[250:], codes[250:], n_estimators=10)
    assert s["mig_per_group"].shape == (3,) and 0 <= s["mig"] <= 1
