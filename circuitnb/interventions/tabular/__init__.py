"""Part III's interventions on tabular VAEs: path-specific activation patching and the decoder half
of a path (one latent -> the output columns).

    path_effect(model, x, x_do, inputs=("length",), outputs=("weight",), latent=2)
    latent_output_deltas(model, x)           # [latents, n, D], for circuitnb.measures.tabular.group_effects
"""
from circuitnb.interventions.tabular.path_patching import (
    DECODER_SITES,
    ENCODER_SITES,
    latent_output_deltas,
    path_effect,
)

__all__ = ["DECODER_SITES", "ENCODER_SITES", "latent_output_deltas", "path_effect"]
