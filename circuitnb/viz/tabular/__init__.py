"""Part III's figures (figures) and the offline explorer of the tabular latents (explorer)."""
