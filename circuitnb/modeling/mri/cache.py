"""Part V's models from the cache: ``mri.replicates`` seeds of each kind, trained once on healthy slices.

    m = load_or_train_mri(cfg, "attention", replicate=0)        # TrainedMri: model, meta, from_cache
    split = mri_split(cfg)                                      # MriSplit: train (healthy), heldout (all slices)
    pred = mc_predict(m.model, split.heldout.images, cfg.mri.mc_passes, seed=cfg.run.seed)

Split, by subject (no subject is in both): the subjects are ordered by a permutation seeded with ``cfg.run.seed``
and divided into those with at least one lesion slice and those without; round(``mri.heldout_fraction`` n) of
each group (at least one of each non-empty group, at least one left to train on) are held out. The models train on
the training subjects' healthy slices only; evaluation uses every slice (healthy and lesion) of the held-out
subjects, and the held-out objective (the negative ELBO of :func:`negative_elbo_per_image`) their healthy slices.
Every replicate and kind shares the split (the data are fixed, as BraTS is); replicate r differs by its seed
(seed + 1000 r): initial weights, batches, reparameterisation noise and dropout masks.

Each replicate is a :class:`~circuitnb.modeling.store.ModelSpec` given to the one
:func:`~circuitnb.modeling.store.load_or_train` every part uses: ``models/<key>/final`` with safetensors weights
and ``meta.json`` (history, the held-out negative ELBO of every held-out healthy slice at ``mri.n_snapshots``
steps, paired draws, and the book's convergence rule on it, ``converged_tol``); the key hashes the training fields
(:data:`TRAIN_FIELDS`), the kind, the seed, the training slices' fingerprint and the held-out measurement. A NaN
loss is a :class:`~circuitnb.modeling.train.TrainingError` naming ``mri.lr``.
"""
from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from circuitnb import data
from circuitnb.core.config import Config, check_cache_dir
from circuitnb.data import REPLICATE_STRIDE
from circuitnb.data.mri import MRISlices, mri_slices
from circuitnb.measures.convergence import convergence
from circuitnb.modeling import store
from circuitnb.modeling.mri.model import KINDS, MriVAE
from circuitnb.modeling.mri.training import negative_elbo_per_image, train_mri
from circuitnb.modeling.store import ModelSpec, load_or_train, load_weights, read_meta, save_weights, write_meta
from circuitnb.modeling.train import evenly_spaced_steps

# The MriConfig fields that change every trained model (the data fields too: they change the slices).
TRAIN_FIELDS = ("mri.root", "mri.image_size", "mri.n_subjects", "mri.n_slices", "mri.min_lesion_px",
                "mri.heldout_fraction", "mri.widths", "mri.latent_dim", "mri.heads", "mri.dropout", "mri.steps",
                "mri.batch_size", "mri.lr", "mri.lr_schedule", "mri.beta")


@dataclass
class MriSplit:
    train: MRISlices            # training subjects' healthy slices: what every model trains on
    heldout: MRISlices          # held-out subjects' slices, healthy and lesion: every anomaly measure
    train_subjects: list[str]
    heldout_subjects: list[str]

    @property
    def heldout_healthy(self) -> MRISlices:
        """The held-out objective's slices (convergence)."""
        return self.heldout.take(~self.heldout.lesion)


@dataclass
class TrainedMri:
    model: MriVAE               # eval mode, on cfg.device
    meta: dict                  # key, kind, replicate, seed, fingerprint, history, heldout_nelbo, convergence, ...
    from_cache: bool


@functools.lru_cache(maxsize=4)
def _slices(root: str, size: int, seed: int, n_subjects: int, n_slices: int, min_lesion_px: int) -> MRISlices:
    return mri_slices(root or None, size, seed=seed, n_subjects=n_subjects, n_slices=n_slices,
                      min_lesion_px=min_lesion_px)


def split_subjects(subject: np.ndarray, lesion: np.ndarray, fraction: float, seed: int) -> tuple[list, list]:
    """(training subjects, held-out subjects) by the stratified rule of the module docstring.

        split_subjects(d.subject, d.lesion, 0.3, seed=0)
    """
    names = np.unique(subject)
    order = names[np.random.default_rng(seed).permutation(len(names))]
    has = {s: bool(lesion[subject == s].any()) for s in names}
    held: list[str] = []
    for group in ([s for s in order if has[s]], [s for s in order if not has[s]]):
        if group:
            held += group[:max(1, round(fraction * len(group)))]
    held = held[:len(names) - 1]                                     # keep at least one subject to train on
    return [str(s) for s in order if s not in held], [str(s) for s in held]


def mri_split(cfg: Config) -> MriSplit:
    """The subject split of the module docstring on the config's slices."""
    m = cfg.mri
    d = _slices(m.root, m.image_size, cfg.run.seed, m.n_subjects, m.n_slices, m.min_lesion_px)
    train_s, held_s = split_subjects(d.subject, d.lesion, m.heldout_fraction, cfg.run.seed)
    in_train = np.isin(d.subject, train_s)
    return MriSplit(d.take(in_train & ~d.lesion), d.take(~in_train), train_s, held_s)


def mri_seed(cfg: Config, replicate: int) -> int:
    return cfg.run.seed + REPLICATE_STRIDE * replicate


def snapshot_steps(cfg: Config) -> list[int]:
    return evenly_spaced_steps(cfg.mri.steps, cfg.mri.n_snapshots)


def _entry(cfg: Config, kind: str, replicate: int) -> tuple:
    split = mri_split(cfg)
    seed = mri_seed(cfg, replicate)
    fp = data.fingerprint(split.train.images)
    settings = store.replicate_settings(cfg, TRAIN_FIELDS, kind=kind)
    held = data.fingerprint(split.heldout_healthy.images)
    entry = store.replicate_entry(cfg, f"mri-{kind}", settings, seed=seed, data=fp,
                                  heldout=[snapshot_steps(cfg), held, cfg.run.seed])
    return entry, split, fp, seed, settings


def model_key(cfg: Config, kind: str, replicate: int = 0) -> str:
    return _entry(cfg, kind, replicate)[0].key


def is_cached(cfg: Config, kind: str, replicate: int = 0) -> bool:
    return store.is_cached(_entry(cfg, kind, replicate)[0])


def _build(cfg: Config, kind: str, channels: int) -> MriVAE:
    m = cfg.mri
    return MriVAE(channels, m.image_size, tuple(m.widths), m.latent_dim, m.heads, kind,
                  m.dropout)


def load_or_train_mri(cfg: Config, kind: str, replicate: int = 0, progress: bool = True) -> TrainedMri:
    """Replicate ``replicate`` of model ``kind``: from the cache, else trained now on the training healthy slices."""
    store.check_kind(kind, KINDS, "mri.kinds")
    check_cache_dir(cfg)
    entry, split, fp, seed, settings = _entry(cfg, kind, replicate)
    key, m = entry.key, cfg.mri
    x, x_held = split.train.images, split.heldout_healthy.images
    curve: dict[int, list[float]] = {}

    def score(step: int, model: MriVAE, hist: dict) -> None:       # paired draws: the same seed at every snapshot
        curve[step] = negative_elbo_per_image(model, x_held, seed=cfg.run.seed).tolist()

    def make(tmp: Path) -> tuple:
        start = time.perf_counter()
        with store.nan_stops("mri.lr", m.lr):
            model, hist = train_mri(kind, x, widths=tuple(m.widths), latent_dim=m.latent_dim,
                                    heads=m.heads, dropout=m.dropout, steps=m.steps,
                                    batch_size=m.batch_size, lr=m.lr, lr_schedule=m.lr_schedule, beta=m.beta,
                                    seed=seed,
                                    progress=progress, device=cfg.device, callback=score,
                                    callback_steps=snapshot_steps(cfg))
        save_weights(model, tmp / "model.safetensors")
        steps = sorted(curve)
        meta = dict(key=key, kind=kind, replicate=replicate, seed=seed, fingerprint=fp, n_train=len(x),
                    n_heldout_healthy=len(x_held), channels=int(x.shape[1]), settings=settings,
                    train_subjects=split.train_subjects, heldout_subjects=split.heldout_subjects,
                    history=hist, train_seconds=time.perf_counter() - start, heldout_steps=steps,
                    heldout_nelbo=[curve[st] for st in steps],
                    convergence=convergence(steps, [curve[st] for st in steps], cfg.analysis.converged_tol))
        return model, write_meta(tmp, meta), False

    def load(folder: Path) -> tuple:
        meta = read_meta(folder)
        model = load_weights(_build(cfg, kind, meta["channels"]), folder / "model.safetensors")
        return model.eval(), meta, True

    model, meta, hit = load_or_train(ModelSpec(entry, dict(settings, key=key, seed=seed, fingerprint=fp),
                                               make=make, load=load))
    return TrainedMri(model.to(cfg.device).eval(), meta, hit)


def load_all(cfg: Config, progress: bool = False) -> dict[str, list[TrainedMri]]:
    """Every kind of the config with its ``mri.replicates`` models."""
    return {k: [load_or_train_mri(cfg, k, r, progress) for r in range(cfg.mri.replicates)]
            for k in cfg.mri.kinds}
