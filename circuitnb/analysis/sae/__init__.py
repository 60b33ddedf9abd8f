"""Part IV (hybrid VAE-SAE): each model's cached measures over the schedule (common), the dead-unit
statistics (dead: revival, the Shapes3D / dSprites ratio, AuxK against Top-k) and the abstract's claims (claims)."""
