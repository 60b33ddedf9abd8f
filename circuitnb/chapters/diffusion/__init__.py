"""Part I (arXiv:2506.17237): one module per notebook of chapters 1-13, named after it."""
