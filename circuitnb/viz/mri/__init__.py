"""Part V (Bayesian attention VAE for brain-MRI anomaly detection): figures and the offline explorer."""
