"""Chapter 12: every named reading of the paper's undefined quantities, and which verdicts flip between them.

    res = readings.run(cfg)
    res.show("sensitivity")       # _build/tables/sensitivity/sensitivity.csv: claim, quantity, reading, verdict, flips
    res.show("phases")            # per model: segments (BIC) against a cubic fit; bootstrap stability
    res.show("ife_calibration")   # both IFE readings on Gaussian pairs of known MI

The sensitivity table is the library's (:func:`circuitnb.analysis.readings.sensitivity`: each undefined
quantity's rows under each of its readings, :data:`circuitnb.analysis.readings.BY_QUANTITY`), the table the
scorecard reads too; this chapter adds the phases test with its bootstrap stability, the IFE calibration
and both readings of the heads profile.
"""
from __future__ import annotations

import pandas as pd

from circuitnb.analysis import phases, replicates, yours
from circuitnb.analysis.heads import heads_profile, heads_profile_reason
from circuitnb.analysis.information_flow import ife_models
from circuitnb.analysis.readings import sensitivity
from circuitnb.chapters import common
from circuitnb.chapters.report import ChapterResult
from circuitnb.core import results
from circuitnb.core.config import Config
from circuitnb.core.readings import options, readings_table
from circuitnb.measures import information

CHAPTER = "sensitivity"             # tables go to _build/tables/sensitivity/ (the notebook is 12_readings)
RHOS = (0.5, 0.8, 0.9, 0.95, 0.99, 0.999)
N_PAPER = 100                       # the paper's images per condition, for the calibration at its n
N_PHASE_BOOTSTRAP = 100


def phase_table(cfg: Config, models: dict) -> pd.DataFrame:
    """Per model: the BIC-best segmentation against a cubic fit (:func:`circuitnb.analysis.phases.phase_test`)
    on the dense profile, and over image-bootstrap profiles the share giving the same verdict and the share
    "no phases"."""
    dense = replicates.load_sweeps(cfg, models, timesteps=phases.dense_timesteps(cfg))
    rows = []
    for name, sws in dense.items():
        for r, sw in enumerate(sws):
            test = phases.phase_test(phases.profile(sw))
            boot = results.cached(cfg, "phase_bootstrap", models[name][r], lambda sw=sw: phases.phase_bootstrap(
                sw, N_PHASE_BOOTSTRAP, cfg.run.seed), dataset=name, timesteps=phases.dense_timesteps(cfg),
                data=common.analysis_images(cfg, name))
            rows.append(dict(dataset=name, replicate=r, **test,
                             same_verdict=float((boot.verdict == test["verdict"]).mean()),
                             boot_no_phases=float((boot.phases == 0).mean()), n_bootstrap=len(boot),
                             n_timesteps=len(sw.timesteps)))
    return pd.DataFrame(rows)


def calibration(cfg: Config) -> pd.DataFrame:
    """Both IFE readings on Gaussian pairs of known mutual information, at our n and the paper's."""
    return pd.concat([information.calibration(RHOS, n=n, n_rep=50, seed=cfg.run.seed)
                      for n in sorted({cfg.analysis.n_samples, N_PAPER})], ignore_index=True)


@common.cached_chapter()
def run(cfg: Config) -> ChapterResult:
    """Chapter 12: the sensitivity table over every reading, phases vs smooth, IFE calibration."""
    if (res := common.on_your_model(cfg, "12_readings")) is not None:
        return _on_your_model(cfg, res)
    models, sweeps = common.models_and_sweeps(cfg)
    table, classified = sensitivity(cfg, models, sweeps)
    profile = heads_profile()
    reason = heads_profile_reason(profile)
    calib = calibration(cfg)
    ph = phase_table(cfg, models)
    res = ChapterResult(CHAPTER)
    flipped = table[table.flips]
    res.tables.update(sensitivity=table, flipped=flipped, readings=readings_table(), phases=ph,
                      ife_calibration=calib, global_heads=classified, heads_profile=profile)
    res.data.update(calibration=calib)
    at_paper = calib[calib.n == N_PAPER].set_index("rho")
    res.values = dict(profile=cfg.profile, seed=cfg.run.seed, n=cfg.analysis.n_samples, n_models=cfg.run.replicates,
                      n_rows=len(table), n_quantities=int(table.quantity.nunique()),
                      n_undefined=int(table.undefined.nunique()), n_claims=int(table.id.nunique()),
                      n_flipped=int(flipped.id.nunique()), flipped_ids=", ".join(flipped.id.unique()) or "none",
                      n_no_phases=int((ph.phases == 0).sum()), n_phase_models=len(ph),
                      phase_stability=float(ph.same_verdict.mean()), n_phase_bootstrap=N_PHASE_BOOTSTRAP,
                      n_calib=N_PAPER, heads_reason=reason,
                      **{f"binned_{k}": at_paper.binned_mean[r] for k, r in (("95", 0.95), ("999", 0.999))},
                      **{f"knn_{k}": at_paper.knn_mean[r] for k, r in (("95", 0.95), ("999", 0.999))})
    return res


def _on_your_model(cfg: Config, res: ChapterResult) -> ChapterResult:
    """A model of your own: every reading of the undefined quantities, both IFE readings on it, its phases
    against a smooth profile with their bootstrap stability, and the IFE calibration."""
    models, sweeps = common.models_and_sweeps(cfg)
    ife = pd.concat([ife_models(cfg, models, sweeps, reading)["ranges"].assign(reading=reading)
                     for reading in options("ife")], ignore_index=True)
    res.tables.update(readings=readings_table(), ife_readings=ife, phases=phase_table(cfg, models),
                      ife_calibration=calibration(cfg))
    res.notes.update(readings="every named reading of the paper's undefined quantities",
                     ife_readings="IFE per depth group on your model under each reading of Eq. 4 (binned, kNN)",
                     phases="segments (BIC) against a cubic fit on the dense profile; share of image-bootstrap "
                            "profiles giving the same verdict",
                     ife_calibration="both IFE readings on Gaussian pairs of known mutual information",
                     sensitivity=yours.LEFT_OUT["sensitivity"])
    return res
