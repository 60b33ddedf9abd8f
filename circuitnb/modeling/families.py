"""Every part's replicate models behind one interface, so the build can train them all side by side.

    for fam in FAMILIES.values():
        for kind, dataset, r in fam.members(cfg):           # what the part's notebooks will load
            if not fam.is_cached(cfg, kind, dataset, r):
                fam.load_or_train(cfg, kind, dataset, r, progress=True)

A family is one part's model cache (:mod:`circuitnb.modeling.vae.cache`, ``tabular.cache``, ``sae.cache``,
``mri.cache``): which models the config asks for, whether one is cached, its key, and training or loading
it. Part I's UNets stay with :mod:`circuitnb.modeling.train`, whose training also takes a progress-bar
position and a step callback. Part V's models have no dataset of their own (the phantom or the BraTS folder
of ``mri.root``): their ``dataset`` is "" here.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from circuitnb.core.config import Config
from circuitnb.modeling.mri import cache as mri_cache
from circuitnb.modeling.sae import cache as sae_cache
from circuitnb.modeling.tabular import cache as tabular_cache
from circuitnb.modeling.vae import cache as vae_cache

Member = tuple[str, str, int]          # (kind or method, dataset, replicate)


@dataclass(frozen=True)
class Family:
    """One part's replicate models: ``members(cfg)`` lists them; the others take (cfg, kind, dataset, replicate)."""
    part: str
    members: Callable[[Config], list[Member]]
    load_or_train: Callable[..., Any]           # (cfg, kind, dataset, replicate, progress=...) -> the trained model
    is_cached: Callable[[Config, str, str, int], bool]
    key: Callable[[Config, str, str, int], str]


def _grid(kinds, datasets, replicates: int) -> list[Member]:
    return [(k, d, r) for d in datasets for k in kinds for r in range(replicates)]


FAMILIES: dict[str, Family] = {
    "vae": Family(
        "vae", lambda cfg: _grid(cfg.vae.kinds, cfg.vae.datasets, cfg.run.replicates),
        vae_cache.load_or_train_vae, vae_cache.is_cached, vae_cache.model_key),
    "tabular": Family(
        "tabular", lambda cfg: _grid(cfg.tabular.kinds, cfg.tabular.datasets, cfg.tabular.replicates),
        tabular_cache.load_or_train_tabular, tabular_cache.is_cached, tabular_cache.model_key),
    "sae": Family(
        "sae", lambda cfg: _grid(cfg.sae.methods, cfg.sae.datasets, cfg.sae.replicates),
        sae_cache.load_or_train_sae, sae_cache.is_cached, sae_cache.model_key),
    "mri": Family(
        "mri", lambda cfg: _grid(cfg.mri.kinds, [""], cfg.mri.replicates),
        lambda cfg, kind, _dataset, replicate, progress=True: mri_cache.load_or_train_mri(cfg, kind, replicate,
                                                                                          progress),
        lambda cfg, kind, _dataset, replicate: mri_cache.is_cached(cfg, kind, replicate),
        lambda cfg, kind, _dataset, replicate: mri_cache.model_key(cfg, kind, replicate)),
}


def model_keys(cfg: Config, part: str) -> list[str]:
    """The cache keys of every model ``part`` asks for, in the order of its family's ``members``."""
    fam = FAMILIES[part]
    return [fam.key(cfg, *m) for m in fam.members(cfg)]
