"""Each head's output energy before and after the output projection, and circuit complexity read from either.

    e = head_energies(unet, scheduler, x0, cfg.analysis.timesteps, cfg.run.seed)   # t, image, head, before, after
    cc = complexity_per_image(cfg, models, "to_out")     # Table 1's circuit complexity at the other site

The recorded sweep (:mod:`circuitnb.analysis.sweep`) keeps the energies before ``to_out``; the after-``to_out``
reading of ``READINGS["complexity_site"]`` needs this one extra recording pass (heads only, cached).
Chapter 12 reads them.
"""
from __future__ import annotations

import functools

import numpy as np
import pandas as pd
import torch

from circuitnb.analysis.convergence import heldout_images
from circuitnb.core import results
from circuitnb.core.config import Config
from circuitnb.data.noise import paired_noise
from circuitnb.hooking.hooks import record
from circuitnb.hooking.sites import site_names, site_table
from circuitnb.measures import quantities


@torch.no_grad()
def head_energies(unet, scheduler, x0, timesteps, seed: int = 0) -> pd.DataFrame:
    """Each head's mean squared output before the output projection and of its contribution after it
    (``to_out``: W_k h_k, the part of the layer's output that head k writes), per image and t.

    The noise is the sweep's (:func:`circuitnb.data.noise.paired_noise` of ``seed``). Columns: t, image, head,
    before, after.
    """
    table, modules = site_table(unet), dict(unet.named_modules())
    names = site_names(unet, "head")

    def both(name):                                               # [B, Q, head_dim] -> [B, 2]
        s = table[name]
        d = s.shape[-1]
        w_k = modules[s.path].to_out[0].weight[:, s.index * d:(s.index + 1) * d].float()   # [C, head_dim]
        return lambda x: torch.stack([x.float().pow(2).mean((1, 2)), (x.float() @ w_k.T).pow(2).mean((1, 2))], 1)
    x0 = torch.as_tensor(np.asarray(x0))
    eps, _ = paired_noise(x0.shape, seed)
    device = next(unet.parameters()).device
    frames = []
    for t in timesteps:
        tt = torch.full((len(x0),), int(t), device=device, dtype=torch.long)
        x_t = scheduler.add_noise(x0.to(device), eps.to(device), tt)
        with record(unet, names, reduce={n: both(n) for n in names}) as rec:
            unet(x_t, tt)
        for n in names:
            e = rec[n].cpu().numpy()
            frames.append(pd.DataFrame(dict(t=int(t), image=np.arange(len(x0)), head=n, before=e[:, 0], after=e[:, 1])))
    return pd.concat(frames, ignore_index=True)


def complexity_per_image(cfg: Config, models: dict, site: str) -> pd.DataFrame:
    """Circuit complexity per image, t and model from the head energies at ``site`` (before / after to_out)."""
    col = {"heads": "before", "to_out": "after"}[site]

    def energies(m, wait=True):
        x0 = heldout_images(cfg, m.meta["dataset"])
        return results.cached(cfg, "head_energies", m, lambda: head_energies(m.unet, m.scheduler, x0,
                                                                             cfg.analysis.timesteps, cfg.run.seed),
                              data=x0, wait=wait)

    def one(e, m):
        frames = []
        for t, g in e.groupby("t", sort=False):
            wide = g.pivot_table(index="image", columns="head", values=col, sort=False)
            frames.append(pd.DataFrame(dict(dataset=m.meta["dataset"], t=t, image=wide.index,
                                            value=quantities.circuit_complexity(wide.to_numpy()))))
        return pd.concat(frames, ignore_index=True)
    jobs = [(name, r, m) for name, ms in models.items() for r, m in enumerate(ms)]
    found = results.each([functools.partial(energies, m) for *_, m in jobs])
    return pd.concat([one(e, m).assign(dataset=name, replicate=r) for (name, r, m), e in zip(jobs, found)],
                     ignore_index=True)
