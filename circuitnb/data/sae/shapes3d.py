"""A Shapes3D-style scene with the benchmark's six factors, and the type every Part IV data set returns.

    data = shapes3d_dataset(n=2000, size=32, seed=0)   # images float32 [N, 3, H, W] in [-1, 1]
    row = data.factors.iloc[0].to_dict(); row["shape"] = 2
    x = render_shapes3d(row, size=32)                  # the same scene with a sphere, [3, H, W]
    masks = shapes3d_regions(data.factors, size=32)    # floor / wall / object coverage, [N, 3, H, W]

Shapes3D (Burgess & Kim 2018) cannot be downloaded here; this renderer draws its factors, with its sizes and
label values (:data:`FACTORS_3D`, :data:`SIZES_3D`): floor, wall and object hue (10 values k/10, turned
into RGB as HSV with full saturation and value), scale (8 values in [0.75, 1.25]), shape (cube, cylinder,
sphere, capsule) and orientation (15 values in [-30°, 30°]). The real files load with
:mod:`circuitnb.data.sae.files`.

The scene, in image coordinates x (right) and y (down), both in [0, 1]: two walls meet at a vertical room
corner above a floor whose far edge falls away from the corner (a room seen from inside, brighter floor
near the viewer); the object stands on the floor at y = 0.86. Orientation turns the view as Shapes3D's
azimuth does: the room corner slides sideways, the object's apparent position shifts, its outline shears
and its lit and shaded sides change (a cube shows its left or right face). Every surface is one hue times a
fixed shade, so floor hue changes floor pixels only, wall hue wall pixels only, object hue object pixels.

Each pixel is the mean over ``antialias``² sub-pixels of the shaded colour of the surface each sub-pixel
sees; the per-image numbers come from tables indexed by the integer codes, the counts are integers and every
step is elementwise, so an image does not depend on the batch it is drawn in and :func:`render_shapes3d`
reproduces a dataset image bit for bit (as :func:`circuitnb.data.shapes.render` does).
"""
from __future__ import annotations

import colorsys
from dataclasses import dataclass
from typing import Mapping

import numpy as np
import pandas as pd

from circuitnb.data.celeba import DataError

FACTORS_3D = ("floor_hue", "wall_hue", "object_hue", "scale", "shape", "orientation")
SIZES_3D = (10, 10, 10, 8, 4, 15)                     # Shapes3D's factor sizes: 480,000 combinations
SHAPES_3D = ("cube", "cylinder", "sphere", "capsule")  # Shapes3D's shape codes 0..3
HUES = np.arange(10) / 10                             # label values of the three hue factors, [0, 1)
SCALES_3D = np.linspace(0.75, 1.25, 8)
ORIENTATIONS_3D = np.linspace(-30.0, 30.0, 15)        # degrees
VALUES_3D = (HUES, HUES, HUES, SCALES_3D, np.arange(4.0), ORIENTATIONS_3D)   # label value of each code

# Scene layout, in image sides. Why these numbers: the floor takes the lower ~40% as in Shapes3D, and the
# largest object (capsule at scale 1.25, sheared at 30°) stays inside the image at any orientation.
_HORIZON, _FALL = 0.55, 0.18          # floor edge at the corner, and its fall per unit of |x - corner|
_BASE, _HALF_WIDTH = 0.86, 0.13       # object's base line; half-width of the object at scale 1
_CORNER_SHIFT, _OBJECT_SHIFT, _SHEAR = 0.3, 0.1, 0.2   # per unit of orientation / 30°
_CUBE_DEPTH = (0.55, 0.45)            # cube's receding edge (x per unit of orientation / 30°, y), half-widths
_TURN = 0.35                          # how far the light/shade boundary of round shapes moves with orientation
# Surface labels: 0 floor, 1 left wall, 2 right wall, 3-5 object lit / mid / dark.
_N_LABELS = 6
_SHADE = np.array([1.0, 0.85, 0.65, 1.0, 0.8, 0.55])   # the floor's shade is also scaled by its row (below)
_HUE_RGB = np.array([colorsys.hsv_to_rgb(h, 1.0, 1.0) for h in HUES])         # [10, 3]


class SAEDataError(DataError):
    """A Part IV data file or parameter is unusable (one line: the file or parameter and what is accepted)."""


@dataclass
class FactorImages:
    """Images with known factors: what :func:`shapes3d_dataset` and every Part IV loader return."""
    images: np.ndarray          # float32 [N, C, H, W] in [-1, 1]; C = 3 (Shapes3D) or 1 (dSprites)
    factors: pd.DataFrame       # int class codes 0..n_values-1, one column per factor (factor_names order)
    values: pd.DataFrame        # the values the codes stand for (hue in [0, 1), scale, degrees, radians)
    factor_names: tuple[str, ...]
    n_values: tuple[int, ...]   # number of classes of each factor
    name: str                   # "shapes3d" or "dsprites": which benchmark's factors these are
    source: str                 # "procedural" or the file the images were read from
    rows: np.ndarray | None = None   # int64 [N]: each image's row in that file; None when drawn here

    def __len__(self) -> int:
        return len(self.images)


def factor_grid(n_values: tuple[int, ...] = SIZES_3D, names: tuple[str, ...] = FACTORS_3D) -> pd.DataFrame:
    """Every combination of codes, last factor fastest: the row order of the real Shapes3D and dSprites files.

    ``factor_grid()`` has 480,000 rows; row i of the real ``3dshapes.h5`` has the codes of row i.
    """
    grids = np.meshgrid(*[np.arange(k) for k in n_values], indexing="ij")
    return pd.DataFrame({f: g.ravel() for f, g in zip(names, grids)})


def _codes(factors: Mapping | pd.DataFrame) -> tuple[np.ndarray, bool]:
    """Integer codes [n, 6] of a mapping (one image) or a DataFrame, checked against :data:`SIZES_3D`."""
    single = not isinstance(factors, pd.DataFrame)
    frame = pd.DataFrame([dict(factors)]) if single else factors
    missing = [f for f in FACTORS_3D if f not in frame.columns]
    if missing:
        raise SAEDataError(f"factor codes lack {missing}; Shapes3D needs the columns {FACTORS_3D}")
    codes = frame[list(FACTORS_3D)].to_numpy()
    if not np.issubdtype(codes.dtype, np.integer) and not np.array_equal(codes, np.round(codes)):
        raise SAEDataError("Shapes3D factor codes must be integers")
    codes = codes.astype(np.int64)
    bad = (codes < 0) | (codes >= np.array(SIZES_3D))
    if bad.any():
        f = FACTORS_3D[int(np.argwhere(bad)[0, 1])]
        raise SAEDataError(f"factor {f!r} has codes outside 0..{SIZES_3D[FACTORS_3D.index(f)] - 1}")
    return codes, single


def shapes3d_values(factors: pd.DataFrame) -> pd.DataFrame:
    """Integer codes -> the label values the real Shapes3D file stores (hues, scale, shape, degrees)."""
    codes, _ = _codes(factors)
    return pd.DataFrame({f: VALUES_3D[j][codes[:, j]] for j, f in enumerate(FACTORS_3D)})


def _cube(u: np.ndarray, v: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Cube in oblique projection: front square (mid), top face (lit), the side its receding edge shows (dark)."""
    dx, dy = _CUBE_DEPTH[0] * t, _CUBE_DEPTH[1]
    side = np.where(t >= 0, 1.0, -1.0)
    lam = (v - 2) / dy                                        # 0..1 along the receding edge, top face
    mu = (u - side) / np.where(dx == 0, 1.0, dx)              # 0..1 along the receding edge, side face
    front = (np.abs(u) <= 1) & (v >= 0) & (v <= 2)
    top = (lam > 0) & (lam <= 1) & (np.abs(u - lam * dx) <= 1)
    flank = (dx != 0) & (mu > 0) & (mu <= 1) & (v - mu * dy >= 0) & (v - mu * dy <= 2)
    return np.where(front, 4, np.where(top, 3, np.where(flank, 5, 0)))


def _cylinder(u: np.ndarray, v: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Upright cylinder: elliptical top cap (lit), the body's two sides split where the light turns."""
    ell = 0.3                                                 # the caps' vertical semi-axis, in half-widths
    cap = u ** 2 + ((v - 2) / ell) ** 2 <= 1
    tube = ((np.abs(u) <= 1) & (v >= 0) & (v <= 2)) | ((u ** 2 + (v / ell) ** 2 <= 1) & (v < 0))
    return np.where(cap, 3, np.where(tube, np.where(u < _TURN * t, 4, 5), 0))


def _sphere(u: np.ndarray, v: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Sphere: a glint (lit) inside its lit side (mid), a shaded crescent (dark); both turn with the view."""
    c = _TURN * t - 0.45                                      # centre of the lit side
    glint = (u - c) ** 2 + (v - 1.35) ** 2 <= 0.35 ** 2
    lit_side = (u - c) ** 2 + (v - 1.2) ** 2 <= 1.15 ** 2
    return np.where(u ** 2 + (v - 1) ** 2 <= 1, np.where(glint, 3, np.where(lit_side, 4, 5)), 0)


def _capsule(u: np.ndarray, v: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Upright pill: a tube of radius 0.7 with round ends, in three vertical bands that turn with the view."""
    r, top = 0.7, 2.1                                         # radius; centre of the upper end
    pill = ((np.abs(u) <= r) & (v >= r) & (v <= top)) | (u ** 2 + (v - r) ** 2 <= r ** 2) \
        | (u ** 2 + (v - top) ** 2 <= r ** 2)
    turn = r * _TURN * t
    return np.where(pill, np.where(u < turn - 0.35, 3, np.where(u > turn + 0.2, 5, 4)), 0)


# Object labels (0 none, 3 lit, 4 mid, 5 dark) at object coordinates (u, v), in half-widths: u across the
# object (0 on its axis), v up from its base; t is orientation / 30 degrees, in [-1, 1].
_SHAPE_FNS = (_cube, _cylinder, _sphere, _capsule)


def _counts(codes: np.ndarray, size: int, antialias: int) -> np.ndarray:
    """Sub-pixels of each surface label in each pixel, int [n, 6, H, W] (sums to antialias² per pixel)."""
    s, n = antialias, len(codes)
    g = (np.arange(size * s) + 0.5) / (size * s)              # sub-pixel centres, in image sides
    x, y = g[None, None, :], g[None, :, None]
    t = (ORIENTATIONS_3D / 30.0)[codes[:, 5]][:, None, None]
    corner = 0.5 - _CORNER_SHIFT * t
    floor = y > _HORIZON + _FALL * np.abs(x - corner)
    label = np.where(floor, 0, np.where(x < corner, 1, 2)).astype(np.int64)
    w = (_HALF_WIDTH * SCALES_3D)[codes[:, 3]][:, None, None]
    v = (_BASE - y) / w
    u = (x - (0.5 + _OBJECT_SHIFT * t)) / w - _SHEAR * t * v   # the outline leans with the view
    for k, draw in enumerate(_SHAPE_FNS):                     # each image through its own shape only
        sel = codes[:, 4] == k
        if sel.any():
            obj = draw(u[sel], np.broadcast_to(v, u.shape)[sel], t[sel])
            label[sel] = np.where(obj > 0, obj, label[sel])
    # One integer histogram of (image, pixel, label) over all sub-pixels.
    pixel = (np.arange(size * s) // s)
    key = (np.arange(n)[:, None, None] * size * size + pixel[:, None] * size + pixel[None, :]) * _N_LABELS + label
    counts = np.bincount(key.ravel(), minlength=n * size * size * _N_LABELS)
    return counts.reshape(n, size, size, _N_LABELS).transpose(0, 3, 1, 2)


def _chunks(codes: np.ndarray, size: int, antialias: int):
    # 128 images at a time: each float64 sub-pixel array is 67 MB at size 64, antialias 4.
    for a in range(0, len(codes), 128):
        yield a, _counts(codes[a:a + 128], size, antialias)


def render_shapes3d(factors: Mapping | pd.DataFrame, size: int = 32, *, antialias: int = 4) -> np.ndarray:
    """``render_shapes3d({"floor_hue": 0, "wall_hue": 3, "object_hue": 6, "scale": 7, "shape": 0,
    "orientation": 14})`` -> float32 [3, H, W] in [-1, 1]; a DataFrame of codes gives [n, 3, H, W]."""
    codes, single = _codes(factors)
    _check(size, antialias)
    floor_shade = 0.45 + 0.55 * (np.arange(size) + 0.5) / size    # brighter towards the viewer, per row
    out = np.empty((len(codes), 3, size, size), np.float32)
    for a, counts in _chunks(codes, size, antialias):
        hue = codes[a:a + len(counts), :3]
        rgb = np.zeros((len(counts), 3, size, size))
        for k in range(_N_LABELS):                            # fixed order: the same sums for any batch
            colour = _HUE_RGB[hue[:, 0 if k == 0 else 1 if k < 3 else 2]] * _SHADE[k]
            shade = floor_shade[:, None] if k == 0 else 1.0
            rgb += counts[:, k, None] * colour[:, :, None, None] * shade
        out[a:a + len(counts)] = 2 * rgb / antialias ** 2 - 1
    return out[0] if single else out


def shapes3d_regions(factors: Mapping | pd.DataFrame, size: int = 32, *, antialias: int = 4) -> np.ndarray:
    """Fraction of each pixel showing floor, wall and object: float32 [n, 3, H, W] (one image: [3, H, W])."""
    codes, single = _codes(factors)
    _check(size, antialias)
    out = np.empty((len(codes), 3, size, size), np.float32)
    for a, counts in _chunks(codes, size, antialias):
        parts = np.stack([counts[:, 0], counts[:, 1] + counts[:, 2], counts[:, 3:].sum(1)], 1)
        out[a:a + len(counts)] = parts / antialias ** 2
    return out[0] if single else out


def _check(size: int, antialias: int) -> None:
    if not (isinstance(size, (int, np.integer)) and size >= 8):
        raise SAEDataError(f"parameter 'size' = {size!r}: the image side must be an integer >= 8 pixels")
    if not (isinstance(antialias, (int, np.integer)) and antialias >= 1):
        raise SAEDataError(f"parameter 'antialias' = {antialias!r}: sub-pixels per side must be an integer >= 1")


def shapes3d_dataset(n: int, size: int = 32, seed: int = 0, *, antialias: int = 4) -> FactorImages:
    """``shapes3d_dataset(2000, 32, seed=0)``: factors i.i.d. uniform over their codes (Shapes3D holds each
    combination once, so a uniform draw of its rows has the same law). The first k rows of a draw are the
    draw of k images with the same seed."""
    if not (isinstance(n, (int, np.integer)) and n >= 1):
        raise SAEDataError(f"parameter 'n' = {n!r}: the number of images must be an integer >= 1")
    codes = np.random.default_rng(seed).integers(0, SIZES_3D, size=(n, len(FACTORS_3D)))
    factors = pd.DataFrame(codes, columns=list(FACTORS_3D))
    return FactorImages(render_shapes3d(factors, size, antialias=antialias), factors, shapes3d_values(factors),
                        FACTORS_3D, SIZES_3D, "shapes3d", "procedural")
