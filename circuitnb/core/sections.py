"""The sections of the frozen config: one dataclass per concern, each field with its help and its check.

    DataConfig().n_images                  # 2000
    fields(AnalysisConfig)[0].metadata     # {"help": ..., "check": ..., "allowed": ...}

:mod:`circuitnb.core.config` assembles them into :class:`~circuitnb.core.config.Config`, holds the named
profiles and validates overrides against each field's ``check`` (one line naming the parameter).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable


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
    images_dir: str = _spec("", "with 'model_dir': a folder of images (png, jpg, ...) the model is analysed on, "
                                "resized to its size; '' -> the book's natural faces (CelebA or the LFW stand-in)")


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
    train_steps: int = _spec(3000, "optimizer steps per model", lambda v: 1 <= v <= 10_000_000, "an integer >= 1")
    batch_size: int = _spec(16, "images per step", lambda v: 1 <= v <= 4096, "an integer in [1, 4096]")
    learning_rate: float = _spec(1e-3, "AdamW peak learning rate", lambda v: 0 < v < 1, "a float in (0, 1)")
    warmup_steps: int = _spec(100, "linear learning-rate warm-up steps", lambda v: v >= 0, "an integer >= 0")
    weight_decay: float = _spec(0.0, "AdamW weight decay", lambda v: 0 <= v < 1, "a float in [0, 1)")
    ema_max_decay: float = _spec(0.9999, "EMA decay ceiling (warm-up as in diffusers' example)",
                                 lambda v: 0 <= v < 1, "a float in [0, 1)")
    grad_clip: float = _spec(1.0, "gradient-norm clip", _pos, "a positive float")
    checkpoint_every: int = _spec(500, "steps between resumable checkpoints", _pos, "a positive integer")
    n_snapshots: int = _spec(4, "EMA weights kept at this many evenly spaced training steps, the last one "
                                "final (convergence, and quantities over training: the paper's future work)",
                             lambda v: 1 <= v <= 100, "an integer in [1, 100]")
    precision: str = _spec("auto", "training precision: 'auto' (bf16 autocast where the device has native bf16, "
                                   "else fp32), 'fp32' or 'bf16'; weights, EMA, loss and analysis stay fp32",
                           lambda v: v in ("auto", "fp32", "bf16"), "'auto', 'fp32' or 'bf16'")
    loss_weighting: str = _spec("mse", "per-timestep loss weight: 'mse' (Ho et al.'s L_simple) or 'min_snr' "
                                       "(Min-SNR-gamma, Hang et al. 2023)",
                                lambda v: v in ("mse", "min_snr"), "'mse' or 'min_snr'")
    snr_gamma: float = _spec(5.0, "gamma of Min-SNR weighting (Hang et al.'s recommended 5)", _pos,
                             "a positive float")
    lr_schedule: str = _spec("constant", "learning rate after warm-up: 'constant' or 'cosine' (to 0 at "
                                         "train_steps)", lambda v: v in ("constant", "cosine"),
                             "'constant' or 'cosine'")


@dataclass(frozen=True)
class AnalysisConfig:
    """What the notebooks measure (§3.2-3.3)."""
    timesteps: tuple = _spec((100, 300, 600, 900), "timesteps analysed (paper: 100/300/600/900)",
                             lambda v: 1 <= len(v) <= 1000 and len(set(v)) == len(v)
                             and all(isinstance(t, int) and not isinstance(t, bool) and 0 <= t <= 999 for t in v),
                             "a non-empty list of distinct integers in [0, 999]")
    n_samples: int = _spec(100, "images per condition (paper: 100)", lambda v: 2 <= v <= 100_000,
                           "an integer in [2, 100000]")
    n_intervention_samples: int = _spec(40, "of the n_samples images, how many chapter 6's interventions use per "
                                            "model (every intervention x timestep, patching, circuit size: the "
                                            "book's most expensive sweep; capped at n_samples; paper profile: 100)",
                                        lambda v: 2 <= v <= 100_000, "an integer in [2, 100000]")
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
    converged_tol: float = _spec(0.02, "a model is converged when its held-out loss moved (either way) by less "
                                       "than this fraction over the last quarter of training (2%: flat to within a few "
                                       "times the paired estimate's own 95% half-width, ~0.5% at 100 images)",
                                 lambda v: 0 < v < 1, "a float in (0, 1)")
    n_heldout_t: int = _spec(8, "timesteps drawn per held-out image (stratified) for the held-out loss and "
                                "bits/dim at each snapshot", lambda v: 1 <= v <= 1000, "an integer in [1, 1000]")


def _valid_reading(item) -> bool:
    from circuitnb.core.readings import READINGS
    q, _, r = str(item).partition("=")
    return q in READINGS and r in READINGS[q].options


_KINDS_VAE = ("vae", "beta_vae", "factor_vae", "beta_tc_vae")     # modeling.vae.model.KINDS (no upward import)


@dataclass(frozen=True)
class VaeConfig:
    """Part II: the VAE causal-intervention framework (arXiv:2505.03530) on dSprites-style shapes."""
    kinds: tuple = _spec(_KINDS_VAE, "architectures trained and compared", lambda v: 1 <= len(v) == len(set(v))
                         and set(v) <= set(_KINDS_VAE), f"distinct names out of {_KINDS_VAE}")
    datasets: tuple = _spec(("shapes", "causal"), "'shapes' (dSprites-style benchmark) and/or 'causal' "
                            "(shapes with a stated causal graph)", lambda v: 1 <= len(v) == len(set(v))
                            and set(v) <= {"shapes", "causal"}, "'shapes' and/or 'causal'")
    image_size: int = _spec(32, "side of the shape images (paper: dSprites' 64)", lambda v: v in (16, 32, 64),
                            "16, 32 or 64")
    n_images: int = _spec(4000, "images drawn per dataset and replicate", lambda v: 64 <= v <= 1_000_000,
                          "an integer in [64, 1000000]")
    n_analysis: int = _spec(500, "of them, held out for analysis (the last ones, the base seed's draw)",
                            lambda v: 16 <= v <= 100_000, "an integer in [16, 100000]")
    n_samples: int = _spec(50, "held-out images per model in the intervention analyses",
                           lambda v: 8 <= v <= 100_000, "an integer in [8, 100000]")
    widths: tuple = _spec((16, 16, 32, 32), "conv channels (paper profile: Higgins et al.'s 32-32-64-64)",
                          lambda v: 2 <= len(v) <= 5 and all(isinstance(c, int) and c >= 4 for c in v),
                          "2 to 5 integers >= 4")
    latent_dim: int = _spec(10, "latent dimensions (dSprites literature: 10)", lambda v: 2 <= v <= 256, "2 to 256")
    hidden: int = _spec(128, "units of the fully connected layer (paper profile: 256)",
                        lambda v: 8 <= v <= 4096, "8 to 4096")
    steps: int = _spec(4000, "optimizer steps per VAE", lambda v: 1 <= v <= 10_000_000, "an integer >= 1")
    batch_size: int = _spec(32, "images per VAE step (paper profile: 64)", lambda v: 2 <= v <= 4096,
                            "an integer in [2, 4096]")
    lr: float = _spec(1e-3, "Adam learning rate of the VAEs", lambda v: 0 < v < 1, "a float in (0, 1)")
    beta: float = _spec(4.0, "beta of beta-VAE and beta-TC-VAE", lambda v: 0 < v <= 1000, "a float in (0, 1000]")
    gamma: float = _spec(35.0, "FactorVAE's TC weight gamma (Kim & Mnih: 35 on dSprites)",
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


# circuitnb.modeling.tabular.TAB_KINDS and circuitnb.data.tabular.TAB_DATASETS (no upward import).
_KINDS_TAB = ("vae", "beta_vae", "factor_vae", "beta_tc_vae", "dip_vae_ii")
_SETS_TAB = ("world", "heart", "penguins", "affairs", "anes96", "breast_cancer")


def _names_of(allowed: tuple) -> Callable[[Any], bool]:
    return lambda v: 1 <= len(v) == len(set(v)) and set(v) <= set(allowed)


@dataclass(frozen=True)
class TabularConfig:
    """Part III: MLP VAEs with a likelihood per column type on tables; quick values measured on 2 CPU
    cores to train every kind x set x replicate in minutes and meet the convergence rule."""
    datasets: tuple = _spec(("world", "penguins", "affairs", "anes96", "breast_cancer"), "tables trained and "
                            "compared: the synthetic 'world' (known DAG) and real sets shipped in packages "
                            "('heart' is offered but left out: its 222 training rows overfit, held-out loss "
                            "rising after ~300 steps)",
                            _names_of(_SETS_TAB), f"distinct names out of {_SETS_TAB}")
    kinds: tuple = _spec(_KINDS_TAB, "tabular VAE architectures", _names_of(_KINDS_TAB),
                         f"distinct names out of {_KINDS_TAB}")
    replicates: int = _spec(3, "seeds per (architecture, table); the model is the unit (abstract: 3)",
                            lambda v: 1 <= v <= 100, "an integer in [1, 100]")
    world_rows: int = _spec(2000, "rows of the synthetic world drawn per replicate (train + held out)",
                            lambda v: 50 <= v <= 1_000_000, "an integer in [50, 1000000]")
    heldout_fraction: float = _spec(0.25, "fraction of each table's rows held out (never trained on; real "
                                          "sets: stratified by target)", lambda v: 0.05 <= v <= 0.5,
                                    "a float in [0.05, 0.5]")
    latent_dim: int = _spec(6, "latent dimensions of the tabular VAEs", lambda v: 2 <= v <= 128, "2 to 128")
    hidden: int = _spec(64, "units of each of the two hidden layers of encoder and decoder",
                        lambda v: 4 <= v <= 4096, "4 to 4096")
    steps: int = _spec(1000, "optimizer steps per tabular VAE (quick's 1000 at lr 2e-3: measured against "
                             "the convergence rule)", lambda v: 1 <= v <= 10_000_000, "an integer >= 1")
    batch_size: int = _spec(128, "rows per step", lambda v: 2 <= v <= 65_536, "an integer in [2, 65536]")
    lr: float = _spec(2e-3, "Adam learning rate of the tabular VAEs", lambda v: 0 < v < 1, "a float in (0, 1)")
    beta: float = _spec(4.0, "beta of beta-VAE and beta-TC-VAE (Higgins et al.'s 4)", lambda v: 0 < v <= 1000,
                        "a float in (0, 1000]")
    gamma: float = _spec(10.0, "FactorVAE's TC weight on tables (fewer likelihood terms than dSprites' 4096 "
                               "pixels, where Kim & Mnih use 35)", lambda v: 0 < v <= 1000, "a float in (0, 1000]")
    lambda_od: float = _spec(10.0, "DIP-VAE-II's off-diagonal weight lambda_od (Kumar et al. 2018; "
                                   "disentanglement_lib sweeps 1..50)", lambda v: 0 < v <= 1000,
                             "a float in (0, 1000]")
    lambda_d: float = _spec(10.0, "DIP-VAE-II's diagonal weight lambda_d (= lambda_od for the II variant)",
                            lambda v: 0 < v <= 1000, "a float in (0, 1000]")
    sigma: float = _spec(0.5, "fixed sd of the Gaussian likelihood of continuous columns, in training sds "
                              "(>= 0.4 keeps each column's NLL positive; at 1, beta = 4 collapsed every "
                              "beta-VAE posterior, measured)", lambda v: 0.4 <= v <= 10,
                         "a float in [0.4, 10]")
    disc_hidden: int = _spec(64, "FactorVAE discriminator width on tables (Kim & Mnih: 1000)",
                             lambda v: 2 <= v <= 4096, "2 to 4096")
    disc_layers: int = _spec(3, "FactorVAE discriminator depth on tables (Kim & Mnih: 6)",
                             lambda v: 1 <= v <= 12, "1 to 12")


_DEVICE_RE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")
_RAY_ADDRESS_RE = re.compile(r"^(ray://)?[A-Za-z0-9_.-]+:\d{1,5}$")     # HOST:PORT, or Ray Client's ray://


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
    executor: str = _spec("local", "where models train and notebooks run: 'local' (a process pool on this "
                                   "machine) or 'ray' (Ray tasks; pip install circuitnb[cluster])",
                          lambda v: v in ("local", "ray"), "'local' or 'ray'")
    ray_address: str = _spec("", "with executor 'ray': '' starts a Ray on this machine, 'auto' joins the running "
                                 "cluster, 'HOST:PORT' or 'ray://HOST:PORT' joins that one",
                             lambda v: v in ("", "auto") or bool(_RAY_ADDRESS_RE.match(v)),
                             "'', 'auto', 'HOST:PORT' or 'ray://HOST:PORT'")
    model_dir: str = _spec("", "your model: a diffusers UNet2DModel save_pretrained folder (config.json + weights, "
                               "scheduler_config.json beside or in scheduler/; or a pipeline with unet/ and "
                               "scheduler/) analysed instead of the book's own models; '' -> the book's")


# circuitnb.modeling.sae.METHODS and .schedule.SHAPES, the Part IV data sets (no upward import).
_METHODS_SAE = ("topk", "topk_auxk", "l1")
_SETS_SAE = ("dsprites", "shapes3d")


@dataclass(frozen=True)
class SaeConfig:
    """Part IV: hybrid VAE-SAEs under an adaptive sparsity schedule (abstract: 500 -> 50 active units);
    quick values sized to train every method x set x replicate on 2 CPU cores in about 15 minutes."""
    datasets: tuple = _spec(_SETS_SAE, "data sets with known factors (drawn: circuitnb.data.sae)",
                            _names_of(_SETS_SAE), f"distinct names out of {_SETS_SAE}")
    methods: tuple = _spec(_METHODS_SAE, "sparsifiers: 'topk', 'topk_auxk' (Top-k + Gao et al.'s AuxK, the "
                           "dead-unit remedy), 'l1' (L1 steered to the Top-k schedule's activity)",
                           _names_of(_METHODS_SAE), f"distinct names out of {_METHODS_SAE}")
    replicates: int = _spec(3, "seeds per (method, set); the model is the unit", lambda v: 1 <= v <= 100,
                            "an integer in [1, 100]")
    image_size: int = _spec(32, "image side (Shapes3D and dSprites: 64)", lambda v: v in (16, 32, 64),
                            "16, 32 or 64")
    n_images: int = _spec(4000, "images drawn per set and replicate (train + held out)",
                          lambda v: 64 <= v <= 1_000_000, "an integer in [64, 1000000]")
    n_analysis: int = _spec(500, "of them, held out (the last ones, the base seed's draw): snapshot scores and "
                            "every Part IV measure", lambda v: 16 <= v <= 100_000, "an integer in [16, 100000]")
    widths: tuple = _spec((16, 16, 32, 32), "conv channels of encoder and decoder",
                          lambda v: 2 <= len(v) <= 5 and all(isinstance(c, int) and c >= 4 for c in v),
                          "2 to 5 integers >= 4")
    latent_dim: int = _spec(10, "VAE latent dimensions", lambda v: 2 <= v <= 256, "2 to 256")
    hidden: int = _spec(500, "units of the sparse hidden layer (paper: 500)", lambda v: 8 <= v <= 65_536,
                        "8 to 65536")
    active_fraction: float = _spec(0.1, "active units per input at the schedule's end, as a fraction of "
                                        "sae.hidden (paper: 50 of 500)", lambda v: 0 < v <= 1,
                                   "a float in (0, 1]")
    decay_fraction: float = _spec(0.5, "fraction of the steps over which k falls from sae.hidden to its end "
                                       "value (at most 0.75: the last quarter, where the convergence rule "
                                       "looks, runs at the final k; paper profile: 50 of 150 epochs)",
                                  lambda v: 0 < v <= 0.75, "a float in (0, 0.75]")
    schedule: str = _spec("linear", "shape of the decay of k: 'linear' or 'geometric' (log k linear)",
                          lambda v: v in ("linear", "geometric"), "'linear' or 'geometric'")
    steps: int = _spec(1200, "optimizer steps per model (quick: ~22 epochs of 3,500 images, ~95 s per model on "
                             "one loaded CPU thread at 500 units)", lambda v: 1 <= v <= 10_000_000,
                       "an integer >= 1")
    batch_size: int = _spec(64, "images per step", lambda v: 2 <= v <= 4096, "an integer in [2, 4096]")
    lr: float = _spec(1e-3, "Adam learning rate of the hybrid models", lambda v: 0 < v < 1,
                      "a float in (0, 1)")
    beta: float = _spec(1.0, "KL weight of the VAE part (1: a plain VAE)", lambda v: 0 < v <= 1000,
                        "a float in (0, 1000]")
    recon_weight: float = _spec(1.0, "weight of the SAE's reconstruction of its input (summed squared error "
                                     "over features)", lambda v: 0 <= v <= 1000, "a float in [0, 1000]")
    l1_init: float = _spec(1e-3, "initial L1 coefficient (then steered by the controller)",
                           lambda v: 0 < v <= 100, "a float in (0, 100]")
    l1_gain: float = _spec(0.05, "controller gain: log L1 coefficient += gain x relative activity error per "
                                 "step", lambda v: 0 < v <= 10, "a float in (0, 10]")
    auxk_alpha: float = _spec(1 / 32, "AuxK weight (Gao et al. 2024: 1/32)", lambda v: 0 < v <= 100,
                              "a float in (0, 100]")
    auxk_k: int = _spec(256, "dead units AuxK reconstructs from, k_aux (Gao et al.: a power of 2 near half "
                             "the input width)", lambda v: 1 <= v <= 65_536, "1 to 65536")
    dead_window: int = _spec(5000, "a unit is dead for AuxK after this many training images without firing "
                                   "(Gao et al.: 10M tokens)", lambda v: 1 <= v <= 10**9,
                             "an integer in [1, 1e9]")
    n_snapshots: int = _spec(8, "evenly spaced steps at which the held-out negative ELBO, codes and latents "
                                "are kept (the schedule's effect; convergence)", lambda v: 1 <= v <= 100,
                             "an integer in [1, 100]")
    dead_fractions: tuple = _spec((0.0, 0.001, 0.005, 0.01, 0.02, 0.05), "dead-unit thresholds: a unit is "
                                  "dead when active on at most (0: no) / less than this fraction of held-out "
                                  "images", lambda v: 1 <= len(v) and all(isinstance(t, (int, float))
                                                                         and 0 <= t < 1 for t in v),
                                  "a non-empty list of numbers in [0, 1)")
    dci_trees: int = _spec(10, "boosting stages of DCI's tree classifiers (paper profile: 100)",
                           lambda v: 1 <= v <= 10_000, "1 to 10000")


# circuitnb.modeling.mri.KINDS (no upward import).
_KINDS_MRI = ("attention", "no_attention", "non_bayesian")


@dataclass(frozen=True)
class MriConfig:
    """Part V: a Bayesian attention VAE for anomaly detection in brain MRI; quick values sized to train
    every kind x replicate on 2 CPU cores in about 15 minutes, on the phantom unless ``mri.root`` names BraTS."""
    root: str = _spec("", "BraTS2020 training folder (official layout); '' -> the procedural phantom, a "
                          "stand-in (circuitnb.data.mri)")
    kinds: tuple = _spec(_KINDS_MRI, "models: 'attention' (the paper's: attention, MC dropout, heteroscedastic "
                         "decoder), 'no_attention' (a plain VAE), 'non_bayesian' (no test-time dropout, "
                         "homoscedastic decoder)", _names_of(_KINDS_MRI), f"distinct names out of {_KINDS_MRI}")
    replicates: int = _spec(3, "seeds per kind; the model is the unit", lambda v: 1 <= v <= 100,
                            "an integer in [1, 100]")
    image_size: int = _spec(32, "slice side in pixels (BraTS: 240)", lambda v: v in (16, 32, 64, 128),
                            "16, 32, 64 or 128")
    n_subjects: int = _spec(16, "subjects read (phantom: drawn; BraTS: the first ones)",
                            lambda v: 2 <= v <= 100_000, "an integer in [2, 100000]")
    n_slices: int = _spec(16, "axial slices per phantom subject (BraTS: every slice)", lambda v: 1 <= v <= 512,
                          "an integer in [1, 512]")
    min_lesion_px: int = _spec(10, "a slice with fewer labelled pixels (at mri.image_size) is dropped, neither "
                                   "healthy nor lesion", lambda v: 0 <= v <= 100_000, "an integer >= 0")
    heldout_fraction: float = _spec(0.3, "fraction of subjects held out for evaluation (stratified: of those "
                                         "with and without a lesion slice)", lambda v: 0 < v < 1,
                                    "a float in (0, 1)")
    widths: tuple = _spec((16, 32), "conv channels of encoder and decoder (attention at the last)",
                          lambda v: 1 <= len(v) <= 5 and all(isinstance(c, int) and c >= 4 for c in v),
                          "1 to 5 integers >= 4")
    latent_dim: int = _spec(32, "VAE latent dimensions", lambda v: 2 <= v <= 1024, "2 to 1024")
    heads: int = _spec(4, "attention heads per attention layer", lambda v: 1 <= v <= 64, "1 to 64")
    dropout: float = _spec(0.1, "dropout probability (MC dropout at test time for the Bayesian kinds)",
                           lambda v: 0 < v < 1, "a float in (0, 1)")
    steps: int = _spec(800, "optimizer steps per model (quick: ~0.12 s per step for the attention kind on one "
                            "loaded CPU thread, about half that without attention)",
                       lambda v: 1 <= v <= 10_000_000, "an integer >= 1")
    batch_size: int = _spec(16, "slices per step", lambda v: 2 <= v <= 4096, "an integer in [2, 4096]")
    lr: float = _spec(1e-3, "Adam learning rate of the MRI VAEs", lambda v: 0 < v < 1, "a float in (0, 1)")
    lr_schedule: str = _spec("constant", "learning rate over the steps: 'constant', or 'cosine' (mri.lr down to 0 "
                                         "at the last step: a short run ends settled)",
                             lambda v: v in ("constant", "cosine"), "'constant' or 'cosine'")
    beta: float = _spec(1.0, "KL weight (1: the plain negative ELBO)", lambda v: 0 < v <= 1000,
                        "a float in (0, 1000]")
    mc_passes: int = _spec(16, "MC-dropout passes T at test time", lambda v: 2 <= v <= 10_000,
                           "an integer in [2, 10000]")
    n_snapshots: int = _spec(6, "evenly spaced steps at which the held-out negative ELBO is kept (convergence)",
                             lambda v: 1 <= v <= 100, "an integer in [1, 100]")
    calibration_bins: int = _spec(10, "uncertainty bins (equal counts) of the reliability table",
                                  lambda v: 2 <= v <= 1000, "an integer in [2, 1000]")
