"""Part III (issue 24): each tabular VAE's measures, cached (common), and the tabular-vs-image comparison (compare)."""
