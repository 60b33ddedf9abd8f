"""Part II's figures and wide tables."""
