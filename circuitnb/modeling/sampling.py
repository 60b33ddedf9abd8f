"""Running a trained eps-predictor: the one DDIM loop, samples, and noise-prediction error by timestep.

    x0 = sample_images(unet, scheduler, 16, seed=0)                   # [16, 3, H, W] in [-1, 1]
    ddim_trajectory(unet, scheduler, 1, steps=25, seed=0,
                    callback=lambda t, x_t, x0_hat: frames.append(x0_hat))
    mse = noise_mse_by_timestep(unet, scheduler, x0, [100, 500, 900])  # t, image, mse

DDIM (eta = 0) with tens of steps rather than 1,000 ancestral DDPM steps keeps
sampling to seconds on a CPU; it uses the same trained eps-predictor and noise
schedule (§3.1).
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import pandas as pd
import torch
from diffusers import DDIMScheduler, DDPMScheduler, UNet2DModel

from circuitnb.data.noise import paired_noise

StepCallback = Callable[[int, torch.Tensor, torch.Tensor], None]


@torch.no_grad()
def ddim_trajectory(unet: UNet2DModel, scheduler: DDPMScheduler, n: int, steps: int = 100, seed: int = 0,
                    callback: StepCallback | None = None) -> torch.Tensor:
    """Run DDIM from seeded Gaussian noise to images; returns the final x ``[n, C, H, W]`` (not clamped).

        ddim_trajectory(unet, scheduler, 1, steps=25, callback=lambda t, x_t, x0_hat: print(t))

    ``callback(t, x_t, x0_hat)`` runs after each step with the step's timestep,
    its input x_t and the predicted clean image (DDIM's ``pred_original_sample``).
    Hooks entered around the call see one UNet forward per step, in order.
    """
    device = next(unet.parameters()).device
    ddim = DDIMScheduler.from_config(scheduler.config)
    ddim.set_timesteps(steps)
    size = unet.config.sample_size
    g = torch.Generator().manual_seed(seed)          # drawn on the CPU so every device gets the same noise
    x = torch.randn((n, unet.config.in_channels, size, size), generator=g).to(device)
    for t in ddim.timesteps:
        eps_hat = unet(x, t.to(device).expand(n)).sample
        out = ddim.step(eps_hat, t, x)
        if callback is not None:
            callback(int(t), x, out.pred_original_sample)
        x = out.prev_sample
    return x


def sample_images(unet: UNet2DModel, scheduler: DDPMScheduler, n: int, seed: int = 0,
                  num_inference_steps: int = 100) -> np.ndarray:
    """Generate ``n`` images with DDIM (eta = 0) on the model's own schedule; [n, 3, H, W] in [-1, 1].

        x = sample_images(unet, scheduler, 16, seed=0)
    """
    x = ddim_trajectory(unet, scheduler, n, steps=num_inference_steps, seed=seed)
    return x.clamp(-1, 1).cpu().numpy()


@torch.no_grad()
def noise_mse_by_timestep(unet: UNet2DModel, scheduler: DDPMScheduler, x0: np.ndarray,
                          timesteps, seed: int = 0, batch_size: int = 64) -> pd.DataFrame:
    """Noise-prediction MSE per image at each timestep, on paired noise.

        noise_mse_by_timestep(unet, scheduler, x0, [100, 900], seed=0)     # columns t, image, mse

    One row per image and t; the same eps is used at every t, so timesteps are
    compared on paired noise.
    """
    device = next(unet.parameters()).device
    x0 = torch.from_numpy(np.asarray(x0))
    eps, _ = paired_noise(x0.shape, seed)
    rows = []
    for t in timesteps:
        for s in range(0, len(x0), batch_size):
            xb, eb = x0[s:s + batch_size].to(device), eps[s:s + batch_size].to(device)
            tt = torch.full((len(xb),), int(t), device=device, dtype=torch.long)
            eps_hat = unet(scheduler.add_noise(xb, eb, tt), tt).sample
            mse = (eps_hat - eb).pow(2).mean(dim=(1, 2, 3)).cpu().numpy()
            rows += [dict(t=int(t), image=s + i, mse=float(m)) for i, m in enumerate(mse)]
    return pd.DataFrame(rows)
