"""Part II's figure 22.1 and wide tables on small synthetic long tables (no model is trained)."""
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from circuitnb.viz.vae import figures as vae_figures

KINDS = ["vae", "beta_vae", "factor_vae", "beta_tc_vae"]
DATASETS = ["shapes", "causal"]
FIGURE_22_1 = ["ces", "specificity", "modularity", "mig", "dci_d"]       # what book/22_vae_measures.md draws


def long_table(measures=FIGURE_22_1, n_models=3) -> pd.DataFrame:
    """The shape of chapter 22's ``architectures`` table: one row per kind, dataset and measure."""
    rng = np.random.default_rng(0)
    rows = []
    for ds in DATASETS:
        for kind in KINDS:
            for m in measures:
                mean = float(rng.uniform(0.1, 0.9))
                rows.append(dict(kind=kind, dataset=ds, measure=m, mean=mean, ci_low=mean - 0.05,
                                 ci_high=mean + 0.05, sd_models=0.04, n_models=n_models))
    return pd.DataFrame(rows)


def test_figure_22_1_panels_are_labelled_and_large_enough():
    arch = long_table()
    fig = vae_figures.measure_bars(arch, FIGURE_22_1)
    try:
        axes = fig.axes
        assert len(axes) == len(FIGURE_22_1)                             # one panel per measure, none spare
        for ax, name in zip(axes, FIGURE_22_1):
            assert ax.get_xlabel().strip() and ax.get_ylabel().strip(), name
            assert "(" in ax.get_ylabel(), f"{name}: y label without its unit or range"
            w, h = ax.bbox.width / fig.dpi, ax.bbox.height / fig.dpi
            assert w >= 2.2 and h >= 1.8, (name, w, h)                   # inches, after tight_layout
            assert min(t.get_fontsize() for t in ax.get_xticklabels()) >= 10
            assert ax.yaxis.label.get_fontsize() >= 11
            # What is plotted is unchanged: one bar per architecture at the benchmark's mean.
            heights = [p.get_height() for p in ax.patches]
            want = arch[(arch.measure == name) & (arch.dataset == "shapes")]["mean"]
            assert np.allclose(heights, want)
        # A grid, not one row: five panels in two rows, so each is readable at page width.
        rows = {round(ax.get_position().y0, 3) for ax in axes}
        assert len(rows) == 2
        assert fig.get_figwidth() <= 12
    finally:
        plt.close(fig)


def test_wide_table_shape_columns_and_cells():
    arch = long_table()
    wide = vae_figures.wide_table(arch, ["dataset", "kind"])
    assert list(wide.columns) == ["dataset", "kind", *FIGURE_22_1, "n_models"]
    assert len(wide) == len(DATASETS) * len(KINDS)
    assert list(zip(wide.dataset, wide.kind)) == [(d, k) for d in DATASETS for k in KINDS]   # long's order
    row = arch[(arch.dataset == "causal") & (arch.kind == "factor_vae") & (arch.measure == "mig")].iloc[0]
    cell = wide[(wide.dataset == "causal") & (wide.kind == "factor_vae")].mig.iloc[0]
    assert cell == f"{row['mean']:.3g} [{row.ci_low:.3g}, {row.ci_high:.3g}]"
    assert (wide.n_models == 3).all()


def test_wide_table_missing_values_and_intervals():
    arch = long_table(["mig", "factor_vae_score"])
    causal_fvs = (arch.dataset == "causal") & (arch.measure == "factor_vae_score")
    arch.loc[causal_fvs, ["mean", "ci_low", "ci_high"]] = np.nan      # not measured on the causal world
    one = (arch.kind == "vae") & (arch.measure == "mig")
    arch.loc[one, ["ci_low", "ci_high"]] = np.nan                     # one model: a mean, no interval
    arch.loc[(arch.kind == "beta_vae") & (arch.measure == "mig"), "n_models"] = 2
    wide = vae_figures.wide_table(arch, ["dataset", "kind"])
    assert (wide[wide.dataset == "causal"].factor_vae_score == "–").all()
    assert (wide[(wide.dataset == "causal") & (wide.kind != "beta_vae")].n_models == 3).all()  # "–" needs none
    assert "[" not in wide[wide.kind == "vae"].mig.iloc[0]
    beta = wide[wide.kind == "beta_vae"].set_index("dataset").n_models
    assert beta["shapes"] == "2–3" and beta["causal"] == 2           # MIG on 2 models; the FactorVAE score on 3
    # Without interval columns the cells are the means alone.
    plain = vae_figures.wide_table(arch.drop(columns=["ci_low", "ci_high", "n_models"]), ["dataset", "kind"])
    assert list(plain.columns) == ["dataset", "kind", "mig", "factor_vae_score"]
    assert not plain.mig.str.contains(r"\[").any()


def test_wide_table_follows_a_given_order():
    # across_replicates returns its groups sorted by name; the page lists them as the config does.
    arch = long_table().sort_values(["dataset", "kind", "measure"])
    wide = vae_figures.wide_table(arch, ["dataset", "kind"],
                                  order=dict(dataset=DATASETS, kind=KINDS, measure=FIGURE_22_1[::-1]))
    assert list(zip(wide.dataset, wide.kind)) == [(d, k) for d in DATASETS for k in KINDS]
    assert list(wide.columns) == ["dataset", "kind", *FIGURE_22_1[::-1], "n_models"]
    unordered = vae_figures.wide_table(arch, ["dataset", "kind"])               # first appearance
    assert list(unordered.dataset[:1]) == ["causal"] and list(unordered.columns[2:4]) == ["ces", "dci_d"]
    assert unordered.set_index(["dataset", "kind"]).loc[("shapes", "vae"), "mig"] == \
        wide.set_index(["dataset", "kind"]).loc[("shapes", "vae"), "mig"]


def test_wide_table_refuses_a_missing_key():
    arch = long_table()
    with pytest.raises(ValueError, match="index"):
        vae_figures.wide_table(arch, ["kind"])                          # two datasets per kind and measure
