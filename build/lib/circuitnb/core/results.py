"""A disk cache for expensive analysis results, so the whole book runs each sweep once.

    sweep = cached(cfg, "sweep", models["synthetic"], lambda: record_sweep(...), t=timesteps)

The key hashes the result's name, the trained model's cache key (which already
hashes its config and data), the analysis settings, any extra arguments and
:data:`VERSION`; bump VERSION when a definition changes so stale results are
never reused. Files are pickles written beside their target and renamed into
place, so an interrupted run leaves no half-written result.
"""
from __future__ import annotations

import os
import pickle
import tempfile
from pathlib import Path
from typing import Any, Callable

from circuitnb.core.config import Config, config_hash

VERSION = 1


def result_path(cfg: Config, name: str, model_keys, **extra: Any) -> Path:
    key = config_hash(cfg.analysis, extra=dict(name=name, models=list(model_keys), seed=cfg.run.seed,
                                               version=VERSION, **extra))
    return cfg.cache_path / "results" / f"{name}-{key}.pkl"


def cached(cfg: Config, name: str, models, compute: Callable[[], Any], **extra: Any) -> Any:
    """``compute()``'s result, from the cache when the same name, models and settings were seen before.

    ``models`` is one :class:`circuitnb.train.TrainedModel` or a list of them.
    """
    models = models if isinstance(models, (list, tuple)) else [models]
    path = result_path(cfg, name, [m.meta["key"] for m in models], **extra)
    if path.exists():
        try:
            with open(path, "rb") as f:
                return pickle.load(f)
        except (pickle.UnpicklingError, EOFError, AttributeError, ImportError):
            path.unlink()                       # damaged or from an older code layout: recompute
    value = compute()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            pickle.dump(value, f, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return value
