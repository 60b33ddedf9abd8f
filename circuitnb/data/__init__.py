"""The two datasets of the study (paper §3.1): synthetic faces and natural faces.

    syn = circuitnb.data.synthetic_faces(cfg)
    nat = circuitnb.data.natural_faces(cfg)     # CelebA, or the LFW stand-in with a notice
    x0 = circuitnb.data.images(cfg, "celeba")   # training images, float32 [N, 3, H, W] in [-1, 1]
    xa = circuitnb.data.images(cfg, "celeba", split="analysis")    # held out: no model trains on them

The split rule (§3.1 has 2,000 images per dataset; we hold some out): of the
``n_images`` of a dataset, the last ``n_analysis`` are analysis images and the
rest are training images. Replicate r of the synthetic dataset trains on its
own draw of faces (seed ``seed + REPLICATE_STRIDE * r``); its analysis images
are the base seed's last ``n_analysis`` faces, the same for every replicate, so
models are compared on the same held-out images. CelebA replicates share the
data and differ only in the training seed.
"""
from __future__ import annotations

import functools
import hashlib
import json
import pickle
from pathlib import Path

import numpy as np

from circuitnb.core import cache
from circuitnb.core.config import Config
from circuitnb.core.results import code_fingerprint
from circuitnb.data.celeba import (
    LFW_NOTICE,
    DataError,
    NaturalFaces,
    celeba_plan,
    load_celeba,
    load_lfw,
    read_attributes,
    warn_skipped,
)
from circuitnb.data.folder import folder_images, to_channels
from circuitnb.data.synthetic import CORRELATIONS, PARTS, SyntheticFaces, generate_faces, sample_attributes

DATASETS = ("synthetic", "celeba")   # "celeba" means the natural dataset in force (maybe LFW)
SPLITS = ("train", "analysis")
REPLICATE_STRIDE = 1000              # replicate r's training seed: seed + 1000 r (never another run's seed)
# Models of different datasets never share a seed, so no CelebA model starts from the initial weights of a
# synthetic one: a shared init would make the pair more alike than two models of the same data.
DATASET_SEED_OFFSET = {"synthetic": 0, "celeba": 500}

__all__ = ["DATASETS", "synthetic_faces", "natural_faces", "images", "fingerprint", "check_dataset",
           "SyntheticFaces", "NaturalFaces", "DataError", "generate_faces", "sample_attributes",
           "load_celeba", "load_lfw", "read_attributes", "PARTS", "CORRELATIONS", "LFW_NOTICE"]


def check_dataset(name: str) -> str:
    if name not in DATASETS:
        raise DataError(f"parameter 'dataset' = {name!r}; choose one of {DATASETS}")
    return name


@functools.lru_cache(maxsize=4)
def _synthetic(n: int, image_size: int, seed: int, store: str) -> SyntheticFaces:
    """The faces of one draw, kept in the cache folder ``store`` (drawing 2,000 faces takes ~4 s, and every
    notebook needs every replicate's draw to find its models)."""
    settings = dict(n=n, image_size=image_size, seed=seed, code=code_fingerprint(generate_faces))
    key = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]

    def make(tmp: Path) -> SyntheticFaces:
        faces = generate_faces(n, image_size, seed)
        (tmp / "faces.pkl").write_bytes(pickle.dumps(faces, protocol=pickle.HIGHEST_PROTOCOL))
        return faces
    return cache.get_or_make(Path(store) / "results" / f"synthetic_faces-{key}",
                             lambda folder: pickle.loads((folder / "faces.pkl").read_bytes()), make, kind="data",
                             settings=settings, what="data cache entry", redo="drawing the faces again")


def synthetic_faces(cfg: Config, seed: int | None = None) -> SyntheticFaces:
    """The synthetic faces of ``seed`` (default: the run's seed, whose last ``n_analysis`` are analysed)."""
    return _synthetic(cfg.data.n_images, cfg.data.image_size, cfg.run.seed if seed is None else seed,
                      str(cfg.cache_path))


class _SparesChanged(ValueError):
    """The spare images a cached decode fell back on have changed since (the entry is decoded again)."""


def _celeba(root: str, n: int, image_size: int, seed: int, match: bool, store: str) -> NaturalFaces:
    """:func:`load_celeba`, kept decoded in the cache folder ``store`` and keyed by the files' content.

    Why: every notebook needs the CelebA images (to find its models' keys, and to analyse them), and decoding
    and resizing 2,000 JPEGs takes about 3 s of each kernel; reading their bytes to check them takes a tenth
    of that. The key holds the bytes of the ``n`` files tried first, the attribute file and the list of
    names; the spares that stood in for skipped files are checked when the entry is read.
    """
    img_dir, candidates, _ = celeba_plan(root, n, seed, match)
    attr_file = Path(root).expanduser() / "list_attr_celeba.txt"
    settings = dict(root=str(Path(root).expanduser().resolve()), n=n, image_size=image_size, seed=seed, match=match,
                    files=cache.files_fingerprint(img_dir / nm for nm in candidates[:n]),
                    names=hashlib.sha256("\0".join(candidates).encode()).hexdigest()[:16],
                    attributes=cache.files_fingerprint([attr_file]) if attr_file.exists() else None,
                    code=code_fingerprint(load_celeba))
    key = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]
    spares = lambda faces: [img_dir / nm for nm in candidates[n:len(faces.names) + len(faces.skipped)]]  # noqa: E731

    def make(tmp: Path) -> NaturalFaces:
        faces = load_celeba(root, n, image_size, seed=seed, match_attributes=match)
        (tmp / "faces.pkl").write_bytes(pickle.dumps(faces, protocol=pickle.HIGHEST_PROTOCOL))
        (tmp / "spares.json").write_text(json.dumps(cache.files_fingerprint(spares(faces))))
        return faces

    def load(folder: Path) -> NaturalFaces:
        faces = pickle.loads((folder / "faces.pkl").read_bytes())
        if json.loads((folder / "spares.json").read_text()) != cache.files_fingerprint(spares(faces)):
            raise _SparesChanged("spare images that replaced skipped files have changed")
        warn_skipped(faces.skipped)
        return faces
    return cache.get_or_make(Path(store) / "results" / f"celeba_images-{key}", load, make, kind="data",
                             settings=settings, what="data cache entry", redo="decoding the images again")


@functools.lru_cache(maxsize=4)
def _natural(root: str, n: int, image_size: int, seed: int, match: bool, store: str) -> NaturalFaces:
    if root:
        return _celeba(root, n, image_size, seed, match, store)
    return load_lfw(n, image_size)


def natural_faces(cfg: Config, image_size: int | None = None) -> NaturalFaces:
    """CelebA from ``cfg.celeba_root`` (decoded once, then read from the cache); without one, the LFW stand-in
    (``.source == 'lfw'``). ``image_size``: another side than ``cfg.data.image_size`` (a model of your own)."""
    return _natural(cfg.celeba_root, cfg.data.n_images, image_size or cfg.data.image_size, cfg.run.seed,
                    cfg.data.match_attributes, str(cfg.cache_path))


def model_images(cfg: Config, image_size: int, channels: int) -> tuple[str, np.ndarray, str]:
    """(name, images, note) a model of your own is analysed on: the first ``n_samples`` images of
    ``cfg.data.images_dir`` ("yours"), else of the natural faces' analysis split ("celeba"), decoded at
    ``image_size`` and converted to ``channels`` (:func:`circuitnb.data.folder.to_channels`)."""
    n = cfg.analysis.n_samples
    if cfg.data.images_dir:
        name, (x, note) = "yours", folder_images(cfg.data.images_dir, n, image_size)
    else:
        faces = natural_faces(cfg, image_size)
        n_train = max(len(faces.images) - cfg.data.n_analysis, 0)        # the book's held-out split, as images()
        name, x = "celeba", faces.images[n_train:][:n]
        note = (f"{len(x)} held-out {faces.source} images (the book's analysis split), decoded at {image_size}px"
                + (f"; {LFW_NOTICE}" if faces.source == "lfw" else ""))
    x, converted = to_channels(x, channels)
    return name, x, note + (f"; {converted}" if converted else "")


def replicate_seed(cfg: Config, replicate: int, dataset: str = "synthetic") -> int:
    """The training seed (initial weights, batches; synthetic: also the face draw) of one replicate model:
    ``seed + 1000 r + DATASET_SEED_OFFSET[dataset]``."""
    return cfg.run.seed + REPLICATE_STRIDE * replicate + DATASET_SEED_OFFSET[check_dataset(dataset)]


def images(cfg: Config, dataset: str, split: str = "train", replicate: int = 0) -> np.ndarray:
    """One split of a dataset, float32 [N, 3, H, W] in [-1, 1] (see the module docstring for the rule)."""
    check_dataset(dataset)
    if split not in SPLITS:
        raise DataError(f"parameter 'split' = {split!r}; choose one of {SPLITS}")
    n_train = cfg.data.n_images - cfg.data.n_analysis
    if dataset == "synthetic":
        seed = replicate_seed(cfg, replicate, dataset) if split == "train" else cfg.run.seed
        x = synthetic_faces(cfg, seed).images
    else:
        x = natural_faces(cfg).images
        if len(x) < cfg.data.n_images:            # a smaller folder: the same rule on what is there
            n_train = len(x) - cfg.data.n_analysis
            if n_train < 1:
                raise DataError(f"the natural dataset has {len(x)} readable images; 'n_analysis' = "
                                f"{cfg.data.n_analysis} leaves none to train on")
    return x[:n_train] if split == "train" else x[n_train:]


def analysis_labels(cfg: Config) -> np.ndarray:
    """Per-pixel part labels of the synthetic analysis images (same order as ``images(.., "analysis")``)."""
    return synthetic_faces(cfg).labels[cfg.data.n_images - cfg.data.n_analysis:]


def source(cfg: Config, dataset: str) -> str:
    """Which data actually stands behind a dataset name: 'synthetic', 'celeba' or 'lfw'."""
    return "synthetic" if check_dataset(dataset) == "synthetic" else natural_faces(cfg).source


def fingerprint(x: np.ndarray) -> str:
    """Content hash of an image array (shape, dtype and bytes), for cache keys."""
    return cache.array_fingerprint(x)
