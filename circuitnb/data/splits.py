"""The held-out rule of the drawn sets (Part II's shapes, Part III's world, Part IV's factor images), in one place.

    check_choice(split, SPLITS, "split", DataError)               # the name, or one line naming the parameter
    seed = draw_seed(cfg.run.seed, replicate, offset=700)         # seed + 1000 r + the set's offset
    which, rows = split_draw("train", replicate, n, n_heldout)    # whose draw, and which of its rows

Replicate r trains on its own draw (seed ``draw_seed(seed, r, offset)``) less its last ``n_heldout`` rows; the
held-out rows are the base draw's (replicate 0) last ``n_heldout``, the same for every replicate and model, so
models are compared on the same held-out data while each replicate's training data differs (paper §3.1's rule,
as :mod:`circuitnb.data` applies it to the synthetic faces). The offset keeps two sets of one replicate off a
shared seed, so no model starts from another set's initial weights.
"""
from __future__ import annotations

from circuitnb.data import REPLICATE_STRIDE


def check_choice(value: str, choices: tuple[str, ...], parameter: str, error: type[Exception]) -> str:
    """``value`` when it is one of ``choices``, else ``error`` saying which parameter and what is allowed."""
    if value not in choices:
        raise error(f"parameter {parameter!r} = {value!r}; choose one of {choices}")
    return value


def draw_seed(seed: int, replicate: int, offset: int = 0) -> int:
    """The seed of replicate ``replicate``'s draw and training: ``seed + 1000 replicate + offset``."""
    return seed + REPLICATE_STRIDE * replicate + offset


def split_draw(split: str, replicate: int, n: int, n_heldout: int) -> tuple[int, slice]:
    """(the replicate whose draw of ``n`` rows holds ``split``, the split's rows of it): ``"train"`` is
    replicate ``replicate``'s first ``n - n_heldout``; any other split the base draw's last ``n_heldout``."""
    if split == "train":
        return replicate, slice(0, n - n_heldout)
    return 0, slice(n - n_heldout, n)
