"""Part II's data: the dSprites-style shapes and the causal shapes world, split like the faces (§3.1 rule).

    train = vae_data(cfg, "shapes", "train", replicate=1)      # ShapesData: replicate 1's own draw
    held = vae_data(cfg, "causal", "analysis")                 # CausalShapes: no model trained on these
    codes(held)                                                # int [n, k] factor codes, factor_names(held)

The VAE paper (arXiv:2505.03530) uses "synthetic datasets with known causal relationships and standard
disentanglement benchmarks" without publishing either; ours are :func:`~circuitnb.data.shapes.shapes_dataset`
("shapes") and :func:`~circuitnb.data.shapes.causal_shapes` ("causal"), both procedural and deterministic per
seed. The split is :mod:`circuitnb.data.splits`' rule: replicate r trains on its own draw (seed + 1000 r) less
its last ``vae.n_analysis`` images; the analysis images are the base seed's last ``vae.n_analysis``, the same for
every replicate and architecture, so models are compared on the same held-out images.
"""
from __future__ import annotations

import dataclasses
import functools

import numpy as np
import pandas as pd

from circuitnb.core.config import Config
from circuitnb.data import SPLITS
from circuitnb.data.celeba import DataError
from circuitnb.data.shapes import CausalShapes, ShapesData, causal_shapes, descendants, intervene, shapes_dataset
from circuitnb.data.splits import check_choice, draw_seed, split_draw

VAE_DATASETS = ("shapes", "causal")
# Shapes and causal models of one replicate never share a seed (as synthetic and CelebA in Part I).
_OFFSET = {"shapes": 0, "causal": 700}


def check_vae_dataset(name: str) -> str:
    return check_choice(name, VAE_DATASETS, "dataset", DataError)


def vae_seed(cfg: Config, replicate: int, dataset: str) -> int:
    """The training seed (data draw, initial weights, batches) of one replicate: seed + 1000 r + offset."""
    return draw_seed(cfg.run.seed, replicate, _OFFSET[check_vae_dataset(dataset)])


@functools.lru_cache(maxsize=8)
def _draw(dataset: str, n: int, size: int, seed: int):
    return shapes_dataset(n, size, seed) if dataset == "shapes" else causal_shapes(n, size, seed)


def subset(d: ShapesData | CausalShapes, rows: slice) -> ShapesData | CausalShapes:
    """The same dataset restricted to ``rows`` (every per-image array and frame sliced alike)."""
    def cut(v):
        if isinstance(v, np.ndarray):
            return v[rows]
        if isinstance(v, pd.DataFrame):
            return v.iloc[rows].reset_index(drop=True)
        return v
    return dataclasses.replace(d, **{f.name: cut(getattr(d, f.name)) for f in dataclasses.fields(d)})


def vae_data(cfg: Config, dataset: str, split: str = "train", replicate: int = 0) -> ShapesData | CausalShapes:
    """One split of a Part II dataset (see the module docstring for the rule)."""
    check_vae_dataset(dataset)
    check_choice(split, SPLITS, "split", DataError)
    v = cfg.vae
    which, rows = split_draw(split, replicate, v.n_images, v.n_analysis)
    return subset(_draw(dataset, v.n_images, v.image_size, vae_seed(cfg, which, dataset)), rows)


def codes(d: ShapesData | CausalShapes) -> np.ndarray:
    """Integer factor codes [n, k] in ``factor_names(d)`` order (the causal world's values binned)."""
    return (d.factors if isinstance(d, ShapesData) else d.codes).to_numpy().astype(int)


def factor_names(d: ShapesData | CausalShapes) -> tuple[str, ...]:
    return tuple(d.factor_names)


def counterfactual(d: ShapesData | CausalShapes, factor: str, seed: int = 0, hold: str = "") -> np.ndarray:
    """Input manipulation: each image redrawn with ``factor`` changed and nothing else, [n, 1, H, W].

    Shapes: the factor's code moves to another of its values, uniformly (every other code kept, exact
    re-render). Causal world: do(factor = the value of another, randomly paired image of the set), exogenous
    noise kept (:func:`~circuitnb.data.shapes.intervene`), so the factor's descendants in
    :data:`~circuitnb.data.shapes.CAUSAL_GRAPH` follow: the *total* effect of the intervention. Shape takes
    another shape in both. Deterministic for a seed.

    ``hold`` (causal world only): a descendant kept at its own value, do(factor, hold = as it was), so
    that only the paths that avoid ``hold`` carry the change (the controlled direct effect).
    """
    names = factor_names(d)
    if factor not in names:
        raise DataError(f"parameter 'factor' = {factor!r}; choose one of {names}")
    if hold and (not isinstance(d, CausalShapes) or hold not in descendants(factor)):
        raise DataError(f"parameter 'hold' = {hold!r}: not a descendant of {factor!r} in the causal graph")
    rng = np.random.default_rng([seed, names.index(factor)])
    n = len(d)
    if isinstance(d, ShapesData) or factor == "shape":
        k = d.n_values[names.index(factor)]
        old = (d.factors if isinstance(d, ShapesData) else d.codes)[factor].to_numpy()
        new = (old + rng.integers(1, k, n)) % k                      # any other code, uniformly
        if isinstance(d, ShapesData):
            return d.render(d.factors.assign(**{factor: new}))
        world = intervene(d, factor, new.astype(float))
    else:
        world = intervene(d, factor, d.values[factor].to_numpy()[rng.permutation(n)])
    return (intervene(world, hold, d.values[hold].to_numpy()) if hold else world).images
