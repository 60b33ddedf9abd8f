"""What Part IV's chapters share: the replicate hybrid VAE-SAEs and each model's measures over the schedule, cached.

    models = sae_common.models(cfg)                       # {(method, dataset): [TrainedSAE per replicate]}
    a = sae_common.analysis(cfg, models[("topk", "dsprites")][0])
    a["schedule"]                                         # one row per snapshot: k, dead@tau, MIG, DCI, mono
    a["revival"]                                          # per threshold: dead at the schedule's end, revived
    sae_common.dead_frame(cfg)                            # method, dataset, replicate, threshold, when, dead_rate

Each model's analysis (:func:`analysis`) is a :func:`circuitnb.core.results.cached` entry keyed by the model, the
held-out images and the fields it reads (:data:`READS`): :func:`circuitnb.modeling.sae.over_schedule` (MIG and DCI
fit estimators at every snapshot, so it is cached here, not recomputed per chapter), the revival count, each unit's
firing rate at every snapshot (the explorer) and the units' monosemanticity at the last snapshot.

"100 additional epochs" (our reading, stated once here): the paper trains the schedule (k from 500 to 50 over 50
epochs) and then 100 more epochs at k = 50. Our models train it in one run: k falls over the first
``sae.decay_fraction`` of ``sae.steps`` and stays at its final value for the rest (paper profile: a third, then
twice as long at the final k, as the paper; quick: half, then as long again). The *schedule's end* is the first
snapshot at or after the decay's last step (:func:`schedule_end`); the extension is every step after it; a unit
*revives* when it is dead at the schedule's end and not dead at the last snapshot, by the same threshold, on the
same held-out images (:func:`circuitnb.analysis.sae.dead.revival`). Extension length in epochs is
:func:`extension_epochs`.
"""
from __future__ import annotations

import functools
import warnings

import numpy as np
import pandas as pd

from circuitnb.analysis.replicates import each_of
from circuitnb.analysis.sae.dead import revival
from circuitnb.core import cache, results
from circuitnb.core.config import Config
from circuitnb.measures.sae import firing_rates, monosemanticity
from circuitnb.modeling.checkpoints import CacheEntry
from circuitnb.modeling.sae import (
    TrainedSAE,
    decay_end,
    load_or_train_sae,
    model_key,
    over_schedule,
    sae_data,
    snapshot_steps,
)
from circuitnb.modeling.store import heldout_convergence

# The config fields an analysis reads (its cache key; the model keys carry the training fields).
READS = ("seed", "sae.dead_fractions", "sae.dci_trees", "sae.steps", "sae.decay_fraction")


def _jobs(cfg: Config) -> list[tuple[str, str, int]]:
    s = cfg.sae
    return [(m, d, r) for d in s.datasets for m in s.methods for r in range(s.replicates)]


@functools.lru_cache(maxsize=2)
def models(cfg: Config) -> dict[tuple[str, str], list[TrainedSAE]]:
    """Every (method, dataset) with its ``sae.replicates`` models, trained once (cache) and loaded once per process.

    Models another process is training right now (its entry locked) are taken last, so two notebooks run side by
    side (``circuitnb book``) train different models instead of one waiting for the other."""
    jobs = _jobs(cfg)
    busy = [j for j in jobs if cache.is_locked(CacheEntry(cfg.cache_path, model_key(cfg, *j)).dir)]
    done = {j: load_or_train_sae(cfg, *j, progress=True) for j in [j for j in jobs if j not in busy] + busy}
    return {(m, d): [done[(m, d, r)] for r in range(cfg.sae.replicates)] for m, d, _ in jobs}


def schedule_end(cfg: Config) -> int:
    """The snapshot step at which the schedule has reached its final k: the first at or after the decay's end."""
    end = decay_end(cfg.sae.steps, cfg.sae.decay_fraction)
    return min(s for s in snapshot_steps(cfg) if s >= end)


def epochs(cfg: Config, steps: int) -> float:
    """Training epochs in ``steps`` optimizer steps: steps x batch / training images."""
    s = cfg.sae
    return steps * s.batch_size / (s.n_images - s.n_analysis)


def extension_epochs(cfg: Config) -> float:
    """Epochs at the final k after the schedule's end (:func:`schedule_end`): our "100 additional epochs"."""
    return epochs(cfg, cfg.sae.steps - schedule_end(cfg))


def _compute(cfg: Config, m: TrainedSAE) -> dict:
    held = sae_data(cfg, m.meta["dataset"], "analysis")
    factors = held.factors.to_numpy()
    with warnings.catch_warnings():        # sklearn: a factor with many values on few held-out images (DCI)
        warnings.simplefilter("ignore", UserWarning)
        sched = over_schedule(cfg, m)
    steps = sorted(m.snapshots)
    end, last = schedule_end(cfg), steps[-1]
    rev = pd.DataFrame([dict(threshold=float(t), **revival(m.snapshots[end]["codes"], m.snapshots[last]["codes"],
                                                           float(t), later=[m.snapshots[s]["codes"]
                                                                            for s in steps if s > end]))
                        for t in sorted(set(cfg.sae.dead_fractions))])
    rates = np.stack([firing_rates(m.snapshots[s]["codes"]) for s in steps])            # [snapshots, H]
    mono = monosemanticity(m.snapshots[last]["codes"], factors, held.factor_names)
    nelbo = np.asarray(m.meta["heldout_nelbo"][-1], float)
    return dict(schedule=sched, revival=rev, steps=steps, schedule_end=end, firing=rates, mono=mono,
                factor_names=list(held.factor_names), nelbo=float(nelbo.mean()),
                converged=heldout_convergence(m.meta, cfg.analysis.converged_tol)["status"])


def analysis(cfg: Config, m: TrainedSAE, wait: bool = True) -> dict:
    """One model's measures over the schedule, revival, firing rates and monosemanticity (see
    :func:`_compute`), from the results cache."""
    ds = m.meta["dataset"]
    return results.cached(cfg, "sae_analysis", m, lambda: _compute(cfg, m), reads=READS, dataset=ds,
                          data=sae_data(cfg, ds, "analysis").images, wait=wait)


def all_analyses(cfg: Config) -> dict[tuple[str, str], list[dict]]:
    return each_of(models(cfg), lambda key, m, wait=True: analysis(cfg, m, wait))


def schedule_frame(cfg: Config) -> pd.DataFrame:
    """Every model's :func:`circuitnb.modeling.sae.over_schedule` rows, with method, dataset and replicate."""
    return pd.concat([a["schedule"].assign(method=k, dataset=ds, replicate=r)
                      for (k, ds), items in all_analyses(cfg).items() for r, a in enumerate(items)],
                     ignore_index=True)


def dead_frame(cfg: Config) -> pd.DataFrame:
    """One row per model, threshold and moment (``when``: "final", the last snapshot; "schedule end"):
    method, dataset, replicate, threshold, when, step, dead_rate."""
    rows = []
    for (k, ds), items in all_analyses(cfg).items():
        for r, a in enumerate(items):
            s = a["schedule"].set_index("step")
            for when, step in (("final", a["steps"][-1]), ("schedule end", a["schedule_end"])):
                rows += [dict(method=k, dataset=ds, replicate=r, threshold=float(t), when=when, step=int(step),
                              dead_rate=float(s.loc[step, f"dead@{t:g}"])) for t in cfg.sae.dead_fractions]
    return pd.DataFrame(rows)


def model_frame(cfg: Config) -> pd.DataFrame:
    """One row per model and measure at the last snapshot (method, dataset, replicate, measure, value): dead rate
    at every threshold, active units per input, MIG, DCI, monosemanticity, held-out negative ELBO."""
    rows = []
    for (k, ds), items in all_analyses(cfg).items():
        for r, a in enumerate(items):
            last = a["schedule"].iloc[-1]
            names = [c for c in a["schedule"].columns if c.startswith("dead@")] + [
                "active_per_input", "mig_latent", "dci_d", "dci_c", "dci_i", "mono_max", "mono_margin", "n_varying"]
            rows += [dict(method=k, dataset=ds, replicate=r, measure=n, value=float(last[n])) for n in names]
            rows.append(dict(method=k, dataset=ds, replicate=r, measure="nelbo", value=a["nelbo"]))
    return pd.DataFrame(rows)
