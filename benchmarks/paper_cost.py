"""What the paper profile's training costs on this machine's accelerator, option by option, side by side.

    python benchmarks/paper_cost.py [--device cuda] [--steps 60] [--options fp32 bf16 bf16+cl bf16+cl+compile]
    python benchmarks/paper_cost.py --concurrent 3 --options bf16     # 3 replicate models at once on one device

Times ``--steps`` optimisation steps of the paper-profile UNet (after ``--warmup`` untimed ones) on one fixed batch
kept on the device, for each option: ``fp32``; ``bf16`` (autocast, :mod:`circuitnb.modeling.precision`);
``+cl`` channels_last memory format; ``+compile`` ``torch.compile`` of the UNet. ``--concurrent N`` runs N
processes at once on the device (the replicate models of one dataset trained side by side) and reports the
wall time per step of all N together. Projects ``train_steps`` x (2 datasets x ``replicates``) models; prints,
last, ``ratio=`` the first option's time for all models over the fastest's. Recorded results:
benchmarks/results/paper-cost.md.
"""
from __future__ import annotations

import argparse
import multiprocessing
import time

import torch

from circuitnb.core import config
from circuitnb.modeling import train
from circuitnb.modeling.unet import build_scheduler, build_unet, n_parameters


def time_option(option: str, device: str, steps: int, warmup: int) -> float:
    """Seconds per training step of the paper-profile UNet under ``option`` (e.g. 'bf16+cl+compile')."""
    parts = option.split("+")
    cfg = config.load("paper", device=device)
    unet, scheduler = build_unet(cfg, seed=0).to(device), build_scheduler(cfg)
    if "cl" in parts:
        unet = unet.to(memory_format=torch.channels_last)
    optimizer, lr_schedule, ema = train._make_trainer(cfg, unet)
    model = torch.compile(unet) if "compile" in parts else unet
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(cfg.train.batch_size, 3, cfg.data.image_size, cfg.data.image_size, device=device)
    if "cl" in parts:
        x0 = x0.contiguous(memory_format=torch.channels_last)
    precision = "bf16" if "bf16" in parts else "fp32"
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    for n in (warmup, steps):                         # warm-up (and compilation), then the timed steps
        sync()
        start = time.perf_counter()
        for _ in range(n):
            train.train_step(model, scheduler, optimizer, lr_schedule, ema, x0, g, cfg.train.grad_clip, precision)
        sync()
    return (time.perf_counter() - start) / steps


def _worker(args: tuple) -> float:
    return time_option(*args)


def concurrent(option: str, device: str, steps: int, warmup: int, n: int) -> float:
    """Wall seconds per step of ``n`` models trained at once in ``n`` processes on one device."""
    with multiprocessing.get_context("spawn").Pool(n) as pool:
        per = pool.map(_worker, [(option, device, steps, warmup)] * n)
    return max(per)           # each process times its own steps after the same warm-up: they overlap in time


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--warmup", type=int, default=10, help="untimed steps first (on a CPU one step takes minutes)")
    p.add_argument("--options", nargs="+", default=["fp32", "bf16", "bf16+cl", "bf16+cl+compile"])
    p.add_argument("--concurrent", type=int, default=1, help="models trained at once on the device")
    args = p.parse_args(argv)
    cfg = config.load("paper", device=args.device)
    models = 2 * cfg.run.replicates
    print(f"paper profile on {args.device}: {n_parameters(build_unet(cfg, 0)):,} parameters, batch "
          f"{cfg.train.batch_size} at {cfg.data.image_size} px, {cfg.train.train_steps:,} steps x {models} models")
    hours = {}
    for option in args.options:
        if args.concurrent > 1:
            per_step = concurrent(option, args.device, args.steps, args.warmup, args.concurrent)
            total = per_step * cfg.train.train_steps * models / args.concurrent
        else:
            per_step = time_option(option, args.device, args.steps, args.warmup)
            total = per_step * cfg.train.train_steps * models
        hours[option] = total / 3600
        print(f"  {option:18s} {1000 * per_step:7.1f} ms/step ({args.concurrent} at a time) -> "
              f"{hours[option]:.2f} hours for all {models} models")
    best = min(hours, key=hours.get)
    print(f"fastest: {best}")
    print(f"ratio={hours[args.options[0]] / hours[best]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
