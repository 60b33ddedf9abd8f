"""Named readings of the quantities the paper leaves undefined: one registry, read by chapters and the book.

    READINGS["ablation"].default                 # "zero": the reading the scorecard's verdict uses
    READINGS["ablation"].options["bypass"]       # one line: what that reading removes
    readings_table()                             # quantity, reading, default, description: one row per reading

Every reading of a quantity is computed in the same pass, from the same cached activations or sweeps, so
a verdict that depends on the reading shows up as a flip in chapter 12's sensitivity table
(``_build/tables/sensitivity/sensitivity.csv``). The default is the reading closest to the paper's text;
``why`` says which sentence of the paper it follows.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd


@dataclass(frozen=True)
class Reading:
    """An undefined quantity's readings: ``Reading("zero", {"zero": "x -> 0", ...}, why="§3.2.4 ...")``."""
    default: str                 # the scorecard's reading, one of options
    options: dict                # reading name -> one line saying what it computes (or removes)
    why: str                     # why the default is the one closest to the paper's text
    values: dict = field(default_factory=dict)   # reading name -> the number it stands for, where it is one

    def __post_init__(self):
        if self.default not in self.options:
            raise ValueError(f"default reading {self.default!r} is not one of {sorted(self.options)}")
        if self.values and set(self.values) != set(self.options):
            raise ValueError(f"values {sorted(self.values)} must name every reading {sorted(self.options)}")


READINGS: dict[str, Reading] = {
    "ablation": Reading("zero", {
        "zero": "the group's block outputs -> 0; a down block still hands its skip tensors to the decoder",
        "mean": "the block outputs -> their mean over the analysis images at the same t (keeps the average signal)",
        "bypass": "every resnet and attention branch in the group dropped, their residual/shortcut paths kept",
    }, why="§3.2.4: 'Layer Ablation: Complete removal of layer outputs'"),
    "global_rule": Reading("h080", {
        "h090": "a head is global when its mean H / Hmax is significantly >= 0.9",
        "h080": "a head is global when its mean H / Hmax is significantly >= 0.8",
    }, why="Table 2's own global head has H / Hmax = 1 - S below 0.9 (Eq. 2); a rule must accept the "
           "paper's own example, and 0.8 is the round threshold that does"),
    "phases": Reading("segments", {
        "segments": "k contiguous constant segments, k = 1..6 by BIC",
        "smooth_test": "segments only when their BIC beats a cubic polynomial in t; else 'no phases'",
    }, why="§4.5 describes discrete phases found in the profile"),
    "ife": Reading("binned", {
        "binned": "MI / max H of first-PC scores in k equal-frequency bins (Eq. 4 taken literally)",
        "knn": "1 - exp(-2 MI), MI by the KSG kNN estimator (no bins; rho^2 for Gaussian pairs)",
    }, why="Eq. 4 divides MI by an entropy, which needs discrete (binned) variables"),
    "entropy": Reading("bits", {
        "bits": "Eq. 1 in bits; its maximum is log2 K, K = keys of the layer (64 at 32 px, 256 at 64 px)",
        "normalised": "H / log2 K in [0, 1], comparable across resolutions; the paper's implied value is 1 - S",
    }, why="Table 2 reports entropies in bits"),
    "complexity_site": Reading("heads", {
        "heads": "participation ratio of head energies before the output projection (to_out)",
        "to_out": "participation ratio of each head's contribution after to_out (what the residual receives)",
    }, why="§4.2 speaks of attention heads carrying the computation"),
    "head_matching": Reading("index", {
        "index": "head k of one model against head k of the other",
        "hungarian": "heads matched within each layer by optimal assignment on mean-map correlation",
    }, why="§4.8 compares heads without saying how they correspond; index is the implicit reading"),
    "heads_profile": Reading("per_layer", {
        "per_layer": "'8 attention heads distributed across 3 transformer layers' = 8 heads in each layer",
        "total": "the same sentence read as 8 heads in total across the 3 layers",
    }, why="§3.1's sentence; multi-head attention splits each layer's width, so both give the same parameters"),
    "dead_threshold": Reading("never", {
        "never": "a hidden unit is dead when it is active on no held-out image (firing rate 0)",
        "rare": "a hidden unit is dead when it is active on fewer than 1% of the held-out images",
    }, why="the hybrid VAE-SAE abstract counts 'dead neurons' without a threshold; never firing is the sparse-"
           "autoencoder literature's definition (Bricken et al. 2023; Gao et al. 2024)",
        values={"never": 0.0, "rare": 0.01}),
}


def options(quantity: str) -> tuple[str, ...]:
    """The reading names of ``quantity``, default first: ``options("ife")`` -> ("binned", "knn")."""
    r = READINGS[quantity]
    return (r.default, *[o for o in r.options if o != r.default])


def readings_table() -> pd.DataFrame:
    """One row per (quantity, reading): quantity, reading, default (bool), description, why (the default's)."""
    return pd.DataFrame([dict(quantity=q, reading=name, default=name == r.default, description=doc,
                              why=r.why if name == r.default else "")
                         for q, r in READINGS.items() for name, doc in r.options.items()])


def chosen(cfg) -> dict[str, str]:
    """The scorecard's reading of every quantity: the config's ``readings`` over the defaults.

        chosen(circuitnb.load("smoke", readings=["ife=knn"]))["ife"]     # "knn"
    """
    picked = dict(str(item).split("=", 1) for item in cfg.analysis.readings)
    return {q: picked.get(q, r.default) for q, r in READINGS.items()}


def value(cfg, quantity: str) -> float:
    """The number the config's reading of ``quantity`` stands for: ``value(cfg, "dead_threshold")`` -> 0.0."""
    return float(READINGS[quantity].values[chosen(cfg)[quantity]])
