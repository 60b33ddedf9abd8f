"""One way every replicate model reaches the cache: ``load_or_train(spec)`` over a :class:`ModelSpec`.

    spec = ModelSpec(entry, settings, make=train_and_write, load=read_back)
    value = load_or_train(spec)        # read back when intact, else trained now and published atomically

Parts II-IV (VAEs, tabular VAEs, VAE-SAEs) describe each replicate as a spec: its
:class:`~circuitnb.modeling.checkpoints.CacheEntry` (``models/<key>/final``, so ``circuitnb cache ls|verify``
list and check it), the settings written to its manifest, ``make(folder)`` that trains and writes the files and
returns the value, and ``load(folder)`` that reads the same value back. The entry's lock is held from the
check to the publish, so a second process asking for the same model waits and then loads it; a killed run's
half-written folders are removed first; an entry whose files fail their sha256s is reported and retrained.
Part I's UNet keeps its own path (:func:`circuitnb.modeling.train.load_or_train`) because it also resumes
from mid-run checkpoints and keeps EMA snapshots as separate entries; it shares the entry and the locks.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from safetensors.torch import load_file, save_file
from torch import nn

from circuitnb.core import cache
from circuitnb.modeling.checkpoints import CacheEntry


@dataclass(frozen=True)
class ModelSpec:
    entry: CacheEntry                   # where: models/<key>/final, its lock beside it
    settings: dict                      # what the manifest records (the key's inputs)
    make: Callable[[Path], Any]         # train, write the files into the folder, return the value
    load: Callable[[Path], Any]         # read the value back from a verified folder


def load_or_train(spec: ModelSpec) -> Any:
    """The spec's model: read back when its entry is intact, else ``spec.make`` now, published atomically."""
    with spec.entry.locked():
        spec.entry.remove_leftovers()
        found = cache.read_verified(spec.entry.final_dir, spec.load, "model cache entry", "retraining")
        if found is cache.MISSING:
            found = cache.publish(spec.entry.final_dir, spec.make, kind="model", settings=spec.settings)
    return found


def is_cached(entry: CacheEntry) -> bool:
    """Whether the entry is in the cache and intact (no lock taken, nothing loaded or removed)."""
    return cache.verify(entry.final_dir) is None                  # a missing folder is a problem too


def save_weights(module: nn.Module, path: Path) -> None:
    """A module's state as safetensors (CPU, contiguous: what the format needs)."""
    save_file({k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}, path)


def load_weights(module: nn.Module, path: Path) -> nn.Module:
    module.load_state_dict(load_file(path))
    return module


def write_meta(folder: Path, meta: dict) -> dict:
    """Write ``meta.json`` and return what a cache hit will read back (JSON round trip: tuples become lists)."""
    text = json.dumps(meta, default=lambda o: o.tolist() if hasattr(o, "tolist") else float(o))   # numpy values
    (folder / "meta.json").write_text(text)
    return json.loads(text)


def read_meta(folder: Path) -> dict:
    return json.loads((folder / "meta.json").read_text())
