"""Chapter 0: what this build is (profile, data, models, design), for the book's first page.

    res = overview.run(cfg)     # res.values: profile, image_size, n_train, n_analysis, replicates, ...
"""
from __future__ import annotations

from circuitnb import data
from circuitnb.chapters.report import ChapterResult
from circuitnb.core.config import Config

CHAPTER = "00_overview"


def run(cfg: Config) -> ChapterResult:
    """The build's parameters as glue values (nothing is trained or measured here)."""
    res = ChapterResult(CHAPTER)
    res.values = dict(profile=cfg.profile, image_size=cfg.data.image_size, n_images=cfg.data.n_images,
                      n_train=cfg.data.n_images - cfg.data.n_analysis, n_analysis=cfg.data.n_analysis,
                      natural=data.source(cfg, "celeba"), n=cfg.analysis.n_samples,
                      timesteps=", ".join(map(str, cfg.analysis.timesteps)), seed=cfg.run.seed,
                      replicates=cfg.run.replicates, steps=cfg.train.train_steps,
                      channels=str(cfg.model.block_out_channels))
    return res
