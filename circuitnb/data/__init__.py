"""The two datasets of the study (paper §3.1): synthetic faces and natural faces.

    syn = circuitnb.data.synthetic_faces(cfg)
    nat = circuitnb.data.natural_faces(cfg)     # CelebA, or the LFW stand-in with a notice
    x0 = circuitnb.data.images(cfg, "celeba")   # float32 [N, 3, H, W] in [-1, 1]
"""
from __future__ import annotations

import functools
import hashlib

import numpy as np

from circuitnb.core.config import Config
from circuitnb.data.celeba import LFW_NOTICE, DataError, NaturalFaces, load_celeba, load_lfw, read_attributes
from circuitnb.data.synthetic import CORRELATIONS, PARTS, SyntheticFaces, generate_faces, sample_attributes

DATASETS = ("synthetic", "celeba")   # "celeba" means the natural dataset in force (maybe LFW)

__all__ = ["DATASETS", "synthetic_faces", "natural_faces", "images", "fingerprint", "check_dataset",
           "SyntheticFaces", "NaturalFaces", "DataError", "generate_faces", "sample_attributes",
           "load_celeba", "load_lfw", "read_attributes", "PARTS", "CORRELATIONS", "LFW_NOTICE"]


def check_dataset(name: str) -> str:
    if name not in DATASETS:
        raise DataError(f"parameter 'dataset' = {name!r}; choose one of {DATASETS}")
    return name


@functools.lru_cache(maxsize=4)
def _synthetic(n: int, image_size: int, seed: int) -> SyntheticFaces:
    return generate_faces(n, image_size, seed)


def synthetic_faces(cfg: Config) -> SyntheticFaces:
    return _synthetic(cfg.data.n_images, cfg.data.image_size, cfg.run.seed)


@functools.lru_cache(maxsize=4)
def _natural(root: str, n: int, image_size: int, seed: int, match: bool) -> NaturalFaces:
    if root:
        return load_celeba(root, n, image_size, seed=seed, match_attributes=match)
    return load_lfw(n, image_size)


def natural_faces(cfg: Config) -> NaturalFaces:
    """CelebA from ``cfg.celeba_root``; without one, the LFW stand-in (``.source == 'lfw'``)."""
    return _natural(cfg.celeba_root, cfg.data.n_images, cfg.data.image_size, cfg.run.seed,
                    cfg.data.match_attributes)


def images(cfg: Config, dataset: str) -> np.ndarray:
    """Training images of one dataset, float32 [N, 3, H, W] in [-1, 1]."""
    check_dataset(dataset)
    return synthetic_faces(cfg).images if dataset == "synthetic" else natural_faces(cfg).images


def source(cfg: Config, dataset: str) -> str:
    """Which data actually stands behind a dataset name: 'synthetic', 'celeba' or 'lfw'."""
    return "synthetic" if check_dataset(dataset) == "synthetic" else natural_faces(cfg).source


def fingerprint(x: np.ndarray) -> str:
    """Content hash of an image array (shape, dtype and bytes), for cache keys."""
    h = hashlib.sha256(f"{x.shape}{x.dtype}".encode())
    h.update(np.ascontiguousarray(x).tobytes())
    return h.hexdigest()[:16]
