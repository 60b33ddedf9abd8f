"""Path-specific activation patching on Part III's tabular VAEs (abstract: "path-specific activation patching"),
our reading; and the decoder half of a path, one latent -> the output columns.

    x_do = data.encoding.transform(intervene(data.world, "size", data.world.values["size"] + 1.5).frame)
    p = path_effect(model, x, x_do, inputs=("length", "weight"), outputs=("length", "weight"),
                    encoder_unit=7, latent=2, decoder_unit=11)
    p["path"], p["total"]              # [n, width of the output group]: change of its decoded mean, per row
    p["path_size"], p["total_size"], p["share"]
    latent_output_deltas(model, x)     # [latents, n, D]: one latent moved by one prior sd, the others clean

Only the abstract exists; it names the technique and nothing of its definition. Our reading follows path
patching (Wang et al. 2022, §3.1; Goldowsky-Dill et al. 2023): a path is

    input group -> unit u of ``encoder_site`` -> latent k -> unit v of ``decoder_site`` -> output group,

and its effect is the change of the output group when the input group's change reaches it along that path
only, every other path held at its clean value. With clean rows ``x`` and sender rows x_s (``x`` with the
input group's columns taken from ``x_do``):

1. unit u of ``encoder_site`` takes its value on x_s; every other unit there keeps its clean value;
2. latent k takes the posterior mean computed from that patched site (so the input group reaches k through u
   alone); every other latent keeps its clean value;
3. unit v of ``decoder_site`` takes its value when decoding those latents; every other unit there is clean;
4. the output group is read from the decoder with that patched site.

Each step replaces the *whole* site, so no signal goes around the path. The defaults (``encoder.fc2``, the
last encoder layer, and ``decoder.fc1``, the first decoder layer) make u -> k and k -> v single weights, so a
zero weight cuts the path exactly; the layers in between (encoder.fc1, decoder.fc2) carry the path's own
signal. A unit or latent given as None is the whole site (every unit takes its path value): the path then runs
through the layer. With all three None the path is the input group's total effect.

The output is the decoder's mean in x's encoding
(:meth:`~circuitnb.modeling.tabular.likelihoods.ColumnLikelihood.expected`: a continuous column in training sds, a
categorical one as level probabilities, an ordinal one as the expected level index), so an effect is a change of
what :func:`~circuitnb.modeling.tabular.training.reconstruct` returns. ``path_size`` and ``total_size`` are mean_n
||change_n||_2 over the output group's columns; ``share`` = sum_n <path_n, total_n> / sum_n ||total_n||^2, the part
of the total effect along the path (Part II's mediation reading,
:func:`circuitnb.interventions.vae.levels.mediation`). With every ReLU in its linear range and continuous outputs,
the paths over all (u, k, v) add up to the total; ReLUs and the softmax make the decomposition non-additive in
general, so shares need not sum to 1.

Hooks: the package's ``fn(x, ctx)`` through :func:`~circuitnb.hooking.hooks.record` and
:func:`~circuitnb.hooking.hooks.edit` on the generic site table (the TabularVAE's module paths); the models run
their encoder and decoder directly, where z = mu whatever the training mode.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from circuitnb.hooking.hooks import edit, record
from circuitnb.modeling.tabular.model import TabularVAE

ENCODER_SITES = ("encoder.fc1", "encoder.fc2")       # [B, hidden] each, after the ReLU
DECODER_SITES = ("decoder.fc1", "decoder.fc2")       # [B, hidden] each, after the ReLU


def _rows(model: TabularVAE, x, name: str) -> torch.Tensor:
    param = next(model.parameters())
    t = torch.as_tensor(np.asarray(x, float), dtype=param.dtype)   # a float64 model runs in float64
    if t.ndim != 2 or t.shape[1] != model.lik.width or len(t) < 1:
        raise ValueError(f"parameter {name!r} must be encoded rows [n >= 1, {model.lik.width}] for this model; "
                         f"got {tuple(t.shape)}")
    if not torch.isfinite(t).all():
        raise ValueError(f"parameter {name!r} has non-finite values")
    return t.to(param.device)


def _columns(model: TabularVAE, names, what: str) -> list[int]:
    """The encoded-column indices of the named columns (a categorical column: its whole one-hot block)."""
    where = {c[0]: sl for c, sl in zip(model.layout, model.lik.slices)}
    names = (names,) if isinstance(names, str) else tuple(names)
    if not names:
        raise ValueError(f"parameter {what!r} is empty; name at least one column of {list(where)}")
    for n in names:
        if n not in where:
            raise ValueError(f"parameter {what!r} has {n!r}, not a column of this model; choose from {list(where)}")
    return [j for n in dict.fromkeys(names) for j in range(where[n].start, where[n].stop)]


def _unit(value, size: int, what: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 0 <= value < size:
        raise ValueError(f"parameter {what!r} = {value!r}; need None (the whole site) or an integer in [0, {size})")
    return int(value)


def _mix(clean: torch.Tensor, patched: torch.Tensor, unit: int | None) -> torch.Tensor:
    """The clean activations with ``unit`` (None: every unit) taken from the patched run."""
    if unit is None:
        return patched
    out = clean.clone()
    out[:, unit] = patched[:, unit]
    return out


def _put(value: torch.Tensor):
    """An ``fn(x, ctx)`` hook that replaces the site's output with ``value``."""
    return lambda x, ctx: value


def _site(model: TabularVAE, fn, site: str, inp: torch.Tensor) -> torch.Tensor:
    """``site``'s output [n, units] when ``fn(inp)`` runs (recordings come back on the CPU)."""
    with record(model, [site]) as rec:
        fn(inp)
    return rec[site].to(inp.device)


@torch.no_grad()
def path_effect(model: TabularVAE, x, x_do, inputs: Sequence[str] | str, outputs: Sequence[str] | str, *,
                latent: int | None = None, encoder_unit: int | None = None, decoder_unit: int | None = None,
                encoder_site: str = "encoder.fc2", decoder_site: str = "decoder.fc1") -> dict:
    """``path_effect(model, x, x_do, inputs, outputs, latent=k, encoder_unit=u, decoder_unit=v)``: the effect of
    the input group's change (``x`` -> ``x_do`` on the columns ``inputs``) on the output group ``outputs``
    along one path, every other path at its clean value (see the module docstring for the reading).

    ``x``, ``x_do``: encoded rows [n, D]; only the ``inputs`` columns of ``x_do`` are used. Columns are named
    as in ``model.layout`` (a categorical column means its whole one-hot block). Returns ``path`` and ``total``
    (float [n, width of the output group]), ``path_size``, ``total_size`` and ``share`` (floats).
    """
    if encoder_site not in ENCODER_SITES:
        raise ValueError(f"parameter 'encoder_site' = {encoder_site!r}; choose one of {ENCODER_SITES}")
    if decoder_site not in DECODER_SITES:
        raise ValueError(f"parameter 'decoder_site' = {decoder_site!r}; choose one of {DECODER_SITES}")
    a, b = _rows(model, x, "x"), _rows(model, x_do, "x_do")
    if a.shape != b.shape:
        raise ValueError(f"x and x_do must have the same shape; got {tuple(a.shape)} and {tuple(b.shape)}")
    cols_in, cols_out = _columns(model, inputs, "inputs"), _columns(model, outputs, "outputs")
    k = _unit(latent, model.latent_dim, "latent")
    u = _unit(encoder_unit, model.hidden, "encoder_unit")
    v = _unit(decoder_unit, model.hidden, "decoder_unit")
    enc, dec, mean = model.encoder, model.decoder, model.lik.expected
    sender = a.clone()
    sender[:, cols_in] = b[:, cols_in]

    mu = enc(a)[0]
    h = _mix(_site(model, enc, encoder_site, a), _site(model, enc, encoder_site, sender), u)     # step 1
    with edit(model, {encoder_site: _put(h)}):
        z = _mix(mu, enc(a)[0], k)                                                               # step 2
    g = _mix(_site(model, dec, decoder_site, mu), _site(model, dec, decoder_site, z), v)         # step 3
    with edit(model, {decoder_site: _put(g)}):
        out_path = mean(dec(mu))                                                                 # step 4
    out_clean = mean(dec(mu))
    path = (out_path - out_clean)[:, cols_out].double().cpu().numpy()
    total = (mean(dec(enc(sender)[0])) - out_clean)[:, cols_out].double().cpu().numpy()
    norm = float((total * total).sum())
    return dict(path=path, total=total, path_size=float(np.linalg.norm(path, axis=1).mean()),
                total_size=float(np.linalg.norm(total, axis=1).mean()),
                share=float((path * total).sum() / norm) if norm > 0 else 0.0)


@torch.no_grad()
def latent_output_deltas(model: TabularVAE, x, step: float = 1.0) -> np.ndarray:
    """``latent_output_deltas(model, x)`` -> float [latents, n, D]: the decoder half of a path, for
    :func:`circuitnb.measures.tabular.group_effects` and FGD.

    Entry [k, i]: the change of row i's decoded mean (in x's encoding, as :func:`path_effect`) when latent k is
    moved from the row's posterior mean by ``step`` prior sds, every other latent at its clean value (the paths
    latent k -> every decoder unit -> every output column). One step up, not a traversal: a local effect at
    the rows' own codes, which a collapsed latent (ignored by the decoder) does not have.
    """
    if not np.isfinite(step) or step == 0:
        raise ValueError(f"parameter 'step' = {step!r}; need a finite non-zero number of prior sds")
    a = _rows(model, x, "x")
    mu = model.encoder(a)[0]
    d, n = mu.shape[1], len(mu)
    z = mu.repeat(d, 1)                                          # [d * n, d]: block k has latent k moved
    z[torch.arange(d * n), torch.arange(d).repeat_interleave(n)] += step
    base = model.lik.expected(model.decoder(mu))
    moved = model.lik.expected(model.decoder(z)).reshape(d, n, -1)
    return (moved - base[None]).double().cpu().numpy()
