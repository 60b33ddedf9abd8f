"""Part III's models from the cache: ``tabular.replicates`` seeds of each tabular VAE on each table, trained once.

    m = load_or_train_tabular(cfg, "dip_vae_ii", "penguins", replicate=0)
    m.model, m.disc, m.meta["convergence"]["status"], m.from_cache

Each replicate is a :class:`~circuitnb.modeling.store.ModelSpec` given to the one
:func:`~circuitnb.modeling.store.load_or_train` every part uses: the cache folder checked and the data read before any
training; ``models/<key>/final`` (its lock beside it, sha256 manifest, atomic publish; ``circuitnb cache ls|verify``
list and check it) holding safetensors weights and ``meta.json``; the key hashes every training field of
:data:`TRAIN_FIELDS`, the kind, the seed, the training rows' fingerprint and the held-out measurement. A NaN loss is a
:class:`~circuitnb.modeling.train.TrainingError` naming ``tabular.lr`` (one line, exit 2).

Convergence: the plain negative ELBO of every held-out row is measured at ``n_snapshots`` evenly spaced steps
(paired: :data:`HELDOUT_DRAWS` seeded posterior draws per row, the same at every snapshot) and judged by the book's rule
(:func:`circuitnb.measures.convergence.convergence`, tolerance ``converged_tol``): ``meta["convergence"]``.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from circuitnb.core.config import Config, check_cache_dir
from circuitnb.data.tabular import TabularData, check_tab_dataset, tab_seed, tabular_data
from circuitnb.measures.convergence import convergence
from circuitnb.modeling import store
from circuitnb.modeling.store import ModelSpec, load_or_train, load_weights, read_meta, save_weights, write_meta
from circuitnb.modeling.tabular.model import TAB_KINDS, TabularVAE
from circuitnb.modeling.tabular.training import build, encode_mean, nelbo_terms, train_tabular_vae
from circuitnb.modeling.train import evenly_spaced_steps
from circuitnb.modeling.vae.model import discriminator

# Posterior draws per held-out row in the negative ELBO at snapshots: one draw left the mean of a small held-out
# set (penguins: 83 rows) moving by several percent between snapshots from sampling noise alone.
HELDOUT_DRAWS = 16
# The TabularConfig fields that change a trained model.
TRAIN_FIELDS = ("tabular.world_rows", "tabular.heldout_fraction", "tabular.latent_dim", "tabular.hidden",
                "tabular.steps", "tabular.batch_size", "tabular.lr", "tabular.beta", "tabular.gamma",
                "tabular.lambda_od", "tabular.lambda_d", "tabular.sigma", "tabular.disc_hidden",
                "tabular.disc_layers")


@dataclass
class TrainedTabular:
    model: TabularVAE           # eval mode (z = mu), on cfg.device
    disc: nn.Module | None      # FactorVAE's TC discriminator, else None
    meta: dict                  # key, kind, dataset, replicate, seed, fingerprint, losses, heldout, convergence
    from_cache: bool


def snapshot_steps(cfg: Config) -> list[int]:
    """Steps at which the held-out negative ELBO is measured: ``n_snapshots`` evenly spaced, the last final."""
    return evenly_spaced_steps(cfg.tabular.steps, cfg.train.n_snapshots)


def _hyper(cfg: Config) -> dict:
    t = cfg.tabular
    return dict(latent_dim=t.latent_dim, hidden=t.hidden, beta=t.beta, gamma=t.gamma,
                lambda_od=t.lambda_od, lambda_d=t.lambda_d, sigma=t.sigma)


def _entry(cfg: Config, kind: str, dataset: str, replicate: int) -> tuple:
    """(cache entry, training data, seed, keyed settings) of one replicate."""
    seed = tab_seed(cfg, replicate, dataset)
    train = tabular_data(cfg, dataset, "train", replicate)
    settings = store.replicate_settings(cfg, TRAIN_FIELDS, kind=kind)
    entry = store.replicate_entry(
        cfg, f"tab-{kind}-{dataset}", settings, seed=seed, data=train.fingerprint, layout=train.layout,
        heldout=[snapshot_steps(cfg), tabular_data(cfg, dataset, "heldout").fingerprint, cfg.run.seed, HELDOUT_DRAWS])
    return entry, train, seed, settings


def model_key(cfg: Config, kind: str, dataset: str, replicate: int = 0) -> str:
    """The cache key of one replicate model, without loading it."""
    return _entry(cfg, kind, dataset, replicate)[0].key


def is_cached(cfg: Config, kind: str, dataset: str, replicate: int = 0) -> bool:
    """Whether the model is in the cache and intact (no lock, nothing loaded or removed)."""
    return store.is_cached(_entry(cfg, kind, dataset, replicate)[0])


def active_latents(model: TabularVAE, x) -> int:
    """Latent dimensions in use: SD over rows of the posterior mean > 0.1 (Burda et al. 2016, §5.2; as Part II)."""
    return int((encode_mean(model, x).std(0, ddof=1) > 0.1).sum())


def load_or_train_tabular(cfg: Config, kind: str, dataset: str, replicate: int = 0,
                          progress: bool = True) -> TrainedTabular:
    """Replicate ``replicate`` of architecture ``kind`` on table ``dataset``: from the cache, else trained now."""
    store.check_kind(kind, TAB_KINDS, "tabular.kinds")
    check_tab_dataset(dataset)
    check_cache_dir(cfg)
    entry, train, seed, settings = _entry(cfg, kind, dataset, replicate)
    key, t = entry.key, cfg.tabular
    heldout: TabularData = tabular_data(cfg, dataset, "heldout")
    curve: dict[int, list[float]] = {}

    def score(step: int, model: TabularVAE) -> None:       # paired draws: the same seed at every snapshot
        curve[step] = nelbo_terms(model, heldout.x, seed=cfg.run.seed, draws=HELDOUT_DRAWS)["nelbo"].tolist()

    def make(tmp: Path) -> tuple:
        start = time.perf_counter()
        with store.nan_stops("tabular.lr", t.lr):
            model, disc, losses = train_tabular_vae(
                kind, train.x, train.layout, **_hyper(cfg), steps=t.steps, batch_size=t.batch_size,
                lr=t.lr, seed=seed, disc_hidden=t.disc_hidden, disc_layers=t.disc_layers,
                progress=progress, device=cfg.device, callback=score, callback_steps=snapshot_steps(cfg))
        save_weights(model, tmp / "vae.safetensors")
        if disc is not None:
            save_weights(disc, tmp / "disc.safetensors")
        steps = sorted(curve)
        final = nelbo_terms(model, heldout.x, seed=cfg.run.seed, draws=HELDOUT_DRAWS).mean()
        meta = dict(key=key, kind=kind, dataset=dataset, replicate=replicate, seed=seed, fingerprint=train.fingerprint,
                    n_rows=len(train), n_heldout=len(heldout), layout=[list(c) for c in train.layout],
                    settings=settings, losses=losses, train_seconds=time.perf_counter() - start,
                    heldout_steps=steps, heldout_nelbo=[curve[s] for s in steps],
                    heldout_terms={k: float(v) for k, v in final.items()},
                    convergence=convergence(steps, [curve[s] for s in steps], cfg.analysis.converged_tol),
                    active_latents=active_latents(model, heldout.x))
        return model, disc, write_meta(tmp, meta), False        # the meta a cache hit reads back

    def load(folder: Path) -> tuple:
        meta = read_meta(folder)
        model = load_weights(build(kind, tuple(tuple(c) for c in meta["layout"]), **_hyper(cfg)),
                             folder / "vae.safetensors")
        disc = None
        if (folder / "disc.safetensors").exists():
            disc = load_weights(discriminator(t.latent_dim, t.disc_hidden, t.disc_layers),
                                folder / "disc.safetensors")
            disc.eval()
        return model.eval(), disc, meta, True

    manifest = dict(settings, key=key, dataset=dataset, seed=seed, fingerprint=train.fingerprint)
    model, disc, meta, hit = load_or_train(ModelSpec(entry, manifest, make=make, load=load))
    if disc is not None:
        disc.to(cfg.device)
    return TrainedTabular(model.to(cfg.device).eval(), disc, meta, hit)


def load_all(cfg: Config, progress: bool = False) -> dict[tuple[str, str], list[TrainedTabular]]:
    """Every (kind, table) of the config with its ``tabular.replicates`` models."""
    t = cfg.tabular
    return {(k, d): [load_or_train_tabular(cfg, k, d, r, progress) for r in range(t.replicates)]
            for d in t.datasets for k in t.kinds}
