"""Part II (arXiv:2505.03530): one module per notebook of chapters 20-22, named after it."""
