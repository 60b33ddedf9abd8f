"""circuitnb: reproduce and test Roy (2025), circuits of a small diffusion model, as a Jupyter Book.

    import circuitnb
    cfg = circuitnb.load("quick")
    model = circuitnb.modeling.train.load_or_train(cfg, "synthetic")

Layers, bottom to top (a module imports only from its own layer or below;
``tests/test_layers.py`` enforces it): core, data, measures, modeling, hooking,
interventions, analysis, viz, chapters, publish, then cli.
"""
import importlib

__version__ = "0.1.0"

_SUBMODULES = ("core", "data", "measures", "modeling", "hooking", "interventions", "analysis", "viz", "chapters",
               "publish", "cli")


def __getattr__(name: str):
    # Submodules load on first use, so `circuitnb --help` does not pay for torch and diffusers.
    if name == "load":
        return importlib.import_module(".core.config", __name__).load
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'circuitnb' has no attribute {name!r}")
