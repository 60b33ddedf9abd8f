"""Configuration: one frozen dataclass per concern, named profiles, validation.

    cfg = circuitnb.config.load("quick", timesteps=[50, 500], seed=1)

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
import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Callable

from circuitnb.core.errors import UserError

__all__ = [
    "ConfigError", "DataConfig", "ModelConfig", "TrainConfig", "AnalysisConfig",
    "RunConfig", "VaeConfig", "Config", "PROFILES", "load", "config_hash", "override_names",
]


class ConfigError(UserError, ValueError):
    """A user-supplied parameter is unknown, mistyped or out of range."""


def _spec(default: Any, help: str, check: Callable[[Any], bool] | None = None,
          allowed: str = "") -> Any:
    # `check` validates the (already type-checked) value; `allowed` is the
    # human description that goes into the error message.
    return field(default=default, metadata={"help": help, "check": check, "allowed": allowed})


def _pos(x) -> bool:
    return x > 0


@dataclass(frozen=True)
class DataConfig:
    """What the models are trained and analysed on (paper §3.1)."""
    image_size: int = _spec(32, "side of the square images in pixels",
                            lambda v: 8 <= v <= 256 and v % 8 == 0, "a multiple of 8 in [8, 256]")
    n_images: int = _spec(2000, "images per dataset (paper: 2,000 synthetic + 2,000 CelebA)",
                          lambda v: 8 <= v <= 250_000, "an integer in [8, 250000]")
    celeba_root: str = _spec("", "CelebA folder (official layout); '' -> $CIRCUITNB_CELEBA, "
                                 "else the scikit-image LFW faces as a stand-in")
    match_attributes: bool = _spec(True, "pick CelebA images whose attributes match the synthetic "
                                         "set's distribution, where attribute rows exist")
    n_analysis: int = _spec(200, "of the n_images, how many are held out for analysis (the last ones; "
                                 "no model ever trains on them)", lambda v: 2 <= v <= 100_000,
                            "an integer in [2, 100000]")


@dataclass(frozen=True)
class ModelConfig:
    """The DDPM: a diffusers UNet2DModel with 8 heads in each of 3 attention layers (§3.1).

    Attention sits at the deepest resolution: one layer in the last encoder
    block and ``layers_per_block + 1`` in the first decoder block, which with
    ``layers_per_block=1`` and no mid-block attention gives exactly 3 layers.
    """
    block_out_channels: tuple = _spec((32, 64, 128), "channels of the encoder blocks (the last is "
                                      "the attention width; paper: 256)",
                                      lambda v: 2 <= len(v) <= 5 and all(isinstance(c, int) and c >= 8 for c in v),
                                      "2 to 5 integers >= 8")
    layers_per_block: int = _spec(1, "resnet layers per encoder block", lambda v: 1 <= v <= 4, "1 to 4")
    n_heads: int = _spec(8, "attention heads per attention layer (paper: 8)", lambda v: 1 <= v <= 64, "1 to 64")
    mid_attention: bool = _spec(False, "add the mid block's attention layer (a 4th layer)")
    norm_num_groups: int = _spec(8, "GroupNorm groups", _pos, "a positive integer")
    num_train_timesteps: int = _spec(1000, "diffusion steps (paper: 1,000)", lambda v: 10 <= v <= 10_000,
                                     "an integer in [10, 10000]")
    beta_schedule: str = _spec("squaredcos_cap_v2", "noise schedule (paper: cosine)",
                               lambda v: v in ("squaredcos_cap_v2", "linear", "scaled_linear"),
                               "'squaredcos_cap_v2', 'linear' or 'scaled_linear'")


@dataclass(frozen=True)
class TrainConfig:
    """AdamW + EMA training of the noise-prediction objective."""
    train_steps: int = _spec(400, "optimizer steps per model", lambda v: 1 <= v <= 10_000_000, "an integer >= 1")
    batch_size: int = _spec(32, "images per step", lambda v: 1 <= v <= 4096, "an integer in [1, 4096]")
    learning_rate: float = _spec(5e-4, "AdamW peak learning rate", lambda v: 0 < v < 1, "a float in (0, 1)")
    warmup_steps: int = _spec(100, "linear learning-rate warm-up steps", lambda v: v >= 0, "an integer >= 0")
    weight_decay: float = _spec(0.0, "AdamW weight decay", lambda v: 0 <= v < 1, "a float in [0, 1)")
    ema_max_decay: float = _spec(0.9999, "EMA decay ceiling (warm-up as in diffusers' example)",
                                 lambda v: 0 <= v < 1, "a float in [0, 1)")
    grad_clip: float = _spec(1.0, "gradient-norm clip", _pos, "a positive float")
    checkpoint_every: int = _spec(200, "steps between resumable checkpoints", _pos, "a positive integer")
    n_snapshots: int = _spec(4, "EMA weights kept at this many evenly spaced training steps, the last one "
                                "final (quantities over training, the paper's future work)",
                             lambda v: 1 <= v <= 100, "an integer in [1, 100]")


@dataclass(frozen=True)
class AnalysisConfig:
    """What the notebooks measure (§3.2-3.3)."""
    timesteps: tuple = _spec((100, 300, 600, 900), "timesteps analysed (paper: 100/300/600/900)",
                             lambda v: 1 <= len(v) <= 1000 and len(set(v)) == len(v)
                             and all(isinstance(t, int) and not isinstance(t, bool) and 0 <= t <= 999 for t in v),
                             "a non-empty list of distinct integers in [0, 999]")
    n_samples: int = _spec(100, "images per condition (paper: 100)", lambda v: 2 <= v <= 100_000,
                           "an integer in [2, 100000]")
    n_bootstrap: int = _spec(2000, "bootstrap resamples for CIs", lambda v: 100 <= v <= 1_000_000,
                             "an integer in [100, 1000000]")
    alpha: float = _spec(0.05, "family-wise significance level", lambda v: 0 < v < 1, "a float in (0, 1)")
    head_t: int = _spec(300, "timestep of Table 2 (heads) and Table 3 (ablations); paper: 300",
                        lambda v: 0 <= v <= 9_999, "an integer in [0, 9999]")
    n_permutations: int = _spec(1000, "permutations of the head-function tests (raised automatically until "
                                      "Bonferroni over all heads x functions can pass)",
                                lambda v: 100 <= v <= 1_000_000, "an integer in [100, 1000000]")
    readings: tuple = _spec((), "readings of undefined quantities the scorecard uses, as 'quantity=reading' "
                                "(e.g. ['ife=knn', 'ablation=bypass']); others keep their default "
                                "(circuitnb.core.readings; chapter 12 shows every reading)",
                            lambda v: all(_valid_reading(r) for r in v),
                            "a list of 'quantity=reading' from circuitnb.core.readings.READINGS")
    n_phase_timesteps: int = _spec(20, "timesteps of the profile segmented into denoising phases (§4.5)",
                                   lambda v: 6 <= v <= 1000, "an integer in [6, 1000]")


def _valid_reading(item) -> bool:
    from circuitnb.core.readings import READINGS
    q, _, r = str(item).partition("=")
    return q in READINGS and r in READINGS[q].options


_KINDS_VAE = ("vae", "beta_vae", "factor_vae", "beta_tc_vae")     # circuitnb.modeling.vae.KINDS (no upward import)


@dataclass(frozen=True)
class VaeConfig:
    """Part II: the VAE causal-intervention framework (arXiv:2505.03530) on dSprites-style shapes."""
    vae_kinds: tuple = _spec(_KINDS_VAE, "architectures trained and compared", lambda v: 1 <= len(v) == len(set(v))
                             and set(v) <= set(_KINDS_VAE), f"distinct names out of {_KINDS_VAE}")
    vae_datasets: tuple = _spec(("shapes", "causal"), "'shapes' (dSprites-style benchmark) and/or 'causal' "
                                "(shapes with a stated causal graph)", lambda v: 1 <= len(v) == len(set(v))
                                and set(v) <= {"shapes", "causal"}, "'shapes' and/or 'causal'")
    vae_image_size: int = _spec(32, "side of the shape images (paper: dSprites' 64)", lambda v: v in (16, 32, 64),
                                "16, 32 or 64")
    vae_n_images: int = _spec(4000, "images drawn per dataset and replicate", lambda v: 64 <= v <= 1_000_000,
                              "an integer in [64, 1000000]")
    vae_n_analysis: int = _spec(500, "of them, held out for analysis (the last ones, the base seed's draw)",
                                lambda v: 16 <= v <= 100_000, "an integer in [16, 100000]")
    vae_n_samples: int = _spec(50, "held-out images per model in the intervention analyses",
                               lambda v: 8 <= v <= 100_000, "an integer in [8, 100000]")
    vae_widths: tuple = _spec((16, 16, 32, 32), "conv channels (paper profile: Higgins et al.'s 32-32-64-64)",
                              lambda v: 2 <= len(v) <= 5 and all(isinstance(c, int) and c >= 4 for c in v),
                              "2 to 5 integers >= 4")
    latent_dim: int = _spec(10, "latent dimensions (dSprites literature: 10)", lambda v: 2 <= v <= 256, "2 to 256")
    vae_hidden: int = _spec(128, "units of the fully connected layer (paper profile: 256)",
                            lambda v: 8 <= v <= 4096, "8 to 4096")
    vae_steps: int = _spec(400, "optimizer steps per VAE", lambda v: 1 <= v <= 10_000_000, "an integer >= 1")
    vae_batch_size: int = _spec(32, "images per VAE step (paper profile: 64)", lambda v: 2 <= v <= 4096,
                                "an integer in [2, 4096]")
    vae_lr: float = _spec(1e-3, "Adam learning rate of the VAEs", lambda v: 0 < v < 1, "a float in (0, 1)")
    vae_beta: float = _spec(4.0, "beta of beta-VAE and beta-TC-VAE", lambda v: 0 < v <= 1000, "a float in (0, 1000]")
    vae_gamma: float = _spec(35.0, "FactorVAE's TC weight gamma (Kim & Mnih: 35 on dSprites)",
                             lambda v: 0 < v <= 1000, "a float in (0, 1000]")
    disc_hidden: int = _spec(256, "FactorVAE discriminator width (paper profile: Kim & Mnih's 1000)", _pos,
                             "a positive integer")
    disc_layers: int = _spec(4, "FactorVAE discriminator depth (paper profile: Kim & Mnih's 6)",
                             lambda v: 1 <= v <= 12, "1 to 12")
    traversal_steps: int = _spec(9, "grid points of each latent traversal", lambda v: 3 <= v <= 101, "3 to 101")
    traversal_range: float = _spec(2.5, "traversal half-width, in prior standard deviations",
                                   lambda v: 0 < v <= 10, "a float in (0, 10]")
    patch_units: int = _spec(8, "hidden units patched one by one per site (the most variable ones)",
                             lambda v: 1 <= v <= 4096, "1 to 4096")
    fvae_votes: int = _spec(200, "FactorVAE-score training votes (evaluation: half as many)",
                            lambda v: 20 <= v <= 100_000, "an integer in [20, 100000]")
    dci_trees: int = _spec(10, "boosting stages of DCI's tree classifiers (paper profile: "
                           "disentanglement_lib's 100)", lambda v: 1 <= v <= 10_000, "1 to 10000")


_DEVICE_RE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


@dataclass(frozen=True)
class RunConfig:
    """Where and how reproducibly to run."""
    seed: int = _spec(0, "seed for data, initialisation, training and analysis",
                      lambda v: 0 <= v < 2**32, "an integer in [0, 2**32)")
    device: str = _spec("auto", "'auto' (CUDA when present), 'cpu', 'cuda', 'cuda:N' or 'mps'",
                        lambda v: bool(_DEVICE_RE.match(v)), "'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'")
    cache_dir: str = _spec("", "models and results cache; '' -> $CIRCUITNB_CACHE, else ~/.cache/circuitnb")
    replicates: int = _spec(3, "models trained per dataset, each with its own seed (synthetic: and its own "
                               "data draw); the model is the unit of every dataset contrast",
                            lambda v: 1 <= v <= 100, "an integer in [1, 100]")


@dataclass(frozen=True)
class Config:
    profile: str
    data: DataConfig
    model: ModelConfig
    train: TrainConfig
    analysis: AnalysisConfig
    run: RunConfig
    vae: VaeConfig

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
             "analysis": AnalysisConfig, "run": RunConfig, "vae": VaeConfig}

# Named presets (STYLE §3). `smoke` makes the whole book run in minutes for CI;
# `quick` is the CPU default, sized from measurements on a 2-core machine
# (2,669,795 parameters; ~1.45 s per batch of 32 at 32x32 on one thread, two models at a
# time): 3 replicates x 2 datasets x 400 steps train in ~30 min, so the quick book fits an
# hour from an empty cache (issue 13; the cost of 400 instead of 1,200 steps is measured in
# chapter 2's noise R^2 by timestep); `paper` is the paper's
# scale (2,000 + 2,000 images, 256-dim hidden, 8 heads x 3 layers) for a GPU.
PROFILES: dict[str, dict[str, Any]] = {
    "smoke": dict(image_size=16, n_images=64, n_analysis=16, block_out_channels=(16, 32, 32), train_steps=30,
                  batch_size=16, warmup_steps=5, checkpoint_every=10, n_samples=8, n_bootstrap=200,
                  replicates=2,
                  vae_image_size=16, vae_n_images=400, vae_n_analysis=64, vae_n_samples=16, vae_widths=(8, 16, 16),
                  latent_dim=6, vae_hidden=32, vae_steps=40, disc_hidden=32, disc_layers=2, traversal_steps=5,
                  patch_units=4, fvae_votes=40, dci_trees=1),
    "quick": dict(),
    "paper": dict(image_size=64, block_out_channels=(64, 128, 256), norm_num_groups=32,
                  train_steps=30_000, batch_size=64, learning_rate=2e-4, warmup_steps=500,
                  checkpoint_every=1000,
                  vae_image_size=64, vae_n_images=20_000, vae_n_analysis=2000, vae_n_samples=500,
                  vae_widths=(32, 32, 64, 64), vae_hidden=256, vae_steps=100_000, vae_batch_size=64, vae_lr=1e-4,
                  disc_hidden=1000, disc_layers=6, patch_units=64, fvae_votes=10_000, dci_trees=100),
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
    kind = type(f.default)
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
    if cfg.analysis.n_samples > d.n_analysis:
        raise ConfigError(f"parameter 'n_samples' = {cfg.analysis.n_samples} must be at most 'n_analysis' = "
                          f"{d.n_analysis}: analysis uses held-out images only")
    if any(t >= m.num_train_timesteps for t in cfg.analysis.timesteps):
        raise ConfigError(f"parameter 'timesteps' must be < num_train_timesteps = {m.num_train_timesteps}")
    if d.celeba_root and not (Path(d.celeba_root).expanduser() / "img_align_celeba").is_dir():
        raise ConfigError(f"parameter 'celeba_root' = {d.celeba_root!r}: no 'img_align_celeba' folder there "
                          "(expected CelebA's official layout)")


def config_hash(*sections: Any, extra: Any = None, length: int = 16) -> str:
    """Stable hex digest of dataclass sections (and any JSON-able extra), for cache keys."""
    payload = [dataclasses.asdict(s) if dataclasses.is_dataclass(s) else s for s in sections]
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
