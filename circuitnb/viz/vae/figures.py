"""Part II's figure types: effect matrices side by side, a latent traversal grid, measures per architecture;
and the wide form of its summary tables (architectures as rows, measures as columns).

    fig = effect_matrices(res.data["effects"])            # {title: (matrix [factors, latents], factor names)}
    fig = traversal_grid(res.data["traversal"]["vae (shapes)"], image=0)
    fig = measure_bars(res.tables["architectures"], ["ces", "specificity", "modularity"])
    wide = wide_table(res.tables["architectures"], ["dataset", "kind"])   # cells "mean [ci_low, ci_high]"
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd


def effect_matrices(effects: dict, ncols: int = 4, label: str = "effect (latent sd)"):
    """One heatmap per model: rows factors, columns latents; one colour scale for all panels."""
    n = len(effects)
    nrows = int(np.ceil(n / ncols))
    vmax = max(float(np.max(m)) for m, _ in effects.values()) or 1.0
    fig, axes = plt.subplots(nrows, min(n, ncols), figsize=(3.2 * min(n, ncols), 2.4 * nrows + 0.4), squeeze=False)
    im = None
    for ax, (title, (m, factors)) in zip(axes.flat, effects.items()):
        im = ax.imshow(m, aspect="auto", cmap="viridis", vmin=0, vmax=vmax)
        ax.set_yticks(range(len(factors)), factors, fontsize=7)
        ax.set_xticks(range(m.shape[1]), [f"z{k}" for k in range(m.shape[1])], fontsize=6)
        ax.set_xlabel("latent", fontsize=8)
        ax.set_title(title, fontsize=9)
        ax.grid(False)
    for ax in list(axes.flat)[n:]:
        ax.set_axis_off()
    fig.colorbar(im, ax=axes.ravel().tolist(), label=label, shrink=0.8)
    return fig


def traversal_grid(traversal: dict, image: int = 0, title: str = ""):
    """Rows latents, columns traversal values: the decoded image (in [0, 1]) of one held-out image."""
    imgs, grid = traversal["images"], traversal["grid"]
    d, steps = imgs.shape[:2]
    fig, axes = plt.subplots(d, steps, figsize=(0.75 * steps + 0.6, 0.75 * d + 0.5), squeeze=False)
    for k in range(d):
        for s in range(steps):
            ax = axes[k, s]
            ax.imshow(imgs[k, s, image], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if s == 0:
                ax.set_ylabel(f"z{k}", fontsize=8, rotation=0, labelpad=12)
            if k == d - 1:
                ax.set_xlabel(f"{grid[s]:.2g}", fontsize=7)
    fig.supxlabel("latent value (prior sd)", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


# What each measure of chapter 22 is, with its unit (the y axis of Figure 22.1). The scores without a
# physical unit say their range and what its ends mean (circuitnb.measures.causal_effects, .disentanglement).
MEASURE_LABELS = {
    "ces": "CES (latent sd)",
    "specificity": "specificity\n(0 chance, 1 one latent)",
    "modularity": "modularity, encoder units\n(0 to 1, unitless)",
    "modularity_latent": "modularity, latents\n(0 to 1, unitless)",
    "mig": "MIG (share of the\nfactor's entropy, 0 to 1)",
    "factor_vae_score": "FactorVAE score\n(vote accuracy, 0 to 1)",
    "dci_d": "DCI disentanglement\n(0 to 1, unitless)",
}
KIND_LABELS = {"vae": "VAE", "beta_vae": "β-VAE", "beta_tc_vae": "β-TC-VAE", "factor_vae": "FactorVAE"}


def measure_bars(arch: pd.DataFrame, measures: list[str], dataset: str = "shapes", ncols: int = 3,
                 panel: tuple[float, float] = (3.6, 3.3)):
    """Mean and 95% CI over replicates of each measure (one panel each) per architecture, one dataset.

    ``arch``: long table with columns kind, dataset, measure, mean, ci_low, ci_high. Panels are laid out
    ``ncols`` to a row (five measures: 3 + 2, the short row centred), each ``panel`` inches (width,
    height), so that the figure scaled to the page width keeps its labels readable.
    """
    n = len(measures)
    ncols = max(1, min(ncols, n))
    nrows = int(np.ceil(n / ncols))
    fig = plt.figure(figsize=(panel[0] * ncols, panel[1] * nrows))
    grid = fig.add_gridspec(nrows, 2 * ncols)              # half-panel columns: a short last row is centred
    for i, name in enumerate(measures):
        row, col = divmod(i, ncols)
        shift = (ncols - (n - row * ncols)) if row == nrows - 1 else 0
        ax = fig.add_subplot(grid[row, 2 * col + shift: 2 * col + shift + 2])
        g = arch[(arch.measure == name) & (arch.dataset == dataset)]
        x = np.arange(len(g))
        err = np.vstack([g["mean"] - g.ci_low, g.ci_high - g["mean"]])
        ax.bar(x, g["mean"], yerr=np.where(np.isfinite(err), np.clip(err, 0, None), 0), capsize=4, alpha=0.8)
        ax.set_xticks(x, [KIND_LABELS.get(k, k) for k in g.kind], rotation=30, ha="right", fontsize=11)
        ax.tick_params(axis="y", labelsize=11)
        ax.set_xlabel("architecture", fontsize=12)
        ax.set_ylabel(MEASURE_LABELS.get(name, name.replace("_", " ")), fontsize=12)
    fig.tight_layout(h_pad=1.5, w_pad=1.5)
    return fig


def _interval(mean: float, low: float, high: float, digits: int) -> str:
    """One cell of a wide table: "mean [low, high]", "mean" without an interval, "–" without a mean."""
    if not np.isfinite(mean):
        return "–"
    text = f"{mean:.{digits}g}"
    return f"{text} [{low:.{digits}g}, {high:.{digits}g}]" if np.isfinite(low) and np.isfinite(high) else text


def _ranks(values):
    """A ``sort_values`` key: each value's place in ``values``; values not listed go last."""
    rank = {v: i for i, v in enumerate(values)}
    return lambda col: col.map(lambda v: rank.get(v, len(rank)))


def wide_table(long: pd.DataFrame, index: list[str], columns: str = "measure", digits: int = 3,
               order: dict | None = None) -> pd.DataFrame:
    """``wide_table(arch, ["dataset", "kind"])``: one row per ``index`` value, one column per ``columns`` value.

    ``long``: a summary over replicates (:func:`circuitnb.analysis.replicates.across_replicates`): the
    ``index`` and ``columns`` keys, ``mean`` and, if present, ``ci_low``/``ci_high`` and ``n_models``. Each
    cell reads "mean [ci_low, ci_high]" (``digits`` significant digits; the mean alone where there is no
    interval, "–" where there is no mean). Rows and columns come in the order of ``order`` (``{key: values}``,
    e.g. ``{"kind": cfg.vae.kinds}``; values not listed go last), else of first appearance in ``long``.
    A last column ``n_models`` gives the models behind a row's means (one number, or "lo–hi" when its
    measures rest on different numbers). A key that occurs twice is an error.
    """
    keys = [*index, columns]
    if long.duplicated(keys).any():
        raise ValueError(f"wide_table: more than one row per {keys}; add the missing key to 'index'")
    for name, values in reversed(list((order or {}).items())):       # stable sorts: the first key leads
        long = long.sort_values(name, key=_ranks(values), kind="stable")
    has_ci = {"ci_low", "ci_high"} <= set(long.columns)
    nan = np.full(len(long), np.nan)
    cells = long.assign(cell=[_interval(float(m), float(lo), float(hi), digits) for m, lo, hi in zip(
        long["mean"], long.ci_low if has_ci else nan, long.ci_high if has_ci else nan)])
    rows = pd.MultiIndex.from_frame(long[index].drop_duplicates()) if len(index) > 1 else \
        pd.Index(long[index[0]].drop_duplicates(), name=index[0])
    wide = (cells.pivot(index=index, columns=columns, values="cell")
            .reindex(index=rows, columns=list(dict.fromkeys(long[columns]))).fillna("–"))
    wide.columns.name = None
    if "n_models" in long.columns:
        measured = long[np.isfinite(long["mean"].astype(float))]       # a "–" cell rests on no model
        n = measured.groupby(index, sort=False).n_models.agg(["min", "max"]).reindex(rows).fillna(0)
        wide["n_models"] = [int(lo) if lo == hi else f"{int(lo)}–{int(hi)}" for lo, hi in zip(n["min"], n["max"])]
    return wide.reset_index()
