"""Part II's data: the shapes benchmark and the causal shapes world, split into training and held-out images."""
