"""Part III: each tabular VAE's measures, cached (common), and the tabular-vs-image comparison (compare)."""
