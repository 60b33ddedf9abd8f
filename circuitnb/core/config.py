"""Configuration: one frozen dataclass per concern, named profiles, validation.

    cfg = circuitnb.core.config.load("quick", timesteps=[50, 500], seed=1)

Every field of every section can be overridden by its (unique) name. ``load``
rejects unknown names, wrong types and out-of-range values *before* any compute,
with a message naming the parameter and what is allowed (STYLE §3). The same
object reaches data, training, hooks and experiments, and its hash keys the
caches (see :func:`config_hash`).
"""
from __future__ import annotations

import ast
import dataclasses
import difflib
import hashlib
import json
import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from circuitnb.core.errors import UserError
from circuitnb.core.sections import (
    AnalysisConfig,
    DataConfig,
    ModelConfig,
    MriConfig,
    RunConfig,
    SaeConfig,
    TabularConfig,
    TrainConfig,
    VaeConfig,
)

__all__ = [
    "ConfigError", "DataConfig", "ModelConfig", "TrainConfig", "AnalysisConfig",
    "RunConfig", "VaeConfig", "TabularConfig", "SaeConfig", "MriConfig", "Config", "PROFILES", "load", "config_hash",
    "override_names",
]


class ConfigError(UserError, ValueError):
    """A user-supplied parameter is unknown, mistyped or out of range."""


@dataclass(frozen=True)
class Config:
    profile: str
    data: DataConfig
    model: ModelConfig
    train: TrainConfig
    analysis: AnalysisConfig
    run: RunConfig
    vae: VaeConfig
    tabular: TabularConfig
    sae: SaeConfig
    mri: MriConfig

    # --- derived values, computed, never stored -------------------------------------------
    @property
    def device(self) -> str:
        """The torch device string; 'auto' resolves to CUDA when present."""
        if self.run.device != "auto":
            return self.run.device
        import torch
        return "cuda" if torch.cuda.is_available() else "cpu"

    @property
    def cache_path(self) -> Path:
        root = self.run.cache_dir or os.environ.get("CIRCUITNB_CACHE") or Path.home() / ".cache" / "circuitnb"
        return Path(root).expanduser()

    @property
    def celeba_root(self) -> str:
        """The CelebA folder in force: the parameter, else $CIRCUITNB_CELEBA, else ''."""
        return self.data.celeba_root or os.environ.get("CIRCUITNB_CELEBA", "")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


_SECTIONS = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig,
             "analysis": AnalysisConfig, "run": RunConfig, "vae": VaeConfig, "tabular": TabularConfig,
             "sae": SaeConfig, "mri": MriConfig}

# Named presets (STYLE §3). `smoke` makes the whole book run in minutes for CI;
# `quick` is the CPU default (the field defaults): its training options are the ones that lowered the
# held-out loss fastest per CPU-second among those compared side by side on one seed and data
# (benchmarks/convergence_speed.py: bf16 where native, learning rate 1e-3, batch 16, plain L_simple),
# trained as long as a 2-core build can afford (3,000 steps, ~0.32 s each on one thread); chapter 1 says
# whether each model met the convergence rule. `paper` is the paper's scale (2,000 + 2,000 images,
# 256-dim hidden, 8 heads x 3 layers) for a GPU.
PROFILES: dict[str, dict[str, Any]] = {
    "smoke": dict(image_size=16, n_images=64, n_analysis=16, block_out_channels=(16, 32, 32), train_steps=30,
                  batch_size=16, learning_rate=5e-4, warmup_steps=5, checkpoint_every=10, n_samples=8, n_bootstrap=200,
                  replicates=2,
                  vae_image_size=16, vae_n_images=400, vae_n_analysis=64, vae_n_samples=16, vae_widths=(8, 16, 16),
                  latent_dim=6, vae_hidden=32, vae_steps=40, disc_hidden=32, disc_layers=2, traversal_steps=5,
                  patch_units=4, fvae_votes=40, dci_trees=1,
                  tab_replicates=2, tab_world_rows=300, tab_latent_dim=4, tab_hidden=16, tab_steps=40,
                  tab_batch_size=32, tab_disc_hidden=16, tab_disc_layers=2,
                  sae_replicates=2, sae_image_size=16, sae_n_images=300, sae_n_analysis=64, sae_widths=(8, 16, 16),
                  sae_latent_dim=4, sae_hidden=32, sae_steps=40, sae_batch_size=32, sae_auxk_k=16,
                  sae_dead_window=128, sae_n_snapshots=4, sae_dci_trees=1,
                  mri_replicates=2, mri_image_size=16, mri_n_subjects=10, mri_min_lesion_px=4, mri_widths=(8, 16),
                  mri_latent_dim=8, mri_heads=2, mri_steps=40, mri_batch_size=16, mri_mc_passes=4,
                  mri_n_snapshots=4, mri_calibration_bins=5),
    "quick": dict(),
    "paper": dict(image_size=64, block_out_channels=(64, 128, 256), norm_num_groups=32,
                  train_steps=30_000, batch_size=64, learning_rate=2e-4, warmup_steps=500,
                  checkpoint_every=1000, n_intervention_samples=100,
                  vae_image_size=64, vae_n_images=20_000, vae_n_analysis=2000, vae_n_samples=500,
                  vae_widths=(32, 32, 64, 64), vae_hidden=256, vae_steps=100_000, vae_batch_size=64, vae_lr=1e-4,
                  disc_hidden=1000, disc_layers=6, patch_units=64, fvae_votes=10_000, dci_trees=100,
                  tab_world_rows=10_000, tab_latent_dim=10, tab_hidden=256, tab_steps=30_000, tab_batch_size=256,
                  tab_lr=1e-3, tab_disc_hidden=1000, tab_disc_layers=6,
                  sae_image_size=64, sae_n_images=20_000, sae_n_analysis=2000, sae_widths=(32, 32, 64, 64),
                  sae_steps=42_000, sae_decay_fraction=1 / 3, sae_dead_window=20_000, sae_n_snapshots=12,
                  sae_dci_trees=100,
                  mri_image_size=64, mri_n_subjects=200, mri_widths=(32, 64, 128), mri_latent_dim=128, mri_heads=8,
                  mri_steps=30_000, mri_batch_size=64, mri_lr=2e-4, mri_mc_passes=50, mri_n_snapshots=12),
}


def _field_index() -> dict[str, tuple[str, dataclasses.Field]]:
    index = {}
    for section, cls in _SECTIONS.items():
        for f in fields(cls):
            assert f.name not in index, f"duplicate config field name {f.name}"
            index[f.name] = (section, f)
    return index


_FIELDS = _field_index()


def override_names() -> dict[str, str]:
    """Every accepted override name with its help text."""
    return {name: f.metadata["help"] for name, (_, f) in _FIELDS.items()}


# Scalar field types: what a value may be, and how the error names it (ints are accepted as floats).
_SCALARS = {bool: ((bool,), "True or False"), int: ((int,), "an integer"), float: ((int, float), "a number"),
            str: ((str,), "a string")}


def _coerce(name: str, f: dataclasses.Field, value: Any) -> Any:
    """Type-check one override; strings that spell a list are parsed (papermill's
    ``-p timesteps "[50, 500]"`` arrives as a string)."""
    kind: Any = type(f.default)
    if kind is tuple:
        if isinstance(value, str):
            try:
                value = ast.literal_eval(value)
            except (ValueError, SyntaxError):
                raise ConfigError(f"parameter {name!r}: cannot parse {value!r} as a list") from None
        if isinstance(value, int) and not isinstance(value, bool):
            value = (value,)
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"parameter {name!r} must be a list, got {type(value).__name__} {value!r}")
        return tuple(value)
    if kind in _SCALARS:
        accepted, what = _SCALARS[kind]
        if not isinstance(value, accepted) or (kind is not bool and isinstance(value, bool)):  # True is no int
            raise ConfigError(f"parameter {name!r} must be {what}, got {type(value).__name__} {value!r}")
        return kind(value)
    raise AssertionError(f"unhandled field type {kind}")  # pragma: no cover


def load(profile: str = "quick", **overrides: Any) -> Config:
    """Build a validated :class:`Config` from a named profile plus overrides.

        cfg = load("smoke", image_size=32, timesteps=[100, 900])

    An override of ``None`` keeps the profile's value (notebooks' parameters
    default to None). Raises :class:`ConfigError` naming the offending parameter.
    """
    if profile not in PROFILES:
        raise ConfigError(f"parameter 'profile': unknown profile {profile!r}; choose one of {sorted(PROFILES)}")
    values = {**PROFILES[profile]}
    for name, value in overrides.items():
        if value is None:                    # a notebook parameter left at None: keep the profile's value
            if name not in _FIELDS:
                raise ConfigError(f"unknown parameter {name!r}; known: {', '.join(sorted(_FIELDS))}")
            continue
        if name not in _FIELDS:
            hint = difflib.get_close_matches(name, list(_FIELDS), n=1)
            raise ConfigError(f"unknown parameter {name!r}" + (f" (did you mean {hint[0]!r}?)" if hint else "")
                              + f"; known: {', '.join(sorted(_FIELDS))}")
        values[name] = value
    parts: dict[str, dict] = {s: {} for s in _SECTIONS}
    for name, value in values.items():
        section, f = _FIELDS[name]
        value = _coerce(name, f, value)
        check = f.metadata["check"]
        if check is not None and not check(value):
            raise ConfigError(f"parameter {name!r} = {value!r} is out of range; allowed: {f.metadata['allowed']}")
        parts[section][name] = value
    cfg = Config(profile=profile, **{s: cls(**parts[s]) for s, cls in _SECTIONS.items()})
    _check_consistency(cfg)
    _check_machine(cfg)
    return cfg


def _check_consistency(cfg: Config) -> None:
    """Cross-field rules, still before any compute."""
    m, d = cfg.model, cfg.data
    downsamples = len(m.block_out_channels) - 1
    if d.image_size % (2 ** downsamples):
        raise ConfigError(f"parameter 'image_size' = {d.image_size} must be divisible by 2**{downsamples} "
                          f"for {len(m.block_out_channels)} encoder blocks")
    width = m.block_out_channels[-1]
    if width % m.n_heads:
        raise ConfigError(f"parameter 'n_heads' = {m.n_heads} must divide the attention width {width} "
                          "(the last of 'block_out_channels')")
    if any(c % m.norm_num_groups for c in m.block_out_channels):
        raise ConfigError(f"parameter 'norm_num_groups' = {m.norm_num_groups} must divide every entry of "
                          f"'block_out_channels' {m.block_out_channels}")
    if d.n_analysis >= d.n_images:
        raise ConfigError(f"parameter 'n_analysis' = {d.n_analysis} must be smaller than 'n_images' = {d.n_images} "
                          "(the rest are the training images)")
    v = cfg.vae
    if v.vae_n_analysis >= v.vae_n_images or v.vae_n_samples > v.vae_n_analysis:
        raise ConfigError(f"parameters 'vae_n_samples' = {v.vae_n_samples} <= 'vae_n_analysis' = "
                          f"{v.vae_n_analysis} < 'vae_n_images' = {v.vae_n_images} must hold")
    if v.vae_image_size % 2 ** len(v.vae_widths):
        raise ConfigError(f"parameter 'vae_image_size' = {v.vae_image_size} must be divisible by "
                          f"2**{len(v.vae_widths)} for {len(v.vae_widths)} 'vae_widths'")
    sa = cfg.sae
    if sa.sae_n_analysis >= sa.sae_n_images:
        raise ConfigError(f"parameter 'sae_n_analysis' = {sa.sae_n_analysis} must be smaller than 'sae_n_images' = "
                          f"{sa.sae_n_images} (the rest are the training images)")
    if sa.sae_image_size % 2 ** len(sa.sae_widths):
        raise ConfigError(f"parameter 'sae_image_size' = {sa.sae_image_size} must be divisible by "
                          f"2**{len(sa.sae_widths)} for {len(sa.sae_widths)} 'sae_widths'")
    mr = cfg.mri
    if mr.mri_image_size % 2 ** len(mr.mri_widths) or mr.mri_widths[-1] % mr.mri_heads:
        raise ConfigError(f"parameters 'mri_image_size' = {mr.mri_image_size} must be divisible by "
                          f"2**{len(mr.mri_widths)} and 'mri_heads' = {mr.mri_heads} must divide the last of "
                          f"'mri_widths' {mr.mri_widths}")
    if cfg.analysis.n_samples > d.n_analysis:
        raise ConfigError(f"parameter 'n_samples' = {cfg.analysis.n_samples} must be at most 'n_analysis' = "
                          f"{d.n_analysis}: analysis uses held-out images only")
    if any(t >= m.num_train_timesteps for t in cfg.analysis.timesteps):
        raise ConfigError(f"parameter 'timesteps' must be < num_train_timesteps = {m.num_train_timesteps}")
    for name, value in (("model_dir", cfg.run.model_dir), ("images_dir", d.images_dir)):
        if value and not Path(value).expanduser().is_dir():
            raise ConfigError(f"parameter {name!r} = {value!r} is not a folder")
    if d.images_dir and not cfg.run.model_dir:
        raise ConfigError("parameter 'images_dir' is for a model of your own ('model_dir'); the book's models "
                          "are analysed on their held-out images")
    if d.celeba_root and not (Path(d.celeba_root).expanduser() / "img_align_celeba").is_dir():
        raise ConfigError(f"parameter 'celeba_root' = {d.celeba_root!r}: no 'img_align_celeba' folder there "
                          "(expected CelebA's official layout)")


def config_hash(*sections: Any, extra: Any = None, length: int = 16) -> str:
    """Stable hex digest of dataclass sections (and any JSON-able extra), for cache keys."""
    payload = [dataclasses.asdict(s) if dataclasses.is_dataclass(s) and not isinstance(s, type) else s
               for s in sections]
    text = json.dumps([payload, extra], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def with_overrides(cfg: Config, **overrides: Any) -> Config:
    """A validated copy of ``cfg`` with some fields changed (same rules as :func:`load`)."""
    current = {name: getattr(getattr(cfg, section), name) for name, (section, _) in _FIELDS.items()}
    return load(cfg.profile, **{**current, **overrides})


# --- what this machine can do: checked before any compute (the checks live in core.machine) ------
def _check_machine(cfg: Config) -> None:
    """Reject a device torch cannot see and sizes this machine cannot hold, at load."""
    from circuitnb.core import machine
    for check in (lambda: machine.device_problem(cfg.run.device), lambda: machine.memory_problem(cfg)):
        problem = check()                        # in order: the memory check needs a device torch sees
        if problem:
            raise ConfigError(problem)


def check_cache_dir(cfg: Config) -> Path:
    """The cache folder, after checking that this process can write there (call before any compute).

        check_cache_dir(cfg)      # ConfigError naming 'cache_dir' or $CIRCUITNB_CACHE otherwise
    """
    from circuitnb.core import machine
    origin = ("parameter 'cache_dir'" if cfg.run.cache_dir else
              "$CIRCUITNB_CACHE" if os.environ.get("CIRCUITNB_CACHE") else "the default cache folder")
    problem = machine.cache_dir_problem(cfg.cache_path, origin)
    if problem:
        raise ConfigError(problem)
    return cfg.cache_path
