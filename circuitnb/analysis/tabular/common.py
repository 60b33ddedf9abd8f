"""What Part III's chapters share: the replicate tabular VAEs, each model's measures (cached), and the same
measures on Part II's image VAEs (the image side of the comparison).

    models = tab_common.models(cfg)                     # {(kind, table): [TrainedTabular per replicate]}
    a = tab_common.analysis(cfg, models[("vae", "world")][0])
    a["scores"]["ces"], a["effects"]                    # calibrated level-1 effects [sources, latents]
    tab_common.measures_frame(cfg)                      # kind, dataset, replicate, measure, value (tables)
    tab_common.image_frame(cfg)                         # the same measures on Part II's shapes VAEs

The framework of Part II, on tables (our reading; the abstract names the levels, not their definitions):

* **sources** of an intervention: on the synthetic world its three factors (do(factor) with the descendants
  recomputed and every exogenous noise kept, :func:`circuitnb.data.tabular.world.intervene`); on a real table,
  each column (do(column) = its value in another held-out row, a permutation, the other columns kept).
* **level 1 effects**: change of each latent's posterior mean under do(source), in the latent's sd over the rows,
  calibrated by the posterior (:func:`circuitnb.measures.tabular.calibrated_effects`, reading ``weighted``: a
  collapsed latent's effect does not count). CES and specificity are Part II's functions on that matrix; the
  raw matrix (Part II's own reading) is kept as ``ces_raw``, ``specificity_raw``.
* **modularity** (Part II's primary reading): per source and per unit of the encoder's last hidden layer (the
  ``vae.patch_units`` most variable), the share of the source's effect on the decoded row carried by that unit
  alone, by path-specific activation patching through it (:func:`circuitnb.interventions.tabular.path_effect`,
  mean ||path|| / mean ||total||, Part II's level-3 share); ``modularity_latent`` is the same on the latents.
* **FGD**, MIG and DCI with column groups as the factors (world: :data:`~circuitnb.data.tabular.world.FACTOR_GROUPS`;
  a real table: one group per column); held-out **MSE** of the decoded mean (encoded units), **negative ELBO**
  (training's paired held-out measurement) and the **downstream AUC** of a logistic regression from the
  latents (posterior means) of the model's own training rows to the table's target, scored on held-out rows.

The image side reads Part II's cached four-level analysis of each shapes VAE
(:func:`circuitnb.analysis.vae.common.analysis`) and calibrates its level-1 matrix with the same posterior weights,
so both sides use one reading. Every measurement runs on held-out rows (the first ``n_samples`` for the
interventions, all of them for FGD/MIG/DCI, MSE and AUC); the model is the unit.
"""
from __future__ import annotations

import dataclasses
import functools
import warnings

import numpy as np
import pandas as pd
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from circuitnb.analysis.replicates import each_of
from circuitnb.analysis.vae import common as vae_common
from circuitnb.core import results
from circuitnb.core.config import Config
from circuitnb.data.tabular import TabularData, tabular_data
from circuitnb.data.tabular.world import COLUMNS, FACTOR_GROUPS, FACTORS, descendants, intervene
from circuitnb.data.vae.datasets import vae_data
from circuitnb.hooking.hooks import record
from circuitnb.interventions.tabular import latent_output_deltas, path_effect
from circuitnb.measures import causal_effects as ce
from circuitnb.measures.tabular import (
    calibrated_effects,
    column_groups,
    feature_group_disentanglement,
    group_codes,
    group_effects,
    per_group_scores,
    posterior_calibrated_ces,
    posterior_weights,
)
from circuitnb.modeling.tabular import TrainedTabular, encode_mean, load_all, reconstruct
from circuitnb.modeling.vae.cache import TrainedVAE, load_or_train_vae

IMAGE = "shapes"                       # Part II's benchmark: the image side of the comparison
PATCH_SITE = "encoder.fc2"             # the hidden layer whose units are patched one by one
# The config fields an analysis reads (its cache key; the model keys carry the training fields).
READS = ("seed", "n_samples", "vae.patch_units", "vae.dci_trees")
MEASURES = ("ces", "ces_raw", "ces_normalised", "specificity", "specificity_raw", "modularity",
            "modularity_latent", "fgd", "mig_groups", "dci_groups", "mse", "nelbo", "auc", "active_latents")
SHARED = ("ces", "ces_raw", "specificity", "specificity_raw", "modularity", "modularity_latent")   # both domains


@functools.lru_cache(maxsize=2)
def models(cfg: Config) -> dict[tuple[str, str], list[TrainedTabular]]:
    """Every (kind, table) with its ``tabular.replicates`` models, trained once (cache) and loaded once per process."""
    return load_all(cfg, progress=True)


def image_kinds(cfg: Config) -> list[str]:
    """The architectures with an image counterpart: tabular kinds that Part II also trains (``vae.kinds``)."""
    return [k for k in cfg.tabular.kinds if k in cfg.vae.kinds]


@functools.lru_cache(maxsize=2)
def image_models(cfg: Config) -> dict[tuple[str, str], list[TrainedVAE]]:
    """Part II's shapes VAEs of :func:`image_kinds`, ``replicates`` each (the causal world is not needed)."""
    return {(k, IMAGE): [load_or_train_vae(cfg, k, IMAGE, r, progress=True) for r in range(cfg.run.replicates)]
            for k in image_kinds(cfg)}


def sources(data: TabularData, seed: int) -> dict[str, tuple[tuple[str, ...], np.ndarray]]:
    """``{source: (columns it changes, x_do [n, D])}``: the level-1 interventions on these rows.

    World: do(factor = its value in another row), descendants recomputed, noise kept. A real table: do(column =
    its value in another row), every other column kept. The permutation is seeded per source.
    """
    rng = np.random.default_rng(seed)
    out = {}
    if data.world is not None:
        for f in FACTORS:
            w = intervene(data.world, f, rng.permutation(data.world.values[f]))
            out[f] = (tuple(c for c in descendants(f) if c in COLUMNS), data.encoding.transform(w.frame))
        return out
    for c in data.schema.names():
        frame = data.frame.copy()
        frame[c] = rng.permutation(frame[c].to_numpy())
        out[c] = ((c,), data.encoding.transform(frame))
    return out


def fgd_groups(data: TabularData) -> dict:
    """FGD's column groups: the world's factor groups; one group per column of a real table."""
    return column_groups(data.blocks, FACTOR_GROUPS if data.world is not None else None)


def _rows(data: TabularData, n: int) -> TabularData:
    """The first ``n`` rows (frame, x, y, world) of a split."""
    world = None
    if data.world is not None:
        w = data.world
        world = dataclasses.replace(w, values={k: v[:n] for k, v in w.values.items()},
                                    noise={k: v[:n] for k, v in w.noise.items()})
    return dataclasses.replace(data, frame=data.frame.iloc[:n].reset_index(drop=True), x=data.x[:n],
                               y=data.y[:n], world=world)


@torch.no_grad()
def _posterior(model, x) -> tuple[np.ndarray, np.ndarray]:
    param = next(model.parameters())
    mu, logvar = model.encoder(torch.as_tensor(np.asarray(x, np.float32)).to(param.device))
    return mu.double().cpu().numpy(), logvar.double().cpu().numpy()


def downstream_auc(z_train, y_train, z_test, y_test, seed: int = 0) -> float:
    """``downstream_auc(z_train, y_train, z_test, y_test)``: ROC AUC on the test rows of a logistic regression
    (sklearn, L2, C = 1) fitted on the training rows' latents; nan when a split has one class only."""
    if len(np.unique(y_train)) < 2 or len(np.unique(y_test)) < 2:
        return float("nan")
    clf = LogisticRegression(max_iter=2000, random_state=seed).fit(z_train, y_train)
    return float(roc_auc_score(y_test, clf.predict_proba(z_test)[:, 1]))


def patching_matrix(model, x, srcs: dict, units: list[int]) -> np.ndarray:
    """[sources, units]: the share of each source's effect on the decoded row that unit u of :data:`PATCH_SITE`
    alone carries (path through u, every latent and the whole decoder; Part II's level-3 share)."""
    out = np.zeros((len(srcs), len(units)))
    outputs = [c[0] for c in model.layout]
    for i, (cols, x_do) in enumerate(srcs.values()):
        for j, u in enumerate(units):
            p = path_effect(model, x, x_do, inputs=cols, outputs=outputs, encoder_unit=u, encoder_site=PATCH_SITE)
            out[i, j] = p["path_size"] / p["total_size"] if p["total_size"] > 0 else 0.0
    return out


def _site_sd(model, x) -> np.ndarray:
    param = next(model.parameters())
    with record(model, [PATCH_SITE]) as rec, torch.no_grad():
        model.encoder(torch.as_tensor(np.asarray(x, np.float32)).to(param.device))
    return rec[PATCH_SITE].double().cpu().numpy().std(0, ddof=1)


def world_paths(model, sub: TabularData, srcs: dict) -> list[dict]:
    """The synthetic world's known answers for path patching, per factor f (one row each):

    * ``own_total``, ``leak_total``: size (mean L2 over rows, encoded units) of do(f)'s total effect on the
      decoded columns f drives (its descendants) and on every other column; the data's answer is 0 for the
      latter, so ``leak_share`` = leak / (own + leak) is the model's error;
    * ``top_latent``, ``top_share``: the latent whose single path (inputs -> latent k -> outputs, both encoder and
      decoder whole) carries the largest share of the total effect on the descendant columns, and that share;
    * ``latent_share_sum``: the shares of all single-latent paths summed (1 when the decoder is additive in the
      latents on these rows)."""
    out = []
    cols = [c[0] for c in model.layout]
    for f, (own, x_do) in srcs.items():
        rest = [c for c in cols if c not in own]
        tot = path_effect(model, sub.x, x_do, inputs=own, outputs=own)
        leak = path_effect(model, sub.x, x_do, inputs=own, outputs=rest)["total_size"] if rest else 0.0
        shares = [path_effect(model, sub.x, x_do, inputs=own, outputs=own, latent=k)["share"]
                  for k in range(model.latent_dim)]
        denom = tot["total_size"] + leak
        out.append(dict(factor=f, own_columns=", ".join(own), own_total=tot["total_size"], leak_total=leak,
                        leak_share=leak / denom if denom > 0 else np.nan, top_latent=int(np.argmax(shares)),
                        top_share=float(np.max(shares)), latent_share_sum=float(np.sum(shares))))
    return out


def _compute(cfg: Config, m: TrainedTabular) -> dict:
    ds, model = m.meta["dataset"], m.model
    held, train = tabular_data(cfg, ds, "heldout"), tabular_data(cfg, ds, "train", m.meta["replicate"])
    sub = _rows(held, min(len(held), cfg.analysis.n_samples))
    srcs = sources(sub, cfg.run.seed)
    mu, logvar = _posterior(model, sub.x)
    deltas = np.stack([_posterior(model, x_do)[0] - mu for _, x_do in srcs.values()])      # [sources, n, d]
    raw = ce.effect_matrix(deltas, mu.std(0, ddof=1))
    cal = calibrated_effects(deltas, mu, logvar, "weighted")
    units = np.argsort(-_site_sd(model, sub.x))[: cfg.vae.patch_units].tolist()
    patch = patching_matrix(model, sub.x, srcs, units)
    groups = fgd_groups(held)
    g_eff = group_effects(latent_output_deltas(model, held.x), held.x, groups)
    z_tr, z_ho = encode_mean(model, train.x), encode_mean(model, held.x)
    codes = group_codes(np.concatenate([train.x, held.x]), groups)
    with warnings.catch_warnings():       # sklearn: rare classes in small tables
        warnings.simplefilter("ignore", UserWarning)
        pg = per_group_scores(z_tr, codes[: len(train)], z_ho, codes[len(train):],
                              n_estimators=cfg.vae.dci_trees, seed=cfg.run.seed)
    recon = reconstruct(model, held.x)
    scores = dict(ces=posterior_calibrated_ces(deltas, mu, logvar), ces_raw=ce.causal_effect_strength(raw),
                  ces_normalised=posterior_calibrated_ces(deltas, mu, logvar, "normalised"),
                  specificity=ce.intervention_specificity(cal), specificity_raw=ce.intervention_specificity(raw),
                  modularity=ce.circuit_modularity(patch), modularity_latent=ce.circuit_modularity(cal),
                  fgd=feature_group_disentanglement(g_eff), mig_groups=pg["mig"], dci_groups=pg["dci_disentanglement"],
                  mse=float(((recon - held.x) ** 2).mean()), nelbo=float(m.meta["heldout_terms"]["nelbo"]),
                  auc=downstream_auc(z_tr, train.y, z_ho, held.y, cfg.run.seed),
                  active_latents=float(m.meta["active_latents"]))
    return dict(sources=list(srcs), source_columns={s: list(c) for s, (c, _) in srcs.items()}, groups=list(groups),
                effects=cal, effects_raw=raw, weights=posterior_weights(mu, logvar), patch=patch, units=units,
                group_effects=g_eff, mig_per_group=pg["mig_per_group"], scores=scores, n_rows=len(sub),
                n_heldout=len(held), paths=world_paths(model, sub, srcs) if held.world is not None else [])


@torch.no_grad()
def traversal(model, x_row, steps: int, half_width: float) -> dict:
    """Latent traversal of one encoded row [1, D]: each latent swept over ``steps`` values in +-``half_width``
    prior sds around the row's posterior mean, the others at it. ``decoded`` [latents, steps, D] is the decoder's
    mean in the row's encoding, ``clean`` [D] the decoded row itself; ``grid`` the offsets."""
    param = next(model.parameters())
    mu = model.encoder(torch.as_tensor(np.asarray(x_row, np.float32)).reshape(1, -1).to(param.device))[0]
    grid = np.linspace(-half_width, half_width, steps)
    d = mu.shape[1]
    z = mu.repeat(d * steps, 1)
    for k in range(d):
        z[k * steps:(k + 1) * steps, k] += torch.as_tensor(grid, dtype=z.dtype, device=z.device)
    dec = model.lik.expected(model.decoder(z)).double().cpu().numpy().reshape(d, steps, -1)
    clean = model.lik.expected(model.decoder(mu)).double().cpu().numpy()[0]
    return dict(grid=grid, decoded=dec, clean=clean, mu=mu.double().cpu().numpy()[0])


def analysis(cfg: Config, m: TrainedTabular, wait: bool = True) -> dict:
    """One tabular model's measures and matrices (see :func:`_compute`), from the results cache."""
    ds = m.meta["dataset"]
    return results.cached(cfg, "tab_analysis", m, lambda: _compute(cfg, m), reads=READS, dataset=ds,
                          data=tabular_data(cfg, ds, "heldout").x, wait=wait)


def all_analyses(cfg: Config) -> dict[tuple[str, str], list[dict]]:
    return each_of(models(cfg), lambda key, m, wait=True: analysis(cfg, m, wait))


def _image_compute(cfg: Config, m: TrainedVAE) -> dict:
    a = vae_common.analysis(cfg, m, IMAGE)
    x = vae_data(cfg, IMAGE, "analysis").images[: cfg.vae.n_samples]
    mu, logvar = _posterior(m.model, x)
    w = posterior_weights(mu, logvar)
    raw = a["effects"][vae_common.LATENT]
    cal = raw * w[None]                     # = calibrated_effects(deltas, mu, logvar, "weighted") of Part II's deltas
    return dict(ces=ce.causal_effect_strength(cal), ces_raw=a["scores"]["ces"],
                specificity=ce.intervention_specificity(cal),
                specificity_raw=a["scores"]["specificity"], modularity=a["scores"]["modularity"],
                modularity_latent=ce.circuit_modularity(cal), mse=np.nan)


def image_analysis(cfg: Config, m: TrainedVAE, wait: bool = True) -> dict:
    """Part II's measures of one shapes VAE under Part III's readings (:data:`SHARED`), cached."""
    return results.cached(cfg, "tab_image_side", m, lambda: _image_compute(cfg, m),
                          reads=READS + ("vae.n_samples", "vae.n_analysis", "vae.traversal_steps",
                                         "vae.traversal_range", "vae.fvae_votes"),
                          data=vae_data(cfg, IMAGE, "analysis").images, wait=wait)


def measures_frame(cfg: Config) -> pd.DataFrame:
    """One row per tabular model and measure: kind, dataset, replicate, measure, value."""
    return pd.DataFrame([dict(kind=k, dataset=ds, replicate=r, measure=name, value=float(a["scores"][name]))
                         for (k, ds), items in all_analyses(cfg).items() for r, a in enumerate(items)
                         for name in MEASURES])


def image_frame(cfg: Config) -> pd.DataFrame:
    """The :data:`SHARED` measures of every shapes VAE of :func:`image_kinds`, in :func:`measures_frame`'s form."""
    done = each_of(image_models(cfg), lambda key, m, wait=True: image_analysis(cfg, m, wait))
    return pd.DataFrame([dict(kind=k, dataset=ds, replicate=r, measure=name, value=float(s[name]))
                         for (k, ds), items in done.items() for r, s in enumerate(items) for name in SHARED])
