"""What every chapter loads (the replicate models and their cached sweeps, held-out images) and scorecard rows,
and, with ``model_dir``, what a chapter says on a model of your own (:func:`skipped`, :func:`on_your_model`)."""
from __future__ import annotations

import functools

import numpy as np

from circuitnb import data
from circuitnb.analysis import convergence, replicates, yours
from circuitnb.chapters.report import ChapterResult
from circuitnb.core import results
from circuitnb.core.config import Config, override_names
from circuitnb.modeling import families, train
from circuitnb.modeling.vae import cache as vae_cache

# A chapter's result may read any config field but these: where the cache lives, and the folders of CelebA,
# of your model and of its images (the content of the images and of the weights keys the result instead).
_NOT_KEYED = ("cache_dir", "celeba_root", "model_dir", "images_dir")


def model_keys(cfg: Config, part: str) -> list[str]:
    """The cache keys of every model of one part of the book: "unet" (Part I's replicates per dataset), else
    a family of :mod:`circuitnb.modeling.families` ("vae": Part II's, per architecture and dataset)."""
    if part == "unet" and yours.on_your_model(cfg):
        return [yours.load(cfg).meta["key"]]
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
            images = None if part != "unet" else (
                {ds: data.images(cfg, ds, "analysis") for ds in data.DATASETS} if not yours.on_your_model(cfg)
                else {yours.images_name(cfg): yours.heldout_images(cfg, yours.images_name(cfg))})
            return results.cached(cfg, name, [], lambda: _stated(cfg, part, fn(cfg, **options)), reads=fields,
                                  code=[fn, _stated], data=images,
                                  trained=model_keys(cfg, part), package_data=results.package_data_fingerprint(),
                                  options=options)
        return wrapper
    return wrap


def _stated(cfg: Config, part: str, res):
    """The chapter's result with ``models_converged``: the line that says whether the models it read passed
    the convergence rule (:mod:`circuitnb.analysis.convergence`), glued on every page that judges models."""
    if isinstance(res, ChapterResult) and part == "unet" and yours.on_your_model(cfg):
        res.values["models_converged"] = yours.LEFT_OUT["convergence"]
    elif isinstance(res, ChapterResult):          # not helpers such as chapter 12's sensitivity tables
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


def on_your_model(cfg: Config, chapter: str) -> ChapterResult | None:
    """With ``model_dir``: the start of a chapter's result on that model (its values say which model and
    images; notes say what the chapter leaves out and why), or, for a chapter that cannot run on one model,
    the finished result with its one line (:data:`circuitnb.analysis.yours.SKIPPED`). None otherwise.

        if (res := common.on_your_model(cfg, CHAPTER)) is not None:
            return res if res.skipped else _yours(cfg, res)
    """
    if not yours.on_your_model(cfg):
        return None
    if chapter in yours.SKIPPED:
        return ChapterResult(chapter, skipped=yours.SKIPPED[chapter])
    m = yours.load(cfg)
    return ChapterResult(chapter, values=dict(profile=cfg.profile, seed=cfg.run.seed, model_dir=cfg.run.model_dir,
                                              model_key=m.meta["key"], images=yours.image_note(cfg),
                                              scheduler=m.meta["scheduler"],
                                              n=len(yours.heldout_images(cfg, m.meta["dataset"]))))
