"""Where the scorecard's measured rows come from: one registered source per chapter that measures claims.

    models, sweeps = common.models_and_sweeps(cfg)
    rows = claims_table(cfg, "complexity", models, sweeps)   # the claims table chapter 3 shows (cached)
    every = measured(cfg, models, sweeps)                    # every source's table, in book order

Each source is ``fn(cfg, models, sweeps) -> claims DataFrame`` (one row per claim id,
:func:`circuitnb.measures.verdicts.measured_row`'s columns) over every replicate model of both datasets and
their recorded sweeps. A chapter shows its section's table and the scorecard (chapter 10) gathers them all
through :func:`claims_table`, one cached entry per section, so both read the same rows and a section's
statistics are computed once per build. The sources are keyed by chapter module name (:data:`SOURCES`).
"""
from __future__ import annotations

from typing import Any, Callable

import pandas as pd

from circuitnb.analysis import (
    complexity,
    cross_dataset,
    divergence,
    heads,
    information_flow,
    interventions,
    per_image,
    performance,
    replicates,
    transfer,
)
from circuitnb.analysis.convergence import heldout_images
from circuitnb.core import results
from circuitnb.core.config import Config
from circuitnb.measures import claims, verdicts

Source = Callable[[Config, dict, dict], pd.DataFrame]
SOURCES: dict[str, Source] = {}         # chapter module -> its claims source, in book order


def source(section: str) -> Callable[[Source], Source]:
    """Decorator: register ``fn(cfg, models, sweeps) -> claims DataFrame`` as the claims of ``section``."""
    def register(fn: Source) -> Source:
        SOURCES[section] = fn
        return fn
    return register


def cached_on_models(cfg: Config, name: str, models: dict[str, list], compute: Callable[[], Any],
                     **extra: Any) -> Any:
    """``compute()`` from the results cache, keyed by every replicate model in ``models`` ({dataset: [model]}),
    their held-out images, the package's data files (the paper's claims and the margins a verdict reads),
    the analysis settings and the seed, and the code behind ``compute``."""
    every = [m for ms in models.values() for m in ms]
    images = {ds: heldout_images(cfg, ds) for ds in models}
    return results.cached(cfg, name, every, compute, data=images, package_data=results.package_data_fingerprint(),
                          **extra)


def claims_table(cfg: Config, section: str, models: dict[str, list], sweeps: dict[str, list]) -> pd.DataFrame:
    """The claims table of ``section`` (a key of :data:`SOURCES`), cached: what the chapter shows and the
    scorecard gathers."""
    if section not in SOURCES:
        raise ValueError(f"parameter 'section' = {section!r} is not a claims source; one of {list(SOURCES)}")
    fn = SOURCES[section]
    return cached_on_models(cfg, f"claims_{section}", models, lambda: fn(cfg, models, sweeps))


def measured(cfg: Config, models: dict[str, list], sweeps: dict[str, list]) -> list[pd.DataFrame]:
    """Every section's claims table (:func:`claims_table`), in book order."""
    return [claims_table(cfg, section, models, sweeps) for section in SOURCES]


def _columns() -> list[str]:
    return list(verdicts.measured_row("").keys())


@source("performance")
def performance_claims(cfg: Config, models: dict, sweeps: dict) -> pd.DataFrame:
    """Chapter 2 (§4.1): acc_<ds>_<t> and fc_<ds>_<t>."""
    acc = replicates.per_replicate(sweeps, per_image.accuracy_per_image)
    fc = replicates.per_replicate(sweeps, per_image.complexity_per_image)
    return pd.DataFrame(performance.claim_rows(acc, fc))


@source("complexity")
def complexity_claims(cfg: Config, models: dict, sweeps: dict) -> pd.DataFrame:
    """Chapter 3 (§4.2, Table 1): cc_<ds>_<t> and cc_ratio_<t>."""
    per = replicates.per_replicate(sweeps, per_image.circuit_complexity_per_image)
    return pd.DataFrame(claims.known(complexity.table1_claims(per)))


@source("heads")
def heads_claims(cfg: Config, models: dict, sweeps: dict) -> pd.DataFrame:
    """Chapter 4 (§4.3, Table 2): head_<function>_<quantity> at ``head_t`` and n_distinct_heads."""
    t = cfg.analysis.head_t
    h = heads.head_tests(cfg, models, heads.head_sweeps(cfg, models, sweeps), t)
    per_model = heads.heads_per_model(h["per_image"], h["imp"], h["tests"])
    rows = heads.table2_claims(heads.table2_matches(h["tests"]), per_model, h["per_image"])
    return pd.DataFrame(claims.known(rows + [heads.distinct_heads_claim(heads.distinct_heads(per_model))]))


@source("temporal")
def temporal_claims(cfg: Config, models: dict, sweeps: dict) -> pd.DataFrame:
    """Chapter 5 (§4.4, Eq. 4): ife_<group>_<lo|hi>."""
    ife = information_flow.ife_models(cfg, models, sweeps)
    return pd.DataFrame(claims.known(information_flow.ife_claims(ife["ranges"])))


@source("causal")
def causal_claims(cfg: Config, models: dict, sweeps: dict) -> pd.DataFrame:
    """Chapter 6 (§4.6, Table 3): abl_baseline_mse and abl_<group> (at the paper's Table 3 timestep only)."""
    ivs = interventions.replicate_sweeps(cfg, models)
    summ = interventions.summary(ivs, cfg.analysis.n_bootstrap, cfg.run.seed)
    t = interventions.table_t(cfg)
    t3 = interventions.table3(summ, t, cfg.analysis.alpha)
    return pd.DataFrame(claims.known(interventions.table3_claims(ivs, summ, t3, t)), columns=_columns())


@source("cross_dataset")
def cross_dataset_claims(cfg: Config, models: dict, sweeps: dict) -> pd.DataFrame:
    """Chapter 7 (§4.7, Table 4): t4_<metric>_<ds>, levels of the four metrics."""
    ivs = [interventions.intervention_sweep(cfg, {name: models[name][r] for name in models})
           for r in range(cfg.run.replicates)]
    img = cross_dataset.image_level(cross_dataset.per_image_metrics(sweeps, ivs))
    return pd.DataFrame(cross_dataset.table4_claims(img))


@source("evolution")
def evolution_claims(cfg: Config, models: dict, sweeps: dict) -> pd.DataFrame:
    """Chapter 8 (§4.8): ent_div_<t> and spec_div_<t> over replicate pairs."""
    pairs = divergence.divergence_pairs(sweeps, cfg.analysis.n_bootstrap, cfg.run.seed)
    return pd.DataFrame(claims.known(divergence.divergence_claims(divergence.divergence_table(pairs), pairs)))


@source("transfer")
def transfer_claims(cfg: Config, models: dict, sweeps: dict) -> pd.DataFrame:
    """Chapter 9 (§4.9): xfer_accuracy, xfer_features and xfer_robustness over replicate pairs."""
    acc = transfer.cross_accuracy(cfg, models)
    cka_all = transfer.cka_table(transfer.block_similarity(cfg, models)).set_index("block").loc["all"]
    _, rob_pairs = transfer.robustness(interventions.replicate_sweeps(cfg, models), cfg.analysis.n_bootstrap,
                                       cfg.run.seed)
    return pd.DataFrame(claims.known(transfer.transfer_claims(acc, cka_all, rob_pairs)), columns=_columns())
