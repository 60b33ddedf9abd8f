"""The hybrid VAE-SAE of Part IV (abstract 2): a convolutional VAE whose hidden layer is a sparse autoencoder.

    model = HybridVAE(in_channels=1, size=32, hidden=500, method="topk")
    model.k = 50                                  # active units per input (Top-k); the schedule sets it
    out = model(x)                                # SAEOutput: logits, mu, logvar, z, codes, pre, f, f_hat

The paper names the hybrid but not its wiring; our reading, chosen so that every SAE quantity is defined:

    x [B, C, S, S] -> conv stack -> f [B, F] (flattened) -> f_n = f / rms(f)  (per row, no parameters)
    SAE:  pre = W_enc (f_n - b_pre) + b_lat                     [B, H]   H = ``hidden`` (paper: 500)
          codes = sparsify(pre)                                 [B, H]   the H units the paper counts
          f_hat = W_dec codes + b_pre, columns of W_dec unit-norm [B, F]
    VAE:  mu, logvar = Linear(f_hat); z ~ N(mu, exp(logvar)); decoder(z) -> Bernoulli logits [B, C, S, S]

So the VAE's hidden layer *is* the SAE's code layer: the head reads only what the H units reconstruct. The
per-row RMS normalisation of the SAE's input (Gao et al. 2024 normalise SAE inputs the same way) and the unit
decoder columns (Gao et al.; Bricken et al. 2023) pin the codes' scale, so an L1 penalty cannot be evaded by
shrinking the codes and growing the weights after them.

Sparsifiers (``method``):

* ``topk`` / ``topk_auxk``: codes = ReLU of the k largest pre-activations of each row, the rest 0 (Makhzani &
  Frey 2013; Gao et al. 2024, §2.3: z = ReLU(TopK(W_enc(x - b_pre)))): at most k nonzero per row, exactly k
  when k pre-activations are positive. At k = H it is a plain ReLU layer.
* ``l1``: codes = ReLU(pre); sparsity comes from the penalty lambda ||codes||_1 of the training loss, lambda
  steered by :class:`~circuitnb.modeling.sae.schedule.L1Controller`.

``topk_auxk`` adds Gao et al.'s auxiliary loss (:func:`aux_k_loss`), their remedy for dead latents.

Sites, for hooks by name on ``model.named_modules()``: ``encoder.conv{i}`` conv + ReLU; ``sae.encode``
Linear -> pre [B, H]; ``sae.act`` the sparsifier -> codes [B, H]; ``sae.decode`` Linear -> W_dec codes [B, F];
``head.mu``, ``head.logvar`` [B, latent_dim]; ``decoder.fc`` [B, F]; ``decoder.deconv{i}``.
"""
from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

METHODS = ("topk", "topk_auxk", "l1")


class SAEOutput(NamedTuple):
    logits: torch.Tensor        # [B, C, S, S] Bernoulli logits of the pixels mapped to [0, 1]
    mu: torch.Tensor            # [B, latent_dim]
    logvar: torch.Tensor        # [B, latent_dim]
    z: torch.Tensor             # [B, latent_dim]: a sample in training mode, mu in eval mode
    codes: torch.Tensor         # [B, H] sparse codes (the hidden layer's units)
    pre: torch.Tensor           # [B, H] pre-activations
    f: torch.Tensor             # [B, F] the SAE's (normalised) input f_n
    f_hat: torch.Tensor         # [B, F] its reconstruction, what the VAE head reads


def top_k(pre: torch.Tensor, k: int) -> torch.Tensor:
    """``top_k(pre, 50)``: ReLU of each row's ``k`` largest entries, zeros elsewhere, [B, H] (k >= H: ReLU)."""
    if k >= pre.shape[-1]:
        return F.relu(pre)
    vals, idx = pre.topk(k, dim=-1)
    return torch.zeros_like(pre).scatter(-1, idx, F.relu(vals))


class Sparsify(nn.Module):
    """The code nonlinearity: Top-k with the current ``k`` (an attribute the training loop moves), or ReLU."""

    def __init__(self, method: str, k: int):
        super().__init__()
        self.method, self.k = method, int(k)

    def forward(self, pre: torch.Tensor) -> torch.Tensor:
        return F.relu(pre) if self.method == "l1" else top_k(pre, self.k)


class SparseLayer(nn.Module):
    """The SAE on the hidden layer: ``f_n`` [B, F] -> (pre [B, H], codes [B, H], f_hat [B, F])."""

    def __init__(self, d_in: int, hidden: int, method: str):
        super().__init__()
        self.b_pre = nn.Parameter(torch.zeros(d_in))
        self.encode = nn.Linear(d_in, hidden)
        self.act = Sparsify(method, hidden)
        self.decode = nn.Linear(hidden, d_in, bias=False)
        with torch.no_grad():                                   # tied initialisation (Gao et al. 2024, §A.1)
            self.decode.weight.copy_(self.encode.weight.T)
            self.encode.bias.zero_()
        self.normalize_decoder()

    @torch.no_grad()
    def normalize_decoder(self) -> None:
        """Every decoder column (one unit's direction in f) to unit norm; call after each optimizer step."""
        w = self.decode.weight                                  # [F, H]: column j is unit j's direction
        w.div_(w.norm(dim=0, keepdim=True).clamp_min(1e-8))

    def forward(self, f_n: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        pre = self.encode(f_n - self.b_pre)
        codes = self.act(pre)
        return pre, codes, self.decode(codes) + self.b_pre


def aux_k_loss(pre: torch.Tensor, dead: torch.Tensor, residual: torch.Tensor, decoder_weight: torch.Tensor,
               k_aux: int) -> torch.Tensor:
    """Gao et al. 2024's AuxK (§A.2): reconstruct the main model's residual from the ``k_aux`` largest dead
    latents. ``pre`` [B, H] pre-activations, ``dead`` bool [H], ``residual`` e = f_n - f_hat [B, F] (treated
    as a constant target), ``decoder_weight`` W_dec [F, H]. Returns the batch mean of ||e - W_dec z_aux||^2 with
    z_aux = ReLU(TopK over the dead units of pre); exactly 0 (no gradient) when no unit is dead.

    Our reading: the squared error is summed over features like our main SAE term (theirs are both normalised
    MSEs), so the weight alpha = 1/32 keeps Gao et al.'s ratio of the two terms; a dead unit is one that did
    not fire on the last ``sae.dead_window`` training images (theirs: 10M tokens)."""
    n_dead = int(dead.sum())
    if n_dead == 0:
        return pre.new_zeros(())
    masked = pre.masked_fill(~dead[None, :], float("-inf"))
    z_aux = top_k(masked, min(int(k_aux), n_dead)).nan_to_num(0.0)
    e_hat = z_aux @ decoder_weight.T
    return (residual.detach() - e_hat).pow(2).sum(1).mean()


def _conv_side(size: int, depth: int) -> int:
    if size % 2 ** depth:
        raise ValueError(f"image side {size} must be divisible by 2^len(widths) = {2 ** depth}")
    return size // 2 ** depth


class ConvEncoder(nn.Module):
    def __init__(self, in_channels: int, widths: tuple[int, ...]):
        super().__init__()
        chans = (in_channels, *widths)
        for i in range(len(widths)):
            self.add_module(f"conv{i}", nn.Sequential(nn.Conv2d(chans[i], chans[i + 1], 4, 2, 1), nn.ReLU()))
        self.depth = len(widths)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i in range(self.depth):
            x = getattr(self, f"conv{i}")(x)
        return x.flatten(1)


class Head(nn.Module):
    def __init__(self, d_in: int, latent_dim: int):
        super().__init__()
        self.mu, self.logvar = nn.Linear(d_in, latent_dim), nn.Linear(d_in, latent_dim)

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.mu(h), self.logvar(h)


class ConvDecoder(nn.Module):
    def __init__(self, out_channels: int, widths: tuple[int, ...], latent_dim: int, side: int):
        super().__init__()
        self.side, self.top, self.depth = side, widths[-1], len(widths)
        d = widths[-1] * side * side
        self.fc = nn.Sequential(nn.Linear(latent_dim, d), nn.ReLU(), nn.Linear(d, d), nn.ReLU())
        chans = (*widths[::-1], out_channels)
        for i in range(self.depth):
            up = nn.ConvTranspose2d(chans[i], chans[i + 1], 4, 2, 1)
            self.add_module(f"deconv{i}", up if i == self.depth - 1 else nn.Sequential(up, nn.ReLU()))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.fc(z).view(-1, self.top, self.side, self.side)
        for i in range(self.depth):
            x = getattr(self, f"deconv{i}")(x)
        return x


class HybridVAE(nn.Module):
    """``HybridVAE(1, 32, (16, 16, 32, 32), latent_dim=10, hidden=500, method="topk")``; see the module
    docstring. ``k`` (property) is the Top-k in force; ``since_fired`` [H] (a buffer) counts the training images
    since each unit last fired, which defines dead units for AuxK."""

    def __init__(self, in_channels: int = 1, size: int = 32, widths: tuple[int, ...] = (16, 16, 32, 32),
                 latent_dim: int = 10, hidden: int = 500, method: str = "topk"):
        super().__init__()
        if method not in METHODS:
            raise ValueError(f"parameter 'method' = {method!r}; choose one of {METHODS}")
        side = _conv_side(size, len(widths))
        self.in_channels, self.size, self.widths = in_channels, size, tuple(widths)
        self.latent_dim, self.hidden, self.method = latent_dim, hidden, method
        d = widths[-1] * side * side
        self.encoder = ConvEncoder(in_channels, self.widths)
        self.sae = SparseLayer(d, hidden, method)
        self.head = Head(d, latent_dim)
        self.decoder = ConvDecoder(in_channels, self.widths, latent_dim, side)
        self.register_buffer("since_fired", torch.zeros(hidden, dtype=torch.long))

    @property
    def k(self) -> int:
        return self.sae.act.k

    @k.setter
    def k(self, value: int) -> None:
        self.sae.act.k = int(value)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The SAE's input f_n: conv features scaled to unit RMS per row, [B, F]."""
        f = self.encoder(x)
        return f / f.pow(2).mean(1, keepdim=True).add(1e-8).sqrt()

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> SAEOutput:
        f_n = self.features(x)
        pre, codes, f_hat = self.sae(f_n)
        mu, logvar = self.head(f_hat)
        z = mu
        if self.training:
            dev = generator.device if generator is not None else mu.device
            z = mu + torch.exp(0.5 * logvar) * torch.randn(mu.shape, generator=generator, device=dev).to(mu.device)
        return SAEOutput(self.decoder(z), mu, logvar, z, codes, pre, f_n, f_hat)

    def dead_mask(self, window: int) -> torch.Tensor:
        """bool [H]: units that fired on none of the last ``window`` training images."""
        return self.since_fired >= window

    @torch.no_grad()
    def track_firing(self, codes: torch.Tensor) -> None:
        """After a training batch: reset the count of units that fired in it, add the batch to the others'."""
        self.since_fired += len(codes)
        self.since_fired[(codes > 0).any(0)] = 0
