"""Chapter 8 (§4.8, Fig. 9): attention over denoising, and how far the two datasets' models' heads diverge.

    res = circuitnb.chapters.diffusion.attention_evolution.run(cfg)
    res.show("divergence")     # per t: CelebA-vs-synthetic divergence over replicate pairs, same-data null beside
    res.data["maps"]           # Fig. 9: each dataset's first model, x_t and head-mean attention of one query

The divergence per replicate pair, its table beside the same-data null and its claim rows are the library's
(:mod:`circuitnb.analysis.divergence`, which defines the paper's undefined divergence); the attention-map
figure is this chapter's.
"""
from __future__ import annotations

from circuitnb.analysis import claim_sources, sweep, yours
from circuitnb.analysis.divergence import QUANTITIES, A, divergence_pairs, divergence_table
from circuitnb.chapters import common
from circuitnb.chapters.report import ChapterResult
from circuitnb.core.config import Config
from circuitnb.measures import claims, metrics

CHAPTER = "08_attention_evolution"


def attention_maps(cfg: Config, models: dict, sweeps: dict, image_index: int = 0, query: int = -1) -> dict:
    """Fig. 9 for each dataset's first model: ``{dataset: (x_t {t: [3, H, W]}, maps {(t, layer): [heads, Q, K]})}``
    of image ``image_index``, plus the query position (``query`` < 0: the centre of the key grid) and grid."""
    grid = sweeps[A][0].grid
    q = query if query >= 0 else (grid // 2) * grid + grid // 2
    i = min(image_index, sweep.N_MAPS - 1, cfg.analysis.n_samples - 1)
    out = {}
    for name in models:
        x_t = sweep.noisy_inputs(cfg, name, models[name][0])
        out[name] = ({t: x[i] for t, x in x_t.items()}, {key: m[i] for key, m in sweeps[name][0].maps.items()})
    return dict(maps=out, query=q, grid=grid, image=i)


@common.cached_chapter()
def run(cfg: Config, image_index: int = 0, query: int = -1) -> ChapterResult:
    """Chapter 8: the attention-map figure (first models) and the divergence per t over replicate pairs."""
    if (res := common.on_your_model(cfg, CHAPTER)) is not None:
        return _on_your_model(cfg, res)
    models, sweeps = common.models_and_sweeps(cfg)
    pairs = divergence_pairs(sweeps, cfg.analysis.n_bootstrap, cfg.run.seed)
    table = divergence_table(pairs)
    res = ChapterResult(CHAPTER)
    res.tables.update(divergence=table, divergence_pairs=pairs.drop(columns="estimate"),
                      claims=claim_sources.claims_table(cfg, "evolution", models, sweeps))
    paper = claims.load().assign(dataset=A)                  # claims.by_timestep reads per-dataset series
    res.data.update(attention_maps(cfg, models, sweeps, image_index, query), divergence=table,
                    paper={q: claims.by_timestep(paper, prefix).get(A, {}) for q, (prefix, _) in QUANTITIES.items()})
    ent, spec = (table[table.quantity == q].reset_index(drop=True) for q in QUANTITIES)
    grid = res.data["grid"]
    res.values = dict(profile=cfg.profile, seed=cfg.run.seed, n=cfg.analysis.n_samples,
                      n_pairs=int(ent.n_pairs.min()), n_null=int(ent.n_null.min()), n_t=len(ent),
                      t_first=int(ent.t.iloc[0]), t_last=int(ent.t.iloc[-1]),
                      ediv_first=ent.divergence.iloc[0], ediv_first_lo=ent.ci_low.iloc[0],
                      ediv_first_hi=ent.ci_high.iloc[0], ediv_last=ent.divergence.iloc[-1],
                      enull_first_lo=ent.null_low.iloc[0], enull_first_hi=ent.null_high.iloc[0],
                      sdiv_first=spec.divergence.iloc[0], sdiv_last=spec.divergence.iloc[-1],
                      n_beyond_ent=int(ent.beyond_null.sum()), n_beyond_spec=int(spec.beyond_null.sum()),
                      div_ratio=float((ent.divergence / spec.divergence).mean()), n_keys=grid * grid,
                      query=str(divmod(res.data["query"], grid)), grid=grid, image=res.data["image"])
    return res


def _on_your_model(cfg: Config, res: ChapterResult) -> ChapterResult:
    """A model of your own: each head's attention over denoising, entropy (bits and H / log2 K) and
    specialization per analysed t, means over images with t-intervals."""
    _, sweeps = common.models_and_sweeps(cfg)
    sw = next(iter(sweeps.values()))[0]
    heads = sw.heads.assign(n_keys=sw.heads.layer.map(sw.keys))
    heads["entropy_norm"] = metrics.normalised_entropy(heads.entropy, heads.n_keys)
    keys = ["dataset", "layer", "head", "t"]
    table = heads.groupby(keys, as_index=False, sort=False).n_keys.first()
    for col in ("entropy", "entropy_norm", "specialization"):
        est = yours.over_images(heads, keys, col).drop(columns="sd")
        est = est.rename(columns={"mean": col, "ci_low": f"{col}_ci_low", "ci_high": f"{col}_ci_high"})
        table = table.merge(est if col == "specialization" else est.drop(columns="n_images"), on=keys)
    res.tables["attention_by_t"] = table
    res.notes.update(attention_by_t="every head's attention entropy (Eq. 1, bits; and H / log2 K) and "
                                    "specialization (Eq. 2) at each analysed t, means over images, 95% t-intervals",
                     divergence=yours.LEFT_OUT["divergence"])
    res.values.update(n_t=len(sw.timesteps), n_heads=len(sw.head_ids))
    return res
