"""The decoder's likelihood per column type, as negative log-likelihoods per row (nats).

    lik = ColumnLikelihood(layout, sigma=0.5)       # layout: (name, kind, n_levels) per column
    terms = lik.nll(out, x)                         # {column: [B]}; out: decoder output [B, D], x: encoded rows
    lik.expected(out)                               # the reconstruction in x's encoding (a mean per block)

The decoder emits, per column, the parameters of its likelihood, in the same column order and widths as the
encoded rows ``x`` (:class:`circuitnb.data.tabular.schema.Encoding`):

* continuous (1 output, the mean mu): Gaussian N(x; mu, sigma^2) on the standardised value with a **fixed**
  sigma (``tabular.sigma``, default 0.5 training sds), NLL = (x - mu)^2 / (2 sigma^2) + log sigma + log(2 pi) / 2.
  Fixed, not learned: (i) the term is then a scaled squared error, the "reconstruction error" the Part III
  abstract correlates with CES; (ii) it stays above log sigma + 0.92 > 0 for sigma >= 0.4, so the negative ELBO
  is positive and the convergence rule's relative tolerance has a scale, whereas a learned variance drives the
  NLL of a well-fitted (or coarsely recorded) column towards minus infinity. Why 0.5: explaining a column
  perfectly gains 1 / (2 sigma^2) = 2 nats per row over its marginal, the order of a categorical column's log K;
  at sigma = 1 it gains 1/2 nat, and with beta = 4 every beta-VAE's posterior collapsed (KL = 0, no active
  latent, on all five default tables; at 1/sqrt(2), the sum-of-squares convention, on four of five: measured
  at 800 steps), which would empty the beta-VAE rows of every later measure by our choice, not the data's.
* categorical (K outputs, logits): softmax cross-entropy over the one-hot block, NLL = -log softmax(l)[k].
* ordinal (1 output, a location eta): the cumulative-logit (proportional-odds) model of McCullagh (1980),
  P(y <= k) = sigmoid(theta_k - eta), with K - 1 increasing cut points theta per column learned with the
  model and shared by all rows. Chosen over a categorical likelihood on the levels because it uses the order:
  one scalar per row moves probability monotonically along the levels, so a latent's effect on an ordinal
  column has a sign and a size comparable across levels, with K - 1 parameters instead of K per row.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)
_MIN_GAP = 1e-3                     # cut points stay strictly increasing
_BIG = 1e4                          # stands in for +-infinity in the cut points (finite gradients)


def gaussian_nll(x: torch.Tensor, mean: torch.Tensor, sigma: float) -> torch.Tensor:
    """-log N(x; mean, sigma^2), elementwise."""
    return 0.5 * ((x - mean) / sigma) ** 2 + math.log(sigma) + _HALF_LOG_2PI


def categorical_nll(logits: torch.Tensor, level: torch.Tensor) -> torch.Tensor:
    """-log softmax(logits)[level]: logits [B, K], level int64 [B] -> [B]."""
    return F.cross_entropy(logits, level, reduction="none")


def ordinal_log_probs(eta: torch.Tensor, cuts: torch.Tensor) -> torch.Tensor:
    """log P(y = k), k = 0..K-1, under the cumulative-logit model: eta [B], cuts [K-1] increasing -> [B, K].

    P(y = k) = sigmoid(a) - sigmoid(b), a = theta_k - eta, b = theta_{k-1} - eta (theta_{-1} = -inf,
    theta_{K-1} = +inf), computed as log sigmoid(a) + log sigmoid(-b) + log(1 - exp(b - a)), which is exact
    (sigmoid(a) - sigmoid(b) = sigmoid(a) sigmoid(-b) (1 - e^(b - a))) and stable in the tails."""
    big = torch.full_like(cuts[:1], _BIG)
    return _ordinal_log_probs(eta[:, None], torch.cat([-big, cuts, big])[None])[:, 0]


def _ordinal_log_probs(eta: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """Many ordinal columns at once: eta [B, n], theta [n, K + 1] (-BIG, the cuts, then values above BIG) ->
    log P(y = k) [B, n, K] by :func:`ordinal_log_probs`' formula."""
    a = theta[None, :, 1:] - eta[..., None]
    b = theta[None, :, :-1] - eta[..., None]
    return F.logsigmoid(a) + F.logsigmoid(-b) + torch.log(-torch.expm1(b - a))


def ordinal_nll(eta: torch.Tensor, cuts: torch.Tensor, level: torch.Tensor) -> torch.Tensor:
    """-log P(y = level) under the cumulative-logit model: eta [B], cuts [K-1], level int64 [B] -> [B]."""
    return -ordinal_log_probs(eta, cuts).gather(1, level[:, None])[:, 0]


def _inverse_softplus(v: np.ndarray) -> np.ndarray:
    return np.log(np.expm1(v))


class ColumnLikelihood(nn.Module):
    """The likelihoods of one table's columns; holds the ordinal cut points (the only likelihood parameters).

    Columns of one type are evaluated together (categorical blocks padded to the widest, ordinal cut points
    padded above ``_BIG``): a training step costs a few tensor operations whatever the number of columns."""

    def __init__(self, layout, sigma: float = 0.5):
        super().__init__()
        self.layout = tuple((str(n), str(k), int(m)) for n, k, m in layout)
        self.sigma = float(sigma)
        self.slices, at = [], 0
        for _, kind, k in self.layout:
            width = k if kind == "categorical" else 1
            self.slices.append(slice(at, at + width))
            at += width
        self.width = at
        pos = {kind: [i for i, c in enumerate(self.layout) if c[1] == kind] for kind in ("continuous", "categorical",
                                                                                        "ordinal")}
        starts = {kind: torch.tensor([self.slices[i].start for i in p], dtype=torch.long) for kind, p in pos.items()}
        order = torch.tensor(pos["continuous"] + pos["categorical"] + pos["ordinal"], dtype=torch.long).argsort()
        self.register_buffer("order", order, persistent=False)                # [cont | cat | ord] -> layout order
        self.register_buffer("cont_idx", starts["continuous"], persistent=False)
        # Categorical blocks as [n_cat, K_max] indices into [out | pad column]; the pad column holds -BIG (logits)
        # or 0 (one-hot), so padding changes neither the softmax nor the level.
        k_cat = max([self.layout[i][2] for i in pos["categorical"]], default=1)
        cat_idx = torch.full((len(pos["categorical"]), k_cat), self.width, dtype=torch.long)
        for r, i in enumerate(pos["categorical"]):
            cat_idx[r, : self.layout[i][2]] = torch.arange(self.slices[i].start, self.slices[i].stop)
        self.register_buffer("cat_idx", cat_idx, persistent=False)
        # Ordinal columns: one row of raw cut parameters each, padded to K_max - 1. Cut points start at the logistic
        # quantiles of equal level frequencies, logit((k + 1) / K), stored as the first cut and softplus gaps.
        k_ord = [self.layout[i][2] for i in pos["ordinal"]]
        k_max = max(k_ord, default=2)
        self.register_buffer("ord_idx", starts["ordinal"], persistent=False)
        self.register_buffer("ord_k", torch.tensor(k_ord, dtype=torch.long), persistent=False)
        raw = np.zeros((len(k_ord), k_max - 1))
        for r, k in enumerate(k_ord):
            theta = np.log(np.arange(1, k) / (k - np.arange(1, k)))
            raw[r, : k - 1] = np.concatenate([theta[:1], _inverse_softplus(np.diff(theta) - _MIN_GAP)])
        self.raw_cuts = nn.Parameter(torch.tensor(raw, dtype=torch.float32))

    def cuts(self, i: int) -> torch.Tensor:
        """The increasing cut points of the ``i``-th ordinal column (in layout order), [K - 1]."""
        return self._theta()[i, 1: int(self.ord_k[i])]

    def _theta(self) -> torch.Tensor:
        """[n_ord, K_max + 1]: -BIG, each column's K - 1 cut points, then BIG, BIG + 1, ... (levels >= K get
        probability ~0 with finite logs and gradients)."""
        raw = self.raw_cuts
        n, k_max = raw.shape[0], raw.shape[1] + 1
        cuts = torch.cat([raw[:, :1], raw[:, :1] + torch.cumsum(F.softplus(raw[:, 1:]) + _MIN_GAP, 1)], 1)
        j = torch.arange(k_max, device=raw.device)[None]
        over = (j - (self.ord_k[:, None] - 1)).to(raw.dtype)                   # >= 0 from the top cut up
        upper = torch.where(over >= 0, _BIG + over, torch.cat([cuts, cuts[:, -1:]], 1))
        return torch.cat([torch.full((n, 1), -_BIG, device=raw.device, dtype=raw.dtype), upper], 1)

    def nll_matrix(self, out: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """NLL per row and column [B, n_columns] (layout order); ``out`` the decoder's output, ``x`` the encoded
        rows, both [B, D]."""
        parts = [gaussian_nll(x[:, self.cont_idx], out[:, self.cont_idx], self.sigma)]
        if len(self.cat_idx):
            pad = torch.full_like(out[:, :1], -_BIG)
            logits = torch.cat([out, pad], 1)[:, self.cat_idx]                 # [B, n_cat, K_max]
            level = torch.cat([x, torch.zeros_like(pad)], 1)[:, self.cat_idx].argmax(2, keepdim=True)
            parts.append(torch.logsumexp(logits, 2) - logits.gather(2, level)[..., 0])
        if len(self.ord_idx):
            logp = _ordinal_log_probs(out[:, self.ord_idx], self._theta())     # [B, n_ord, K_max]
            parts.append(-logp.gather(2, x[:, self.ord_idx].round().long()[..., None])[..., 0])
        return torch.cat(parts, 1)[:, self.order]

    def nll(self, out: torch.Tensor, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """{column: NLL per row [B]}; see :meth:`nll_matrix`."""
        return dict(zip((c[0] for c in self.layout), self.nll_matrix(out, x).unbind(1)))

    def expected(self, out: torch.Tensor) -> torch.Tensor:
        """The decoder's mean in x's encoding [B, D]: the Gaussian mean, the category probabilities, and the
        expected level sum_k k P(k) of an ordinal column."""
        mean = out.clone()
        for (_, kind, _), sl in zip(self.layout, self.slices):
            if kind == "categorical":
                mean[:, sl] = torch.softmax(out[:, sl], 1)
        if len(self.ord_idx):
            p = _ordinal_log_probs(out[:, self.ord_idx], self._theta()).exp()
            mean[:, self.ord_idx] = (p * torch.arange(p.shape[2], dtype=p.dtype, device=p.device)).sum(2)
        return mean

    def input_affine(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(scale, shift) per encoded column for the encoder's input: ordinal levels 0..K-1 mapped onto [-1, 1]
        (so a 24-level income does not dwarf the standardised columns); the rest unchanged."""
        scale, shift = torch.ones(self.width), torch.zeros(self.width)
        for (_, kind, k), sl in zip(self.layout, self.slices):
            if kind == "ordinal":
                scale[sl], shift[sl] = 2.0 / (k - 1), -1.0
        return scale, shift
