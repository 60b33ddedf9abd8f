"""A diffusers ``UNet2DModel`` of your own, read from a ``save_pretrained`` folder and checked line by line.

    unet, scheduler = load_user_model("~/models/ddpm-cifar10-32")   # eval mode, on the CPU
    size, channels = image_shape("~/models/ddpm-cifar10-32")          # from config.json alone, no weights read
    key = model_key("~/models/ddpm-cifar10-32")                       # content hash: keys the results cache

Layouts accepted (diffusers' own):

* a model folder: ``config.json`` and its weights (``diffusion_pytorch_model.safetensors`` or ``.bin``,
  or a sharded index), with the scheduler's ``scheduler_config.json`` beside them or in ``scheduler/``;
* a pipeline folder (as the published DDPM pipelines): ``unet/`` and ``scheduler/`` subfolders.

Without a scheduler config the model gets diffusers' default ``DDPMScheduler`` (Ho et al.'s linear
schedule over 1,000 steps), and :func:`scheduler_source` says so. Every problem with the folder is one
:class:`UserModelError` line naming the file: a missing ``config.json``, a class other than
``UNet2DModel``, weights that are missing or do not fit the config, or a model the book cannot read as a
noise predictor (the analyses read the output as eps for a square image with as many channels as it takes).
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

from diffusers import DDPMScheduler, UNet2DModel

from circuitnb.core import cache
from circuitnb.core.errors import UserError

WEIGHTS = ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin",
           "diffusion_pytorch_model.safetensors.index.json", "diffusion_pytorch_model.bin.index.json")
SCHEDULER = "scheduler_config.json"


class UserModelError(UserError, ValueError):
    """The ``model_dir`` folder cannot be read as a diffusers ``UNet2DModel`` the book can analyse."""


def _where(model_dir) -> Path:
    return Path(str(model_dir)).expanduser()


def unet_folder(model_dir) -> Path:
    """The folder holding the UNet's ``config.json``: ``model_dir`` itself, or its ``unet/`` (a pipeline)."""
    root = _where(model_dir)
    if not root.is_dir():
        raise UserModelError(f"parameter 'model_dir' = {str(model_dir)!r} is not a folder; give a diffusers "
                             "save_pretrained folder (config.json and weights)")
    for folder in (root, root / "unet"):
        if (folder / "config.json").is_file():
            return folder
    raise UserModelError(f"parameter 'model_dir' = {str(model_dir)!r} has no config.json (nor unet/config.json); "
                         "give a folder written by UNet2DModel.save_pretrained or a pipeline's folder")


def scheduler_file(model_dir) -> Path | None:
    """The scheduler config beside the UNet's, in ``scheduler/`` beside it or in the pipeline's, if any."""
    root, unet = _where(model_dir), unet_folder(model_dir)
    for path in (unet / SCHEDULER, unet / "scheduler" / SCHEDULER, root / "scheduler" / SCHEDULER):
        if path.is_file():
            return path
    return None


def _json(path: Path) -> dict:
    try:
        value = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise UserModelError(f"{path}: cannot be read as JSON ({err})") from None
    if not isinstance(value, dict):
        raise UserModelError(f"{path}: expected a JSON object of settings")
    return value


def read_config(model_dir) -> dict:
    """The UNet's ``config.json``, checked to be a ``UNet2DModel`` the book can analyse (no weights read)."""
    path = unet_folder(model_dir) / "config.json"
    config = _json(path)
    name = config.get("_class_name", "UNet2DModel")
    if name != "UNet2DModel":
        raise UserModelError(f"{path}: _class_name is {name!r}; the book analyses diffusers' UNet2DModel only")
    try:
        probe = UNet2DModel.from_config(config)           # diffusers' own defaults fill what the file leaves out
    except Exception as err:                              # any constructor error is a bad config, said in one line
        raise UserModelError(f"{path}: not a valid UNet2DModel config ({type(err).__name__}: "
                             f"{str(err).splitlines()[0] if str(err) else ''})") from None
    c = probe.config
    size = c.sample_size
    if isinstance(size, (list, tuple)):
        if len(set(size)) != 1:
            raise UserModelError(f"{path}: sample_size {list(size)} is not square; the book's attention grids "
                                 "and images are square")
        size = size[0]
    if not isinstance(size, int) or size < 2:
        raise UserModelError(f"{path}: sample_size {size!r} must be an integer image side")
    downsamples = len(c.block_out_channels) - 1
    if size % 2 ** downsamples:
        raise UserModelError(f"{path}: sample_size {size} is not divisible by 2**{downsamples} for "
                             f"{len(c.block_out_channels)} blocks")
    if c.out_channels != c.in_channels:
        raise UserModelError(f"{path}: out_channels {c.out_channels} differs from in_channels {c.in_channels}; "
                             "the book reads the output as the predicted noise of the input")
    if c.num_class_embeds is not None or c.class_embed_type is not None:
        raise UserModelError(f"{path}: a class-conditional UNet2DModel (class_embed_type / num_class_embeds); "
                             "the book analyses unconditional models")
    return {**dict(c), "sample_size": size}


def image_shape(model_dir) -> tuple[int, int]:
    """(side, channels) of the images the model takes, from its config."""
    c = read_config(model_dir)
    return int(c["sample_size"]), int(c["in_channels"])


def weight_files(model_dir) -> list[Path]:
    """The weight files of the UNet (shards included); a one-line error when there are none."""
    folder = unet_folder(model_dir)
    index = [folder / n for n in WEIGHTS[2:] if (folder / n).is_file()]
    if index:
        shards = sorted(set(_json(index[0]).get("weight_map", {}).values()))
        missing = [s for s in shards if not (folder / s).is_file()]
        if missing:
            raise UserModelError(f"{index[0]}: weight shard {missing[0]!r} is missing")
        return [index[0]] + [folder / s for s in shards]
    found = [folder / n for n in WEIGHTS[:2] if (folder / n).is_file()]
    if not found:
        raise UserModelError(f"{folder}: no weights beside config.json (expected {WEIGHTS[0]} or {WEIGHTS[1]})")
    return found[:1]


def scheduler_source(model_dir) -> str:
    """Where the noise schedule comes from, for the page: the file, or diffusers' default."""
    path = scheduler_file(model_dir)
    return str(path) if path else "none found: diffusers' default DDPMScheduler (linear betas, 1,000 steps)"


def load_scheduler(model_dir) -> DDPMScheduler:
    """The model's schedule as a ``DDPMScheduler`` (the same betas; DDIM sampling reads it the same way)."""
    path = scheduler_file(model_dir)
    if path is None:
        return DDPMScheduler()
    config = _json(path)
    try:
        scheduler = DDPMScheduler.from_config(config)
    except Exception as err:                          # as for the UNet: one line naming the file
        raise UserModelError(f"{path}: not a valid scheduler config ({type(err).__name__}: {err})") from None
    if scheduler.config.prediction_type != "epsilon":
        raise UserModelError(f"{path}: prediction_type is {scheduler.config.prediction_type!r}; the book's "
                             "measures read the UNet's output as the predicted noise ('epsilon')")
    return scheduler


def model_key(model_dir) -> str:
    """``yours-<16 hex>``: a hash of the config, the weights' bytes and the scheduler config, so results
    computed on one set of weights are never served for another."""
    files = [unet_folder(model_dir) / "config.json", *weight_files(model_dir)]
    sched = scheduler_file(model_dir)
    return "yours-" + cache.files_fingerprint(files + ([sched] if sched else []))


def load_user_model(model_dir, device: str = "cpu") -> tuple[UNet2DModel, DDPMScheduler]:
    """(unet in eval mode on ``device``, scheduler) of a ``save_pretrained`` folder, strictly checked.

    diffusers only warns about weights the config has no place for, or places the weights leave empty
    (they are then freshly initialised); either is an error here, since the book would analyse noise.
    """
    size = read_config(model_dir)["sample_size"]
    files = weight_files(model_dir)
    folder = unet_folder(model_dir)
    quiet = logging.getLogger("diffusers")
    level = quiet.level
    quiet.setLevel(logging.ERROR)                     # its load report is checked below, not printed
    try:
        unet, info = UNet2DModel.from_pretrained(str(folder), local_files_only=True, output_loading_info=True,
                                                 low_cpu_mem_usage=False)
    except (RuntimeError, ValueError, OSError, KeyError) as err:
        lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
        detail = next((ln for ln in lines if "mismatch" in ln or "missing" in ln), lines[0] if lines else "")
        raise UserModelError(f"{files[0]}: weights do not match config.json ({detail[:300]})") from None
    finally:
        quiet.setLevel(level)
    for what in ("missing_keys", "unexpected_keys", "mismatched_keys"):
        keys = list(info.get(what) or [])
        if keys:
            label = what.replace("_keys", "").replace("unexpected", "without a place in the config")
            raise UserModelError(f"{files[0]}: weights do not match config.json ({len(keys)} parameter(s) "
                                 f"{label}, e.g. {keys[0]})")
    scheduler = load_scheduler(model_dir)
    unet.register_to_config(sample_size=size)         # [32, 32] -> 32: every site shape reads one side
    return unet.to(device).eval(), scheduler
