"""Part III (tabular VAEs): one module per notebook of chapters 30-32, named after it."""
