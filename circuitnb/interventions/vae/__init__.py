"""Part II's four intervention levels on VAEs."""
