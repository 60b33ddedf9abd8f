"""Part IV's two sets split for training and held-out measurement, as Part II's (:mod:`circuitnb.data.splits`).

    train = sae_data(cfg, "dsprites", "train", replicate=1)     # FactorImages: replicate 1's own draw
    held = sae_data(cfg, "shapes3d", "analysis")                 # no model trains on these

Replicate r trains on its own draw (seed + 1000 r + the set's offset) less its last ``sae.n_analysis`` images;
the held-out images are the base seed's last ``sae.n_analysis``, the same for every replicate and method, so
models are compared on the same images.
"""
from __future__ import annotations

import functools
from dataclasses import replace

from circuitnb.core.config import Config
from circuitnb.data import SPLITS
from circuitnb.data.sae import FactorImages, SAEDataError, dsprites_dataset, shapes3d_dataset
from circuitnb.data.splits import check_choice, draw_seed, split_draw

SAE_DATASETS = ("dsprites", "shapes3d")
_OFFSET = {"dsprites": 0, "shapes3d": 800}            # the two sets of one replicate never share a seed


def check_sae_dataset(name: str) -> str:
    return check_choice(name, SAE_DATASETS, "dataset", SAEDataError)


def sae_seed(cfg: Config, replicate: int, dataset: str) -> int:
    """The training seed (data draw, initial weights, batches) of one replicate: seed + 1000 r + offset."""
    return draw_seed(cfg.run.seed, replicate, _OFFSET[check_sae_dataset(dataset)])


@functools.lru_cache(maxsize=8)
def _draw(dataset: str, n: int, size: int, seed: int) -> FactorImages:
    return dsprites_dataset(n, size, seed) if dataset == "dsprites" else shapes3d_dataset(n, size, seed)


def sae_data(cfg: Config, dataset: str, split: str = "train", replicate: int = 0) -> FactorImages:
    """One split of a Part IV set (see the module docstring for the rule)."""
    check_sae_dataset(dataset)
    check_choice(split, SPLITS, "split", SAEDataError)
    s = cfg.sae
    which, rows = split_draw(split, replicate, s.n_images, s.n_analysis)
    d = _draw(dataset, s.n_images, s.image_size, sae_seed(cfg, which, dataset))
    return replace(d, images=d.images[rows], factors=d.factors.iloc[rows].reset_index(drop=True),
                   values=d.values.iloc[rows].reset_index(drop=True),
                   rows=None if d.rows is None else d.rows[rows])
