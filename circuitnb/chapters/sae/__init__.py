"""Part IV (hybrid VAE-SAE): one module per notebook of chapters 40-42, named after it."""
