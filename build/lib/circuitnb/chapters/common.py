"""What every chapter loads (the replicate models and their cached sweeps), scorecard rows, CI helpers."""
from __future__ import annotations

import functools

import numpy as np
from scipy import stats as sps

from circuitnb import data
from circuitnb.chapters import replicates, sweep
from circuitnb.core.config import Config
from circuitnb.measures import claims, verdicts
from circuitnb.measures.verdicts import Estimate
from circuitnb.modeling import train


@functools.lru_cache(maxsize=2)
def models_and_sweeps(cfg: Config) -> tuple[dict, dict]:
    """Every replicate model of each dataset and its recorded sweep on held-out images (see
    :mod:`circuitnb.chapters.replicates`), loaded once per process for all chapters of a config."""
    models = replicates.load_models(cfg)
    return models, replicates.load_sweeps(cfg, models)


def claim_row(claim_id: str, est: Estimate, per_model: list[Estimate] = (), unit: str = "",
              reason: str = "", alpha: float = 0.05) -> dict:
    """A scorecard row (:func:`circuitnb.measures.verdicts.measured_row`) with each replicate's own verdict.

    ``est`` is the estimate over models; ``per_model`` each model's (or replicate pair's) own estimate,
    judged alone against the paper's value and the claim's margin.
    """
    paper = claims.load().set_index("id").paper_value.astype(float)
    margin = verdicts.load_margins().set_index("id")
    reps = ()
    if len(per_model) and claim_id in paper.index:
        reps = verdicts.per_replicate_verdicts(paper[claim_id], list(per_model), margin.margin[claim_id],
                                               margin.margin_kind[claim_id], alpha=alpha, claim_id=claim_id).labels
    return verdicts.measured_row(claim_id, est, alpha=alpha, unit=unit, reason=reason, replicates=reps)


def labelled_row(claim_id: str, ours: float, label: str, reason: str, unit: str = "") -> dict:
    """A scorecard row whose verdict is a label ("by design", "not comparable") with its reason."""
    verdicts.labelled(label, reason, claim_id)                      # fails now, not in the scorecard
    return verdicts.measured_row(claim_id, Estimate(float(ours), np.nan, np.nan, 1), unit=unit, label=label,
                                 reason=reason)


# --- transitional: single-model API of the notebooks not yet converted to run(cfg) -----------------
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
