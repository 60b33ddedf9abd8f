"""Model cache: trained weights keyed by a hash of every training-relevant field.

    entry = CacheEntry(cache_root, key)
    entry.final_unet()        # UNet2DModel or None (missing or damaged)

Layout of one entry::

    <cache>/models/<key>/
        final/unet/{config.json, diffusion_pytorch_model.safetensors}   EMA weights
        final/meta.json       config, dataset fingerprint, loss curve, sha256 of the weights
        checkpoint/           resumable state: unet/, ema.pt, optimizer.pt, state.json

Every directory is written beside its target and renamed into place, so a run
killed mid-write leaves the previous version intact. A final entry whose
weights do not match the recorded sha256, or that does not load, counts as
damaged: it is reported and removed, and the caller retrains.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import warnings
from pathlib import Path
from typing import Callable

import torch
from diffusers import UNet2DModel

WEIGHTS = "diffusion_pytorch_model.safetensors"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def atomic_dir(target: Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp)`` on a fresh sibling folder, then swap it in for ``target``."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    old = target.with_name(f".{target.name}.old-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        write(tmp)
        if target.exists():
            os.replace(target, old)
        os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)


class CacheEntry:
    def __init__(self, root: Path, key: str):
        self.dir = Path(root) / "models" / key
        self.key = key

    @property
    def final_dir(self) -> Path:
        return self.dir / "final"

    @property
    def checkpoint_dir(self) -> Path:
        return self.dir / "checkpoint"

    # --- final weights ---------------------------------------------------------------------
    def write_final(self, unet: UNet2DModel, meta: dict) -> None:
        def write(tmp: Path) -> None:
            unet.save_pretrained(tmp / "unet", safe_serialization=True)
            meta_out = {**meta, "sha256": sha256_file(tmp / "unet" / WEIGHTS)}
            (tmp / "meta.json").write_text(json.dumps(meta_out, indent=1))
        atomic_dir(self.final_dir, write)
        shutil.rmtree(self.checkpoint_dir, ignore_errors=True)   # no longer needed

    def read_meta(self) -> dict | None:
        try:
            return json.loads((self.final_dir / "meta.json").read_text())
        except (OSError, ValueError):
            return None

    def final_unet(self) -> UNet2DModel | None:
        """The cached EMA UNet, or None when missing; a damaged entry is reported and removed."""
        if not self.final_dir.exists():
            return None
        problem = self.verify()
        if problem is None:
            try:
                return UNet2DModel.from_pretrained(self.final_dir / "unet")
            except Exception as err:  # noqa: BLE001 - any load failure means a damaged entry
                problem = f"does not load ({type(err).__name__}: {err})"
        warnings.warn(f"damaged model cache entry {self.final_dir}: {problem}; it will be retrained",
                      stacklevel=2)
        shutil.rmtree(self.final_dir, ignore_errors=True)
        return None

    def verify(self) -> str | None:
        """None when the final entry is intact, else what is wrong with it."""
        meta = self.read_meta()
        if meta is None:
            return "meta.json missing or unreadable"
        weights = self.final_dir / "unet" / WEIGHTS
        if not weights.exists():
            return "weights file missing"
        if sha256_file(weights) != meta.get("sha256"):
            return "weights do not match their recorded sha256"
        return None

    # --- resumable checkpoint ---------------------------------------------------------------
    def write_checkpoint(self, unet, ema, optimizer, lr_schedule, generator, state: dict) -> None:
        def write(tmp: Path) -> None:
            unet.save_pretrained(tmp / "unet", safe_serialization=True)
            torch.save({"ema": ema.state_dict(), "optimizer": optimizer.state_dict(),
                        "lr_schedule": lr_schedule.state_dict(), "generator": generator.get_state()},
                       tmp / "trainer.pt")
            (tmp / "state.json").write_text(json.dumps(state))
        atomic_dir(self.checkpoint_dir, write)

    def read_checkpoint(self) -> tuple[UNet2DModel, dict, dict] | None:
        """(unet, trainer tensors, state) of the last checkpoint, or None if absent or unreadable."""
        if not self.checkpoint_dir.exists():
            return None
        try:
            state = json.loads((self.checkpoint_dir / "state.json").read_text())
            tensors = torch.load(self.checkpoint_dir / "trainer.pt", weights_only=False)
            unet = UNet2DModel.from_pretrained(self.checkpoint_dir / "unet")
        except Exception as err:  # noqa: BLE001
            warnings.warn(f"unreadable checkpoint {self.checkpoint_dir} ({err}); starting afresh", stacklevel=2)
            shutil.rmtree(self.checkpoint_dir, ignore_errors=True)
            return None
        return unet, tensors, state
