"""Part III's tabular VAEs: an MLP with a likelihood per column type, five objectives, cached replicates.

    m = load_or_train_tabular(cfg, "beta_tc_vae", "heart", replicate=1)     # TrainedTabular
    nelbo_terms(m.model, tabular_data(cfg, "heart", "heldout").x)           # per-row NLL per column, KL, nelbo

Modules: :mod:`~circuitnb.modeling.tabular.likelihoods` (Gaussian, categorical, cumulative-logit ordinal),
:mod:`~circuitnb.modeling.tabular.model` (the MLP VAE, the objectives, DIP-VAE-II's penalty),
:mod:`~circuitnb.modeling.tabular.training` (the seeded loop, held-out scoring),
:mod:`~circuitnb.modeling.tabular.cache` (replicates, cache entries, convergence at snapshots).
"""
from circuitnb.modeling.tabular.cache import (
    TRAIN_FIELDS,
    TrainedTabular,
    is_cached,
    load_all,
    load_or_train_tabular,
    model_key,
    snapshot_steps,
)
from circuitnb.modeling.tabular.likelihoods import ColumnLikelihood, categorical_nll, gaussian_nll, ordinal_nll
from circuitnb.modeling.tabular.model import TAB_KINDS, TabularVAE, aggregate_covariance, dip_ii_penalty, objective
from circuitnb.modeling.tabular.training import (
    build,
    encode_mean,
    negative_elbo_per_row,
    nelbo_terms,
    reconstruct,
    train_tabular_vae,
)

__all__ = ["TAB_KINDS", "TRAIN_FIELDS", "TabularVAE", "TrainedTabular", "ColumnLikelihood", "aggregate_covariance",
           "build", "categorical_nll", "dip_ii_penalty", "encode_mean", "gaussian_nll", "is_cached", "load_all",
           "load_or_train_tabular", "model_key", "negative_elbo_per_row", "nelbo_terms", "objective", "ordinal_nll",
           "reconstruct", "snapshot_steps", "train_tabular_vae"]
