"""What converges fastest per wall-second: training options on the same seed and data, held-out loss
against wall-clock.

    python benchmarks/convergence_speed.py --profile quick --steps 480 --out benchmarks/results/convergence-speed

Every option trains the same replicate model (seed, training images) through the book's own
``load_or_train`` in a throw-away cache, keeping EMA snapshots at ``--snapshots`` evenly spaced steps,
one thread per worker, two workers at a time. Each snapshot is then scored on the same held-out images
with the same t and noise draws (:func:`circuitnb.measures.convergence.heldout_loss_per_image`: the
unweighted L_simple, whatever loss weighting the option trained with). Wall-clock is the training time
the trainer records, excluding the scoring. Writes ``curves.csv`` and ``curves.png``; prints, last, the
held-out loss each option reaches within the wall time of the slowest option's run, and
``ratio=`` the baseline's wall time to reach the best option's final loss over the best option's.
"""
from __future__ import annotations

import argparse
import multiprocessing
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

# label -> overrides; the first is the baseline (the quick profile before the convergence work).
OPTIONS = {
    "fp32 lr5e-4 mse": dict(precision="fp32"),
    "bf16 lr5e-4 mse": dict(precision="bf16"),
    "bf16 lr1e-3 mse": dict(precision="bf16", learning_rate=1e-3),
    "bf16 lr5e-4 min-snr": dict(precision="bf16", loss_weighting="min_snr"),
    "bf16 lr1e-3 min-snr": dict(precision="bf16", learning_rate=1e-3, loss_weighting="min_snr"),
    "bf16 lr2e-3 min-snr": dict(precision="bf16", learning_rate=2e-3, loss_weighting="min_snr"),
    "bf16 lr1e-3 min-snr cosine": dict(precision="bf16", learning_rate=1e-3, loss_weighting="min_snr",
                                       lr_schedule="cosine"),
    "bf16 lr1e-3 min-snr batch16": dict(precision="bf16", learning_rate=1e-3, loss_weighting="min_snr",
                                        batch_size=16, steps_factor=2),
    "bf16 lr2e-3 mse": dict(precision="bf16", learning_rate=2e-3),
    "bf16 lr1e-3 mse batch16": dict(precision="bf16", learning_rate=1e-3, batch_size=16, steps_factor=2),
    "bf16 lr2e-3 mse batch16": dict(precision="bf16", learning_rate=2e-3, batch_size=16, steps_factor=2),
    "bf16 lr1e-3 mse batch16 cosine": dict(precision="bf16", learning_rate=1e-3, batch_size=16, steps_factor=2,
                                           lr_schedule="cosine"),
    # narrower UNets (does a smaller quick model saturate within a 2-core build?)
    "bf16 lr1e-3 mse batch16 ch16-32-64": dict(precision="bf16", learning_rate=1e-3, batch_size=16, steps_factor=2,
                                               block_out_channels=(16, 32, 64)),
    "bf16 lr1e-3 mse batch16 ch24-48-96": dict(precision="bf16", learning_rate=1e-3, batch_size=16, steps_factor=2,
                                               block_out_channels=(24, 48, 96)),
    "bf16 lr2e-3 mse batch16 ch16-32-64": dict(precision="bf16", learning_rate=2e-3, batch_size=16, steps_factor=2,
                                               block_out_channels=(16, 32, 64)),
}


def run_option(label: str, profile: str, steps: int, snapshots: int, dataset: str, cache: str) -> pd.DataFrame:
    """Worker: train one option (one thread) and score each of its snapshots on the held-out images."""
    import torch
    torch.set_num_threads(1)
    from circuitnb import data
    from circuitnb.core import config
    from circuitnb.measures.convergence import heldout_loss_per_image
    from circuitnb.modeling import train
    over = dict(OPTIONS[label])
    n_steps = steps * over.pop("steps_factor", 1)
    cfg = config.load(profile, train_steps=n_steps, n_snapshots=snapshots, checkpoint_every=n_steps,
                      cache_dir=cache, **over)
    x0 = data.images(cfg, dataset, "analysis")[: cfg.analysis.n_samples]
    rows = []
    final = train.load_or_train(cfg, dataset, progress=False)
    seconds = final.meta["train_seconds"]
    for step in train.snapshot_steps(cfg):
        m = train.load_or_train(cfg, dataset, progress=False, at_step=step)
        loss = heldout_loss_per_image(m.unet, m.scheduler, x0, n_t=cfg.analysis.n_heldout_t, seed=cfg.run.seed)
        rows.append(dict(option=label, step=step, wall_s=seconds * step / n_steps,
                         images_seen=step * cfg.train.batch_size,
                         heldout_loss=loss.mean(), sem=loss.std(ddof=1) / np.sqrt(len(loss)),
                         precision=final.meta["precision"], s_per_step=seconds / n_steps))
    return pd.DataFrame(rows)


def plot(curves: pd.DataFrame, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for label, g in curves.groupby("option", sort=False):
        ax.errorbar(g.wall_s / 60, g.heldout_loss, yerr=g["sem"], marker="o", ms=3, capsize=2, label=label)
    ax.set_xlabel("training wall-clock (min, one CPU thread)")
    ax.set_ylabel("held-out L_simple (eps-MSE per pixel)")
    ax.set_yscale("log")
    ax.set_title("Held-out loss against wall-clock, same seed and data (mean ± SEM over images)", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=130)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--profile", default="quick")
    p.add_argument("--dataset", default="synthetic")
    p.add_argument("--steps", type=int, default=480)
    p.add_argument("--snapshots", type=int, default=6)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--options", nargs="*", default=list(OPTIONS), help="labels of OPTIONS to run")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as cache, ProcessPoolExecutor(
            args.workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [pool.submit(run_option, label, args.profile, args.steps, args.snapshots, args.dataset, cache)
                   for label in args.options]
        curves = pd.concat([f.result() for f in futures], ignore_index=True)
    curves.to_csv(args.out / "curves.csv", index=False)
    plot(curves, args.out / "curves.png")
    budget = curves.groupby("option").wall_s.max().min()
    print(f"held-out L_simple on {args.dataset}, {args.profile} profile; within {budget:.0f} s of training:")
    at_budget = {}
    for label, g in curves.groupby("option", sort=False):
        within = g[g.wall_s <= budget + 1e-9]
        at_budget[label] = within.heldout_loss.iloc[-1]
        print(f"  {label:30s} {g.s_per_step.iloc[0]:.3f} s/step ({g.precision.iloc[0]})  "
              f"loss {within.heldout_loss.iloc[-1]:.5f} ± {within['sem'].iloc[-1]:.5f} "
              f"at {within.wall_s.iloc[-1]:.0f} s")
    base, best = args.options[0], min(at_budget, key=at_budget.get)
    target = curves[curves.option == best].heldout_loss.iloc[-1]
    reach = lambda g: np.interp(-target, -g.heldout_loss.to_numpy(), g.wall_s.to_numpy(), right=np.inf)  # noqa: E731
    t_base, t_best = (reach(curves[curves.option == o]) for o in (base, best))
    print(f"best within the budget: {best}; baseline {base} reaches its final loss in "
          f"{'more than its whole run' if np.isinf(t_base) else f'{t_base:.0f} s'}")
    base_wall = curves[curves.option == base].wall_s.max()
    print(f"ratio={t_base / t_best:.2f}" if np.isfinite(t_base) else f"ratio>{base_wall / t_best:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
