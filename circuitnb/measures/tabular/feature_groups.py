"""Feature-Group Disentanglement (Part III abstract: "FGD"), with MIG and DCI per column group; our readings.

    groups = column_groups(data.blocks, FACTOR_GROUPS)   # {name: (Block, ...)}; no mapping: one group per column
    R = group_effects(deltas, x, groups)                 # [latents, groups]; deltas [latents, n, D] (decoder side)
    feature_group_disentanglement(R)                     # FGD, float in [0, 1]
    codes = group_codes(x, groups)                       # int [n, groups]: each group as one discrete factor
    per_group_scores(z, codes, z_test, codes_test)       # MIG and DCI with the groups as the factors

Only the abstract exists; it names FGD and nothing of its definition. Our reading: a table's natural unit is a
*group* of encoded columns, not one encoded column. A categorical column's K one-hot columns are one variable
(moving a row from "red" to "blue" changes two of them), and columns driven by one cause (the synthetic world's
:data:`~circuitnb.data.tabular.world.FACTOR_GROUPS`) are one group. Part II's MIG and DCI
(:mod:`circuitnb.measures.disentanglement`) score latents against ground-truth factors, which a real table does
not have; FGD instead asks whether each latent drives one group of columns. Scoring against encoded columns one
by one would count a latent that drives one categorical variable as driving K "factors".
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from circuitnb.data.tabular.schema import Block
from circuitnb.measures.disentanglement import dci, dci_scores, mig_per_factor

Groups = Mapping[str, Sequence[Block]]


def column_groups(blocks: Sequence[Block], groups: Mapping[str, Sequence[str]] | None = None) -> dict:
    """``column_groups(data.blocks, {"size": ("length", "weight"), ...})`` -> {group: (Block, ...)}.

    Without ``groups`` every column (its whole block: K one-hot columns for a categorical) is its own group.
    A column may be in one group at most; a column in none is left out of every score (e.g. the world's
    ``risk``, a collider of two groups that no factor drives alone).
    """
    by_name = {b.name: b for b in blocks}
    if groups is None:
        return {b.name: (b,) for b in blocks}
    out, seen = {}, {}
    for g, names in groups.items():
        names = (names,) if isinstance(names, str) else tuple(names)
        if not names:
            raise ValueError(f"column group {g!r} is empty; name at least one of {list(by_name)}")
        for n in names:
            if n not in by_name:
                raise ValueError(f"column group {g!r} names {n!r}, not a column; choose from {list(by_name)}")
            if n in seen:
                raise ValueError(f"column {n!r} is in two groups ({seen[n]!r} and {g!r}); a column belongs to one")
            seen[n] = g
        out[g] = tuple(by_name[n] for n in names)
    return out


def _indices(blocks: Sequence[Block]) -> np.ndarray:
    return np.concatenate([np.arange(b.start, b.stop) for b in blocks])


def _check_groups(groups: Groups, width: int) -> None:
    if len(groups) < 2:
        raise ValueError(f"need at least 2 column groups; got {len(groups)} ({list(groups)})")
    for g, blocks in groups.items():
        if not len(blocks) or max(b.stop for b in blocks) > width:
            raise ValueError(f"column group {g!r} is empty or lies outside the {width} encoded columns")


def _rows(x) -> np.ndarray:
    x = np.asarray(x, float)
    if x.ndim != 2 or len(x) < 2 or not np.all(np.isfinite(x)):
        raise ValueError(f"need finite encoded rows x [n >= 2, D]; got shape {x.shape}")
    return x


def group_effects(deltas, x, groups: Groups, eps: float = 1e-8) -> np.ndarray:
    """``group_effects(deltas [sources, n, D], x [n, D], groups)`` -> R [sources, groups] >= 0.

    ``deltas[s, i]``: the change of row i's decoded mean (in x's encoding) when source s (a latent, or a factor)
    is intervened on. Reading: R[s, g] = mean_i ||deltas[s, i, g]||_2 / spread_g, the Euclidean size of the
    change over the group's encoded columns, in units of the group's spread over the rows ``x``,
    spread_g = sqrt(sum_{j in g} Var_i(x_ij)) (the RMS distance of a row from the group's mean: a standardised
    column's is ~1, a one-hot block's sqrt(1 - sum_l p_l^2)). So groups of different widths and types are
    comparable, as Part II's effect matrix makes units of different scales comparable. A group that is
    constant over the rows (spread < ``eps``) gets 0, as a dead unit does in Part II.
    """
    x = _rows(x)
    d = np.asarray(deltas, float)
    if d.ndim != 3 or d.shape[1:] != x.shape:
        raise ValueError(f"need deltas [sources, n, D] matching x [n, D] = {x.shape}; got {d.shape}")
    if not np.all(np.isfinite(d)):
        raise ValueError("deltas must be finite")
    _check_groups(groups, x.shape[1])
    out = np.zeros((d.shape[0], len(groups)))
    for j, blocks in enumerate(groups.values()):
        cols = _indices(blocks)
        spread = np.sqrt(x[:, cols].var(0, ddof=1).sum())
        if spread >= eps:
            out[:, j] = np.linalg.norm(d[:, :, cols], axis=2).mean(1) / spread
    return out


def feature_group_disentanglement(effects) -> float:
    """``feature_group_disentanglement(R [latents, groups])``: FGD, in [0, 1]; nan when no latent moves anything.

    Reading: DCI's disentanglement (Eastwood & Williams 2018, via :func:`~circuitnb.measures.disentanglement.
    dci_scores`) of the latent x group effect matrix R of :func:`group_effects`, in place of the latent x factor
    importance matrix: per latent, 1 - entropy (base G) of its effect spread over the G groups; averaged with
    weights = the latent's share of all effect, so a collapsed latent (no effect) does not count. 1 when each
    latent moves a single group (whatever else it moves within it, e.g. every level of a one-hot block); 0 when
    every latent moves every group equally (e.g. two latents rotated by 45 degrees against two groups).
    """
    r = np.asarray(effects, float)
    if r.ndim != 2 or min(r.shape) < 2:
        raise ValueError(f"need an effect matrix [latents >= 2, groups >= 2]; got shape {r.shape}")
    if not np.all(np.isfinite(r)) or (r < 0).any():
        raise ValueError("group effects must be finite and non-negative (magnitudes)")
    if r.sum() <= 0:
        return float("nan")
    return dci_scores(r)["disentanglement"]


def group_codes(x, groups: Groups, bins: int = 10) -> np.ndarray:
    """``group_codes(x [n, D], groups)`` -> int [n, groups]: each group as one discrete factor.

    Reading: a group of one categorical or ordinal column is its level (the one-hot's argmax; the ordinal
    index). Any other group (a continuous column, or several columns) is its first principal component (each
    column standardised by its sd over the rows, so no column dominates by its unit) cut at its quantiles into
    ``bins`` equal-frequency bins: the group's main axis of variation, at a resolution that gives every such
    group about log(bins) nats of entropy. The codes are fitted to the rows given: code the training and test
    rows of DCI together, then split.
    """
    x = _rows(x)
    if not isinstance(bins, (int, np.integer)) or bins < 2:
        raise ValueError(f"parameter 'bins' = {bins!r}; need an integer >= 2")
    _check_groups(groups, x.shape[1])
    out = []
    for blocks in groups.values():
        block = blocks[0]
        if len(blocks) == 1 and block.kind != "continuous":
            part = x[:, block.start:block.stop]
            out.append(part.argmax(1) if block.kind == "categorical" else np.rint(part[:, 0]).astype(int))
            continue
        part = x[:, _indices(blocks)]
        sd = part.std(0, ddof=1)
        part = (part - part.mean(0)) / np.where(sd > 0, sd, 1.0)
        pc = part @ np.linalg.svd(part, full_matrices=False)[2][0]
        edges = np.quantile(pc, np.linspace(0, 1, bins + 1)[1:-1])
        out.append(np.unique(np.searchsorted(edges, pc, side="right"), return_inverse=True)[1])
    return np.stack(out, 1).astype(np.int64)


def per_group_scores(latents, codes, test_latents, test_codes, *, bins: int = 20, n_estimators: int = 100,
                     seed: int = 0) -> dict:
    """``per_group_scores(z, codes, z_test, codes_test)``: Part II's MIG and DCI with the column groups as the
    factors (``codes`` from :func:`group_codes`), each overall and per group.

    Returns ``mig`` (:func:`~circuitnb.measures.disentanglement.mig` on the training rows), ``mig_per_group``
    [G] (the same gap per group: I(top latent; g) - I(second; g), over H(g); their mean is ``mig``),
    ``dci_disentanglement``, ``dci_completeness``, ``dci_informativeness`` (:func:`~circuitnb.measures.
    disentanglement.dci`, trees trained on the training rows, accuracy on the test rows), ``completeness_per_group``
    [G] (each group's C_j: whether one latent alone predicts it) and ``importance`` [latents, G].
    """
    scores = dci(latents, codes, test_latents, test_codes, n_estimators=n_estimators, seed=seed)
    gaps = mig_per_factor(latents, np.asarray(codes), bins)
    return {"mig": float(np.mean(gaps)), "mig_per_group": gaps,
            "dci_disentanglement": scores["disentanglement"], "dci_completeness": scores["completeness"],
            "dci_informativeness": scores["informativeness"],
            "completeness_per_group": dci_scores(scores["importance"])["per_factor"],
            "importance": scores["importance"]}
