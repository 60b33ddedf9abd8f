"""The noise each image is measured with: one draw per image, shared by every timestep.

    eps, g = paired_noise(x0.shape, seed=cfg.run.seed)     # [N, C, H, W] float32 on the CPU
    x_t = scheduler.add_noise(x0, eps, t)                   # the same eps at every t

The sweep, the interventions (:func:`circuitnb.interventions.impact.paired_inputs`), the head energies
and the widgets draw their noise here, so that two timesteps, two models, or an intervention and its
baseline, measured on the same images with the same seed, see the same eps: their differences are
paired (§4.1, §4.6).
"""
from __future__ import annotations

import torch


def paired_noise(shape, seed: int) -> tuple[torch.Tensor, torch.Generator]:
    """``eps`` of ``shape`` (standard normal, float32, CPU) drawn from ``seed``, and the generator after the draw.

        eps, _ = paired_noise(x0.shape, seed=0)

    The draw is made on the CPU from a generator of its own, so every device gets the same eps and no
    global random state is read or advanced. The returned generator continues the same stream, for a draw
    that must follow this one (the mean-ablation reference's noise,
    :func:`circuitnb.interventions.impact.reference_activations`).
    """
    g = torch.Generator().manual_seed(int(seed))
    return torch.randn(tuple(shape), generator=g), g
