"""Part V's models: a Bayesian attention VAE for anomaly detection in brain MRI and its baselines.

    m = load_or_train_mri(cfg, "attention", replicate=0)                # TrainedMri: model, meta, from_cache
    pred = mc_predict(m.model, mri_split(cfg).heldout.images, passes=16)  # mean, aleatoric, epistemic

Modules: :mod:`~circuitnb.modeling.mri.model` (the VAE, its three kinds, MC dropout, the predictive
distribution), :mod:`~circuitnb.modeling.mri.training` (the seeded loop, the held-out negative ELBO),
:mod:`~circuitnb.modeling.mri.cache` (the subject split, replicates, cache entries, convergence).
"""
from circuitnb.modeling.mri.cache import (
    TRAIN_FIELDS,
    MriSplit,
    TrainedMri,
    is_cached,
    load_all,
    load_or_train_mri,
    model_key,
    mri_seed,
    mri_split,
    snapshot_steps,
    split_subjects,
)
from circuitnb.modeling.mri.model import (
    KINDS,
    MriVAE,
    VAEOut,
    gaussian_nll,
    kl_normal,
    mc_dropout,
    mc_predict,
)
from circuitnb.modeling.mri.training import negative_elbo_per_image, train_mri

__all__ = ["KINDS", "TRAIN_FIELDS", "MriSplit", "MriVAE", "TrainedMri", "VAEOut", "gaussian_nll", "is_cached",
           "kl_normal", "load_all", "load_or_train_mri", "mc_dropout", "mc_predict", "model_key", "mri_seed",
           "mri_split", "negative_elbo_per_image", "snapshot_steps", "split_subjects", "train_mri"]
