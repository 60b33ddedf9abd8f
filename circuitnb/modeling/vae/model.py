"""Convolutional VAEs of the VAE causal-intervention framework (arXiv:2505.03530): VAE, β-VAE,
FactorVAE and β-TCVAE.

    model, disc, losses = train_vae("beta_vae", data.images, beta=4.0, steps=5000, seed=0)
    z = encode_mean(model, data.images)          # float32 [N, latent_dim]
    x = decode(model, z)                         # float32 [N, 1, H, W] in [-1, 1]

Architecture: the convolutional encoder/decoder of the disentanglement literature (Higgins et al.
2017; Locatello et al. 2019, disentanglement_lib's ``conv_encoder``): 4x4 stride-2 convolutions
of ``widths`` channels, a ``hidden``-unit fully connected layer, and a Gaussian posterior
N(mu, exp(logvar)); the decoder mirrors it with transposed convolutions.

Likelihood: Bernoulli. The encoder reads images in [-1, 1] (the book's convention); the decoder
emits one logit per pixel for the pixel mapped to [0, 1]. We follow Higgins et al., Kim & Mnih
and Chen et al., who all train dSprites models with a Bernoulli decoder, so that the published
β and γ mean what they meant there: a Gaussian decoder with fixed unit variance would shrink the
reconstruction term by orders of magnitude and the same β would collapse the posterior. On the
grey levels of :func:`~circuitnb.data.shapes.causal_shapes` the cross-entropy with continuous
targets is the unnormalised "continuous Bernoulli" (Loaiza-Ganem & Cunningham 2019), as in
disentanglement_lib; its minimum is still at the target.

Sites, for hooks by name on ``model.named_modules()`` (see :meth:`VAE.site_shapes`):
``encoder.conv{i}`` conv + ReLU [B, widths[i], S/2^(i+1), same]; ``encoder.fc`` [B, hidden];
``encoder.fc_mu``, ``encoder.fc_logvar`` [B, latent_dim]; ``decoder.fc`` [B, hidden];
``decoder.fc_up`` [B, widths[-1]·s·s]; ``decoder.deconv{i}`` transposed conv (+ ReLU except the
last, which gives the logits [B, 1, S, S]).
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from circuitnb.modeling.loop import as_float32, batches, run_steps, seeded

KINDS = ("vae", "beta_vae", "factor_vae", "beta_tc_vae")
_LOG_2PI = math.log(2 * math.pi)


class Encoder(nn.Module):
    def __init__(self, size: int, widths: tuple[int, ...], latent_dim: int, hidden: int):
        super().__init__()
        chans = (1, *widths)
        for i in range(len(widths)):
            self.add_module(f"conv{i}", nn.Sequential(nn.Conv2d(chans[i], chans[i + 1], 4, 2, 1), nn.ReLU()))
        side = size // 2 ** len(widths)
        self.fc = nn.Sequential(nn.Flatten(), nn.Linear(widths[-1] * side * side, hidden), nn.ReLU())
        self.fc_mu = nn.Linear(hidden, latent_dim)
        self.fc_logvar = nn.Linear(hidden, latent_dim)
        self.depth = len(widths)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        for i in range(self.depth):
            x = getattr(self, f"conv{i}")(x)
        h = self.fc(x)
        return self.fc_mu(h), self.fc_logvar(h)


class Decoder(nn.Module):
    def __init__(self, size: int, widths: tuple[int, ...], latent_dim: int, hidden: int):
        super().__init__()
        self.side, self.top, self.depth = size // 2 ** len(widths), widths[-1], len(widths)
        self.fc = nn.Sequential(nn.Linear(latent_dim, hidden), nn.ReLU())
        self.fc_up = nn.Sequential(nn.Linear(hidden, widths[-1] * self.side ** 2), nn.ReLU())
        chans = (*widths[::-1], 1)
        for i in range(self.depth):
            up = nn.ConvTranspose2d(chans[i], chans[i + 1], 4, 2, 1)
            self.add_module(f"deconv{i}", up if i == self.depth - 1 else nn.Sequential(up, nn.ReLU()))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.fc_up(self.fc(z)).view(-1, self.top, self.side, self.side)
        for i in range(self.depth):
            x = getattr(self, f"deconv{i}")(x)
        return x                                                   # Bernoulli logits [B, 1, S, S]


class VAE(nn.Module):
    """``VAE(32, (32, 32, 64, 64), latent_dim=10)``; ``forward(x)`` -> (logits, mu, logvar, z).

    In training mode z is a reparameterised sample; in eval mode z = mu, so hooked runs of an
    evaluated model are deterministic.
    """

    def __init__(self, size: int = 32, widths: tuple[int, ...] = (32, 32, 64, 64), latent_dim: int = 10,
                 hidden: int = 256, kind: str = "vae", beta: float = 1.0, gamma: float = 0.0):
        super().__init__()
        if size % 2 ** len(widths) or not widths:
            raise ValueError(f"image side {size} must be divisible by 2^len(widths) = {2 ** len(widths)}")
        self.size, self.widths, self.latent_dim, self.hidden = size, tuple(widths), latent_dim, hidden
        self.kind, self.beta, self.gamma = kind, beta, gamma
        self.encoder = Encoder(size, self.widths, latent_dim, hidden)
        self.decoder = Decoder(size, self.widths, latent_dim, hidden)

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None):
        mu, logvar = self.encoder(x)
        z = mu
        if self.training:
            z = mu + torch.exp(0.5 * logvar) * _randn(mu, generator)
        return self.decoder(z), mu, logvar, z

    @torch.no_grad()
    def site_shapes(self) -> dict[str, tuple[int, ...]]:
        """Output shape (without batch) of every named submodule with a tensor output (not the
        ``encoder``, which returns (mu, logvar)), from one forward of a blank image."""
        shapes, handles = {}, []

        def keep(name: str, out) -> None:                         # returns None: output untouched
            if isinstance(out, torch.Tensor):
                shapes[name] = tuple(out.shape[1:])
        try:
            for name, mod in self.named_modules():
                if name and not name.split(".")[-1].isdigit():      # the named sites, not their parts
                    handles.append(mod.register_forward_hook(lambda m, i, o, name=name: keep(name, o)))
            was = self.training
            self.eval()
            self(torch.zeros(1, 1, self.size, self.size, device=next(self.parameters()).device))
            self.train(was)
        finally:
            for h in handles:
                h.remove()
        return shapes


def _randn(like: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Standard normal noise shaped like ``like``, drawn on the generator's device (the seeded CPU generator
    of :func:`train_vae`, so a CUDA run draws the same noise as a CPU run), then moved to ``like``'s."""
    dev = generator.device if generator is not None else like.device
    return torch.randn(like.shape, generator=generator, device=dev).to(like.device)


def discriminator(latent_dim: int, hidden: int = 1000, layers: int = 6) -> nn.Sequential:
    """FactorVAE's TC discriminator: an MLP of ``layers`` x ``hidden`` LeakyReLU(0.2) units with two
    logits, [from q(z), from prod_j q(z_j)] (Kim & Mnih 2018, App. "6 layers, 1000 hidden units")."""
    mods, d = [], latent_dim
    for _ in range(layers):
        mods += [nn.Linear(d, hidden), nn.LeakyReLU(0.2)]
        d = hidden
    return nn.Sequential(*mods, nn.Linear(d, 2))


def _log_normal(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    return -0.5 * (_LOG_2PI + logvar + (z - mu) ** 2 * torch.exp(-logvar))


def kl_terms(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor, n_data: int) -> dict[str, torch.Tensor]:
    """β-TCVAE's split of the KL term, each a batch mean: index-code MI, total correlation and
    dimension-wise KL (Chen et al. 2018, Eq. 2), with q(z) and prod_j q(z_j) estimated by minibatch
    weighted sampling (§4.1): log q(z_i) ≈ logsumexp_j log q(z_i | x_j) - log(B N).

    MWS equals the plug-in minibatch estimate (weights 1/B) plus constants: +log N on MI,
    +(d-1) log N on TC, -d log N on the dimension-wise KL. The three still sum to the Monte Carlo
    KL(q(z|x) || p(z)) and the gradients are unaffected, but a β-TCVAE loss sits
    (β-1)(d-1) log N above the others', so compare its loss curve only with itself."""
    b = len(z)
    lq = _log_normal(z[:, None], mu[None], logvar[None])           # [B, B, d]: log q(z_i,k | x_j)
    log_qz = torch.logsumexp(lq.sum(2), dim=1) - math.log(b * n_data)
    log_prod = (torch.logsumexp(lq, dim=1) - math.log(b * n_data)).sum(1)
    log_qzx = _log_normal(z, mu, logvar).sum(1)
    log_pz = _log_normal(z, torch.zeros_like(z), torch.zeros_like(z)).sum(1)
    return {"mi": (log_qzx - log_qz).mean(), "tc": (log_qz - log_prod).mean(),
            "dwkl": (log_prod - log_pz).mean()}


def permute_dims(z: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Shuffle each latent dimension independently across the batch: a sample of prod_j q(z_j)
    (Kim & Mnih 2018, Alg. 1)."""
    u = torch.rand(z.shape, generator=generator, device=generator.device if generator is not None else z.device)
    idx = torch.argsort(u.to(z.device), dim=0)
    return torch.gather(z, 0, idx)


def discriminator_step(model: nn.Module, disc: nn.Module, opt_d: torch.optim.Optimizer, z: torch.Tensor,
                       x_second: torch.Tensor, generator: torch.Generator) -> None:
    """FactorVAE's discriminator step on detached codes: class 0 = ``z``, codes of this batch (q(z)); class 1
    = permuted codes of the second batch ``x_second``, a sample of prod_j q(z_j) (Kim & Mnih 2018, Alg. 2).
    ``model(x, generator)`` must return the codes as its 4th output."""
    with torch.no_grad():
        z2 = model(x_second, generator)[3]
    d_in = torch.cat([z.detach(), permute_dims(z2, generator)])
    label = torch.cat([torch.zeros(len(z)), torch.ones(len(z2))]).long().to(z.device)
    opt_d.zero_grad()
    F.cross_entropy(disc(d_in), label).backward()
    opt_d.step()


def train_vae(kind: str, images: np.ndarray | torch.Tensor, *, widths: tuple[int, ...] = (32, 32, 64, 64),
              latent_dim: int = 10, hidden: int = 256, steps: int = 5000, batch_size: int = 64,
              lr: float = 1e-4, beta: float = 4.0, gamma: float = 40.0, seed: int = 0,
              disc_hidden: int = 1000, disc_layers: int = 6, progress: bool = True, device: str = "cpu",
              callback: Callable[[int, VAE], None] | None = None, callback_steps: Sequence[int] = (),
              ) -> tuple[VAE, nn.Module | None, list[float]]:
    """``train_vae("factor_vae", x, gamma=40, steps=200)`` -> (model in eval mode, discriminator or
    None, loss per step). ``images``: [N, 1, S, S] in [-1, 1].

    Losses, per image, reconstruction summed over pixels (Bernoulli negative log-likelihood):
    * ``vae``: recon + KL (Kingma & Welling 2014); ``beta`` is ignored (β = 1), as for ``factor_vae``;
    * ``beta_vae``: recon + β KL (Higgins et al. 2017);
    * ``factor_vae``: recon + KL + γ TC, TC = E[log D(z) / (1 - D(z))] from a discriminator trained
      against :func:`permute_dims` on a second batch (Kim & Mnih 2018, Alg. 2; their Adam settings:
      VAE lr with betas (0.9, 0.999), discriminator lr 1e-4 with betas (0.5, 0.9));
    * ``beta_tc_vae``: recon + MI + β TC + dimension-wise KL (Chen et al. 2018, Eq. 4, α = γ = 1).
    Defaults (β = 4, γ = 40, Adam 1e-4, batch 64, widths 32-32-64-64, hidden 256) sit within the
    published dSprites settings. CPU runs are bit-identical for a seed; the global RNG is untouched.
    ``device``: where the model trains; batches and noise are drawn by one seeded CPU generator either way.
    The steps run in :func:`~circuitnb.modeling.loop.run_steps` (a tqdm bar; a NaN loss stops training).
    ``callback(step, model)`` runs after each step in ``callback_steps`` (1-based), with the model in eval
    mode (e.g. the held-out objective at snapshots; it must not draw from the training generator).
    """
    if kind not in KINDS:
        raise ValueError(f"parameter 'kind' = {kind!r}; choose one of {KINDS}")
    x_all = as_float32(images)
    if x_all.ndim != 4 or x_all.shape[1] != 1 or x_all.shape[2] != x_all.shape[3]:
        raise ValueError(f"images must be [N, 1, S, S]; got {tuple(x_all.shape)}")
    n = len(x_all)
    g = torch.Generator().manual_seed(seed)
    with seeded(seed):                                             # initialise from the seed only
        model = VAE(x_all.shape[-1], widths, latent_dim, hidden, kind,
                    beta if kind in ("beta_vae", "beta_tc_vae") else 1.0, gamma if kind == "factor_vae" else 0.0)
        disc = discriminator(latent_dim, disc_hidden, disc_layers) if kind == "factor_vae" else None
    model.to(device)
    if disc is not None:
        disc.to(device)
    opt = torch.optim.Adam(model.parameters(), lr=lr, betas=(0.9, 0.999))
    opt_d = torch.optim.Adam(disc.parameters(), lr=1e-4, betas=(0.5, 0.9)) if disc is not None else None
    losses: list[float] = []

    def step(s: int):
        idx = torch.randint(n, (2 * batch_size if disc is not None else batch_size,), generator=g)
        x = x_all[idx[:batch_size]].to(device)
        logits, mu, logvar, z = model(x, g)
        recon = F.binary_cross_entropy_with_logits(logits, (x + 1) / 2, reduction="sum") / len(x)
        if kind == "beta_tc_vae":
            t = kl_terms(z, mu, logvar, n)
            loss = recon + t["mi"] + model.beta * t["tc"] + t["dwkl"]
        else:
            kl = 0.5 * (mu ** 2 + logvar.exp() - 1 - logvar).sum(1).mean()
            loss = recon + model.beta * kl
            if disc is not None:
                d_z = disc(z)
                loss = loss + model.gamma * (d_z[:, 0] - d_z[:, 1]).mean()

        def after(value: float) -> dict:
            if disc is not None:
                discriminator_step(model, disc, opt_d, z, x_all[idx[batch_size:]].to(device), g)
            losses.append(value)
            return dict(loss=f"{value:.2f}")
        return loss, after

    run_steps(model, opt, step, steps, name=f"train_vae({kind!r})", lr=lr, hint=" or beta/gamma", desc=kind,
              progress=progress, every=10, callback=None if callback is None else lambda s: callback(s, model),
              callback_steps=callback_steps)
    if disc is not None:
        disc.eval()
    return model, disc, losses


@torch.no_grad()
def negative_elbo_per_image(model: VAE, images: np.ndarray | torch.Tensor, seed: int = 0,
                            batch_size: int = 1024) -> np.ndarray:
    """The plain negative ELBO (beta = 1: Bernoulli reconstruction NLL summed over pixels + KL to the prior),
    in nats per image, one posterior sample per image from a generator seeded with ``seed``, so two calls
    (e.g. two training snapshots) are paired. ``negative_elbo_per_image(model, x_heldout)`` -> [N]."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for x in batches(model, images, batch_size):
        mu, logvar = model.encoder(x)
        z = mu + torch.exp(0.5 * logvar) * torch.randn(mu.shape, generator=g).to(x.device)
        recon = F.binary_cross_entropy_with_logits(model.decoder(z), (x + 1) / 2, reduction="none").sum((1, 2, 3))
        kl = 0.5 * (mu ** 2 + logvar.exp() - 1 - logvar).sum(1)
        out.append((recon + kl).cpu())
    return torch.cat(out).double().numpy()


@torch.no_grad()
def encode_mean(model: VAE, images: np.ndarray | torch.Tensor, batch_size: int = 1024) -> np.ndarray:
    """``encode_mean(model, data.images)`` -> posterior means, float32 [N, latent_dim]."""
    return torch.cat([model.encoder(x)[0].cpu() for x in batches(model, images, batch_size)]).numpy()


@torch.no_grad()
def decode(model: VAE, z: np.ndarray | torch.Tensor, batch_size: int = 1024) -> np.ndarray:
    """``decode(model, z)`` -> the decoder's Bernoulli means mapped to [-1, 1], float32 [N, 1, S, S]."""
    return torch.cat([2 * torch.sigmoid(model.decoder(zb)).cpu() - 1 for zb in batches(model, z, batch_size)]).numpy()
