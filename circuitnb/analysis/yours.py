"""A model of your own (``model_dir``) as the one model every Part I analysis reads, and its images.

    cfg = circuitnb.load("smoke", model_dir="~/models/ddpm-cifar10-32")
    m = load(cfg)                 # TrainedModel: unet, scheduler, meta (its content key, images name)
    x0 = heldout_images(cfg, images_name(cfg))   # [n_samples, C, S, S] at the model's size and channels
    table = over_images(per, ["t"])   # mean over images with a t-interval: the image is the unit

:func:`circuitnb.analysis.replicates.load_models` returns ``{images_name(cfg): [load(cfg)]}`` when
``model_dir`` is set, so the chapters' library calls run on it as on one replicate. What needs more than
one model (a dataset contrast, a same-data null, training snapshots) has no meaning for it: those chapters
say why in one line (:data:`SKIPPED`), and the chapters that run leave those tables out (:data:`LEFT_OUT`).
Its results are keyed by the content of its files (:func:`circuitnb.modeling.user_model.model_key`), so
new weights in the same folder are never confused with the old.
"""
from __future__ import annotations

import functools

import numpy as np
import pandas as pd

from circuitnb.analysis.images import heldout_images, image_note, images_name
from circuitnb.core.config import Config, ConfigError
from circuitnb.measures.verdicts import replicate_ci
from circuitnb.modeling import user_model
from circuitnb.modeling.train import TrainedModel

__all__ = ["SKIPPED", "LEFT_OUT", "on_your_model", "load", "over_images", "heldout_images", "image_note",
           "images_name"]

# Chapters that cannot run on one model of your own, and why (one line each, shown on their page).
SKIPPED = {
    "07_cross_dataset": "skipped on your model: Table 4 compares models trained on two datasets, beside the "
                        "spread between replicate models of one dataset; a single model has neither",
    "09_robustness": "skipped on your model: cross-dataset accuracy, feature transfer and circuit robustness "
                     "compare models trained on the two datasets with each other",
    "10_scorecard": "skipped on your model: the scorecard judges the paper's claims, which are about models "
                    "trained on its two datasets and compared over replicates",
    "13_over_training": "skipped on your model: the quantities over training need the model's training "
                        "snapshots, which only the book's own training keeps",
}
# Tables of the chapters that run, left out on a model of your own, and why (one line each).
LEFT_OUT = {
    "dataset contrasts": "CelebA-vs-synthetic ratios and the same-data null need models of two datasets and "
                         "replicates; left out",
    "claims": "the paper's claims are about models trained on its two datasets; their scorecard rows are left out",
    "patching": "activation patching needs a second model as the source; left out",
    "divergence": "the divergence of the heads between datasets needs models of two datasets; left out",
    "sensitivity": "the sensitivity table re-judges the paper's claims, which need the book's own models; "
                   "left out",
    "convergence": "convergence is judged on the training snapshots the book keeps; your model was trained "
                   "elsewhere, so it is not judged",
}


def on_your_model(cfg: Config) -> bool:
    return bool(cfg.run.model_dir)


@functools.lru_cache(maxsize=2)
def load(cfg: Config) -> TrainedModel:
    """Your model on ``cfg.device`` as a :class:`TrainedModel` (read once per process), checked against the
    analysed timesteps: each must be one of its scheduler's training steps."""
    unet, scheduler = user_model.load_user_model(cfg.run.model_dir, cfg.device)
    steps = scheduler.config.num_train_timesteps
    late = [t for t in (*cfg.analysis.timesteps, cfg.analysis.head_t) if t >= steps]
    if late:
        raise ConfigError(f"parameters 'timesteps' / 'head_t': {late} not below your model's "
                          f"num_train_timesteps = {steps} ({user_model.scheduler_source(cfg.run.model_dir)})")
    size, channels = user_model.image_shape(cfg.run.model_dir)
    meta = dict(key=user_model.model_key(cfg.run.model_dir), dataset=images_name(cfg), replicate=0,
                model_dir=str(cfg.run.model_dir), scheduler=user_model.scheduler_source(cfg.run.model_dir),
                image_size=size, channels=channels, num_train_timesteps=steps, losses=[])
    return TrainedModel(unet=unet, scheduler=scheduler, meta=meta, from_cache=True)


def over_images(per: pd.DataFrame, by: list[str], value: str = "value", level: float = 0.95) -> pd.DataFrame:
    """One model: per group, the mean over images of ``value`` with a t-interval over images.

    Columns: ``*by, mean, ci_low, ci_high, sd, n_images`` (the image is the unit within one model).
    """
    rows = []
    for key, g in per.groupby(by, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        est = replicate_ci(g[value].to_numpy(), level)
        rows.append({**dict(zip(by, key)), "mean": est.mean, "ci_low": est.low, "ci_high": est.high,
                     "sd": float(np.std(g[value], ddof=1)) if len(g) > 1 else np.nan, "n_images": est.n})
    return pd.DataFrame(rows)
