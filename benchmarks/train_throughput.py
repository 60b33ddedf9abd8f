"""Trainer throughput against a bare diffusers-example training loop, same model and batch.

    python benchmarks/train_throughput.py [--profile quick] [--steps 20] [--rounds 3]

Both loops run in one process, alternating in rounds so drift in machine load
hits both alike. The bare loop is the body of diffusers'
``examples/unconditional_image_generation/train_unconditional.py`` (noise,
timesteps, ``add_noise``, forward, MSE, backward, clip, AdamW, LR schedule,
EMA). Ours is :func:`circuitnb.modeling.train.train` (progress bar, NaN check, loss
log), timed between its per-step callbacks; the cost of its resumable
checkpoints is measured separately and amortised over ``checkpoint_every``.
Last line: ``ratio=<ours / bare throughput>`` (goal >= 0.95).
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch
import torch.nn.functional as F

import circuitnb.core.config as C
from circuitnb import data
from circuitnb.modeling import train
from circuitnb.modeling.checkpoints import CacheEntry


def bare_loop_seconds(cfg, images, steps: int) -> list[float]:
    unet = train.build_unet(cfg).train()
    scheduler = train.build_scheduler(cfg)
    optimizer, lr_schedule, ema = train._make_trainer(cfg, unet)
    g = torch.Generator().manual_seed(0)
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        clean = images[torch.randint(0, len(images), (cfg.train.batch_size,), generator=g)]
        noise = torch.randn(clean.shape, generator=g)
        timesteps = torch.randint(0, scheduler.config.num_train_timesteps, (clean.shape[0],), generator=g)
        noisy = scheduler.add_noise(clean, noise, timesteps)
        loss = F.mse_loss(unet(noisy, timesteps).sample, noise)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(unet.parameters(), cfg.train.grad_clip)
        optimizer.step()
        lr_schedule.step()
        optimizer.zero_grad(set_to_none=True)
        ema.step(unet.parameters())
        times.append(time.perf_counter() - t0)
    return times


def trainer_seconds(cfg, images_np, steps: int) -> tuple[list[float], float]:
    stamps = []
    with tempfile.TemporaryDirectory() as tmp:
        run_cfg = C.with_overrides(cfg, train_steps=steps + 1, cache_dir=tmp, checkpoint_every=10**9)
        entry = CacheEntry(run_cfg.cache_path, "bench")
        stamps.append(time.perf_counter())
        unet = train.train(run_cfg, "synthetic", entry, images_np, {}, progress=True,
                           callback=lambda step, loss: stamps.append(time.perf_counter()))
        # One resumable checkpoint, as the trainer writes every `checkpoint_every` steps.
        optimizer, lr_schedule, ema = train._make_trainer(run_cfg, unet)
        t0 = time.perf_counter()
        entry.write_checkpoint(unet, ema, optimizer, lr_schedule, torch.Generator(),
                               dict(step=0, losses=[0.0] * cfg.train.checkpoint_every, seconds=0))
        checkpoint = time.perf_counter() - t0
    steps_times = [b - a for a, b in zip(stamps[1:-1], stamps[2:])]   # drop the first (warm-up) step
    return steps_times, checkpoint


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--profile", default="quick")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    cfg = C.load(args.profile, device="cpu")
    images_np = data.images(cfg, "synthetic")
    images = torch.from_numpy(images_np)
    bare, ours, ckpt = [], [], []
    for r in range(args.rounds):
        bare += bare_loop_seconds(cfg, images, args.steps + 1)[1:]
        t, c = trainer_seconds(cfg, images_np, args.steps)
        ours += t
        ckpt.append(c)
        print(f"round {r + 1}: bare {statistics.median(bare):.4f} s/step, ours {statistics.median(ours):.4f} s/step")
    b, o = statistics.median(bare), statistics.median(ours)
    amortised = statistics.median(ckpt) / cfg.train.checkpoint_every
    print(f"profile={args.profile} batch={cfg.train.batch_size} image_size={cfg.data.image_size} "
          f"threads={torch.get_num_threads()} steps_per_loop={len(bare)}")
    print(f"bare loop: {b:.4f} s/step; trainer loop: {o:.4f} s/step; loop-only ratio {b / o:.3f}")
    print(f"checkpoint write: {statistics.median(ckpt):.3f} s every {cfg.train.checkpoint_every} steps "
          f"= {amortised * 1000:.2f} ms/step amortised")
    print(f"ratio={b / (o + amortised):.3f}")


if __name__ == "__main__":
    main()
