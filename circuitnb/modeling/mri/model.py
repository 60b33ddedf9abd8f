"""Part V's models: a Bayesian attention VAE for anomaly detection in brain MRI, and its two baselines.

    model = MriVAE(in_channels=4, size=32, widths=(32, 64), latent_dim=32, heads=4, kind="attention")
    out = model(x)                      # VAEOut: mean, logvar [B, 4, S, S]; mu, logvar_z, z [B, latent]
    pred = mc_predict(model, x, passes=8, seed=0)   # mean, aleatoric, epistemic [N, 4, S, S] (float32 numpy)

Wiring (every kind shares it; ``kind`` switches the three parts the abstract names)::

    x [B, 4, S, S] -> (conv 4x4 stride 2 -> GroupNorm -> SiLU -> Dropout) x len(widths)
                   -> Attention (diffusers, ``heads`` heads over the (S / 2^L)^2 positions, residual)  "encoder.attn"
                   -> flatten -> Linear -> (mu, logvar_z) [B, latent]
    z -> Linear -> [B, C_L, S / 2^L, S / 2^L] -> Attention (residual)                              "decoder.attn"
      -> (conv-transpose 4x4 stride 2 -> GroupNorm -> SiLU -> Dropout) x L -> conv 3x3
      -> mean [B, 4, S, S] and a log-variance: per pixel (heteroscedastic) or one learned scalar (homoscedastic)

``kind`` (:data:`KINDS`):

* ``attention``: the paper's model. Multi-head self-attention in encoder and decoder; epistemic uncertainty by
  MC dropout (Gal & Ghahramani 2016: dropout kept on at test time, T passes, the spread of the T means is the
  epistemic variance); aleatoric uncertainty from a heteroscedastic decoder (a per-pixel log-variance trained
  by the Gaussian NLL, Kendall & Gal 2017).
* ``no_attention``: the same with the two attention layers left out (a plain convolutional Bayesian VAE).
* ``non_bayesian``: attention, but a homoscedastic decoder (one learned log-variance shared by every pixel, so
  its NLL is a scaled MSE) and no dropout at test time (:func:`mc_predict` runs one deterministic pass; its
  epistemic variance is 0). It trains with the same dropout as the others, as a regulariser only, so the three
  differ only in what the abstract names.

The attention layers are diffusers' ``Attention`` module (as Part I's UNet),
so :func:`circuitnb.hooking.attention.attention_hook` reaches their heads' probabilities ``[B, heads, Q, K]``
with no model-specific code. There is no batch norm: dropout is the only layer that behaves differently in
train and eval mode, so switching the dropout layers alone (:func:`mc_dropout`) is exactly MC dropout.
"""
from __future__ import annotations

import contextlib
import math
from typing import Iterator, NamedTuple

import numpy as np
import torch
from diffusers.models.attention_processor import Attention
from torch import nn

KINDS = ("attention", "no_attention", "non_bayesian")
LOGVAR_RANGE = (-10.0, 4.0)       # soft bounds of the decoder's log-variance: no zero or runaway variances


class VAEOut(NamedTuple):
    mean: torch.Tensor          # [B, C, S, S] the decoder's mean image
    logvar: torch.Tensor        # [B, C, S, S] per-pixel log-variance (homoscedastic: one value, broadcast)
    mu: torch.Tensor            # [B, latent] posterior mean
    logvar_z: torch.Tensor      # [B, latent] posterior log-variance
    z: torch.Tensor             # [B, latent] a posterior draw in training mode, mu in eval mode


def check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise ValueError(f"parameter 'kind' = {kind!r}; choose one of {KINDS}")
    return kind


def _groups(c: int) -> int:
    return math.gcd(c, 8)


def _soft_clamp(v: torch.Tensor) -> torch.Tensor:
    lo, hi = LOGVAR_RANGE
    return lo + (hi - lo) * torch.sigmoid(v)


def gaussian_nll(x: torch.Tensor, mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Per-pixel Gaussian negative log-likelihood, nats: 0.5 (log 2 pi + logvar + (x - mean)^2 exp(-logvar)).

        gaussian_nll(x, mean, logvar).sum((1, 2, 3))      # [B] reconstruction NLL per image
    """
    return 0.5 * (math.log(2 * math.pi) + logvar + (x - mean).pow(2) * torch.exp(-logvar))


def kl_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)) per row, nats [B]."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(1)


class MriVAE(nn.Module):
    """See the module docstring. ``dropout``: the probability of every dropout layer (conv blocks and the
    attention output)."""

    def __init__(self, in_channels: int = 4, size: int = 32, widths: tuple[int, ...] = (32, 64),
                 latent_dim: int = 32, heads: int = 4, kind: str = "attention", dropout: float = 0.1):
        super().__init__()
        self.kind = check_kind(kind)
        self.in_channels, self.size, self.widths = in_channels, size, tuple(widths)
        self.latent_dim, self.heads, self.dropout = latent_dim, heads, dropout
        n = len(widths)
        if size % 2 ** n:
            raise ValueError(f"size {size} must be divisible by 2**{n} for {n} widths")
        self.res = size // 2 ** n
        c = widths[-1]
        if self.attention and c % heads:
            raise ValueError(f"heads = {heads} must divide the attention width {c} (the last of widths)")
        flat = c * self.res * self.res
        enc, prev = [], in_channels
        for w in widths:
            enc.append(nn.Sequential(nn.Conv2d(prev, w, 4, 2, 1), nn.GroupNorm(_groups(w), w), nn.SiLU(),
                                     nn.Dropout(dropout)))
            prev = w
        self.encoder = nn.Module()
        self.encoder.convs = nn.ModuleList(enc)
        self.encoder.attn = self._attention(c) if self.attention else nn.Identity()
        self.encoder.head = nn.Linear(flat, 2 * latent_dim)
        self.decoder = nn.Module()
        self.decoder.fc = nn.Linear(latent_dim, flat)
        self.decoder.attn = self._attention(c) if self.attention else nn.Identity()
        dec, rev = [], list(widths[::-1]) + [widths[0]]
        for a, b in zip(rev[:-1], rev[1:]):
            dec.append(nn.Sequential(nn.ConvTranspose2d(a, b, 4, 2, 1), nn.GroupNorm(_groups(b), b), nn.SiLU(),
                                     nn.Dropout(dropout)))
        self.decoder.deconvs = nn.ModuleList(dec)
        self.decoder.out = nn.Conv2d(widths[0], 2 * in_channels if self.heteroscedastic else in_channels, 3, 1, 1)
        # Homoscedastic: one log-variance for every pixel, learned (starts at variance 1/e^2 ~ 0.14).
        self.decoder_logvar = nn.Parameter(torch.full((), -2.0)) if not self.heteroscedastic else None

    @property
    def attention(self) -> bool:
        return self.kind != "no_attention"

    @property
    def heteroscedastic(self) -> bool:
        return self.kind != "non_bayesian"

    @property
    def bayesian(self) -> bool:
        """Whether test-time passes keep dropout on (MC dropout)."""
        return self.kind != "non_bayesian"

    def _attention(self, c: int) -> Attention:
        return Attention(c, heads=self.heads, dim_head=c // self.heads, dropout=self.dropout, bias=True,
                         norm_num_groups=_groups(c), residual_connection=True)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = x
        for conv in self.encoder.convs:
            h = conv(h)
        h = self.encoder.attn(h)
        mu, logvar_z = self.encoder.head(h.flatten(1)).chunk(2, dim=1)
        return mu, logvar_z.clamp(-20, 10)

    def decode(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.decoder.fc(z).view(len(z), self.widths[-1], self.res, self.res)
        h = self.decoder.attn(h)
        for deconv in self.decoder.deconvs:
            h = deconv(h)
        out = self.decoder.out(h)
        if self.heteroscedastic:
            mean, raw = out.chunk(2, dim=1)
            return mean, _soft_clamp(raw)
        return out, _soft_clamp(self.decoder_logvar).expand_as(out)

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> VAEOut:
        """``model(x)``: in training mode z is a posterior draw (noise from ``generator``, a CPU generator);
        in eval mode z = mu."""
        mu, logvar_z = self.encode(x)
        if self.training:
            eps = torch.randn(mu.shape, generator=generator).to(mu.device)
            z = mu + torch.exp(0.5 * logvar_z) * eps
        else:
            z = mu
        mean, logvar = self.decode(z)
        return VAEOut(mean, logvar, mu, logvar_z, z)

    def site_shapes(self) -> dict[str, tuple]:
        """Sites with a tensor output and their per-example shapes (read by the generic hook site table)."""
        c, r, s = self.widths[-1], self.res, self.size
        out = {f"encoder.convs.{i}": (w, s // 2 ** (i + 1), s // 2 ** (i + 1)) for i, w in enumerate(self.widths)}
        out["encoder.head"] = (2 * self.latent_dim,)
        out["decoder.fc"] = (c * r * r,)
        if self.attention:
            out["encoder.attn"] = out["decoder.attn"] = (c, r, r)
        return out


@contextlib.contextmanager
def mc_dropout(model: nn.Module) -> Iterator[nn.Module]:
    """Eval mode with every dropout layer switched on (MC dropout), restored on exit.

        with mc_dropout(model):
            passes = [model(x).mean for _ in range(8)]       # differ: the dropout masks are redrawn
    """
    was = model.training
    model.eval()
    drops = [m for m in model.modules() if isinstance(m, nn.Dropout)]
    try:
        for m in drops:
            m.train()
        yield model
    finally:
        model.train(was)


@torch.no_grad()
def mc_predict(model: MriVAE, images: np.ndarray | torch.Tensor, passes: int = 8, seed: int = 0,
               batch_size: int = 64) -> dict[str, np.ndarray]:
    """``mc_predict(model, x, passes=8)`` -> {"mean", "aleatoric", "epistemic"}: float32 [N, C, S, S].

    The predictive distribution of the reconstruction under the model's Bayesian approximation. With T passes of
    MC dropout (z = mu: the latent is not sampled, so the spread is the weights' alone), means m_t and variances
    s_t^2 = exp(logvar_t): mean = (1/T) sum m_t; aleatoric = (1/T) sum s_t^2 (the decoder's own noise);
    epistemic = (1/T) sum m_t^2 - mean^2 (the spread of the means; law of total variance: the predictive
    variance is aleatoric + epistemic). A ``non_bayesian`` model runs one pass in eval mode (epistemic = 0).
    Dropout masks come from the global torch RNG, forked and seeded with ``seed``, so a call is reproducible and
    leaves the global state as it was.
    """
    x_all = torch.as_tensor(np.asarray(images, np.float32))
    dev = next(model.parameters()).device
    t_passes = passes if model.bayesian else 1
    if t_passes < 1:
        raise ValueError(f"parameter 'passes' = {passes}: must be >= 1")
    out: dict[str, list] = {"mean": [], "aleatoric": [], "epistemic": []}
    ctx = mc_dropout(model) if model.bayesian else _eval(model)
    with ctx, torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):
        torch.manual_seed(seed)
        for a in range(0, len(x_all), batch_size):
            x = x_all[a:a + batch_size].to(dev)
            s1 = s2 = var = torch.zeros_like(x, dtype=torch.float64)
            for _ in range(t_passes):
                o = model(x)
                m = o.mean.double()
                s1, s2, var = s1 + m, s2 + m * m, var + o.logvar.double().exp()
            mean = s1 / t_passes
            out["mean"].append(mean.float().cpu())
            out["aleatoric"].append((var / t_passes).float().cpu())
            out["epistemic"].append((s2 / t_passes - mean * mean).clamp_min(0).float().cpu())
    return {k: torch.cat(v).numpy() for k, v in out.items()}


@contextlib.contextmanager
def _eval(model: nn.Module) -> Iterator[nn.Module]:
    was = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was)
