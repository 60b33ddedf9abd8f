"""Model cache: trained weights keyed by a hash of every training-relevant field.

    entry = CacheEntry(cache_root, key)
    with entry.locked():
        entry.final_unet()        # UNet2DModel, or None (missing, or damaged: reported and removed)

Layout of one entry::

    <cache>/models/<key>/
        final/        unet/{config.json, diffusion_pytorch_model.safetensors}  EMA weights
                      meta.json       config, dataset fingerprint, loss curve
                      manifest.json   sha256 of each file above, and the settings that key it
        checkpoint/   resumable state: unet/, trainer.pt, state.json, manifest.json
        snapshots/step_<N>/   EMA weights at training step N (unet/, manifest.json), for the
                      quantities-over-training chapter; the last step's weights are final/
    <cache>/models/.<key>.lock        held by the one process that trains or reads this key

Both folders are :mod:`circuitnb.core.cache` entries: written beside their
target and renamed into place, and hashed in full before anything in them is
read. A final or checkpoint folder with any file that does not match its
manifest is reported in one warning line naming that file, removed, and
treated as missing (retrained, or trained afresh instead of resumed).
"""
from __future__ import annotations

import json
import shutil
from contextlib import AbstractContextManager
from pathlib import Path

import torch
from diffusers import UNet2DModel

from circuitnb.core import cache

WEIGHTS = "diffusion_pytorch_model.safetensors"
# meta.json fields that say what a model was trained on and how (shown by `circuitnb cache ls`).
_KEY_FIELDS = ("key", "dataset", "source", "fingerprint", "n_images", "image_size", "seed", "config")


def load_unet(folder: Path) -> UNet2DModel:
    """A UNet saved by ``save_pretrained``.

    ``low_cpu_mem_usage=False``: the default asks for ``accelerate`` and, without it,
    prints a notice on stderr that would end up on every book page; the models are
    small enough to be built in full and then filled.
    """
    unet = UNet2DModel.from_pretrained(folder, low_cpu_mem_usage=False)
    # The loaded tensors are views of the memory-mapped file: an edit of that file would change
    # a model already in use (seen: one flipped byte moved a loaded weight by 1e-6). Own copies.
    for tensor in [*unet.parameters(), *unet.buffers()]:
        tensor.data = tensor.data.clone()
    return unet


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

    def locked(self) -> AbstractContextManager:
        """The entry's lock: one process trains, resumes or reads this key at a time."""
        return cache.locked(self.dir)

    def remove_leftovers(self) -> None:
        """Drop half-written folders of a killed run (call with the lock held)."""
        cache.remove_leftovers(self.final_dir)
        cache.remove_leftovers(self.checkpoint_dir)

    # --- final weights ---------------------------------------------------------------------
    def write_final(self, unet: UNet2DModel, meta: dict) -> None:
        def write(tmp: Path) -> None:
            unet.save_pretrained(tmp / "unet", safe_serialization=True)
            (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
        settings = {k: meta[k] for k in _KEY_FIELDS if k in meta} | {"steps": meta.get("steps")}
        cache.publish(self.final_dir, write, kind="model", settings=settings)
        shutil.rmtree(self.checkpoint_dir, ignore_errors=True)   # no longer needed

    def read_meta(self) -> dict | None:
        """meta.json of the final entry (read after :meth:`final_unet` verified it)."""
        try:
            return json.loads((self.final_dir / "meta.json").read_text())
        except (OSError, ValueError):
            return None

    def final_unet(self) -> UNet2DModel | None:
        """The cached EMA UNet, or None when missing; a damaged entry is reported and removed."""
        def load(folder: Path) -> UNet2DModel:
            json.loads((folder / "meta.json").read_text())   # verified, but it must also parse
            return load_unet(folder / "unet")
        unet = cache.read_verified(self.final_dir, load, "model cache entry", "retraining")
        return None if unet is cache.MISSING else unet

    def verify(self) -> str | None:
        """None when the final entry is intact, else what is wrong with it (naming the file)."""
        return cache.verify(self.final_dir)

    # --- snapshots over training ----------------------------------------------------------
    def snapshot_dir(self, step: int) -> Path:
        return self.dir / "snapshots" / f"step_{step}"

    def write_snapshot(self, unet: UNet2DModel, step: int) -> None:
        cache.publish(self.snapshot_dir(step), lambda tmp: unet.save_pretrained(tmp / "unet", safe_serialization=True),
                      kind="snapshot", settings={"key": self.key, "step": step})

    def snapshot_unet(self, step: int) -> UNet2DModel | None:
        """The EMA UNet saved at ``step``, or None when missing; a damaged one is reported and removed."""
        unet = cache.read_verified(self.snapshot_dir(step), lambda f: load_unet(f / "unet"),
                                   "training snapshot", "retraining the model")
        return None if unet is cache.MISSING else unet

    def snapshot_intact(self, step: int) -> bool:
        """Whether the snapshot at ``step`` matches its sha256s (a damaged one is reported and removed), without
        building a UNet: checking every snapshot on each load costs hashing, not loading."""
        return cache.read_verified(self.snapshot_dir(step), lambda f: True, "training snapshot",
                                   "retraining the model") is True

    # --- resumable checkpoint ---------------------------------------------------------------
    def write_checkpoint(self, unet, ema, optimizer, lr_schedule, generator, state: dict) -> None:
        def write(tmp: Path) -> None:
            unet.save_pretrained(tmp / "unet", safe_serialization=True)
            torch.save({"ema": ema.state_dict(), "optimizer": optimizer.state_dict(),
                        "lr_schedule": lr_schedule.state_dict(), "generator": generator.get_state()},
                       tmp / "trainer.pt")
            (tmp / "state.json").write_text(json.dumps(state))
        cache.publish(self.checkpoint_dir, write, kind="checkpoint",
                      settings={"key": self.key, "step": state.get("step")})

    def read_checkpoint(self) -> tuple[UNet2DModel, dict, dict] | None:
        """(unet, trainer tensors, state) of the last checkpoint, or None when absent or damaged.

        A checkpoint is resumed only when every file matches its manifest; a damaged one
        is reported and removed, and training starts afresh.
        """
        def load(folder: Path):
            state = json.loads((folder / "state.json").read_text())
            tensors = torch.load(folder / "trainer.pt", weights_only=True)   # tensors and plain data only
            return load_unet(folder / "unet"), tensors, state
        found = cache.read_verified(self.checkpoint_dir, load, "training checkpoint", "training from step 0")
        return None if found is cache.MISSING else found
