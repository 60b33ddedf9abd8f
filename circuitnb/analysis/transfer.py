"""§4.9: cross-dataset accuracy, feature transferability (CKA) and circuit robustness, per replicate model.

    acc = cross_accuracy(cfg, models)                   # every model on both datasets' held-out images
    cka = cka_table(block_similarity(cfg, models))      # per block and "all", beside the same-data null
    per, pairs = robustness(replicate_sweeps(cfg, models), cfg.analysis.n_bootstrap)
    rows = transfer_claims(acc, cka.set_index("block").loc["all"], pairs)

§4.9 reports three percentages for "both" datasets. Ours are estimated per replicate pair r (the synthetic
and the CelebA model r) and averaged over pairs with a t-interval over pairs: one estimate over models,
never a union of the models' intervals. Model-to-model similarity (CKA) is set beside the same-data null:
the similarity of two models trained on the same data with different seeds. Chapter 9 reads them.
"""
from __future__ import annotations

import functools

import numpy as np
import pandas as pd
import torch

from circuitnb.analysis import model_stats, replicates
from circuitnb.analysis.claim_rows import claim_row
from circuitnb.analysis.convergence import heldout_images
from circuitnb.core import results
from circuitnb.core.config import Config
from circuitnb.hooking.hooks import record
from circuitnb.hooking.sites import site_names
from circuitnb.interventions import circuits
from circuitnb.interventions.impact import paired_inputs
from circuitnb.measures import quantities, verdicts
from circuitnb.measures.metrics import impact_score

A, B = replicates.A, replicates.B           # synthetic, celeba


def cross_accuracy(cfg: Config, models: dict[str, list]) -> pd.DataFrame:
    """Prediction accuracy (§4.1, %) of every replicate model on both datasets' held-out images (cached).

    Columns: dataset (trained on), replicate, data (evaluated on), image, value (mean over the analysed t).
    """
    images = {n: heldout_images(cfg, n) for n in models}
    frames = []
    for name, ms in models.items():
        for r, m in enumerate(ms):
            def accuracy(name: str = name, m=m):
                return circuits.cross_dataset_accuracy({name: m}, images, cfg.analysis.timesteps, seed=cfg.run.seed)
            acc = results.cached(cfg, "accuracy_on_both", m, accuracy, timesteps=cfg.analysis.timesteps, data=images)
            per_image = acc.groupby(["data", "image"], as_index=False).accuracy.mean()
            frames.append(per_image.rename(columns={"accuracy": "value"}).assign(dataset=name, replicate=r))
    return pd.concat(frames, ignore_index=True)


def _factor(x: torch.Tensor) -> np.ndarray:
    """[n, k] with F F^T = Xc Xc^T (Xc: the flattened activations centred over images): linear CKA needs only
    this Gram matrix, so :func:`circuitnb.measures.quantities.linear_cka` of two factors equals that of the
    activations, and a model's factors are kept instead of its activations."""
    xc = x.double().flatten(1)
    xc = xc - xc.mean(0)
    u, s, _ = torch.linalg.svd(xc, full_matrices=False)
    return (u * s).float().cpu().numpy()


@torch.no_grad()
def _factors(cfg: Config, model, images: dict) -> dict:
    """{(data, t, block): factor} of one model's block outputs on each dataset's noisy held-out images."""
    blocks = site_names(model.unet, "block")
    out = {}
    for data_name, x0 in images.items():
        for t in cfg.analysis.timesteps:
            _, _, tt, x_t, _ = paired_inputs(model.unet, model.scheduler, x0, t, cfg.run.seed)   # shared draw
            with record(model.unet, blocks) as rec:
                model.unet(x_t, tt)
            out.update({(data_name, int(t), b): _factor(rec[b]) for b in blocks})
    return out


def block_similarity(cfg: Config, models: dict[str, list]) -> pd.DataFrame:
    """Linear CKA between model pairs at every block, t and input dataset (same noisy inputs for both).

    Pairs (:func:`circuitnb.analysis.model_stats.sources`; CKA is symmetric, so each pair once): synthetic
    model r with CelebA model r ("other data"), and every two models of one dataset ("same data", the null).
    Columns: dataset, replicate (the pair's first model), source, data, t, block, cka, n.
    """
    images = {n: heldout_images(cfg, n) for n in models}
    jobs = [(n, r) for n, ms in models.items() for r in range(len(ms))]

    def factors(n, r, wait=True):
        m = models[n][r]
        return results.cached(cfg, "cka_factors", m, lambda: _factors(cfg, m, images),
                              timesteps=cfg.analysis.timesteps, data=images, wait=wait)
    fac = dict(zip(jobs, results.each([functools.partial(factors, n, r) for n, r in jobs])))
    pairs = [(n, r, kind, sd, sr) for n, ms in models.items() for r in range(len(ms))
             for kind, sd, sr in model_stats.sources(models, n, r)
             if (kind != "same data" and n == A) or (kind == "same data" and sr > r)]
    n_img = min(len(x) for x in images.values())
    return pd.DataFrame([dict(dataset=n, replicate=r, source=kind, data=d, t=t, block=b, n=n_img,
                              cka=quantities.linear_cka(f, fac[(sd, sr)][(d, t, b)]))
                         for n, r, kind, sd, sr in pairs for (d, t, b), f in fac[(n, r)].items()])


def cka_table(cka: pd.DataFrame) -> pd.DataFrame:
    """Feature transferability (:func:`circuitnb.measures.quantities.feature_transferability`, %) per block
    and over all blocks ("all"): each pair's over t and both image sets, over pairs, beside the same-data null."""
    pair = ["dataset", "replicate", "source"]
    xfer = dict(cka=("cka", quantities.feature_transferability), n=("n", "min"))
    per = cka.groupby([*pair, "block"], as_index=False, sort=False).agg(**xfer)
    every = cka.groupby(pair, as_index=False).agg(**xfer)
    per = pd.concat([per, every.assign(block="all")], ignore_index=True)
    return model_stats.beside_null(per, ["block"], "cka")


def _robustness_arrays(ivs: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """One model's [interventions x t, images] baseline and intervened MSEs."""
    wide = {c: ivs.pivot_table(index=["t", "name"], columns="image", values=c) for c in ("mse_base", "mse_int")}
    return wide["mse_base"].to_numpy(), wide["mse_int"].to_numpy()


def _robustness(*arrays, axis=-1):
    """Circuit robustness (:func:`circuitnb.measures.quantities.circuit_robustness`) of Eq. 5 on mean MSEs,
    averaged over the models given as (base, intervened) pairs of [cells, images] arrays; with a leading
    resample axis ([cells, resamples, images], as a vectorized bootstrap passes them) one value per resample."""
    shares = []
    for b, i in zip(arrays[::2], arrays[1::2]):
        imp = impact_score(i.mean(axis), b.mean(axis))                    # [cells] or [cells, resamples]
        shares.append(np.apply_along_axis(quantities.circuit_robustness, 0, imp))
    return np.mean(shares, axis=0)


def robustness(ivs: pd.DataFrame, n_bootstrap: int, seed: int = 0) -> tuple[pd.DataFrame, list]:
    """Circuit robustness (%) of every model over chapter 6's interventions x timesteps, and per replicate
    pair the mean of its two models with a paired image-bootstrap interval (the images of the two datasets
    resampled together, one draw per image index).

    Returns (one row per model: dataset, replicate, robustness, n images, cells; the pairs' Estimates).
    """
    arrays = {key: _robustness_arrays(g) for key, g in ivs.groupby(["dataset", "replicate"], sort=False)}
    per = pd.DataFrame([dict(dataset=d, replicate=r, robustness=float(_robustness(*a)), n=a[0].shape[1],
                             cells=a[0].shape[0])
                        for (d, r), a in arrays.items()])
    pairs = [model_stats.image_bootstrap(_robustness, (*arrays[(A, r)], *arrays[(B, r)]), n_bootstrap, seed)
             for r in sorted(per.replicate.unique()) if (A, r) in arrays and (B, r) in arrays]
    return per, pairs


def transfer_claims(acc: pd.DataFrame, cka_all: pd.Series, rob_pairs: list) -> list[dict]:
    """Scorecard rows xfer_accuracy, xfer_features, xfer_robustness: each one estimate over replicate pairs
    (mean, t-interval over pairs), with each pair's own image-level interval where one exists."""
    cross = acc[acc.dataset != acc.data]                   # both directions, the same n images each
    acc_pairs = [verdicts.replicate_ci(g.value) for _, g in cross.groupby("replicate")]
    return [claim_row("xfer_accuracy", verdicts.replicate_ci([e.mean for e in acc_pairs]), acc_pairs,
                      unit="%", reason="each model on the other dataset's held-out images, both "
                      "directions per replicate pair; t-interval over pairs"),
            claim_row("xfer_features", replicates.estimate(cka_all.rename({"cka": "mean"})), unit="%",
                      reason="linear CKA x 100 between models of different data and seeds; "
                      + ("beyond" if cka_all.beyond_null else "within") + " the same-data null; no "
                      "per-pair interval (CKA is one number per image set)"),
            claim_row("xfer_robustness", verdicts.replicate_ci([e.mean for e in rob_pairs]), rob_pairs,
                      unit="%", reason=f"share of chapter 6's interventions x t with Eq. 5 <= "
                      f"{quantities.ROBUSTNESS_THRESHOLD:g}, mean of the pair's two models; one "
                      "t-interval over pairs")]
