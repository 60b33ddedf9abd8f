"""Part V (Bayesian attention VAE for brain-MRI anomaly detection): one module per notebook of chapters
50-52, named after it."""
