"""Part II's replicate VAEs and their cached analysis, shared by chapters 20-22."""
