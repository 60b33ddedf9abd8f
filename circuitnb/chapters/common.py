"""What every chapter loads: the two trained models, their cached sweeps, and CI helpers."""
from __future__ import annotations

import numpy as np
from scipy import stats as sps

from circuitnb import data
from circuitnb.chapters import sweep
from circuitnb.modeling import train
from circuitnb.core.config import Config


def setup(profile: str, progress: bool = False, **params) -> tuple:
    """A chapter's first call: validated config, both trained models, their sweeps, figure style.

        cfg, models, sweeps = setup(profile, seed=seed, timesteps=timesteps, n_samples=n_samples,
                                    celeba_root=celeba_root, device=device)
    """
    from circuitnb.core import config
    from circuitnb.viz import plotting
    cfg = config.load(profile, **params)
    plotting.setup_style()
    models = load_models(cfg, progress=progress)
    return cfg, models, load_sweeps(cfg, models)


def load_models(cfg: Config, progress: bool = False) -> dict:
    """The trained model of each dataset (from the cache, else trained now)."""
    return {name: train.load_or_train(cfg, name, progress=progress) for name in data.DATASETS}


def load_sweeps(cfg: Config, models: dict, timesteps=None) -> dict:
    """The cached recorded sweep of each model on its own data (see :mod:`circuitnb.sweep`)."""
    return {name: sweep.sweep(cfg, name, m, timesteps) for name, m in models.items()}


def analysis_images(cfg: Config, dataset: str) -> np.ndarray:
    """The images every chapter analyses: the first ``n_samples`` held-out images (no model trained on them)."""
    return data.images(cfg, dataset, split="analysis")[: cfg.analysis.n_samples]


def mean_ci(values, n_bootstrap: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """Mean and its percentile-bootstrap 95% CI (scipy); the CI is (nan, nan) for < 2 values."""
    v = np.asarray(values, float)
    if len(v) < 2 or np.ptp(v) == 0:
        return float(v.mean()), (float(v.mean()) if len(v) else np.nan), (float(v.mean()) if len(v) else np.nan)
    res = sps.bootstrap((v,), np.mean, n_resamples=n_bootstrap, confidence_level=0.95, method="percentile",
                        rng=np.random.default_rng(seed), vectorized=True)
    return float(v.mean()), float(res.confidence_interval.low), float(res.confidence_interval.high)


def ratio_ci(a, b, n_bootstrap: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """mean(b) / mean(a) with a percentile-bootstrap 95% CI (independent resampling of a and b)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    res = sps.bootstrap((a, b), lambda x, y, axis=-1: np.mean(y, axis=axis) / np.mean(x, axis=axis),
                        n_resamples=n_bootstrap, confidence_level=0.95, method="percentile",
                        rng=np.random.default_rng(seed), vectorized=True)
    return float(b.mean() / a.mean()), float(res.confidence_interval.low), float(res.confidence_interval.high)


def glue_values(values: dict, digits: int = 3) -> None:
    """Glue numbers for a chapter's prose (``{glue:text}`name```), rounded to ``digits`` significant digits."""
    from myst_nb import glue
    for key, v in values.items():
        if isinstance(v, (float, np.floating)):
            v = f"{v:.{digits}g}" if abs(v) < 10 ** digits else f"{v:,.0f}"   # never 1.63e+03
        glue(key, v, display=False)
