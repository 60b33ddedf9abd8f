"""What a shorter training costs: noise R² by timestep and samples of saved models, side by side.

    python benchmarks/training_length.py --profile quick --dataset synthetic --out grid.png \
        400=$CACHE/models/<key400>/final/unet 1200=$CACHE/models/<key1200>/final/unet

Each LABEL=FOLDER is a saved UNet (``save_pretrained`` layout, e.g. a cache entry's ``final/unet``).
All models are scored on the same held-out images of the profile's dataset with the same noise draw
(noise R² in %, the book's prediction accuracy, mean ± SEM over images), and sample the same DDIM noise,
so the grid's rows differ only by the model. Prints one table; writes the grid.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from circuitnb import data  # noqa: E402
from circuitnb.core import config  # noqa: E402
from circuitnb.measures.quantities import prediction_accuracy  # noqa: E402
from circuitnb.modeling.checkpoints import load_unet  # noqa: E402
from circuitnb.modeling.sampling import noise_mse_by_timestep, sample_images  # noqa: E402
from circuitnb.modeling.unet import build_scheduler  # noqa: E402
from circuitnb.viz.plotting import to_uint8  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--profile", default="quick")
    p.add_argument("--dataset", default="synthetic")
    p.add_argument("--n-samples", type=int, default=8)
    p.add_argument("--out", type=Path, required=True, help="PNG of the samples, one row per model")
    p.add_argument("models", nargs="+", metavar="LABEL=FOLDER")
    args = p.parse_args(argv)
    cfg = config.load(args.profile)
    x0 = data.images(cfg, args.dataset, split="analysis")[: cfg.analysis.n_samples]
    scheduler = build_scheduler(cfg)
    rows = []
    fig, axes = plt.subplots(len(args.models), 1, figsize=(1.1 * args.n_samples, 1.25 * len(args.models)),
                             squeeze=False)
    for ax, spec in zip(axes[:, 0], args.models):
        label, folder = spec.split("=", 1)
        unet = load_unet(Path(folder)).eval()
        with torch.no_grad():
            mse = noise_mse_by_timestep(unet, scheduler, x0, cfg.analysis.timesteps, seed=cfg.run.seed)
            samples = sample_images(unet, scheduler, args.n_samples, seed=cfg.run.seed)
        for t, g in mse.groupby("t"):
            acc = prediction_accuracy(g.mse.to_numpy())
            rows.append((label, int(t), acc.mean(), acc.std(ddof=1) / np.sqrt(len(acc))))
        ax.imshow(np.concatenate(list(to_uint8(samples)), axis=1))
        ax.set_axis_off()
        ax.set_title(f"{label}: DDIM samples (same noise)", fontsize=8, loc="left")
    fig.tight_layout()
    fig.savefig(args.out, dpi=120)
    print(f"noise R² (%) on {len(x0)} held-out {args.dataset} images, mean ± SEM over images")
    print("model      " + "  ".join(f"t={t:<13d}" for t in cfg.analysis.timesteps))
    for label in dict.fromkeys(r[0] for r in rows):
        cells = [f"{m:6.2f} ± {s:4.2f}  " for lab, _, m, s in rows if lab == label]
        print(f"{label:10s} " + " ".join(cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())
