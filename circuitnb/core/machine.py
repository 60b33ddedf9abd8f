"""What this machine can do: devices torch sees, memory, a writable cache folder and output files.

    problem = device_problem("cuda")      # None, or one line naming 'device' and what is accepted

Each check returns None or a one-line message; :mod:`circuitnb.core.config`
turns a message into a ``ConfigError`` at load (device, sizes) or before any
compute (the cache folder). This module imports nothing from the config, so the
config can call it without an import cycle.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from circuitnb.core.errors import UserError

__all__ = ["device_problem", "memory_estimate", "memory_problem", "cache_dir_problem", "machine_memory",
           "check_writable_file"]

_GIB = 2 ** 30


def device_problem(device: str) -> str | None:
    """None when torch can use ``device`` here ('auto' and 'cpu' always can)."""
    if device in ("auto", "cpu"):
        return None                                  # torch is imported only when a device must be checked
    import torch
    if device.startswith("cuda"):
        n = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if n == 0:
            build = "a CPU-only build" if torch.version.cuda is None else f"built for CUDA {torch.version.cuda}"
            return (f"parameter 'device' = {device!r}: torch {torch.__version__} ({build}) sees no CUDA "
                    "device on this machine; use 'cpu' or 'auto'")
        index = int(device.split(":")[1]) if ":" in device else 0
        if index >= n:
            return (f"parameter 'device' = {device!r}: torch sees {n} CUDA device(s); use "
                    f"'cuda:0' to 'cuda:{n - 1}', 'cpu' or 'auto'")
    elif device == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            return "parameter 'device' = 'mps': torch sees no Apple MPS device on this machine; use 'cpu' or 'auto'"
    return None


def machine_memory(device: str = "cpu") -> int | None:
    """Bytes of memory training works in: the GPU's for CUDA, else the machine's RAM (None if unknown)."""
    if device.startswith("cuda"):
        import torch
        if torch.cuda.is_available():
            index = int(device.split(":")[1]) if ":" in device else 0
            return torch.cuda.get_device_properties(index).total_memory
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):      # not every platform names these
        return None


def memory_estimate(cfg: Any) -> dict[str, int]:
    """Lower bounds in bytes: the float32 image array, and one training step's saved activations.

        memory_estimate(config.load("paper"))   # {'images': 98304000, 'activations': ...}

    Activations: each resnet keeps about 6 tensors of its level's [C, H, W] for the backward
    pass (two GroupNorms, two SiLUs, two convolutions); the encoder has ``layers_per_block``
    resnets per level and the decoder one more. Each attention layer keeps scores and
    probabilities, [heads, tokens, tokens] twice. Deliberately low, so that only sizes that
    cannot fit are rejected.
    """
    d, m = cfg.data, cfg.model
    images = d.n_images * 3 * d.image_size ** 2 * 4
    per_sample = 0
    for level, channels in enumerate(m.block_out_channels):
        side = d.image_size // 2 ** level
        per_sample += 6 * (2 * m.layers_per_block + 1) * channels * side * side
    tokens = (d.image_size // 2 ** (len(m.block_out_channels) - 1)) ** 2
    n_attn = 2 * m.layers_per_block + 1 + int(m.mid_attention)
    per_sample += 2 * n_attn * m.n_heads * tokens * tokens
    return dict(images=images, activations=cfg.train.batch_size * per_sample * 4)


def memory_problem(cfg: Any) -> str | None:
    """None unless the images or one training step cannot fit in this machine's memory."""
    need = memory_estimate(cfg)
    ram = machine_memory("cpu")
    if ram is not None and need["images"] > ram:
        return (f"parameters 'n_images' = {cfg.data.n_images} and 'image_size' = {cfg.data.image_size} need "
                f"at least {need['images'] / _GIB:.1f} GiB for the images alone; this machine has "
                f"{ram / _GIB:.1f} GiB of memory; lower 'n_images' or 'image_size'")
    device = cfg.run.device if cfg.run.device != "auto" else "cpu"
    room = machine_memory(device) if device.startswith("cuda") else (None if ram is None else ram - need["images"])
    if room is not None and need["activations"] > room:
        return (f"parameters 'batch_size' = {cfg.train.batch_size} and 'image_size' = {cfg.data.image_size} "
                f"need at least {need['activations'] / _GIB:.1f} GiB per training step on {device!r}, which has "
                f"{room / _GIB:.1f} GiB for it; lower 'batch_size' or 'image_size'")
    return None


def cache_dir_problem(path: Path, origin: str) -> str | None:
    """None when ``path`` is (or can be made) a folder this process writes in; ``origin`` names the setting."""
    path = Path(path)
    where = f"{origin} = {str(path)!r}"
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent                   # mkdir would create the folders below this one
    if not existing.is_dir():
        what = "is a file" if existing == path else f"lies under the file {str(existing)!r}"
        return f"{where} {what}; give a folder (it is created when missing)"
    for sub in ("models", "results"):
        if (path / sub).exists() and not (path / sub).is_dir():
            return (f"{where}: {str(path / sub)!r} is a file where the cache keeps a folder; "
                    "remove it or give another folder")
    for folder in [existing] + [path / s for s in ("models", "results") if (path / s).is_dir()]:
        try:                                         # a real write: os.access says yes to root on a read-only mount
            fd, probe = tempfile.mkstemp(dir=folder, prefix=".circuitnb-write-test-")
            os.close(fd)
            os.unlink(probe)
        except OSError as err:
            return f"{where}: cannot write in {str(folder)!r} ({err.strerror or err}); give a writable folder"
    return None


def check_writable_file(path: Path, param: str) -> None:
    """A :class:`UserError` naming ``param`` unless a file can be written at ``path`` (before any compute).

        check_writable_file(Path("out/preview.png"), "--preview")
    """
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{param} {str(path)!r} is a folder; give a file path")
    above = path.parent
    while not above.exists() and above != above.parent:
        above = above.parent
    if not above.is_dir():
        raise UserError(f"{param} {str(path)!r} lies under the file {str(above)!r}; give a path in a writable folder")
    existed = path.exists()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "ab"):                       # a real open: os.access says yes to root on a read-only mount
            pass
        if not existed:
            path.unlink()
    except OSError as err:
        raise UserError(f"{param} {str(path)!r} cannot be written ({err.strerror or err}); "
                        "give a path in a writable folder") from None
