"""Static explorers for the built book: data precomputed in the notebook, driven by plain JavaScript.

    display(attention_explorer(cfg, sweeps, query_stride=2))
    display(intervention_explorer(cfg, models))
    display(denoising_scrubber(cfg, models, steps=25))

Why plain JavaScript: Jupyter Book 1.x renders a ``text/html`` output as is,
so a page keeps working with no kernel, no widget manager, no require.js and
no network (the offline check loads it in Chromium). Saved ipywidgets state can
only link widget properties to each other, not look up a precomputed image for
a combination of five controls. Data are base64 uint8 arrays (images in
[0, 255], attention rows scaled to their maximum) inside a JSON script tag;
``explorer.nbytes`` is its page weight.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from circuitnb.analysis import yours
from circuitnb.analysis.interventions import family, intervention_sweep, summary
from circuitnb.analysis.sweep import SUMMARY, attention_summary
from circuitnb.chapters import common
from circuitnb.chapters.common import analysis_images
from circuitnb.chapters.report import ChapterResult
from circuitnb.core import results
from circuitnb.hooking.hooks import activation_stats, record
from circuitnb.hooking.sites import site_names
from circuitnb.interventions import registry
from circuitnb.interventions.impact import apply, paired_inputs, predicted_x0, reference_activations
from circuitnb.measures import metrics
from circuitnb.modeling.sampling import ddim_trajectory
from circuitnb.viz.explorer import Explorer, b64_uint8
from circuitnb.viz.plotting import to_uint8


def kind_legend() -> dict[str, str]:
    """Every registered intervention kind -> "family: one-line description" (the explorer's legend)."""
    return {k: f"{registry.get(k).family}: {registry.get(k).doc}" for k in registry.kinds()}


def _scaled_rows(a: np.ndarray) -> np.ndarray:
    """Each last-axis row scaled to 0..255 by its maximum (attention maps for display)."""
    a = np.asarray(a, float)
    m = a.max(-1, keepdims=True)
    return np.round(255 * np.divide(a, m, out=np.zeros_like(a), where=m > 0)).astype(np.uint8)


def shown_layers(sw) -> list[str]:
    """The attention layers an explorer shows: those with the key grid and head count of the most layers
    (the first such group in forward order on a tie). The book's models have one grid and one head count,
    so every layer; a model of your own with attention at several resolutions shows one of them."""
    shape = {layer: (sw.keys(layer), int(sw.received[(sw.timesteps[0], layer)].shape[1])) for layer in sw.layers}
    counts = {s: list(shape.values()).count(s) for s in shape.values()}
    best = max(counts, key=lambda s: (counts[s], -list(shape.values()).index(s)))
    return [layer for layer in sw.layers if shape[layer] == best]


def _rgb(x: np.ndarray) -> np.ndarray:
    """Images ``[..., C, H, W]`` as 3 channels for display: a 1-channel (or 2-, 4-channel) image as grey."""
    x = np.asarray(x)
    return x if x.shape[-3] == 3 else np.repeat(x[..., :1, :, :], 3, axis=-3)


def attention_explorer(cfg, sweeps: dict, query_stride: int = 2, image: int = 0) -> Explorer:
    """Dataset x timestep x layer x head x query -> that head's attention map over the image (Fig. 9 made live).

    Uses the sweep's full attention of image ``image`` (one of its first few),
    every ``query_stride``-th query row and column of the attention grid, for the layers of
    :func:`shown_layers`.
    """
    first = next(iter(sweeps.values()))
    layers = shown_layers(first)
    g = int(round(np.sqrt(first.keys(layers[0]))))
    queries = [q for q in range(g * g) if (q // g) % query_stride == 0 and (q % g) % query_stride == 0]
    size = analysis_images(cfg, first.dataset).shape[-1]
    data = dict(kind="attention", datasets=list(sweeps), timesteps=list(first.timesteps), layers=layers,
                heads=int(first.received[(first.timesteps[0], layers[0])].shape[1]), grid=g, queries=queries,
                size=size, hmax=metrics.max_entropy(g * g), n_images=cfg.analysis.n_samples, images={}, maps={},
                entropy={}, head_entropy={})
    for name, sw in sweeps.items():
        data["images"][name] = b64_uint8(to_uint8(_rgb(analysis_images(cfg, name)[image])))
        for t in sw.timesteps:
            for layer in layers:
                key = f"{name}|{t}|{layer}"
                probs = np.asarray(sw.maps[(t, layer)][image], np.float32)[:, queries]        # [heads, nq, K]
                data["maps"][key] = b64_uint8(_scaled_rows(probs))
                rows = torch.from_numpy(probs).unsqueeze(2)                                   # each row its own "head"
                data["entropy"][key] = metrics.attention_entropy(rows).numpy().round(4).tolist()
                sub = sw.heads[(sw.heads.t == t) & (sw.heads.layer == layer)]
                data["head_entropy"][key] = sub.groupby("head").entropy.mean().round(4).tolist()
    return Explorer(data)


@torch.no_grad()
def _intervention_grid(cfg, model, name: str, image: int) -> dict:
    unet, sched = model.unet, model.scheduler
    fam = family(unet)
    specs = [v[4] for v in fam.values()]
    out = {}
    for t in cfg.analysis.timesteps:
        # interventions.impacts' own draws on the whole batch, so the predicted images here belong to
        # chapter 6's per-image numbers; only image ``image`` is run.
        x_all, eps, tt, x_t_all, g = paired_inputs(unet, sched, analysis_images(cfg, name), t, cfg.run.seed)
        reference = reference_activations(unet, sched, specs, x_all, t, g)
        e, tt, x_t = eps[image:image + 1], tt[:1], x_t_all[image:image + 1]
        base = unet(x_t, tt).sample
        out[(t, None)] = dict(x_t=to_uint8(_rgb(x_t[0].cpu())),
                              x0_hat=to_uint8(_rgb(predicted_x0(sched, x_t, base, t)[0].cpu())),
                              mse=float((base - e).pow(2).mean()))
        for iv_name, spec in fam.items():
            eps_hat = apply(unet, spec[4], x_t, tt, reference)
            out[(t, iv_name)] = dict(x0_hat=to_uint8(_rgb(predicted_x0(sched, x_t, eps_hat, t)[0].cpu())),
                                     mse=float((eps_hat - e).pow(2).mean()))
    return out


def intervention_explorer(cfg, models: dict, image: int = 0) -> Explorer:
    """Dataset x timestep x site/group x intervention x strength -> impact, predicted clean image, difference.

    The grid is chapter 6's intervention family; impacts are chapter 6's cached
    values (this image, and the mean over the analysed images).
    """
    ivs = intervention_sweep(cfg, models)
    summ = summary(ivs, cfg.analysis.n_bootstrap, cfg.run.seed)
    first = next(iter(models.values()))
    fam = family(first.unet)
    entries = [dict(name=n, target=v[1], kind=v[2], strength=v[3]) for n, v in fam.items()]
    data = dict(kind="intervention", datasets=list(models), timesteps=list(cfg.analysis.timesteps), entries=entries,
                size=first.unet.config.sample_size, n_images=cfg.analysis.n_samples, image=image, xt={}, base={},
                pred={}, impact={}, mse={}, kinds=kind_legend())
    for name, m in models.items():
        grid = results.cached(cfg, "explorer_interventions", m,
                              lambda m=m, name=name: _intervention_grid(cfg, m, name, image),
                              image=image, data=analysis_images(cfg, name))
        for t in cfg.analysis.timesteps:
            key = f"{name}|{t}"
            data["xt"][key] = b64_uint8(grid[(t, None)]["x_t"])
            data["base"][key] = b64_uint8(grid[(t, None)]["x0_hat"])
            for iv_name in fam:
                row = ivs[(ivs.dataset == name) & (ivs.t == t) & (ivs.name == iv_name) & (ivs.image == image)]
                mean = summ[(summ.dataset == name) & (summ.t == t) & (summ.name == iv_name)].impact
                data["pred"][f"{key}|{iv_name}"] = b64_uint8(grid[(t, iv_name)]["x0_hat"])
                data["impact"][f"{key}|{iv_name}"] = [round(float(row.impact.iloc[0]), 6),
                                                      round(float(mean.iloc[0]), 6)]
                data["mse"][f"{key}|{iv_name}"] = grid[(t, iv_name)]["mse"]
    return Explorer(data)


@torch.no_grad()
def _trajectory(model, n_steps: int, seed: int, layers: list[str]) -> dict:
    unet = model.unet
    blocks = site_names(unet, "block")
    probs = [f"{layer}.probs" for layer in layers]
    out = dict(x=[], x0=[], attn=[], entropy=[], stats=[], steps=[], layers=layers, blocks=blocks)

    def step(t, x, x0_hat):
        out["steps"].append(t)
        out["x"].append(to_uint8(_rgb(x[0].cpu())))
        out["x0"].append(to_uint8(_rgb(x0_hat[0].clamp(-1, 1).cpu())))
    # One recording over the whole loop: entry i of each reduced site is DDIM step i (batch of one).
    with record(unet, probs + blocks, reduce={**{p: attention_summary for p in probs},
                                              **{b: activation_stats for b in blocks}}) as rec:
        ddim_trajectory(unet, model.scheduler, 1, n_steps, seed, callback=step)
    for i in range(len(out["steps"])):
        summaries = [rec[p][i].cpu().numpy() for p in probs]               # [heads, SUMMARY + K] each
        out["attn"].append(_scaled_rows(np.stack([s[:, SUMMARY:].mean(0) for s in summaries])))   # [layers, K]
        out["entropy"].append([float(s[:, 0].mean()) for s in summaries])
        out["stats"].append([[float(v) for v in rec[b][i, :2]] for b in blocks])           # mean, std
    return out


def denoising_scrubber(cfg, models: dict, steps: int = 25, layers: list[str] | None = None) -> Explorer:
    """Step through a DDIM reverse process of each model: x_t, predicted x0, attention of ``layers`` (default:
    every attention layer; they must share one key grid, :func:`shown_layers`), block statistics."""
    first = next(iter(models.values()))
    layers = site_names(first.unet, "attn") if layers is None else layers
    data = dict(kind="scrub", datasets=list(models), size=first.unet.config.sample_size, x={}, x0={}, attn={},
                entropy={}, stats={})
    for name, m in models.items():
        tr = results.cached(cfg, "explorer_scrub", m, lambda m=m: _trajectory(m, steps, cfg.run.seed, layers),
                            steps=steps, layers=layers)
        data.update(steps=tr["steps"], layers=tr["layers"], blocks=tr["blocks"],
                    grid=int(round(np.sqrt(tr["attn"][0].shape[-1]))))
        data["x"][name] = [b64_uint8(a) for a in tr["x"]]
        data["x0"][name] = [b64_uint8(a) for a in tr["x0"]]
        data["attn"][name] = [b64_uint8(a) for a in tr["attn"]]
        data["entropy"][name] = [[round(v, 4) for v in e] for e in tr["entropy"]]
        data["stats"][name] = [[[round(v, 4) for v in s] for s in st] for st in tr["stats"]]
    return Explorer(data)


CHAPTER = "11_explorers"
QUERY_STRIDE = 2      # attention explorer: every 2nd query row and column (page weight); not a config field
SCRUB_STEPS = 25      # denoising scrubber: DDIM steps per model; not a config field


def run(cfg, query_stride: int = QUERY_STRIDE, scrub_steps: int = SCRUB_STEPS) -> ChapterResult:
    """Chapter 11: ``res = explorers.run(cfg)``; ``res.data`` holds the three explorers (attention,
    intervention, scrub), built for the first replicate model of each dataset (one model each keeps the
    page light; the other chapters use every replicate)."""
    models, sweeps = common.models_and_sweeps(cfg)
    first = {name: ms[0] for name, ms in models.items()}
    layers = shown_layers(next(iter(sweeps.values()))[0])
    res = common.on_your_model(cfg, CHAPTER) or ChapterResult(CHAPTER)
    res.data.update(attention=attention_explorer(cfg, {n: s[0] for n, s in sweeps.items()}, query_stride),
                    intervention=intervention_explorer(cfg, first),
                    scrub=denoising_scrubber(cfg, first, steps=scrub_steps, layers=layers))
    att, ivx, scrub = res.data["attention"], res.data["intervention"], res.data["scrub"]
    res.values.update(profile=cfg.profile, seed=cfg.run.seed, n=cfg.analysis.n_samples,
                      n_models=sum(map(len, models.values())) // len(models),
                      timesteps=", ".join(map(str, cfg.analysis.timesteps)),
                      kb_att=att.nbytes / 1024, n_queries=len(att.data["queries"]), kb_iv=ivx.nbytes / 1024,
                      n_iv=len(ivx.data["entries"]), kb_scrub=scrub.nbytes / 1024, n_steps=len(scrub.data["steps"]))
    if yours.on_your_model(cfg):                     # its page lists what each explorer holds
        every = next(iter(sweeps.values()))[0].layers
        res.tables["explorers"] = pd.DataFrame([
            dict(explorer=k, kb=v.nbytes / 1024, layers=", ".join(layers) if k != "intervention" else "all")
            for k, v in res.data.items()])
        if len(layers) < len(every):
            res.notes["layers"] = (f"attention layers at other resolutions or head counts than {layers[0]} "
                                   f"({', '.join(x for x in every if x not in layers)}) are left out of the attention "
                                   "and denoising explorers, which draw one key grid")
    return res
