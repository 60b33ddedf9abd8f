"""Part V (Bayesian attention VAE for brain-MRI anomaly detection): each model's cached detection and
calibration (common), its attention heads on healthy and lesion slices and their ablation (heads), and the
abstract's claims with the "uncertainty helps" contrasts (claims)."""
