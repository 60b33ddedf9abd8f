"""dSprites-style shapes, and a shapes world with a stated causal graph (VAE paper, arXiv:2505.03530).

    data = shapes_dataset(n=2000, size=32, seed=0)   # images float32 [N, 1, H, W] in [-1, 1]
    row = data.factors.iloc[0].to_dict(); row["scale"] = 5
    x = render(row, size=32)                         # the same image with a larger shape, [1, H, W]

    world = causal_shapes(n=2000, size=32, seed=0)
    big = intervene(world, "size", 1.0)              # do(size = 1): brightness and background follow

Images are in [-1, 1] like the diffusion half of the book: background -1, shape +1, edges in
between. The paper applies its framework to "synthetic datasets with known causal relationships
and standard disentanglement benchmarks" without publishing either; ours are

* :func:`shapes_dataset`, the five varying factors of dSprites (Matthey et al. 2017): shape
  (square, ellipse, heart), scale (6 values in [0.5, 1]), orientation (40 values in [0, 2π)),
  pos_x and pos_y (``n_pos`` values in [0, 1] each), drawn independently and uniformly. As in
  dSprites, orientation is not identifiable for the symmetric shapes (a square at 0 and at π/2
  look alike), which caps every disentanglement score below 1.
* :func:`causal_shapes`, whose factors follow the structural equations of :data:`CAUSAL_GRAPH`.

Shapes are drawn by point-in-shape tests on ``antialias``² sub-pixels per pixel; coverage is an
integer count over sub-pixels, so an image does not depend on which batch it was drawn in and
:func:`render` reproduces a dataset image bit for bit.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np
import pandas as pd

SHAPES = ("square", "ellipse", "heart")
FACTORS = ("shape", "scale", "orientation", "pos_x", "pos_y")
SCALES = np.linspace(0.5, 1.0, 6)                                   # dSprites' six scales
ORIENTATIONS = np.linspace(0.0, 2 * np.pi, 40, endpoint=False)
_RADIUS, _MARGIN = 0.18, 0.21    # shape radius at scale 1 and the border kept free, in image sides


def _coverage(shape: np.ndarray, scale: np.ndarray, theta: np.ndarray, px: np.ndarray,
              py: np.ndarray, size: int, antialias: int = 2) -> np.ndarray:
    """Fraction of each pixel inside the shape, float32 [n, size, size]; all inputs are [n] arrays.

    ``px, py`` in [0, 1] place the centre between the margins; y grows downwards in the image.
    """
    s = antialias
    g = (np.arange(size * s) + 0.5) / s                              # sub-pixel centres, in pixels
    lo, span = _MARGIN * size, (1 - 2 * _MARGIN) * size
    out = np.empty((len(shape), size, size), np.float32)
    for a in range(0, len(shape), 256):                              # chunks bound the memory
        sl = slice(a, a + 256)
        r = (_RADIUS * size * scale[sl])[:, None, None]
        dx = (g[None, None, :] - (lo + span * px[sl])[:, None, None]) / r
        dy = ((lo + span * py[sl])[:, None, None] - g[None, :, None]) / r   # y up inside the shape
        c, si = np.cos(theta[sl])[:, None, None], np.sin(theta[sl])[:, None, None]
        u, v = c * dx + si * dy, -si * dx + c * dy                   # rotate the frame by theta
        k = shape[sl][:, None, None]
        hu, hv = u / 0.85, v / 0.85 + 0.1                            # heart fitted to the unit disc
        inside = np.where(k == 0, np.maximum(np.abs(u), np.abs(v)) <= 0.8,
                 np.where(k == 1, u ** 2 + (v / 0.55) ** 2 <= 1.0,
                          (hu ** 2 + hv ** 2 - 1) ** 3 - hu ** 2 * hv ** 3 <= 0))
        count = inside.reshape(-1, size, s, size, s).sum(axis=(2, 4))  # integer: exact per image
        out[sl] = count / np.float32(s * s)
    return out


def factor_values(codes: pd.DataFrame, n_pos: int = 16) -> pd.DataFrame:
    """Integer factor codes -> the continuous values they stand for (radians, [0, 1] positions)."""
    pos = np.linspace(0.0, 1.0, n_pos)
    return pd.DataFrame({"shape": codes["shape"].to_numpy(), "scale": SCALES[codes["scale"]],
                         "orientation": ORIENTATIONS[codes["orientation"]],
                         "pos_x": pos[codes["pos_x"]], "pos_y": pos[codes["pos_y"]]})


def render(factors: Mapping | pd.DataFrame, size: int = 32, *, n_pos: int = 16,
           antialias: int = 2) -> np.ndarray:
    """``render({"shape": 2, "scale": 5, "orientation": 0, "pos_x": 3, "pos_y": 7})`` -> [1, H, W].

    Integer codes of one image (a mapping or Series) give [1, H, W]; a DataFrame of codes gives
    [n, 1, H, W]. float32 in [-1, 1]. Use the ``n_pos`` and ``antialias`` of the dataset.
    """
    single = not isinstance(factors, pd.DataFrame)
    codes = pd.DataFrame([dict(factors)]) if single else factors
    codes = codes[list(FACTORS)].astype(int)
    val = factor_values(codes, n_pos)
    cov = _coverage(val["shape"].to_numpy(), val["scale"].to_numpy(), val["orientation"].to_numpy(),
                    val["pos_x"].to_numpy(), val["pos_y"].to_numpy(), size, antialias)
    img = (2 * cov - 1)[:, None]
    return img[0] if single else img


@dataclass
class ShapesData:
    images: np.ndarray          # float32 [N, 1, H, W] in [-1, 1]
    factors: pd.DataFrame       # int codes, one column per factor (FACTORS order)
    values: pd.DataFrame        # the continuous values the codes stand for
    factor_names: tuple[str, ...]
    n_values: tuple[int, ...]   # number of codes of each factor
    n_pos: int
    antialias: int

    def render(self, codes: Mapping | pd.DataFrame) -> np.ndarray:
        """Images of other factor codes drawn exactly as this dataset draws them."""
        return render(codes, self.images.shape[-1], n_pos=self.n_pos, antialias=self.antialias)

    def __len__(self) -> int:
        return len(self.images)


def shapes_dataset(n: int, size: int = 32, seed: int = 0, *, n_pos: int = 16,
                   antialias: int = 2) -> ShapesData:
    """``shapes_dataset(2000, 32, seed=0)``: factors i.i.d. uniform over their codes, as in dSprites."""
    if size < 8 or n_pos < 2 or antialias < 1:
        raise ValueError(f"need size >= 8, n_pos >= 2, antialias >= 1; got {size}, {n_pos}, {antialias}")
    n_values = (len(SHAPES), len(SCALES), len(ORIENTATIONS), n_pos, n_pos)
    codes = np.random.default_rng(seed).integers(0, n_values, size=(n, len(FACTORS)))
    factors = pd.DataFrame(codes, columns=list(FACTORS))
    return ShapesData(render(factors, size, n_pos=n_pos, antialias=antialias), factors,
                      factor_values(factors, n_pos), FACTORS, n_values, n_pos, antialias)


# ---------------------------------------------------------------------------------------------
# A shapes world with known causal relationships. Structural equations (u_* ~ N(0, 1), drawn once
# per image and kept under intervention, so do() gives the same image's counterfactual):
#   shape       = U{0, 1, 2}                                   square / ellipse / heart
#   size        = U{0.5, 0.6, ..., 1.0}                        scale of the shape
#   pos_x       = U[0, 1]
#   pos_y       = clip(1 - pos_x + 0.15 u_y, 0, 1)             shapes lie along a falling diagonal
#   brightness  = clip(0.4 + 1.0 (size - 0.5) + 0.1 u_b, 0.35, 1)   bigger shapes are brighter
#   background  = clip(0.3 brightness + 0.03 u_g, 0, 0.3)      a bright shape lights its backdrop
#   orientation = (2π shape / 3 + π pos_x + 0.2 u_o) mod 2π    each shape turns as it moves right
# Pixel intensity in [0, 1] is background + (brightness - background) coverage, then 2 v - 1.
# ---------------------------------------------------------------------------------------------
CAUSAL_GRAPH: dict[str, list[str]] = {
    "shape": [], "size": [], "pos_x": [],
    "pos_y": ["pos_x"], "brightness": ["size"], "background": ["brightness"],
    "orientation": ["shape", "pos_x"],
}
CAUSAL_ORDER = ("shape", "size", "pos_x", "pos_y", "brightness", "background", "orientation")
# Bins that turn each continuous factor into integer codes for the disentanglement measures.
CAUSAL_BINS = {"shape": 3, "size": 6, "pos_x": 10, "pos_y": 10, "brightness": 8, "background": 8,
               "orientation": 12}
_RANGE = {"shape": (0, 2), "size": (0.5, 1.0), "pos_x": (0, 1), "pos_y": (0, 1),
          "brightness": (0.35, 1.0), "background": (0.0, 0.3), "orientation": (0, 2 * np.pi)}
_EQUATIONS = {
    "pos_y": lambda f, u: np.clip(1 - f["pos_x"] + 0.15 * u, 0, 1),
    "brightness": lambda f, u: np.clip(0.4 + 1.0 * (f["size"] - 0.5) + 0.1 * u, 0.35, 1),
    "background": lambda f, u: np.clip(0.3 * f["brightness"] + 0.03 * u, 0, 0.3),
    "orientation": lambda f, u: np.mod(f["shape"] * 2 * np.pi / 3 + np.pi * f["pos_x"] + 0.2 * u,
                                       2 * np.pi),
}


@dataclass
class CausalShapes:
    images: np.ndarray          # float32 [N, 1, H, W] in [-1, 1]
    values: pd.DataFrame        # continuous factor values, columns CAUSAL_ORDER
    codes: pd.DataFrame         # the values binned by CAUSAL_BINS (int)
    noise: pd.DataFrame         # exogenous u_* of the endogenous factors, kept under do()
    antialias: int

    factor_names = CAUSAL_ORDER
    n_values = tuple(CAUSAL_BINS[f] for f in CAUSAL_ORDER)

    def __len__(self) -> int:
        return len(self.images)


def descendants(name: str) -> set[str]:
    """Factors that change when ``name`` is intervened on, by :data:`CAUSAL_GRAPH`."""
    out, frontier = set(), {name}
    while frontier:
        frontier = {c for c, ps in CAUSAL_GRAPH.items() if frontier & set(ps)} - out
        out |= frontier
    return out


def _solve(values: pd.DataFrame, noise: pd.DataFrame, fixed: set[str], size: int,
           antialias: int) -> CausalShapes:
    values = values.copy()
    for f in CAUSAL_ORDER:                                        # topological order
        if f in _EQUATIONS and f not in fixed:
            values[f] = _EQUATIONS[f](values, noise[f].to_numpy())
    codes = pd.DataFrame({f: np.clip(((values[f] - lo) / (hi - lo) * CAUSAL_BINS[f]).astype(int),
                                     0, CAUSAL_BINS[f] - 1)
                          for f, (lo, hi) in _RANGE.items()})[list(CAUSAL_ORDER)]
    codes["shape"] = values["shape"].astype(int)
    cov = _coverage(codes["shape"].to_numpy(), values["size"].to_numpy(),
                    values["orientation"].to_numpy(), values["pos_x"].to_numpy(),
                    values["pos_y"].to_numpy(), size, antialias)
    bg, br = values["background"].to_numpy()[:, None, None], values["brightness"].to_numpy()[:, None, None]
    img = (2 * (bg + (br - bg) * cov) - 1).astype(np.float32)[:, None]
    return CausalShapes(img, values, codes, noise, antialias)


def causal_shapes(n: int, size: int = 32, seed: int = 0, *, antialias: int = 2) -> CausalShapes:
    """``causal_shapes(2000, 32, seed=0)``: a sample of the world in :data:`CAUSAL_GRAPH`."""
    rng = np.random.default_rng(seed)
    values = pd.DataFrame({"shape": rng.integers(0, 3, n).astype(float),
                           "size": SCALES[rng.integers(0, len(SCALES), n)],
                           "pos_x": rng.random(n)})
    noise = pd.DataFrame({f: rng.standard_normal(n) for f in _EQUATIONS})
    return _solve(values, noise, set(), size, antialias)


def intervene(data: CausalShapes, name: str, value: float | np.ndarray) -> CausalShapes:
    """``intervene(world, "size", 1.0)``: do(name = value) on every image, exogenous noise kept.

    The factor is set, its descendants are recomputed from the structural equations and the
    images redrawn; non-descendants keep their values, so the result is each image's
    counterfactual under the intervention (Pearl's do-operator at the unit level).
    """
    if name not in CAUSAL_GRAPH:
        raise ValueError(f"unknown factor {name!r}; choose one of {CAUSAL_ORDER}")
    values = data.values.copy()
    values[name] = np.broadcast_to(np.asarray(value, float), len(values))
    return _solve(values, data.noise, {f for f in CAUSAL_ORDER if f not in descendants(name)},
                  data.images.shape[-1], data.antialias)
