"""One recorded pass over images x timesteps that every chapter reads (cached per model and settings).

    sw = sweep(cfg, "synthetic", models["synthetic"])    # cached: the book records each sweep once
    sw.heads      # dataset, t, image, layer, head, entropy (bits, Eq. 1), specialization (Eq. 2), energy
    sw.blocks     # dataset, t, image, block, depth, complexity (Eq. 3)
    sw.mse        # dataset, t, image, mse, accuracy (§4.1 definition)
    sw.pc[(t, block)]          # first-PC score per image, for IFE (Eq. 4)
    sw.received[(t, layer)]    # [N, heads, K] attention each key receives (mean over queries)
    sw.maps[(t, layer)]        # [n_maps, heads, Q, K] full attention of the first images (float16)

Each image gets one noise draw shared by all timesteps (paired across t).
Block outputs are kept in memory for one timestep at a time only.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from circuitnb.analysis.images import heldout_images
from circuitnb.core import results
from circuitnb.core.config import Config
from circuitnb.data.noise import paired_noise
from circuitnb.hooking.hooks import record
from circuitnb.hooking.sites import site_names, site_table
from circuitnb.measures import metrics
from circuitnb.measures.quantities import prediction_accuracy

N_MAPS = 4


@dataclass
class Sweep:
    dataset: str
    timesteps: tuple
    heads: pd.DataFrame
    blocks: pd.DataFrame
    mse: pd.DataFrame
    pc: dict = field(repr=False)
    received: dict = field(repr=False)
    maps: dict = field(repr=False)
    layers: list = field(default_factory=list)
    block_names: list = field(default_factory=list)
    grid: int = 0

    def head_matrix(self, t: int, value: str = "entropy") -> np.ndarray:
        """``[n_images, n_heads]`` of one per-head value at t, heads in forward order."""
        sub = self.heads[self.heads.t == t]
        return sub.pivot_table(index="image", columns="head_id", values=value, sort=False)[self.head_ids].to_numpy()

    @property
    def head_ids(self) -> list[str]:
        """Every head in forward order (layers may differ in their number of heads)."""
        return list(dict.fromkeys(self.heads.head_id))

    @property
    def n_heads(self) -> int:
        """Heads of the layer with the most (the book's models: every layer's)."""
        return int(self.heads["head"].max()) + 1

    def keys(self, layer: str) -> int:
        """Attention keys K of one layer (its token count): layers at other resolutions have other K."""
        return int(self.received[(self.timesteps[0], layer)].shape[-1])

    def head_keys(self) -> np.ndarray:
        """K of each head's layer, in :attr:`head_ids` order."""
        counts = self.heads[self.heads.t == self.timesteps[0]].drop_duplicates("head_id")
        return np.array([self.keys(layer) for layer in counts.layer])


def block_sites(unet) -> list[str]:
    """The U-Net's blocks in forward order: encoder, middle, decoder (the depth axis of §4.4-4.5)."""
    return site_names(unet, "block")


SUMMARY = 2                 # leading columns of the attention summary: entropy (Eq. 1), specialization (Eq. 2)


def attention_summary(p: torch.Tensor) -> torch.Tensor:
    """The hook reducer of a probs site: ``record(unet, [site], reduce={site: attention_summary})``.

    [B, heads, Q, K] -> [B, heads, 2 + K]; the first :data:`SUMMARY` columns are entropy and specialization."""
    # [B, heads, Q, K] -> [B, heads, 2 + K]: entropy (Eq. 1), specialization (Eq. 2) and the attention each
    # key receives, reduced inside the hook so that no [B, heads, Q, K] tensor outlives the forward pass.
    entropy = metrics.attention_entropy(p)
    return torch.cat([entropy.unsqueeze(-1), metrics.specialization(p, entropy).unsqueeze(-1), p.float().mean(-2)],
                     -1)


def _head_energy(x: torch.Tensor) -> torch.Tensor:
    return x.float().pow(2).mean((1, 2))                   # [B, Q, head_dim] -> [B]


@torch.no_grad()
def record_sweep(unet, scheduler, x0, timesteps, seed: int = 0, dataset: str = "", batch_size: int = 50,
                 progress: bool = True) -> Sweep:
    """Record heads, blocks and errors of ``unet`` on images ``x0`` at each timestep."""
    device = next(unet.parameters()).device
    x0 = torch.as_tensor(np.asarray(x0))
    n = len(x0)
    eps, _ = paired_noise(x0.shape, seed)
    table = site_table(unet)
    layers = site_names(unet, "attn")
    blocks = block_sites(unet)
    heads = site_names(unet, "head")
    probs = [f"{layer}.probs" for layer in layers]
    reduce = {**{p: attention_summary for p in probs}, **{h: _head_energy for h in heads}}
    depth = np.linspace(0.0, 1.0, len(blocks))
    head_rows, block_rows, mse_rows = [], [], []
    pc, received, maps = {}, {}, {}
    for t in tqdm(list(timesteps), desc=f"sweep {dataset}", disable=not progress):
        errs = []
        with record(unet, blocks + probs + heads, reduce=reduce) as rec:
            for s in range(0, n, batch_size):
                xb, eb = x0[s:s + batch_size].to(device), eps[s:s + batch_size].to(device)
                tt = torch.full((len(xb),), int(t), device=device, dtype=torch.long)
                errs.append((unet(scheduler.add_noise(xb, eb, tt), tt).sample - eb).pow(2).mean((1, 2, 3)).cpu())
        mse = torch.cat(errs).numpy()
        mse_rows.append(pd.DataFrame(dict(t=int(t), image=np.arange(n), mse=mse, accuracy=prediction_accuracy(mse))))
        for b, d in zip(blocks, depth):
            feats = rec[b]
            block_rows.append(pd.DataFrame(dict(t=int(t), image=np.arange(n), block=b, depth=d,
                                                complexity=metrics.feature_complexity(feats).numpy())))
            pc[(int(t), b)] = metrics.first_pc_scores(feats.double().flatten(1).cpu().numpy())
            del feats
        energy = torch.stack([rec[h] for h in heads], 1).numpy()            # [N, all heads]
        for layer, p in zip(layers, probs):
            summary = rec[p].cpu().numpy()                                  # [N, heads, 2 + K]
            received[(int(t), layer)] = summary[..., SUMMARY:].astype(np.float32)
            for k in range(summary.shape[1]):
                head_rows.append(pd.DataFrame(dict(
                    t=int(t), image=np.arange(n), layer=layer, head=k, head_id=f"{layer}.h{k}",
                    entropy=summary[:, k, 0], specialization=summary[:, k, 1],
                    energy=energy[:, heads.index(f"{layer}.h{k}")])))
        k_maps = min(N_MAPS, n)
        with record(unet, probs) as rec:
            xb, eb = x0[:k_maps].to(device), eps[:k_maps].to(device)
            tt = torch.full((k_maps,), int(t), device=device, dtype=torch.long)
            unet(scheduler.add_noise(xb, eb, tt), tt)
        for layer, p in zip(layers, probs):
            maps[(int(t), layer)] = rec[p].cpu().numpy().astype(np.float16)
    grid = table[layers[0]].shape[-1] if layers else 0
    tag = dict(dataset=dataset)
    return Sweep(dataset=dataset, timesteps=tuple(int(t) for t in timesteps),
                 heads=pd.concat(head_rows, ignore_index=True).assign(**tag),
                 blocks=pd.concat(block_rows, ignore_index=True).assign(**tag),
                 mse=pd.concat(mse_rows, ignore_index=True).assign(**tag),
                 pc=pc, received=received, maps=maps, layers=layers, block_names=blocks, grid=grid)


def sweep(cfg: Config, dataset: str, model, timesteps=None, progress: bool = False, wait: bool = True) -> Sweep:
    """The cached :func:`record_sweep` of ``model`` on the first ``n_samples`` images of ``dataset``
    (``wait``: :func:`circuitnb.core.results.cached`'s)."""
    timesteps = tuple(cfg.analysis.timesteps if timesteps is None else timesteps)
    x0 = heldout_images(cfg, dataset)
    return results.cached(cfg, "sweep", model, lambda: record_sweep(
        model.unet, model.scheduler, x0, timesteps, seed=cfg.run.seed, dataset=dataset, progress=progress),
        dataset=dataset, timesteps=timesteps, data=x0, wait=wait)


def noisy_inputs(cfg: Config, dataset: str, model, n: int = N_MAPS, timesteps=None) -> dict:
    """The sweep's own x_t of its first ``n`` images at each t (same noise draw): ``{t: [n, 3, H, W]}``."""
    x0 = torch.as_tensor(np.array(heldout_images(cfg, dataset)))
    eps, _ = paired_noise(x0.shape, cfg.run.seed)
    out = {}
    for t in (cfg.analysis.timesteps if timesteps is None else timesteps):
        tt = torch.full((n,), int(t), dtype=torch.long)
        out[int(t)] = model.scheduler.add_noise(x0[:n], eps[:n], tt).numpy()
    return out
