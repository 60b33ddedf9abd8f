"""Part IV's models from the cache: ``sae.replicates`` seeds of each sparsifier on each data set, trained once.

    m = load_or_train_sae(cfg, "topk_auxk", "shapes3d", replicate=0)        # TrainedSAE
    m.model, m.meta["convergence"]["status"], m.snapshots[step]["codes"], m.from_cache
    held = sae_data(cfg, "shapes3d", "analysis")                             # FactorImages no model trained on

Each replicate is a :class:`~circuitnb.modeling.store.ModelSpec` given to the one
:func:`~circuitnb.modeling.store.load_or_train` every part uses: the cache folder checked and the data drawn before
any training; ``models/<key>/final`` (its lock beside it, sha256 manifest, atomic publish; ``circuitnb cache
ls|verify`` list and check it) holding safetensors weights, the held-out activations at every snapshot and
``meta.json``; the key hashes the training fields the method reads (:func:`train_fields`), the method, the seed, the
training images' fingerprint and the held-out measurement. A NaN loss is a
:class:`~circuitnb.modeling.train.TrainingError` naming ``sae.lr``.

Split: :func:`~circuitnb.data.sae.datasets.sae_data` (Part II's rule): replicate r trains on its own draw less its
last ``sae.n_analysis`` images; the held-out images are the same for every replicate and method.

Snapshots: at ``sae.n_snapshots`` evenly spaced steps the plain negative ELBO of every held-out image (paired:
one seeded draw per image, the same at every snapshot), the codes [N, H] and the posterior means [N, latent] of
the held-out images are kept, with the schedule's k and the L1 coefficient then in force, so the schedule's
effect on every Part IV measure can be computed later (:func:`over_schedule`).
Convergence is the book's rule on the held-out negative ELBO (:func:`circuitnb.measures.convergence.convergence`,
``converged_tol``); ``sae.decay_fraction`` <= 0.75 keeps the schedule out of the last quarter it judges.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from circuitnb import data
from circuitnb.core.config import Config, check_cache_dir
from circuitnb.data.sae.datasets import check_sae_dataset, sae_data, sae_seed
from circuitnb.measures.convergence import convergence
from circuitnb.measures.sae import schedule_measures
from circuitnb.modeling import store
from circuitnb.modeling.sae.model import METHODS, HybridVAE
from circuitnb.modeling.sae.training import encode, final_k, negative_elbo_per_image, train_hybrid
from circuitnb.modeling.store import ModelSpec, load_or_train, load_weights, read_meta, save_weights, write_meta
from circuitnb.modeling.train import evenly_spaced_steps

# The SaeConfig fields that change every trained model, and those only one method reads.
TRAIN_FIELDS = ("sae.image_size", "sae.n_images", "sae.n_analysis", "sae.widths", "sae.latent_dim", "sae.hidden",
                "sae.active_fraction", "sae.decay_fraction", "sae.schedule", "sae.steps", "sae.batch_size", "sae.lr",
                "sae.beta", "sae.recon_weight", "sae.dead_window")
METHOD_FIELDS = {"topk": (), "topk_auxk": ("sae.auxk_alpha", "sae.auxk_k"), "l1": ("sae.l1_init", "sae.l1_gain")}


@dataclass
class TrainedSAE:
    model: HybridVAE            # eval mode at the final k, on cfg.device
    meta: dict                  # key, method, dataset, replicate, seed, fingerprint, history, heldout, convergence
    snapshots: dict             # step -> {"codes": float32 [N, H], "mu": float32 [N, latent]} on the held-out images
    from_cache: bool


def snapshot_steps(cfg: Config) -> list[int]:
    """Steps at which held-out scores and activations are kept: ``sae.n_snapshots`` evenly spaced, the last final."""
    return evenly_spaced_steps(cfg.sae.steps, cfg.sae.n_snapshots)


def train_fields(method: str) -> tuple[str, ...]:
    """The fields that key (and change) a model of ``method``."""
    return TRAIN_FIELDS + METHOD_FIELDS[method]


def _entry(cfg: Config, method: str, dataset: str, replicate: int) -> tuple:
    """(cache entry, training images, their fingerprint, seed, keyed settings) of one replicate."""
    seed = sae_seed(cfg, replicate, dataset)
    x = sae_data(cfg, dataset, "train", replicate).images
    fp = data.fingerprint(x)
    settings = store.replicate_settings(cfg, train_fields(method), method=method)
    held = data.fingerprint(sae_data(cfg, dataset, "analysis").images)
    entry = store.replicate_entry(cfg, f"sae-{method}-{dataset}", settings, seed=seed, data=fp,
                                  heldout=[snapshot_steps(cfg), held, cfg.run.seed])
    return entry, x, fp, seed, settings


def model_key(cfg: Config, method: str, dataset: str, replicate: int = 0) -> str:
    """The cache key of one replicate model, without loading it."""
    return _entry(cfg, method, dataset, replicate)[0].key


def is_cached(cfg: Config, method: str, dataset: str, replicate: int = 0) -> bool:
    """Whether the model is in the cache and intact (no lock, nothing loaded or removed)."""
    return store.is_cached(_entry(cfg, method, dataset, replicate)[0])


def _build(cfg: Config, method: str, channels: int) -> HybridVAE:
    s = cfg.sae
    model = HybridVAE(channels, s.image_size, tuple(s.widths), s.latent_dim, s.hidden, method)
    model.k = final_k(s.hidden, s.active_fraction) if method != "l1" else s.hidden
    return model


def load_or_train_sae(cfg: Config, method: str, dataset: str, replicate: int = 0,
                      progress: bool = True) -> TrainedSAE:
    """Replicate ``replicate`` of sparsifier ``method`` on ``dataset``: from the cache, else trained now."""
    store.check_kind(method, METHODS, "sae.methods")
    check_sae_dataset(dataset)
    check_cache_dir(cfg)
    entry, x, fp, seed, settings = _entry(cfg, method, dataset, replicate)
    key, s = entry.key, cfg.sae
    x_held = sae_data(cfg, dataset, "analysis").images
    curve: dict[int, list[float]] = {}
    acts: dict[int, dict[str, np.ndarray]] = {}
    state: dict[int, dict] = {}

    def score(step: int, model: HybridVAE, hist: dict) -> None:     # paired draws: the same seed at every snapshot
        curve[step] = negative_elbo_per_image(model, x_held, seed=cfg.run.seed).tolist()
        acts[step] = encode(model, x_held)
        state[step] = dict(k=hist["k"][-1], lam=hist["lam"][-1], train_l0=hist["l0"][-1])

    def make(tmp: Path) -> tuple:
        start = time.perf_counter()
        with store.nan_stops("sae.lr", s.lr):
            model, hist = train_hybrid(
                method, x, widths=tuple(s.widths), latent_dim=s.latent_dim, hidden=s.hidden,
                active_fraction=s.active_fraction, decay_fraction=s.decay_fraction, shape=s.schedule,
                steps=s.steps, batch_size=s.batch_size, lr=s.lr, beta=s.beta,
                recon_weight=s.recon_weight, l1_init=s.l1_init, l1_gain=s.l1_gain,
                auxk_alpha=s.auxk_alpha, auxk_k=s.auxk_k, dead_window=s.dead_window, seed=seed,
                progress=progress, device=cfg.device, callback=score, callback_steps=snapshot_steps(cfg))
        save_weights(model, tmp / "model.safetensors")
        steps = sorted(curve)
        save_file({f"{name}_{st}": torch.from_numpy(np.ascontiguousarray(acts[st][name]))
                   for st in steps for name in ("codes", "mu")}, tmp / "snapshots.safetensors")
        meta = dict(key=key, method=method, dataset=dataset, replicate=replicate, seed=seed, fingerprint=fp,
                    n_images=len(x), n_heldout=len(x_held), channels=int(x.shape[1]), settings=settings,
                    history=hist, train_seconds=time.perf_counter() - start, heldout_steps=steps,
                    heldout_nelbo=[curve[st] for st in steps], snapshot_state=[state[st] for st in steps],
                    convergence=convergence(steps, [curve[st] for st in steps], cfg.analysis.converged_tol))
        return model, write_meta(tmp, meta), {st: acts[st] for st in steps}, False   # what a cache hit reads back

    def load(folder: Path) -> tuple:
        meta = read_meta(folder)
        model = _build(cfg, method, meta["channels"])
        load_weights(model, folder / "model.safetensors")
        arrays = load_file(folder / "snapshots.safetensors")
        snaps = {st: {name: arrays[f"{name}_{st}"].numpy() for name in ("codes", "mu")} for st in meta["heldout_steps"]}
        return model.eval(), meta, snaps, True

    model, meta, snaps, hit = load_or_train(ModelSpec(
        entry, dict(settings, key=key, dataset=dataset, seed=seed, fingerprint=fp), make=make, load=load))
    return TrainedSAE(model.to(cfg.device).eval(), meta, snaps, hit)


def load_all(cfg: Config, progress: bool = False) -> dict[tuple[str, str], list[TrainedSAE]]:
    """Every (method, set) of the config with its ``sae.replicates`` models."""
    s = cfg.sae
    return {(m, d): [load_or_train_sae(cfg, m, d, r, progress) for r in range(s.replicates)]
            for d in s.datasets for m in s.methods}


def over_schedule(cfg: Config, trained: TrainedSAE):
    """``over_schedule(cfg, m)`` -> DataFrame, one row per snapshot: the schedule's k and L1 coefficient, dead rates
    at every ``sae.dead_fractions`` threshold, MIG, DCI and monosemanticity on the held-out images
    (:func:`circuitnb.measures.sae.schedule_measures`; not cached here: DCI fits trees, cache it where it is used)."""
    held = sae_data(cfg, trained.meta["dataset"], "analysis")
    return schedule_measures(trained.snapshots, held.factors.to_numpy(), cfg.sae.dead_fractions,
                             cfg.sae.dci_trees, cfg.run.seed, trained.meta["snapshot_state"])
