"""Convergence of every replicate UNet: held-out loss, bits/dim and noise R² at each saved training step.

    scores = model_scores(cfg, "celeba", replicate=0)   # {"images": step x image, "r2": step x t x image}
    conv = unet_convergence(cfg)                         # tables: per_model, curves, r2; the rule per model
    conv["summary"]["line"]                              # "6 of 6 models converged (...)"

Each snapshot (:func:`circuitnb.modeling.train.snapshot_steps`) is scored on the same held-out images
with the same t and noise draws (paired), so a change between snapshots is the model's, not the draw's:
the held-out L_simple (:func:`circuitnb.measures.convergence.heldout_loss_per_image`), the variational
bound in bits/dim (:func:`circuitnb.measures.likelihood.vlb_bits_per_dim`, Ho et al. 2020) and the
noise R² at the analysed timesteps. The rule (:func:`circuitnb.measures.convergence.convergence`, tolerance
``cfg.analysis.converged_tol``) decides per model; every page that reads the models says how many passed.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from circuitnb import data
from circuitnb.analysis.images import heldout_images
from circuitnb.core import results
from circuitnb.core.config import Config
from circuitnb.measures import likelihood
from circuitnb.measures.convergence import convergence, heldout_loss_per_image
from circuitnb.measures.quantities import prediction_accuracy
from circuitnb.modeling import sampling, train

# Config fields the scores read besides the images (whose content keys them) and the model.
_READS = ("n_heldout_t", "seed", "timesteps")


def _score(cfg: Config, m, x0: np.ndarray) -> dict[str, pd.DataFrame]:
    n_t, seed = cfg.analysis.n_heldout_t, cfg.run.seed
    loss = heldout_loss_per_image(m.unet, m.scheduler, x0, n_t=n_t, seed=seed)
    bpd = likelihood.vlb_bits_per_dim(m.unet, m.scheduler, x0, n_t=n_t, seed=seed)
    mse = sampling.noise_mse_by_timestep(m.unet, m.scheduler, x0, cfg.analysis.timesteps, seed=seed)
    images = pd.DataFrame(dict(image=np.arange(len(x0)), heldout_loss=loss, bpd=bpd.bpd.to_numpy()))
    return dict(images=images, r2=mse.assign(r2=prediction_accuracy(mse.mse)).drop(columns="mse"))


def model_scores(cfg: Config, dataset: str, replicate: int = 0) -> dict[str, pd.DataFrame]:
    """Every snapshot of one replicate model scored on the held-out images (cached per snapshot model)."""
    x0 = heldout_images(cfg, dataset)
    frames: dict[str, list] = {"images": [], "r2": []}
    for step in train.snapshot_steps(cfg):
        m = train.load_or_train(cfg, dataset, progress=False, replicate=replicate, at_step=step)
        def score(m=m):
            return _score(cfg, m, x0)
        scores = results.cached(cfg, "heldout_scores", m, score, reads=_READS, data=x0)
        for name, frame in scores.items():
            frames[name].append(frame.assign(dataset=dataset, replicate=replicate, step=step))
    return {name: pd.concat(f, ignore_index=True) for name, f in frames.items()}


def model_samples(cfg: Config, m, n: int) -> np.ndarray:
    """``n`` DDIM samples of one model from the seed ``cfg.run.seed`` noise (cached per model): every model
    and snapshot starts from the same noise, so grids differ only by the model."""
    return results.cached(cfg, "samples", m, lambda: sampling.sample_images(m.unet, m.scheduler, n, seed=cfg.run.seed),
                          n=n)


def _sem(x: pd.Series) -> float:
    return float(x.std(ddof=1) / np.sqrt(len(x)))


def per_model_table(cfg: Config, images: pd.DataFrame) -> pd.DataFrame:
    """One row per model: the rule's reference and final step, the held-out loss at both, the relative
    improvement with its paired CI, ``converged``, and the final bits/dim (mean ± SEM over images)."""
    rows = []
    for (ds, r), g in images.groupby(["dataset", "replicate"], sort=False):
        steps = sorted(g.step.unique())
        losses = [g[g.step == s].sort_values("image").heldout_loss.to_numpy() for s in steps]
        rule = convergence(steps, losses, cfg.analysis.converged_tol)
        last = g[g.step == steps[-1]]
        rows.append(dict(dataset=ds, replicate=int(r), **rule,
                         loss_reference=float(np.mean(losses[steps.index(rule["reference_step"])]))
                         if rule["reference_step"] is not None else np.nan,
                         loss_final=float(losses[-1].mean()), loss_final_sem=float(_sem(last.heldout_loss)),
                         bpd_final=float(last.bpd.mean()), bpd_final_sem=_sem(last.bpd), n_images=len(last)))
    return pd.DataFrame(rows)


def curves(images: pd.DataFrame) -> pd.DataFrame:
    """Held-out loss and bits/dim per model and step: mean and SEM over images (the figure's lines)."""
    return images.groupby(["dataset", "replicate", "step"], sort=False).agg(
        heldout_loss=("heldout_loss", "mean"), heldout_loss_sem=("heldout_loss", _sem),
        bpd=("bpd", "mean"), bpd_sem=("bpd", _sem), n_images=("image", "size")).reset_index()


def r2_table(r2: pd.DataFrame) -> pd.DataFrame:
    """Noise R² (%) per model, step and t: mean over images."""
    return r2.groupby(["dataset", "replicate", "step", "t"], sort=False).r2.mean().reset_index()


def summary(table: pd.DataFrame, tol: float) -> dict:
    """How many models passed the rule, as numbers and one line every page can show."""
    n, ok = len(table), int((table.converged == True).sum())                       # noqa: E712 (None = unknown)
    unknown = int(table.converged.isna().sum())
    worse = int((table.status == "worsening").sum())
    line = (f"{ok} of {n} models converged (held-out loss moved by less than {tol:.0%} over the last quarter "
            "of training)" + (f"; {worse} got worse by more than that" if worse else "")
            + (f"; {unknown} not judged (fewer than 2 snapshots)" if unknown else ""))
    return dict(n_models=n, n_converged=ok, all_converged=bool(ok == n), line=line)


def unet_convergence(cfg: Config) -> dict:
    """Every replicate UNet's scores and the rule: ``per_model``, ``curves``, ``r2`` tables and ``summary``."""
    scores = [model_scores(cfg, ds, r) for ds in data.DATASETS for r in range(cfg.run.replicates)]
    images = pd.concat([s["images"] for s in scores], ignore_index=True)
    table = per_model_table(cfg, images)
    return dict(per_model=table, curves=curves(images), r2=r2_table(pd.concat([s["r2"] for s in scores])),
                summary=summary(table, cfg.analysis.converged_tol))


def vae_convergence(cfg: Config, models: dict) -> dict:
    """Part II's VAEs by the same rule, on the held-out negative ELBO (nats per image) each measured at its
    snapshots while training (:func:`circuitnb.modeling.vae.cache.snapshot_steps`), with its active latents.

    ``models``: {(kind, dataset): [TrainedVAE per replicate]} (:func:`circuitnb.modeling.vae.cache.load_all`).
    """
    rows, curve = [], []
    for (kind, ds), ms in models.items():
        for r, m in enumerate(ms):
            steps, nelbo = m.meta["heldout_steps"], [np.asarray(v) for v in m.meta["heldout_nelbo"]]
            rule = convergence(steps, nelbo, cfg.analysis.converged_tol)
            rows.append(dict(kind=kind, dataset=ds, replicate=r, **rule, nelbo_final=float(nelbo[-1].mean()),
                             nelbo_final_sem=_sem(pd.Series(nelbo[-1])), active_latents=m.meta["active_latents"],
                             latent_dim=cfg.vae.latent_dim))
            curve += [dict(kind=kind, dataset=ds, replicate=r, step=s, nelbo=float(v.mean()))
                      for s, v in zip(steps, nelbo)]
    table = pd.DataFrame(rows)
    return dict(per_model=table, curves=pd.DataFrame(curve), summary=summary(table, cfg.analysis.converged_tol))
