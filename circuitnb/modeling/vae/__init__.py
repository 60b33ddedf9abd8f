"""Part II's VAEs: the four architectures (model) and their cached replicates (cache)."""
