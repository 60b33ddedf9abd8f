"""Figures: one style, labelled axes with units, captions carry n and seed (STYLE §7).

    setup_style()
    fig = image_grid(x, title="synthetic")      # x: [N, 3, H, W] in [-1, 1]
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

DATASET_COLOURS = {"synthetic": "#1f77b4", "celeba": "#d62728"}


def setup_style() -> None:
    plt.rcParams.update({"figure.dpi": 100, "savefig.dpi": 120, "axes.spines.top": False,
                         "axes.spines.right": False, "axes.grid": True, "grid.alpha": 0.3,
                         "font.size": 10, "axes.titlesize": 11})


def to_rgb(x: np.ndarray) -> np.ndarray:
    """[3, H, W] or [N, 3, H, W] in [-1, 1] -> channels-last in [0, 1] (what ``imshow`` takes)."""
    x = np.clip((np.asarray(x) + 1) / 2, 0, 1)
    return np.moveaxis(x, -3, -1)


def to_uint8(x) -> np.ndarray:
    """[3, H, W] or [N, 3, H, W] in [-1, 1] -> channels-last uint8 in [0, 255], rounded.

        to_uint8(np.zeros((3, 2, 2)))[0, 0]      # array([128, 128, 128], dtype=uint8)

    The one conversion behind PNGs (playground) and the explorers' byte arrays;
    float64 so that float32 inputs round the same way everywhere.
    """
    return np.round(to_rgb(np.asarray(x, float)) * 255).astype(np.uint8)


def image_grid(x: np.ndarray, ncols: int = 8, title: str = "", scale: float = 1.1):
    """A grid of images [N, 3, H, W] in [-1, 1]."""
    n = len(x)
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(ncols * scale, nrows * scale + (0.4 if title else 0)),
                             squeeze=False)
    for ax, img in zip(axes.flat, to_rgb(x)):
        ax.imshow(img, interpolation="nearest")
    for ax in axes.flat:
        ax.set_axis_off()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def label_grid(labels: np.ndarray, parts, ncols: int = 8, title: str = ""):
    """Part-label maps [N, H, W] with a legend naming each part."""
    cmap = plt.get_cmap("tab10", len(parts))
    n = len(labels)
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(ncols * 1.1, nrows * 1.1 + 0.8), squeeze=False)
    for ax, lab in zip(axes.flat, labels):
        ax.imshow(lab, cmap=cmap, vmin=-0.5, vmax=len(parts) - 0.5, interpolation="nearest")
    for ax in axes.flat:
        ax.set_axis_off()
    handles = [plt.Rectangle((0, 0), 1, 1, color=cmap(i)) for i in range(len(parts))]
    fig.legend(handles, parts, loc="lower center", ncol=min(len(parts), 5), fontsize=8, frameon=False)
    if title:
        fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.12, 1, 1))
    return fig


def loss_curves(losses: dict[str, list[float]], window: int = 50):
    """Training loss per step (running mean over ``window`` steps) for each dataset."""
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for name, curve in losses.items():
        s = pd.Series(curve)
        ax.plot(s.index + 1, s, alpha=0.25, color=DATASET_COLOURS.get(name))
        ax.plot(s.index + 1, s.rolling(window, min_periods=1).mean(), label=f"{name} (running mean, {window} steps)",
                color=DATASET_COLOURS.get(name))
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("noise-prediction MSE (per pixel)")
    ax.set_yscale("log")
    ax.legend()
    fig.tight_layout()
    return fig
