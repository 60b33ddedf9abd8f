"""What every chapter loads (the replicate models and their cached sweeps, held-out images) and scorecard rows."""
from __future__ import annotations

import functools

import numpy as np

from circuitnb import data
from circuitnb.analysis import convergence, replicates
from circuitnb.chapters.report import ChapterResult
from circuitnb.core import results
from circuitnb.core.config import Config, override_names
from circuitnb.modeling import families, train
from circuitnb.modeling.vae import cache as vae_cache

# A chapter's result may read any config field but these two: where the cache lives, and the CelebA
# folder's path (the content of its images keys the result instead).
_NOT_KEYED = ("cache_dir", "celeba_root")


def model_keys(cfg: Config, part: str) -> list[str]:
    """The cache keys of every model of one part of the book: "unet" (Part I's replicates per dataset), else
    a family of :mod:`circuitnb.modeling.families` ("vae": Part II's, per architecture and dataset)."""
    if part == "unet":
        return [train.model_key(cfg, ds, r) for ds in data.DATASETS for r in range(cfg.run.replicates)]
    return families.model_keys(cfg, part)


def cached_chapter(part: str = "unet"):
    """Decorator: a chapter function ``fn(cfg, **options)`` served from the results cache.

        @cached_chapter()
        def run(cfg: Config) -> ChapterResult: ...

    Keyed by every config field (but :data:`_NOT_KEYED`), the cache keys of the part's models, the content
    of Part I's held-out images, the package's data files (claims and margins: verdicts depend on them),
    the options, and the code of ``fn``'s module and of everything it imports. Why: each notebook reran
    its chapter's bootstraps, tests and figures' data on every build, and the scorecard (chapter 10)
    reran the eight chapters it gathers; the underlying sweeps were cached, their statistics were not.
    ``fn.__wrapped__`` is the uncached function.
    """
    def wrap(fn):
        name = f"chapter_{fn.__module__.rsplit('.', 1)[-1]}_{fn.__name__}"

        @functools.wraps(fn)
        def wrapper(cfg: Config, **options):
            fields = [f for f in override_names() if f not in _NOT_KEYED]
            images = {ds: data.images(cfg, ds, "analysis") for ds in data.DATASETS} if part == "unet" else None
            return results.cached(cfg, name, [], lambda: _stated(cfg, part, fn(cfg, **options)), reads=fields,
                                  code=[fn, _stated], data=images,
                                  trained=model_keys(cfg, part), package_data=results.package_data_fingerprint(),
                                  options=options)
        return wrapper
    return wrap


def _stated(cfg: Config, part: str, res):
    """The chapter's result with ``models_converged``: the line that says whether the models it read passed
    the convergence rule (:mod:`circuitnb.analysis.convergence`), glued on every page that judges models."""
    if isinstance(res, ChapterResult):            # not helpers such as chapter 12's sensitivity tables
        res.values["models_converged"] = (convergence.unet_convergence(cfg) if part == "unet" else
                                          convergence.vae_convergence(cfg, vae_cache.load_all(cfg)))["summary"]["line"]
    return res


@functools.lru_cache(maxsize=2)
def models_and_sweeps(cfg: Config) -> tuple[dict, dict]:
    """Every replicate model of each dataset and its recorded sweep on held-out images (see
    :mod:`circuitnb.analysis.replicates`), loaded once per process for all chapters of a config."""
    models = replicates.load_models(cfg)
    return models, replicates.load_sweeps(cfg, models)


def analysis_images(cfg: Config, dataset: str) -> np.ndarray:
    """The images every chapter analyses: the first ``n_samples`` held-out images (no model trained on them)."""
    return convergence.heldout_images(cfg, dataset)
