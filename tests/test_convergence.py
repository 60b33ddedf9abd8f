"""The convergence rule, the held-out loss and the stability line, on cases with known answers."""
import numpy as np
import pandas as pd
import pytest
import torch
from diffusers import DDPMScheduler

from circuitnb.chapters.diffusion.over_training import stability
from circuitnb.measures.convergence import convergence, heldout_loss_per_image, reference_index, stratified_timesteps
from circuitnb.modeling.vae.model import VAE, negative_elbo_per_image, train_vae


def test_reference_is_the_last_snapshot_at_or_before_three_quarters():
    assert reference_index([100, 200, 300, 400]) == 2
    assert reference_index([50, 100, 150, 200, 250, 300, 350, 400]) == 5       # 300 = 3/4 of 400
    assert reference_index([400]) is None


def test_reference_rounding_case():
    # smoke's snapshots 8, 15, 22, 30: 3/4 of 30 is 22.5, so 22 starts the last quarter.
    assert reference_index([8, 15, 22, 30]) == 2


def test_rule_by_hand():
    rng = np.random.default_rng(0)
    base = 1 + 0.1 * rng.random(50)
    flat = convergence([100, 200, 300, 400], [base * 1.3, base * 1.1, base, base * 0.995], tol=0.02)
    assert flat["reference_step"] == 300 and flat["final_step"] == 400
    assert flat["rel_improvement"] == pytest.approx(0.005) and flat["converged"] is True
    assert flat["ci_low"] < 0.005 < flat["ci_high"]
    moving = convergence([100, 200, 300, 400], [base * 1.3, base * 1.2, base * 1.1, base], tol=0.02)
    assert moving["rel_improvement"] == pytest.approx(0.1 / 1.1) and moving["converged"] is False
    worse = convergence([100, 200], [base, base * 1.05], tol=0.02)            # got worse by 5%: unstable
    assert worse["rel_improvement"] < 0 and worse["converged"] is False and worse["status"] == "worsening"
    assert moving["status"] == "improving" and flat["status"] == "converged"
    wobble = convergence([100, 200], [base, base * 1.01], tol=0.02)           # 1% worse: flat within tol
    assert wobble["converged"] is True
    assert convergence([400], [base], tol=0.02)["converged"] is None
    # A negative loss (a Gaussian decoder's NLL in nats) that falls is improving, not worsening.
    neg = convergence([100, 200, 300, 400], [-base, -1.1 * base, -1.2 * base, -1.3 * base], tol=0.02)
    assert neg["status"] == "improving" and neg["rel_improvement"] == pytest.approx(0.1 / 1.2)
    assert neg["ci_low"] < neg["rel_improvement"] < neg["ci_high"]
    assert convergence([100, 200], [-base, -0.9 * base], tol=0.02)["status"] == "worsening"


def test_rule_uses_the_tolerance_given():
    base = np.ones(10) + np.linspace(0, 0.1, 10)
    losses = [base * 1.03, base]
    assert convergence([300, 400], losses, tol=0.02)["converged"] is False
    assert convergence([300, 400], losses, tol=0.05)["converged"] is True


def _scheduler(T=1000):
    return DDPMScheduler(num_train_timesteps=T, beta_schedule="squaredcos_cap_v2", clip_sample=True)


def test_heldout_loss_of_the_zero_predictor_is_the_noise_variance():
    x0 = np.random.default_rng(1).uniform(-1, 1, (64, 3, 8, 8)).astype(np.float32)
    loss = heldout_loss_per_image(lambda x_t, t: torch.zeros_like(x_t), _scheduler(), x0, n_t=8, seed=0)
    # E||eps||^2 / D = 1; each image averages 8 x 192 squared N(0,1) draws: sd ~ sqrt(2 / 1536) per image.
    assert loss.shape == (64,)
    assert abs(loss.mean() - 1) < 4 * np.sqrt(2 / (8 * 192 * 64))


def test_heldout_loss_is_paired_across_calls_and_orders_models():
    x0 = np.random.default_rng(2).uniform(-1, 1, (16, 3, 8, 8)).astype(np.float32)
    sched = _scheduler()
    abar = sched.alphas_cumprod

    def optimal_for_zero_data(x_t, t):          # x0 ~ tiny: E[eps | x_t] ~ x_t / sqrt(1 - abar) ... a good guess
        return x_t * (1 - abar[t]).sqrt().view(-1, 1, 1, 1)
    a = heldout_loss_per_image(optimal_for_zero_data, sched, x0, n_t=4, seed=3)
    b = heldout_loss_per_image(optimal_for_zero_data, sched, x0, n_t=4, seed=3)
    assert np.array_equal(a, b)
    zero = heldout_loss_per_image(lambda x_t, t: torch.zeros_like(x_t), sched, x0, n_t=4, seed=3)
    assert not np.array_equal(a, zero)


def test_stratified_timesteps_cover_each_stratum():
    t = stratified_timesteps(200, 8, 0, 1000, torch.Generator().manual_seed(0))
    assert t.shape == (200, 8) and t.min() >= 0 and t.max() <= 999
    for k in range(8):                                                       # column k in stratum k
        assert (t[:, k] >= 125 * k).all() and (t[:, k] < 125 * (k + 1)).all()


def _long(values_prev, values_last, half=0.1):
    rows = []
    for i, (a, b) in enumerate(zip(values_prev, values_last)):
        rows += [dict(quantity="q", dataset="d", t=i, step=1, mean=a, ci_low=a - half, ci_high=a + half),
                 dict(quantity="q", dataset="d", t=i, step=2, mean=b, ci_low=b - half, ci_high=b + half)]
    return pd.DataFrame(rows)


def test_stability_counts_values_inside_the_previous_ci_and_verdict_changes():
    long = _long([1.0, 2.0, 3.0], [1.05, 2.5, 2.95])
    verdict = pd.DataFrame(dict(id=["a", "a", "b", "b"], step=[1, 2, 1, 2],
                                verdict=["reproduced", "reproduced", "inconclusive", "contradicted"]))
    table, v = stability(long, verdict)
    assert (v["n_values"], v["n_stable"]) == (3, 2)
    assert (v["n_verdicts"], v["n_verdict_changes"], v["verdict_changes"]) == (2, 1, "b")
    assert table.set_index("t").inside_previous_ci.tolist() == [True, False, True]


def test_stability_compares_only_the_last_two_steps():
    long = pd.concat([_long([1.0], [1.0]), _long([9.0], [9.0]).assign(step=lambda f: f.step + 2)])
    verdict = pd.DataFrame(dict(id=["a"] * 4, step=[1, 2, 3, 4], verdict=["x", "y", "z", "z"]))
    table, v = stability(long, verdict)
    assert (v["n_stable"], v["n_verdict_changes"]) == (1, 0)
    assert set(table.previous_step) == {3} and set(table.last_step) == {4}


def test_vae_heldout_elbo_is_paired_and_the_callback_sees_its_steps():
    x = torch.rand((40, 1, 16, 16), generator=torch.Generator().manual_seed(0)) * 2 - 1
    seen = {}
    model, _, losses = train_vae("vae", x, widths=(8, 8), latent_dim=3, hidden=16, steps=12, batch_size=8,
                                 lr=1e-3, progress=False, callback=lambda s, m: seen.setdefault(
                                     s, negative_elbo_per_image(m, x[:10], seed=5)), callback_steps=(3, 6, 12))
    assert sorted(seen) == [3, 6, 12] and len(losses) == 12
    again = negative_elbo_per_image(model, x[:10], seed=5)
    assert np.array_equal(again, seen[12])                                   # same weights, same draws
    assert (again > 0).all()
    # The callback does not touch the training generator: the run is the same without it.
    _, _, plain = train_vae("vae", x, widths=(8, 8), latent_dim=3, hidden=16, steps=12, batch_size=8, lr=1e-3,
                            progress=False)
    assert plain == losses
    assert isinstance(model, VAE)
