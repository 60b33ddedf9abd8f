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
import torch.nn.functional as F
from diffusers import DDPMScheduler, UNet2DModel
from diffusers.optimization import get_scheduler
from diffusers.training_utils import EMAModel
from tqdm.auto import tqdm

from circuitnb import data
from circuitnb.core.errors import UserError
from circuitnb.modeling.checkpoints import CacheEntry
from circuitnb.core.config import Config, check_cache_dir, config_hash
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
    """Hash of every training-relevant field, the training seed and the dataset's content fingerprint."""
    return f"{dataset}-" + config_hash(cfg.model, cfg.train, extra=dict(
        image_size=cfg.data.image_size, seed=cfg.run.seed if seed is None else seed, data=fingerprint))


def _make_trainer(cfg: Config, unet: UNet2DModel):
    t = cfg.train
    optimizer = torch.optim.AdamW(unet.parameters(), lr=t.learning_rate, weight_decay=t.weight_decay)
    lr_schedule = get_scheduler("constant_with_warmup", optimizer, num_warmup_steps=t.warmup_steps)
    ema = EMAModel(unet.parameters(), decay=t.ema_max_decay, use_ema_warmup=True, inv_gamma=1.0,
                   power=3 / 4, model_cls=UNet2DModel, model_config=unet.config)
    return optimizer, lr_schedule, ema


def train_step(unet, scheduler, optimizer, lr_schedule, ema, x0, generator, grad_clip) -> float:
    """One optimisation step of the eps-prediction objective; returns the loss."""
    eps = torch.randn(x0.shape, generator=generator).to(x0.device)
    t = torch.randint(0, scheduler.config.num_train_timesteps, (x0.shape[0],), generator=generator).to(x0.device)
    eps_hat = unet(scheduler.add_noise(x0, eps, t), t).sample
    loss = F.mse_loss(eps_hat, eps)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(unet.parameters(), grad_clip)
    optimizer.step()
    lr_schedule.step()
    ema.step(unet.parameters())
    return loss.item()


def train(cfg: Config, dataset: str, entry: CacheEntry, x0_all: np.ndarray, meta: dict,
          progress: bool = True, callback: Callable[[int, float], None] | None = None,
          seed: int | None = None) -> UNet2DModel:
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
    bar = tqdm(total=steps, initial=step, desc=f"train {dataset} (seed {seed})", disable=not progress, unit="step")
    start = time.perf_counter() - seconds
    while step < steps:
        idx = torch.randint(0, len(images), (cfg.train.batch_size,), generator=generator)
        loss = train_step(unet, scheduler, optimizer, lr_schedule, ema, images[idx].to(device),
                          generator, cfg.train.grad_clip)
        if not math.isfinite(loss):
            raise TrainingError(f"training {dataset}: loss became {loss} at step {step + 1}; "
                                f"try a lower 'learning_rate' (now {cfg.train.learning_rate})")
        step += 1
        losses.append(loss)
        bar.update(1)
        bar.set_postfix(loss=f"{loss:.4f}", refresh=False)   # the bar redraws on its own schedule
        if step % cfg.train.checkpoint_every == 0 and step < steps:
            entry.write_checkpoint(unet, ema, optimizer, lr_schedule, generator,
                                   dict(step=step, losses=losses, seconds=time.perf_counter() - start))
        if callback is not None:
            callback(step, loss)
    bar.close()
    ema.copy_to(unet.parameters())
    unet.eval()
    entry.write_final(unet, {**meta, "steps": step, "losses": losses, "n_parameters": n_parameters(unet),
                             "train_seconds": time.perf_counter() - start, "resumed": resumed is not None})
    return unet


def load_or_train(cfg: Config, dataset: str, progress: bool = True,
                  callback: Callable[[int, float], None] | None = None, replicate: int = 0) -> TrainedModel:
    """Replicate ``replicate`` of the model for ``dataset`` ('synthetic' or 'celeba'): from cache, else trained.

    Replicate r trains from seed ``data.replicate_seed(cfg, r, dataset)`` on ``data.images(cfg, dataset, "train", r)``.
    The cache folder is checked and the data read before any training. The entry's lock
    is held from the cache check to the published weights, so a second process asking
    for the same model waits and then loads the first one's weights instead of training.
    """
    data.check_dataset(dataset)
    check_cache_dir(cfg)
    seed = data.replicate_seed(cfg, replicate, dataset)
    x0 = data.images(cfg, dataset, "train", replicate)
    fp = data.fingerprint(x0)
    key = cache_key(cfg, dataset, fp, seed)
    entry = CacheEntry(cfg.cache_path, key)
    with entry.locked():
        entry.remove_leftovers()                      # a killed run's half-written folders
        unet = entry.final_unet()
        from_cache = unet is not None
        if unet is None:
            meta = dict(key=key, dataset=dataset, replicate=replicate, seed=seed, source=data.source(cfg, dataset),
                        fingerprint=fp, n_analysis=cfg.data.n_analysis, n_images=len(x0),
                        image_size=cfg.data.image_size, device=cfg.device,
                        config=dict(model=cfg.model.__dict__, train=cfg.train.__dict__))
            unet = train(cfg, dataset, entry, x0, meta, progress=progress, callback=callback, seed=seed)
        meta = entry.read_meta()
    unet = unet.to(cfg.device).eval()
    return TrainedModel(unet=unet, scheduler=build_scheduler(cfg), meta=meta, from_cache=from_cache)
