"""Part II's models from the cache: ``replicates`` seeds of each VAE architecture, trained once.

    m = load_or_train_vae(cfg, "factor_vae", "shapes", replicate=0)
    m.model, m.disc, m.meta["losses"], m.from_cache

Each replicate is a :class:`~circuitnb.modeling.store.ModelSpec` given to the one
:func:`~circuitnb.modeling.store.load_or_train` every part uses (lock from the check to the publish, sha256
manifest, atomic rename, ``models/<key>/final`` so ``circuitnb cache ls|verify`` list and check it). The cache
folder is checked (:func:`~circuitnb.core.config.check_cache_dir`) and the data read before any training; the
key hashes every training-relevant field, the seed and the data's fingerprint (:func:`circuitnb.data.fingerprint`);
:func:`~circuitnb.modeling.vae.model.train_vae` shows a tqdm bar. A NaN loss is a
:class:`~circuitnb.modeling.train.TrainingError` (one line, exit 2). Unlike the UNet, a VAE is not
checkpointed mid-run: at every profile's size it trains in seconds (smoke) to minutes (paper, GPU).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from torch import nn

from circuitnb import data
from circuitnb.core.config import Config, check_cache_dir
from circuitnb.data.vae.datasets import check_vae_dataset, vae_data, vae_seed
from circuitnb.modeling import store
from circuitnb.modeling.store import ModelSpec, load_or_train, load_weights, read_meta, save_weights, write_meta
from circuitnb.modeling.train import evenly_spaced_steps
from circuitnb.modeling.vae.model import KINDS, VAE, discriminator, encode_mean, negative_elbo_per_image, train_vae

# The VaeConfig fields that change a trained model (analysis fields do not retrain).
TRAIN_FIELDS = ("vae.image_size", "vae.n_images", "vae.n_analysis", "vae.widths", "vae.latent_dim", "vae.hidden",
                "vae.steps", "vae.batch_size", "vae.lr", "vae.beta", "vae.gamma", "vae.disc_hidden",
                "vae.disc_layers")


@dataclass
class TrainedVAE:
    model: VAE                  # eval mode (z = mu), on cfg.device
    disc: nn.Module | None      # FactorVAE's TC discriminator, else None
    meta: dict                  # key, kind, dataset, replicate, seed, fingerprint, losses, seconds
    from_cache: bool


def _hyper(cfg: Config) -> dict:
    v = cfg.vae
    return dict(widths=tuple(v.widths), latent_dim=v.latent_dim, hidden=v.hidden)


def _entry(cfg: Config, kind: str, dataset: str, replicate: int) -> tuple:
    """(cache entry, training images, their fingerprint, seed, keyed settings) of one replicate VAE; the
    entry has the UNet's layout: models/<key>/final, its lock beside <key>."""
    seed = vae_seed(cfg, replicate, dataset)
    x = vae_data(cfg, dataset, "train", replicate).images
    fp = data.fingerprint(x)
    settings = store.replicate_settings(cfg, TRAIN_FIELDS, kind=kind)
    entry = store.replicate_entry(cfg, f"vae-{kind}-{dataset}", settings, seed=seed, data=fp,
                                  heldout=[snapshot_steps(cfg), cfg.vae.n_samples])
    return entry, x, fp, seed, settings


def snapshot_steps(cfg: Config) -> list[int]:
    """Steps at which a VAE's held-out negative ELBO is measured: ``n_snapshots`` evenly spaced (as the UNet's)."""
    return evenly_spaced_steps(cfg.vae.steps, cfg.train.n_snapshots)


def heldout_images(cfg: Config, dataset: str) -> np.ndarray:
    """The held-out images of a Part II dataset that convergence is measured on (the first ``vae.n_samples``)."""
    return vae_data(cfg, dataset, "analysis").images[: cfg.vae.n_samples]


def active_latents(model: VAE, images) -> int:
    """Latent dimensions in use: SD over images of the posterior mean > 0.1, i.e. Var > 0.01 (Burda et al.
    2016, §5.2's activity threshold)."""
    return int((encode_mean(model, images).std(0, ddof=1) > 0.1).sum())


def model_key(cfg: Config, kind: str, dataset: str, replicate: int = 0) -> str:
    """The cache key of one replicate VAE, without loading it."""
    return _entry(cfg, kind, dataset, replicate)[0].key


def is_cached(cfg: Config, kind: str, dataset: str, replicate: int = 0) -> bool:
    """Whether the VAE is in the cache and intact (no lock, nothing loaded or removed)."""
    return store.is_cached(_entry(cfg, kind, dataset, replicate)[0])


def load_or_train_vae(cfg: Config, kind: str, dataset: str, replicate: int = 0,
                      progress: bool = True) -> TrainedVAE:
    """Replicate ``replicate`` of architecture ``kind`` on ``dataset``: from the cache, else trained now."""
    store.check_kind(kind, KINDS, "vae.kinds")
    check_vae_dataset(dataset)
    check_cache_dir(cfg)
    entry, x, fp, seed, settings = _entry(cfg, kind, dataset, replicate)
    key = entry.key
    v = cfg.vae

    x_heldout = heldout_images(cfg, dataset)
    heldout: dict[int, list[float]] = {}

    def score(step: int, model: VAE) -> None:          # paired draws: the same seed at every snapshot
        heldout[step] = negative_elbo_per_image(model, x_heldout, seed=cfg.run.seed).tolist()

    def make(tmp: Path) -> tuple:
        start = time.perf_counter()
        with store.nan_stops("vae.lr", v.lr):
            model, disc, losses = train_vae(kind, x, **_hyper(cfg), steps=v.steps, batch_size=v.batch_size,
                                            lr=v.lr, beta=v.beta, gamma=v.gamma, seed=seed,
                                            disc_hidden=v.disc_hidden, disc_layers=v.disc_layers, progress=progress,
                                            device=cfg.device, callback=score, callback_steps=snapshot_steps(cfg))
        save_weights(model, tmp / "vae.safetensors")
        if disc is not None:
            save_weights(disc, tmp / "disc.safetensors")
        meta = dict(key=key, kind=kind, dataset=dataset, replicate=replicate, seed=seed, fingerprint=fp,
                    n_images=len(x), settings=settings, losses=losses, train_seconds=time.perf_counter() - start,
                    heldout_steps=sorted(heldout), heldout_nelbo=[heldout[s] for s in sorted(heldout)],
                    active_latents=active_latents(model, x_heldout))
        return model, disc, write_meta(tmp, meta), False        # the meta a cache hit reads back

    def load(folder: Path) -> tuple:
        model = load_weights(VAE(v.image_size, **_hyper(cfg), kind=kind), folder / "vae.safetensors")
        disc = None
        if (folder / "disc.safetensors").exists():
            disc = load_weights(discriminator(v.latent_dim, v.disc_hidden, v.disc_layers), folder / "disc.safetensors")
            disc.eval()
        return model.eval(), disc, read_meta(folder), True

    model, disc, meta, hit = load_or_train(ModelSpec(
        entry, dict(settings, key=key, dataset=dataset, seed=seed, fingerprint=fp), make=make, load=load))
    return TrainedVAE(model.to(cfg.device).eval(), disc, meta, hit)


def load_all(cfg: Config, progress: bool = False) -> dict[tuple[str, str], list[TrainedVAE]]:
    """Every (kind, dataset) of the config with its ``cfg.run.replicates`` models."""
    return {(k, d): [load_or_train_vae(cfg, k, d, r, progress) for r in range(cfg.run.replicates)]
            for d in cfg.vae.datasets for k in cfg.vae.kinds}
