"""The held-out images every Part I chapter analyses, for the book's models or a model of your own.

    x0 = heldout_images(cfg, "celeba")     # the first n_samples analysis images, float32 [N, C, S, S] in [-1, 1]

With ``model_dir`` the images are decoded at that model's size and converted to its channel count
(:func:`circuitnb.data.model_images`): from ``images_dir``, else the book's natural faces; ``image_note``
says which, and how, for the page. Kept apart from :mod:`circuitnb.analysis.yours` so that the code
fingerprint of every cached sweep reaches the data layer only, not the training loop.
"""
from __future__ import annotations

import functools

import numpy as np

from circuitnb import data
from circuitnb.core.config import Config
from circuitnb.modeling import user_model


def heldout_images(cfg: Config, dataset: str) -> np.ndarray:
    """The first ``n_samples`` analysis images of ``dataset`` (with ``model_dir``: your model's images,
    whatever ``dataset`` says)."""
    if cfg.run.model_dir:
        return _yours(cfg)[1].copy()          # a copy, as data.images gives: callers may write into theirs
    return data.images(cfg, dataset, split="analysis")[: cfg.analysis.n_samples]


def image_note(cfg: Config) -> str:
    """With ``model_dir``: where its images come from and how they were converted."""
    return _yours(cfg)[2]


def images_name(cfg: Config) -> str:
    """The ``dataset`` name of your model's images: "yours" (``images_dir``) or "celeba" (the book's faces)."""
    return "yours" if cfg.data.images_dir else "celeba"


def train_timesteps(cfg: Config) -> int:
    """Steps of the noise schedule: the book's ``num_train_timesteps``, or your model's scheduler's."""
    if cfg.run.model_dir:
        return int(user_model.load_scheduler(cfg.run.model_dir).config.num_train_timesteps)
    return cfg.model.num_train_timesteps


@functools.lru_cache(maxsize=4)
def _yours(cfg: Config) -> tuple[str, np.ndarray, str]:
    size, channels = user_model.image_shape(cfg.run.model_dir)
    return data.model_images(cfg, size, channels)
