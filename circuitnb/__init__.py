"""circuitnb: reproduce and test Roy (2025), circuits of a small diffusion model, as a Jupyter Book.

    import circuitnb
    cfg = circuitnb.config.load("quick")
    model = circuitnb.train.load_or_train(cfg, "synthetic")
"""
import importlib

__version__ = "0.1.0"

_SUBMODULES = ("config", "data", "model", "train", "checkpoints", "experiments", "plotting", "book", "cli")


def __getattr__(name: str):
    # Submodules load on first use, so `circuitnb --help` does not pay for torch and diffusers.
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'circuitnb' has no attribute {name!r}")
