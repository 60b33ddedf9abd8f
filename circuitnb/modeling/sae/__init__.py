"""Part IV's hybrid VAE-SAEs: a VAE whose hidden layer is a sparse autoencoder, the sparsity schedule,
Top-k (with or without AuxK) and L1, cached replicates.

    m = load_or_train_sae(cfg, "topk", "dsprites", replicate=0)       # TrainedSAE: model, meta, snapshots
    encode(m.model, sae_data(cfg, "dsprites", "analysis").images)     # {"codes": [N, H], "mu": [N, latent]}

Modules: :mod:`~circuitnb.modeling.sae.schedule` (k over training; the L1 controller),
:mod:`~circuitnb.modeling.sae.model` (the hybrid, Top-k, AuxK), :mod:`~circuitnb.modeling.sae.training` (the
seeded loop, held-out scoring), :mod:`~circuitnb.modeling.sae.cache` (replicates, cache entries, snapshots,
convergence); the split is :mod:`circuitnb.data.sae.datasets`'.
"""
from circuitnb.data.sae.datasets import SAE_DATASETS, sae_data, sae_seed
from circuitnb.modeling.sae.cache import (
    METHOD_FIELDS,
    TRAIN_FIELDS,
    TrainedSAE,
    is_cached,
    load_all,
    load_or_train_sae,
    model_key,
    over_schedule,
    snapshot_steps,
    train_fields,
)
from circuitnb.modeling.sae.model import METHODS, HybridVAE, SAEOutput, aux_k_loss, top_k
from circuitnb.modeling.sae.schedule import L1Controller, active_units, decay_end, schedule
from circuitnb.modeling.sae.training import encode, final_k, negative_elbo_per_image, train_hybrid

__all__ = ["METHODS", "METHOD_FIELDS", "SAE_DATASETS", "TRAIN_FIELDS", "HybridVAE", "L1Controller", "SAEOutput",
           "TrainedSAE", "active_units", "aux_k_loss", "decay_end", "encode", "final_k", "is_cached", "load_all",
           "load_or_train_sae", "model_key", "negative_elbo_per_image", "over_schedule", "sae_data", "sae_seed",
           "schedule", "snapshot_steps", "top_k", "train_fields", "train_hybrid"]
