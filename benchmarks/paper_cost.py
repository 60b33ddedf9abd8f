"""What the paper profile's training costs on this machine's accelerator: seconds per step, projected hours.

    python benchmarks/paper_cost.py [--device cuda] [--steps 60]

Times ``--steps`` optimisation steps of the paper-profile UNet (after ``--warmup`` untimed ones) on one fixed batch
and projects ``train_steps`` x (2 datasets x ``replicates``) models trained one at a time. Recorded result:
benchmarks/results/paper-cost.md.
"""
from __future__ import annotations

import argparse
import time

import torch

from circuitnb.core import config
from circuitnb.modeling import train
from circuitnb.modeling.unet import build_scheduler, build_unet, n_parameters


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--warmup", type=int, default=10, help="untimed steps first (on a CPU one step takes minutes)")
    args = p.parse_args(argv)
    cfg = config.load("paper", device=args.device)
    unet, scheduler = build_unet(cfg, seed=0).to(args.device), build_scheduler(cfg)
    optimizer, lr_schedule, ema = train._make_trainer(cfg, unet)
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(cfg.train.batch_size, 3, cfg.data.image_size, cfg.data.image_size, device=args.device)
    sync = torch.cuda.synchronize if args.device.startswith("cuda") else (lambda: None)
    for n in (args.warmup, args.steps):             # warm-up, then the timed steps
        sync()
        start = time.perf_counter()
        for _ in range(n):
            train.train_step(unet, scheduler, optimizer, lr_schedule, ema, x0, g, cfg.train.grad_clip)
        sync()
    per_step = (time.perf_counter() - start) / args.steps
    models = 2 * cfg.run.replicates
    print(f"paper profile on {args.device}: {n_parameters(unet):,} parameters, batch {cfg.train.batch_size} at "
          f"{cfg.data.image_size} px: {1000 * per_step:.1f} ms/step -> {cfg.train.train_steps:,} steps x {models} "
          f"models = {per_step * cfg.train.train_steps * models / 3600:.2f} hours one at a time")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
