"""``impact`` (Eq. 5) against a computation that shares none of its code: the noise drawn and mixed by
hand, a plain forward pass, and the edit made with a bare torch forward hook."""
import pytest
import torch

import circuitnb.core.config as C
from circuitnb.interventions.impact import impact
from circuitnb.interventions.registry import Intervention
from circuitnb.modeling.unet import build_scheduler

from conftest import random_unet


def by_hand(unet, scheduler, x0, t, seed, edit=None):
    """(MSE_int - MSE_base) / MSE_base with eps ~ N(0, I) from ``seed`` and x_t = sqrt(abar) x0 + sqrt(1 - abar) eps."""
    eps = torch.randn(x0.shape, generator=torch.Generator().manual_seed(seed))
    abar = scheduler.alphas_cumprod[t]
    x_t = abar.sqrt() * x0 + (1 - abar).sqrt() * eps
    tt = torch.full((len(x0),), t, dtype=torch.long)
    with torch.no_grad():
        base = (unet(x_t, tt).sample - eps).pow(2).mean().item()
        handle = unet.mid_block.register_forward_hook(lambda module, args, out: edit(out))
        try:
            intervened = (unet(x_t, tt).sample - eps).pow(2).mean().item()
        finally:
            handle.remove()
    return (intervened - base) / base


@pytest.mark.parametrize("spec,edit", [
    (Intervention("cut_mid"), torch.zeros_like),
    (Intervention("scale", "mid", 10.0), lambda out: 10.0 * out),
    (Intervention("scale", "mid", -4.0), lambda out: -4.0 * out),
])
def test_impact_matches_a_hand_made_edit(spec, edit):
    unet, scheduler = random_unet(0), build_scheduler(C.load("smoke"))
    x0 = torch.rand(4, 3, 16, 16, generator=torch.Generator().manual_seed(5)) * 2 - 1
    expected = by_hand(unet, scheduler, x0, 300, seed=3, edit=edit)
    assert abs(expected) > 1e-3                              # the edit matters, so a wrong one would show
    # Both sides are float32 means over 4 x 3 x 16 x 16 values, equal up to summation order (~1e-7
    # relative each); I divides their difference by the base, so it is good to ~1e-6 absolute.
    assert impact(unet, scheduler, x0, 300, [spec], seed=3).impact == pytest.approx(expected, abs=1e-5)


def test_the_sweep_and_the_interventions_measure_on_the_same_noisy_inputs(monkeypatch):
    """One helper (:func:`circuitnb.data.noise.paired_noise`) draws every measurement's eps, so chapter 4's
    sweep and chapter 6's interventions see the same x_t of an image at t; no global random state moves."""
    from types import SimpleNamespace

    import numpy as np

    from circuitnb.analysis import sweep
    from circuitnb.interventions.impact import paired_inputs

    unet, scheduler = random_unet(0), build_scheduler(C.load("smoke"))
    x0 = torch.rand(5, 3, 16, 16, generator=torch.Generator().manual_seed(1)) * 2 - 1
    monkeypatch.setattr(sweep, "heldout_images", lambda cfg, dataset: x0.numpy())
    torch.manual_seed(0)
    x_t = sweep.noisy_inputs(C.load("smoke", seed=3), "synthetic", SimpleNamespace(scheduler=scheduler), n=5,
                             timesteps=[300])[300]
    after = torch.rand(1)
    assert np.array_equal(x_t, paired_inputs(unet, scheduler, x0, 300, seed=3)[3].numpy())
    torch.manual_seed(0)
    assert torch.equal(torch.rand(1), after)
