"""Configuration: one frozen dataclass per concern, named profiles, validation.

    cfg = circuitnb.core.config.load("quick", timesteps=[50, 500], seed=1)
    cfg = load("smoke", **{"vae.image_size": 32}, sae=dict(steps=100))
    cfg = load("smoke", part="sae", steps=100)          # a Part IV notebook's own names

Every field of every section can be overridden: Part I's by its bare name, the other parts' by
``<part>.<field>`` (:mod:`circuitnb.core.names`). ``load`` rejects unknown names, wrong types and
out-of-range values *before* any compute, with a message naming the parameter and what is allowed
(STYLE §3). The same object reaches data, training, hooks and experiments, and its hash keys the
caches (see :func:`config_hash`).
"""
from __future__ import annotations

import ast
import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from circuitnb.core.names import (
    FIELDS,
    PART_TITLES,
    PARTS,
    SECTIONS,
    ConfigError,
    display_name,
    field_value,
    key_name,
    lookup,
    misnamed,
    notebook_name,
    notebook_part,
    qualify,
)
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
    "override_names", "PARTS", "PART_TITLES", "display_name", "key_name", "lookup", "qualify", "misnamed",
    "field_value", "notebook_part", "notebook_name",
]


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
                  vae=dict(image_size=16, n_images=400, n_analysis=64, n_samples=16, widths=(8, 16, 16), latent_dim=6,
                           hidden=32, steps=40, disc_hidden=32, disc_layers=2, traversal_steps=5, patch_units=4,
                           fvae_votes=40, dci_trees=1),
                  tabular=dict(replicates=2, world_rows=300, latent_dim=4, hidden=16, steps=40, batch_size=32,
                               disc_hidden=16, disc_layers=2),
                  sae=dict(replicates=2, image_size=16, n_images=300, n_analysis=64, widths=(8, 16, 16), latent_dim=4,
                           hidden=32, steps=40, batch_size=32, auxk_k=16, dead_window=128, n_snapshots=4,
                           dci_trees=1),
                  mri=dict(replicates=2, image_size=16, n_subjects=10, min_lesion_px=4, widths=(8, 16), latent_dim=8,
                           heads=2, steps=40, batch_size=16, mc_passes=4, n_snapshots=4, calibration_bins=5)),
    "quick": dict(),
    "paper": dict(image_size=64, block_out_channels=(64, 128, 256), norm_num_groups=32,
                  train_steps=30_000, batch_size=64, learning_rate=2e-4, warmup_steps=500,
                  checkpoint_every=1000, n_intervention_samples=100,
                  vae=dict(image_size=64, n_images=20_000, n_analysis=2000, n_samples=500, widths=(32, 32, 64, 64),
                           hidden=256, steps=100_000, batch_size=64, lr=1e-4, disc_hidden=1000, disc_layers=6,
                           patch_units=64, fvae_votes=10_000, dci_trees=100),
                  tabular=dict(world_rows=10_000, latent_dim=10, hidden=256, steps=30_000, batch_size=256, lr=1e-3,
                               disc_hidden=1000, disc_layers=6),
                  sae=dict(image_size=64, n_images=20_000, n_analysis=2000, widths=(32, 32, 64, 64), steps=42_000,
                           decay_fraction=1 / 3, dead_window=20_000, n_snapshots=12, dci_trees=100),
                  mri=dict(image_size=64, n_subjects=200, widths=(32, 64, 128), latent_dim=128, heads=8, steps=30_000,
                           batch_size=64, lr=2e-4, mc_passes=50, n_snapshots=12)),
}


def override_names() -> dict[str, str]:
    """Every accepted override name (Part I's bare, the other parts' qualified) with its help text."""
    return {name: f.metadata["help"] for name, (_, f) in FIELDS.items()}


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


def _qualified(overrides: dict[str, Any], part: str | None) -> dict[str, Any]:
    """``overrides`` keyed by qualified field names: a part's name maps to a dict of its fields
    (``vae=dict(image_size=32)``), ``"vae.image_size"`` stands as it is, and a bare name is Part I's,
    or ``part``'s own when that part has the field."""
    out: dict[str, Any] = {}
    for name, value in overrides.items():
        if name in PARTS:
            if not isinstance(value, dict):
                raise ConfigError(f"parameter {name!r} is {PART_TITLES[name]}'s section: give a dict of its fields, "
                                  f"e.g. {name}=dict(steps=100), or qualified names such as '{name}.steps'")
            pairs = [(qualify(f"{name}.{k}"), v) for k, v in value.items()]
        else:
            pairs = [(qualify(name, part), value)]
        for qualified, v in pairs:
            if qualified in out:
                raise ConfigError(f"parameter {qualified!r} is given twice")
            out[qualified] = v
    return out


def load(profile: str = "quick", part: str | None = None, **overrides: Any) -> Config:
    """Build a validated :class:`Config` from a named profile plus overrides.

        cfg = load("smoke", image_size=32, timesteps=[100, 900])     # Part I's fields: bare names
        cfg = load("smoke", **{"vae.image_size": 32})                 # another part's: qualified ...
        cfg = load("smoke", vae=dict(image_size=32))                  # ... or nested
        cfg = load("smoke", part="vae", image_size=32)                # ... or bare, inside that part

    With ``part``, a bare name means that part's field when it has one, else Part I's (what a
    part's notebook passes). An override of ``None`` keeps the profile's value (notebooks'
    parameters default to None). Raises :class:`ConfigError` naming the offending parameter.
    """
    if profile not in PROFILES:
        raise ConfigError(f"parameter 'profile': unknown profile {profile!r}; choose one of {sorted(PROFILES)}")
    if part is not None and part not in PARTS:
        raise ConfigError(f"parameter 'part' = {part!r}: choose one of {list(PARTS)} (None: Part I's names only)")
    given = _qualified(overrides, part)
    values = {**_qualified(PROFILES[profile], None),
              **{name: value for name, value in given.items() if value is not None}}   # None: the profile's
    parts: dict[str, dict] = {s: {} for s in SECTIONS}
    for name, value in values.items():
        section, f = FIELDS[name]
        value = _coerce(name, f, value)
        check = f.metadata["check"]
        if check is not None and not check(value):
            raise ConfigError(f"parameter {name!r} = {value!r} is out of range; allowed: {f.metadata['allowed']}")
        parts[section][f.name] = value
    cfg = Config(profile=profile, **{s: cls(**parts[s]) for s, cls in SECTIONS.items()})
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
    if v.n_analysis >= v.n_images or v.n_samples > v.n_analysis:
        raise ConfigError(f"parameters 'vae.n_samples' = {v.n_samples} <= 'vae.n_analysis' = "
                          f"{v.n_analysis} < 'vae.n_images' = {v.n_images} must hold")
    if v.image_size % 2 ** len(v.widths):
        raise ConfigError(f"parameter 'vae.image_size' = {v.image_size} must be divisible by "
                          f"2**{len(v.widths)} for {len(v.widths)} 'vae.widths'")
    sa = cfg.sae
    if sa.n_analysis >= sa.n_images:
        raise ConfigError(f"parameter 'sae.n_analysis' = {sa.n_analysis} must be smaller than 'sae.n_images' = "
                          f"{sa.n_images} (the rest are the training images)")
    if sa.image_size % 2 ** len(sa.widths):
        raise ConfigError(f"parameter 'sae.image_size' = {sa.image_size} must be divisible by "
                          f"2**{len(sa.widths)} for {len(sa.widths)} 'sae.widths'")
    from circuitnb.core import readings
    tau = readings.value(cfg, "dead_threshold")
    if tau not in sa.dead_fractions:
        raise ConfigError(f"parameter 'readings' picks dead_threshold {tau:g}, which is not "
                          f"one of 'sae.dead_fractions' {sa.dead_fractions}: add it there")
    mr = cfg.mri
    if mr.image_size % 2 ** len(mr.widths) or mr.widths[-1] % mr.heads:
        raise ConfigError(f"parameters 'mri.image_size' = {mr.image_size} must be divisible by "
                          f"2**{len(mr.widths)} and 'mri.heads' = {mr.heads} must divide the last of "
                          f"'mri.widths' {mr.widths}")
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
    current = {name: field_value(cfg, name) for name in FIELDS}
    return load(cfg.profile, **{**current, **_qualified(overrides, None)})


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
