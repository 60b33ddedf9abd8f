"""Part III's tabular VAEs: an MLP encoder and decoder with a likelihood per column type, and five objectives.

    model = TabularVAE(data.layout, latent_dim=6, hidden=64, kind="dip_vae_ii")
    out, mu, logvar, z = model(torch.as_tensor(data.x))
    terms = objective(model, x, out, mu, logvar, z, n_data=len(data.x))   # {"recon", "kl", ..., "loss"}

Architecture: two fully connected ReLU layers of ``hidden`` units on each side and a diagonal Gaussian posterior
N(mu, exp(logvar)) over ``latent_dim`` dimensions; the likelihoods are
:class:`~circuitnb.modeling.tabular.likelihoods.ColumnLikelihood`'s. The encoder reads the encoded row with each
ordinal level mapped onto [-1, 1] (a fixed affine, ``encoder.scale``/``encoder.shift``).

Sites, for hooks by name on ``model.named_modules()``: ``encoder.fc1``, ``encoder.fc2`` Linear + ReLU [B, hidden];
``encoder.fc_mu``, ``encoder.fc_logvar`` [B, latent_dim]; ``decoder.fc1``, ``decoder.fc2`` Linear + ReLU
[B, hidden]; ``decoder.out`` [B, D], the likelihood parameters in the encoded columns' order (the input group of
column c is ``x[:, model.lik.slices[c]]``, its output group ``out[:, model.lik.slices[c]]``).

Objectives, per row, reconstruction = sum over columns of their NLL (:func:`objective`):

* ``vae``: recon + KL (Kingma & Welling 2014);
* ``beta_vae``: recon + beta KL (Higgins et al. 2017);
* ``factor_vae``: recon + KL + gamma TC, TC from a discriminator against permuted codes (Kim & Mnih 2018),
  reusing Part II's :func:`~circuitnb.modeling.vae.model.discriminator` and
  :func:`~circuitnb.modeling.vae.model.permute_dims`;
* ``beta_tc_vae``: recon + MI + beta TC + dimension-wise KL (Chen et al. 2018), Part II's
  :func:`~circuitnb.modeling.vae.model.kl_terms` (minibatch weighted sampling);
* ``dip_vae_ii``: recon + KL + :func:`dip_ii_penalty` (Kumar et al. 2018, DIP-VAE-II).
"""
from __future__ import annotations

import torch
from torch import nn

from circuitnb.modeling.tabular.likelihoods import ColumnLikelihood
from circuitnb.modeling.vae.model import kl_terms

TAB_KINDS = ("vae", "beta_vae", "factor_vae", "beta_tc_vae", "dip_vae_ii")


def _fc(d_in: int, d_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(d_in, d_out), nn.ReLU())


class TabEncoder(nn.Module):
    def __init__(self, width: int, latent_dim: int, hidden: int, scale: torch.Tensor, shift: torch.Tensor):
        super().__init__()
        self.register_buffer("scale", scale)
        self.register_buffer("shift", shift)
        self.fc1, self.fc2 = _fc(width, hidden), _fc(hidden, hidden)
        self.fc_mu, self.fc_logvar = nn.Linear(hidden, latent_dim), nn.Linear(hidden, latent_dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.fc2(self.fc1(x * self.scale + self.shift))
        return self.fc_mu(h), self.fc_logvar(h)


class TabDecoder(nn.Module):
    def __init__(self, width: int, latent_dim: int, hidden: int):
        super().__init__()
        self.fc1, self.fc2 = _fc(latent_dim, hidden), _fc(hidden, hidden)
        self.out = nn.Linear(hidden, width)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.out(self.fc2(self.fc1(z)))


class TabularVAE(nn.Module):
    """``TabularVAE(layout, 6, 64, kind="beta_vae", beta=4)``; ``forward(x)`` -> (out, mu, logvar, z).

    ``layout``: (name, kind, n_levels) per column (``TabularData.layout``). In training mode z is a
    reparameterised sample; in eval mode z = mu, so hooked runs of an evaluated model are deterministic.
    """

    def __init__(self, layout, latent_dim: int = 6, hidden: int = 64, kind: str = "vae", beta: float = 1.0,
                 gamma: float = 0.0, lambda_od: float = 0.0, lambda_d: float = 0.0, sigma: float = 0.5):
        super().__init__()
        if kind not in TAB_KINDS:
            raise ValueError(f"parameter 'kind' = {kind!r}; choose one of {TAB_KINDS}")
        self.kind, self.latent_dim, self.hidden = kind, latent_dim, hidden
        self.beta, self.gamma, self.lambda_od, self.lambda_d = beta, gamma, lambda_od, lambda_d
        self.lik = ColumnLikelihood(layout, sigma)
        self.encoder = TabEncoder(self.lik.width, latent_dim, hidden, *self.lik.input_affine())
        self.decoder = TabDecoder(self.lik.width, latent_dim, hidden)

    @property
    def layout(self) -> tuple:
        return self.lik.layout

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None):
        mu, logvar = self.encoder(x)
        z = mu
        if self.training:
            dev = generator.device if generator is not None else mu.device
            z = mu + torch.exp(0.5 * logvar) * torch.randn(mu.shape, generator=generator, device=dev).to(mu.device)
        return self.decoder(z), mu, logvar, z


def kl_per_row(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)) per row, [B]."""
    return 0.5 * (mu ** 2 + logvar.exp() - 1 - logvar).sum(1)


def aggregate_covariance(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Cov_q(z) = E_p(x)[diag(exp(logvar))] + Cov_p(x)[mu] over the batch (Kumar et al. 2018, §3, DIP-VAE-II:
    the aggregate posterior's covariance, encoder variances included), [d, d]; the batch covariance of mu is the
    plug-in one (divided by B), as in Kumar et al.'s and disentanglement_lib's estimate."""
    centred = mu - mu.mean(0, keepdim=True)
    return centred.T @ centred / len(mu) + torch.diag(logvar.exp().mean(0))


def dip_ii_penalty(mu: torch.Tensor, logvar: torch.Tensor, lambda_od: float, lambda_d: float) -> torch.Tensor:
    """DIP-VAE-II's regulariser (Kumar et al. 2018, §3, with the "II" Cov_q(z)):
    lambda_od sum_{i != j} Cov_q(z)_ij^2 + lambda_d sum_i (Cov_q(z)_ii - 1)^2. Zero exactly when the aggregate
    posterior's covariance is the identity. The book's lambda_d = lambda_od = 10 (disentanglement_lib's
    DIP-VAE-II: lambda_d = 1 x lambda_od, lambda_od swept over 1..50)."""
    cov = aggregate_covariance(mu, logvar)
    diag = torch.diagonal(cov)
    off = cov - torch.diag(diag)
    return lambda_od * (off ** 2).sum() + lambda_d * ((diag - 1) ** 2).sum()


def objective(model: TabularVAE, x: torch.Tensor, out: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor,
              z: torch.Tensor, n_data: int, disc: nn.Module | None = None,
              per_column: bool = False) -> dict[str, torch.Tensor]:
    """The batch-mean terms of ``model.kind``'s loss and their weighted sum ``loss`` (see the module docstring).

    Keys: ``recon`` always, and ``recon:<column>`` with ``per_column``; ``kl`` (vae, beta_vae, factor_vae,
    dip_vae_ii); ``mi``, ``tc``, ``dwkl`` (beta_tc_vae); ``tc_disc`` (factor_vae: the discriminator's
    density-ratio estimate of TC); ``dip`` (dip_vae_ii, already weighted by the lambdas)."""
    nll = model.lik.nll_matrix(out, x)                                  # [B, columns]
    terms = {"recon": nll.sum(1).mean()}
    if per_column:
        terms |= {f"recon:{c[0]}": v for c, v in zip(model.layout, nll.mean(0).unbind())}
    kind = model.kind
    if kind == "beta_tc_vae":
        terms |= kl_terms(z, mu, logvar, n_data)
        terms["loss"] = terms["recon"] + terms["mi"] + model.beta * terms["tc"] + terms["dwkl"]
        return terms
    terms["kl"] = kl_per_row(mu, logvar).mean()
    loss = terms["recon"] + (model.beta if kind == "beta_vae" else 1.0) * terms["kl"]
    if kind == "factor_vae":
        logits = disc(z)
        terms["tc_disc"] = (logits[:, 0] - logits[:, 1]).mean()
        loss = loss + model.gamma * terms["tc_disc"]
    if kind == "dip_vae_ii":
        terms["dip"] = dip_ii_penalty(mu, logvar, model.lambda_od, model.lambda_d)
        loss = loss + terms["dip"]
    terms["loss"] = loss
    return terms
