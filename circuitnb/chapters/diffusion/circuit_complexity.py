"""Chapter 3 (§4.2, Table 1): circuit complexity per timestep, from every replicate model on held-out images.

    res = complexity.run(cfg)     # tables: table1, claims; figure data in res.data["levels"]

Table 1 and its claim rows are the library's (:mod:`circuitnb.analysis.complexity`, per image from
:func:`circuitnb.analysis.per_image.circuit_complexity_per_image`); this module shows them.
"""
from __future__ import annotations

from circuitnb.analysis import claim_sources, replicates, yours
from circuitnb.analysis.complexity import table1
from circuitnb.analysis.per_image import circuit_complexity_per_image
from circuitnb.chapters import common
from circuitnb.chapters.report import ChapterResult

CHAPTER = "03_circuit_complexity"


@common.cached_chapter()
def run(cfg) -> ChapterResult:
    """Chapter 3: Table 1 and its figure, from every replicate model on held-out images."""
    if (res := common.on_your_model(cfg, CHAPTER)) is not None:
        return _on_your_model(cfg, res)
    models, sweeps = common.models_and_sweeps(cfg)
    per = replicates.per_replicate(sweeps, circuit_complexity_per_image)
    t1 = table1(per, cfg.analysis.alpha)
    first = t1.iloc[0]
    res = ChapterResult(CHAPTER)
    res.tables["table1"] = t1
    res.tables["claims"] = claim_sources.claims_table(cfg, "complexity", models, sweeps)
    res.data["levels"] = replicates.across_replicates(per, ["dataset", "t"]).rename(columns={"mean": "value"})
    res.values = dict(profile=cfg.profile, seed=cfg.run.seed, n=int(first.n_images), n_models=int(first.n_models),
                      timesteps=", ".join(map(str, cfg.analysis.timesteps)), t_first=int(first.timestep),
                      ratio_first=first.ratio, ratio_lo=first.ratio_ci_low, ratio_hi=first.ratio_ci_high,
                      null_lo=first.ratio_null_low, null_hi=first.ratio_null_high, d_first=first.d,
                      d_lo=first.d_ci_low, d_hi=first.d_ci_high, p_first=first.p_holm,
                      n_beyond=int(t1.ratio_beyond_null.sum()), n_t=len(t1))
    return res


def _on_your_model(cfg, res: ChapterResult) -> ChapterResult:
    """A model of your own: circuit complexity per timestep, mean over images with a t-interval."""
    _, sweeps = common.models_and_sweeps(cfg)
    per = replicates.per_replicate(sweeps, circuit_complexity_per_image)
    n_heads = len(next(iter(sweeps.values()))[0].head_ids)
    res.tables["levels"] = yours.over_images(per, ["dataset", "t"]).assign(n_heads=n_heads)
    res.notes.update(levels=f"circuit complexity per timestep: the share of the model's {n_heads} heads that carry "
                            "the attention output, mean over images with a 95% t-interval",
                     table1=yours.LEFT_OUT["dataset contrasts"])
    res.data["levels"] = res.tables["levels"].rename(columns={"mean": "value"})
    return res
