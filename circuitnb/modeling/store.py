"""One way every replicate model reaches the cache: ``load_or_train(spec)`` over a :class:`ModelSpec`.

    spec = ModelSpec(entry, settings, make=train_and_write, load=read_back)
    value = load_or_train(spec)        # read back when intact, else trained now and published atomically

Parts II-V (VAEs, tabular VAEs, VAE-SAEs, MRI VAEs) describe each replicate as a spec: its
:class:`~circuitnb.modeling.checkpoints.CacheEntry` (``models/<key>/final``, so ``circuitnb cache ls|verify``
list and check it), the settings written to its manifest, ``make(folder)`` that trains and writes the files and
returns the value, and ``load(folder)`` that reads the same value back. The entry's lock is held from the
check to the publish, so a second process asking for the same model waits and then loads it; a killed run's
half-written folders are removed first; an entry whose files fail their sha256s is reported and retrained.
:func:`replicate_settings` and :func:`replicate_entry` build every part's key the same way; :func:`check_kind`
and :func:`nan_stops` give its one-line errors. Part I's UNet keeps its own path
(:func:`circuitnb.modeling.train.load_or_train`) because it also resumes from mid-run checkpoints and keeps EMA
snapshots as separate entries; it shares the entry and the locks.
"""
from __future__ import annotations

import json
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
from safetensors.torch import load_file, save_file
from torch import nn

from circuitnb.core import cache
from circuitnb.core.config import Config, config_hash, field_value, key_name
from circuitnb.measures.convergence import convergence
from circuitnb.modeling.checkpoints import CacheEntry
from circuitnb.modeling.train import TrainingError


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


def check_kind(kind: str, choices: tuple[str, ...], parameter: str) -> str:
    """``check_kind(kind, KINDS, "vae.kinds")``: ``kind``, or a one-line error naming the config field."""
    if kind not in choices:
        raise TrainingError(f"parameter {parameter!r} has {kind!r}; choose from {choices}")
    return kind


def replicate_settings(cfg: Config, fields: tuple[str, ...], **first: Any) -> dict:
    """``replicate_settings(cfg, ("vae.steps", ...), kind="vae")``: what keys a replicate model and its manifest
    records, ``first`` (its kind or method) then the value of each qualified field, under its :func:`key_name`."""
    return dict(first, **{key_name(f): field_value(cfg, f) for f in fields})


def replicate_entry(cfg: Config, name: str, settings: dict, **keyed: Any) -> CacheEntry:
    """``replicate_entry(cfg, "vae-beta_vae-shapes", settings, seed=seed, data=fp, heldout=[...])``: the entry
    ``models/<name>-<hash>`` in the config's cache, the hash over ``settings`` and ``keyed`` (the seed, the
    training data's fingerprint, the held-out measurement), so a change to any of them is a different model."""
    return CacheEntry(cfg.cache_path, f"{name}-" + config_hash(extra=dict(settings, **keyed)))


@contextmanager
def nan_stops(parameter: str, lr: float) -> Iterator[None]:
    """``with nan_stops("vae.lr", v.lr): train_vae(...)``: a NaN loss (the trainers' ``FloatingPointError``)
    becomes a one-line :class:`~circuitnb.modeling.train.TrainingError` naming the config field to lower."""
    try:
        yield
    except FloatingPointError as err:
        raise TrainingError(f"{err}; lower {parameter!r} (now {lr})") from None


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


def heldout_convergence(meta: dict, tol: float) -> dict:
    """The convergence rule (:func:`circuitnb.measures.convergence.convergence`) on a model's held-out negative
    ELBO at its snapshots, judged now with ``tol`` (``converged_tol``): the verdict follows the rule and the
    config in force, not what was written when the model trained."""
    return convergence(meta["heldout_steps"], [np.asarray(v, float) for v in meta["heldout_nelbo"]], tol)


def training_outcome(meta: dict, from_cache: bool, tol: float) -> dict:
    """A trained model's last held-out negative ELBO and its convergence verdict, as columns of a chapter's
    per-model table: nelbo, converged, status, rel_improvement, train_seconds, from_cache."""
    conv = heldout_convergence(meta, tol)
    return dict(nelbo=float(np.mean(meta["heldout_nelbo"][-1])), converged=conv["converged"],
                status=conv["status"], rel_improvement=conv["rel_improvement"],
                train_seconds=meta["train_seconds"], from_cache=from_cache)
