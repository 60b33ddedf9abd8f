"""Training the DDPM on one dataset, with a cache keyed by config and data (§3.1).

    model = load_or_train(cfg, "synthetic")     # cache hit: loads; else trains, resumable
    model.unet, model.scheduler, model.meta["losses"]

The loop is the diffusers unconditional example's: sample x0 and eps, pick
t ~ U{0..T-1}, regress eps from ``scheduler.add_noise(x0, eps, t)``, AdamW with
warm-up, EMA of the weights (diffusers' ``EMAModel`` with its warm-up). Batches
are drawn with replacement from a seeded ``torch.Generator`` whose state is
checkpointed, so an interrupted and resumed run gives the same weights as an
uninterrupted one.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from diffusers import DDPMScheduler, UNet2DModel
from diffusers.optimization import get_scheduler
from diffusers.training_utils import EMAModel
from tqdm.auto import tqdm

from circuitnb import data
from circuitnb.core import cache
from circuitnb.core.config import Config, check_cache_dir, config_hash
from circuitnb.core.errors import UserError
from circuitnb.modeling import precision as precision_mod
from circuitnb.modeling.checkpoints import CacheEntry
from circuitnb.modeling.unet import build_scheduler, build_unet, n_parameters


class TrainingError(UserError, RuntimeError):
    """Training cannot go on (e.g. the loss became NaN or infinite)."""


@dataclass
class TrainedModel:
    unet: UNet2DModel           # EMA weights, eval mode, on cfg.device
    scheduler: DDPMScheduler
    meta: dict                  # key, dataset source and fingerprint, losses, seconds, ...
    from_cache: bool


def cache_key(cfg: Config, dataset: str, fingerprint: str, seed: int | None = None) -> str:
    """Hash of every training-relevant field, the training seed, the dataset's content fingerprint and the
    precision training runs in here ('auto' resolves per machine, and bf16 and fp32 give other weights)."""
    return f"{dataset}-" + config_hash(cfg.model, cfg.train, extra=dict(
        image_size=cfg.data.image_size, seed=cfg.run.seed if seed is None else seed, data=fingerprint,
        precision=precision_mod.cache_tag(cfg.train.precision, cfg.device)))


def evenly_spaced_steps(steps: int, n: int) -> list[int]:
    """``n`` steps evenly spaced over ``1..steps``, the last = ``steps`` (fewer where they would coincide)."""
    return sorted({max(1, round(k * steps / n)) for k in range(1, n + 1)})


def snapshot_steps(cfg: Config) -> list[int]:
    """Training steps whose EMA weights are kept: ``n_snapshots`` evenly spaced, the last = ``train_steps``."""
    return evenly_spaced_steps(cfg.train.train_steps, cfg.train.n_snapshots)


def _make_trainer(cfg: Config, unet: UNet2DModel):
    t = cfg.train
    optimizer = torch.optim.AdamW(unet.parameters(), lr=t.learning_rate, weight_decay=t.weight_decay)
    lr_schedule = get_scheduler(f"{t.lr_schedule}_with_warmup" if t.lr_schedule == "constant" else t.lr_schedule,
                                optimizer, num_warmup_steps=t.warmup_steps, num_training_steps=t.train_steps)
    ema = EMAModel(unet.parameters(), decay=t.ema_max_decay, use_ema_warmup=True, inv_gamma=1.0,
                   power=3 / 4, model_cls=UNet2DModel, model_config=unet.config)
    return optimizer, lr_schedule, ema


def loss_weights(scheduler, t: torch.Tensor, weighting: str, gamma: float) -> torch.Tensor:
    """Per-sample weight of the eps-MSE: 1 for 'mse' (L_simple); Min-SNR-gamma's min(SNR_t, gamma) / SNR_t
    for eps-prediction (Hang et al. 2023, Eq. 9; as diffusers' training examples compute it)."""
    if weighting == "mse":
        return torch.ones(len(t), device=t.device)
    abar = scheduler.alphas_cumprod.to(t.device)[t]
    snr = abar / (1 - abar)
    return snr.clamp(max=gamma) / snr


def train_step(unet, scheduler, optimizer, lr_schedule, ema, x0, generator, grad_clip,
               precision: str = "fp32", weighting: str = "mse", gamma: float = 5.0) -> float:
    """One optimisation step of the eps-prediction objective; returns the (weighted) loss.

    ``precision`` 'bf16' runs the UNet's forward (and so its backward) under autocast; the loss, the
    weights and the optimizer stay fp32.
    """
    eps = torch.randn(x0.shape, generator=generator).to(x0.device)
    t = torch.randint(0, scheduler.config.num_train_timesteps, (x0.shape[0],), generator=generator).to(x0.device)
    with precision_mod.autocast(str(x0.device), precision):
        eps_hat = unet(scheduler.add_noise(x0, eps, t), t).sample
    per_sample = (eps_hat.float() - eps).pow(2).mean(dim=(1, 2, 3))
    loss = (loss_weights(scheduler, t, weighting, gamma) * per_sample).mean()
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(unet.parameters(), grad_clip)
    optimizer.step()
    lr_schedule.step()
    ema.step(unet.parameters())
    return loss.item()


def _write_ema_snapshot(entry: CacheEntry, unet: UNet2DModel, ema: EMAModel, step: int) -> None:
    """Save the EMA weights of ``step`` without disturbing the training weights."""
    ema.store(unet.parameters())
    ema.copy_to(unet.parameters())
    try:
        entry.write_snapshot(unet, step)
    finally:
        ema.restore(unet.parameters())


def train(cfg: Config, dataset: str, entry: CacheEntry, x0_all: np.ndarray, meta: dict,
          progress: bool = True, callback: Callable[[int, float], None] | None = None,
          seed: int | None = None, position: int | None = None) -> UNet2DModel:
    """Train (or resume) one model into ``entry`` from ``seed`` (default ``cfg.run.seed``); returns the EMA UNet."""
    seed = cfg.run.seed if seed is None else seed
    device = cfg.device
    scheduler = build_scheduler(cfg)
    resumed = entry.read_checkpoint()
    generator = torch.Generator().manual_seed(seed)
    if resumed is None:
        unet, step, losses, seconds = build_unet(cfg, seed), 0, [], 0.0
    else:
        unet, tensors, state = resumed
        step, losses, seconds = state["step"], state["losses"], state["seconds"]
    unet.to(device).train()
    optimizer, lr_schedule, ema = _make_trainer(cfg, unet)
    if resumed is not None:
        optimizer.load_state_dict(tensors["optimizer"])
        lr_schedule.load_state_dict(tensors["lr_schedule"])
        ema.load_state_dict(tensors["ema"])
        generator.set_state(tensors["generator"])
    ema.to(device)
    images = torch.from_numpy(x0_all)
    steps = cfg.train.train_steps
    prec = precision_mod.resolve(cfg.train.precision, device)
    bar = tqdm(total=steps, initial=step, desc=f"train {dataset} (seed {seed})", disable=not progress, unit="step",
               position=position)
    keep = set(snapshot_steps(cfg)[:-1])                 # the last one is the final entry
    start = time.perf_counter() - seconds
    while step < steps:
        idx = torch.randint(0, len(images), (cfg.train.batch_size,), generator=generator)
        loss = train_step(unet, scheduler, optimizer, lr_schedule, ema, images[idx].to(device),
                          generator, cfg.train.grad_clip, prec, cfg.train.loss_weighting, cfg.train.snr_gamma)
        if not math.isfinite(loss):
            raise TrainingError(f"training {dataset}: loss became {loss} at step {step + 1}; "
                                f"try a lower 'learning_rate' (now {cfg.train.learning_rate})")
        step += 1
        losses.append(loss)
        bar.update(1)
        bar.set_postfix(loss=f"{loss:.4f}", refresh=False)   # the bar redraws on its own schedule
        if step in keep:                                  # before the checkpoint: a resume rewrites it
            _write_ema_snapshot(entry, unet, ema, step)
        if step % cfg.train.checkpoint_every == 0 and step < steps:
            entry.write_checkpoint(unet, ema, optimizer, lr_schedule, generator,
                                   dict(step=step, losses=losses, seconds=time.perf_counter() - start))
        if callback is not None:
            callback(step, loss)
    bar.close()
    ema.copy_to(unet.parameters())
    unet.eval()
    entry.write_final(unet, {**meta, "steps": step, "losses": losses, "n_parameters": n_parameters(unet),
                             "train_seconds": time.perf_counter() - start, "resumed": resumed is not None,
                             "precision": prec, "threads": torch.get_num_threads()})
    return unet


def _entry(cfg: Config, dataset: str, replicate: int) -> tuple[CacheEntry, np.ndarray, str, int]:
    """The cache entry of a replicate model, with its training images, their fingerprint and its seed."""
    seed = data.replicate_seed(cfg, replicate, dataset)
    x0 = data.images(cfg, dataset, "train", replicate)
    fp = data.fingerprint(x0)
    return CacheEntry(cfg.cache_path, cache_key(cfg, dataset, fp, seed)), x0, fp, seed


def model_key(cfg: Config, dataset: str, replicate: int = 0) -> str:
    """The cache key of one replicate model (its settings, seed and training images), without loading it."""
    return _entry(cfg, dataset, replicate)[0].key


def snapshot_meta(meta: dict, step: int) -> dict:
    """The final model's meta as of training step ``step``: its own ``key`` (so results cached per model,
    e.g. sweeps, never mix a snapshot with the final weights), ``at_step``, and the losses up to ``step``."""
    return {**meta, "key": f"{meta['key']}-step{step}", "at_step": step, "steps": step,
            "losses": list(meta.get("losses", []))[:step]}


def is_cached(cfg: Config, dataset: str, replicate: int = 0) -> bool:
    """Whether the model and its snapshots are in the cache and intact (no lock, nothing loaded or removed)."""
    entry = _entry(cfg, dataset, replicate)[0]
    folders = [entry.final_dir] + [entry.snapshot_dir(s) for s in snapshot_steps(cfg)[:-1]]
    return all(cache.verify(f) is None for f in folders)          # a missing folder is a problem too


def load_or_train(cfg: Config, dataset: str, progress: bool = True,
                  callback: Callable[[int, float], None] | None = None, replicate: int = 0,
                  at_step: int | None = None, position: int | None = None) -> TrainedModel:
    """Replicate ``replicate`` of the model for ``dataset`` ('synthetic' or 'celeba'): from cache, else trained.

    ``at_step`` (one of :func:`snapshot_steps`) gives the EMA weights saved at that training
    step instead of the final ones, with a meta of its own (:func:`snapshot_meta`); the last
    step is the final model itself, key and all. A final entry whose snapshots are missing or damaged is
    retrained (deterministic per seed, so the final weights come back the same).

    Replicate r trains from seed ``data.replicate_seed(cfg, r, dataset)`` on ``data.images(cfg, dataset, "train", r)``.
    The cache folder is checked and the data read before any training. The entry's lock
    is held from the cache check to the published weights, so a second process asking
    for the same model waits and then loads the first one's weights instead of training.
    """
    data.check_dataset(dataset)
    check_cache_dir(cfg)
    entry, x0, fp, seed = _entry(cfg, dataset, replicate)
    kept = snapshot_steps(cfg)
    if at_step is not None and at_step not in kept:
        raise UserError(f"parameter 'at_step' = {at_step} is not a saved training step; saved: {kept} "
                        "(set by 'train_steps' and 'n_snapshots')")
    with entry.locked():
        entry.remove_leftovers()                      # a killed run's half-written folders
        unet, snap = entry.final_unet(), None
        if unet is not None:                          # the requested snapshot is loaded, the others hashed
            snap = entry.snapshot_unet(at_step) if at_step in kept[:-1] else None
            if (at_step in kept[:-1] and snap is None) or not all(
                    entry.snapshot_intact(s) for s in kept[:-1] if s != at_step):
                unet, snap = None, None                   # snapshots lost: retrain them with the final weights
        from_cache = unet is not None
        if unet is None:
            meta = dict(key=entry.key, dataset=dataset, replicate=replicate, seed=seed,
                        source=data.source(cfg, dataset),
                        fingerprint=fp, n_analysis=cfg.data.n_analysis, n_images=len(x0),
                        image_size=cfg.data.image_size, device=cfg.device,
                        config=dict(model=cfg.model.__dict__, train=cfg.train.__dict__))
            unet = train(cfg, dataset, entry, x0, meta, progress=progress, callback=callback, seed=seed,
                         position=position)
        meta = entry.read_meta()
        if at_step is not None and at_step != kept[-1]:
            unet = snap if snap is not None else entry.snapshot_unet(at_step)
            meta = snapshot_meta(meta, at_step)
    unet = unet.to(cfg.device).eval()
    return TrainedModel(unet=unet, scheduler=build_scheduler(cfg), meta=meta, from_cache=from_cache)
