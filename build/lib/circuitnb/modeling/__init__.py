"""The DDPM (diffusers UNet2DModel + cosine scheduler), its training and its cached checkpoints (§3.1)."""
