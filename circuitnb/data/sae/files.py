"""The real dSprites (.npz) and Shapes3D (.h5) files, read as :class:`~circuitnb.data.sae.shapes3d.FactorImages`.

    d = load_dsprites("dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz", n=20000, seed=0, size=32)
    s = load_shapes3d("3dshapes.h5", n=20000, seed=0, size=32)      # images float32 [n, 3, 32, 32] in [-1, 1]
    x = load_factor_file(path, n=2000)                               # by suffix: .npz dSprites, .h5 Shapes3D

Neither benchmark can be downloaded here; the user points to a copy. Rows: the first ``n`` of a permutation
of the file's rows drawn with ``seed`` (both files are sorted by factor, so their first rows would hold the
slow factors fixed); ``n=None`` keeps every row, permuted alike, so a smaller ``n`` is a prefix of a larger
one. ``rows`` records each image's row in the file.

Images are shrunk to ``size`` by area averaging (:func:`area_resize`: each output pixel is the mean of the
input area it covers; 64 -> 32 is the mean of 2x2 blocks), then put in [-1, 1]: dSprites' 0/1 pixels as
2p - 1 (background -1, shape +1, as :mod:`circuitnb.data.shapes` draws them), Shapes3D's bytes as 2b/255 - 1.
Codes: dSprites' ``latents_classes`` without its constant first column (colour), named as
:data:`circuitnb.data.shapes.FACTORS` names them; ``values`` keeps the file's ``latents_values`` (shape 1..3,
scale, radians, positions in [0, 1]). Shapes3D's label values are matched to each factor's grid
(:data:`~circuitnb.data.sae.shapes3d.VALUES_3D`), and a value off the grid is an error.

Memory stays near the output's size: dSprites' 3 GB of pixels are decompressed as a stream in blocks, and
Shapes3D's rows are read in sorted groups. A missing, truncated or malformed file raises
:class:`~circuitnb.data.sae.shapes3d.SAEDataError`: one line naming the file and what is expected.
"""
from __future__ import annotations

import zipfile
import zlib
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from circuitnb.data.sae.shapes3d import (
    FACTORS_3D,
    SIZES_3D,
    VALUES_3D,
    FactorImages,
    SAEDataError,
    shapes3d_values,
)
from circuitnb.data.shapes import FACTORS as DSPRITES_FACTORS

DSPRITES_SIZES = (3, 6, 40, 32, 32)      # classes of shape, scale, orientation, posX, posY in the real file
_SIDE = 64                               # both files hold 64 x 64 images
_BLOCK = 2048                            # images per read: 8 MB of dSprites pixels, 25 MB of Shapes3D's
_EXPECT = {
    "dSprites": "an .npz archive like dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz holding 'imgs' uint8 "
                "[N, 64, 64] of 0/1 pixels, 'latents_classes' int [N, 6] and 'latents_values' float [N, 6] "
                "(color, shape, scale, orientation, posX, posY)",
    "Shapes3D": "an HDF5 file like 3dshapes.h5 holding 'images' uint8 [N, 64, 64, 3] and 'labels' float [N, 6] "
                "(floor_hue, wall_hue, object_hue, scale, shape, orientation)",
}


def _fail(kind: str, path: Path, problem: object) -> SAEDataError:
    """The one-line error for a bad file: which file, what is wrong with it, what was expected."""
    problem = " ".join(str(problem).split())                  # library messages may span lines
    return SAEDataError(f"{kind} file '{path}': {problem}; expected {_EXPECT[kind]}")


def _existing(path: str | Path, kind: str) -> Path:
    p = Path(path).expanduser()
    if not p.is_file():
        raise _fail(kind, p, "not found" if not p.exists() else "not a file")
    return p


def _check_size(size: int) -> None:
    if not (isinstance(size, (int, np.integer)) and size >= 4):
        raise SAEDataError(f"parameter 'size' = {size!r}: the image side must be an integer >= 4 pixels")


def _rows(total: int, n: int | None, seed: int, kind: str, path: Path) -> np.ndarray:
    """The first ``n`` rows of a permutation of ``total`` drawn with ``seed`` (int64 [n])."""
    if total < 1:
        raise _fail(kind, path, "it holds no images")
    if n is None:
        n = total
    if not (isinstance(n, (int, np.integer)) and 1 <= n <= total):
        raise SAEDataError(f"parameter 'n' = {n!r}: '{path}' holds {total} images; choose 1..{total} or None")
    return np.random.default_rng(seed).permutation(total)[:n].astype(np.int64)


def _area_weights(n_in: int, n_out: int) -> np.ndarray:
    """[n_out, n_in]: the share of each input pixel in the area each output pixel covers (rows sum to 1)."""
    edges = np.arange(n_out + 1) * (n_in / n_out)             # output pixel edges, in input pixels
    left = np.arange(n_in)
    overlap = np.minimum(edges[1:, None], left + 1) - np.maximum(edges[:-1, None], left)
    return np.clip(overlap, 0, None) * (n_out / n_in)


def area_resize(x: np.ndarray, size: int) -> np.ndarray:
    """``area_resize(x, 32)``: [n, C, H, W] -> float32 [n, C, size, size], each pixel its area's mean."""
    a_h, a_w = _area_weights(x.shape[-2], size), _area_weights(x.shape[-1], size)
    return (a_h @ np.asarray(x, np.float64) @ a_w.T).astype(np.float32)


def _npy_header(fp) -> tuple[tuple[int, ...], np.dtype, bool]:
    version = np.lib.format.read_magic(fp)
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(fp)
    if version == (2, 0):
        return np.lib.format.read_array_header_2_0(fp)
    raise ValueError(f"'imgs' is in .npy format version {version}, not 1.0 or 2.0")


def _stream(fp, total: int, per_image: tuple[int, ...], rows: np.ndarray,
            convert: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """Read the uint8 images ``rows`` (any order) from a stream of ``total`` images in blocks; convert each."""
    nbytes = int(np.prod(per_image))
    order = np.argsort(rows, kind="stable")
    srt = rows[order]
    out = None
    for start in range(0, int(srt[-1]) + 1, _BLOCK):       # stops after the last image wanted
        stop = min(start + _BLOCK, total)
        buf = fp.read((stop - start) * nbytes)
        if len(buf) < (stop - start) * nbytes:
            raise ValueError(f"the pixel data ends inside image {start + len(buf) // nbytes} of {total}")
        lo, hi = np.searchsorted(srt, [start, stop])
        if hi > lo:
            block = np.frombuffer(buf, np.uint8).reshape(-1, *per_image)[srt[lo:hi] - start]
            done = convert(block)
            if out is None:
                out = np.empty((len(rows), *done.shape[1:]), np.float32)
            out[order[lo:hi]] = done
    return out


def load_dsprites(path: str | Path, n: int | None = None, *, seed: int = 0, size: int = 32) -> FactorImages:
    """``load_dsprites(path, n=20000, seed=0, size=32)`` -> images float32 [n, 1, size, size] in [-1, 1],
    five factors (shape 3, scale 6, orientation 40, pos_x 32, pos_y 32 classes)."""
    p = _existing(path, "dSprites")
    _check_size(size)

    def convert(block: np.ndarray) -> np.ndarray:
        if block.max() > 1:
            raise _fail("dSprites", p, f"'imgs' holds pixel values up to {block.max()}")
        return 2 * area_resize(block[:, None], size) - 1

    try:
        with zipfile.ZipFile(p) as zf:
            members = {m[:-4]: m for m in zf.namelist() if m.endswith(".npy")}
            missing = [k for k in ("imgs", "latents_classes", "latents_values") if k not in members]
            if missing:
                raise _fail("dSprites", p, f"the archive lacks {missing} (it holds {sorted(members)})")
            with zf.open(members["latents_classes"]) as fp:
                classes = np.lib.format.read_array(fp, allow_pickle=False)
            with zf.open(members["latents_values"]) as fp:
                values = np.lib.format.read_array(fp, allow_pickle=False)
            with zf.open(members["imgs"]) as fp:
                shape, fortran, dtype = _npy_header(fp)
                total = shape[0] if shape else 0
                if len(shape) != 3 or shape[1:] != (_SIDE, _SIDE) or dtype != np.uint8 or fortran:
                    raise _fail("dSprites", p, f"'imgs' is {dtype} {list(shape)}"
                                + (" in Fortran order" if fortran else ""))
                for key, arr, kind in (("latents_classes", classes, "iu"), ("latents_values", values, "iuf")):
                    if arr.shape != (total, 6) or arr.dtype.kind not in kind:
                        raise _fail("dSprites", p, f"{key!r} is {arr.dtype} {list(arr.shape)} beside {total} "
                                                   "images")
                codes = classes[:, 1:]
                bad = (codes < 0) | (codes >= np.array(DSPRITES_SIZES))
                if bad.any():
                    j = int(np.argwhere(bad)[0, 1])
                    raise _fail("dSprites", p, f"'latents_classes' column {j + 1} ({DSPRITES_FACTORS[j]}) holds "
                                               f"classes outside 0..{DSPRITES_SIZES[j] - 1}")
                rows = _rows(total, n, seed, "dSprites", p)
                images = _stream(fp, total, (_SIDE, _SIDE), rows, convert)
    except SAEDataError:
        raise
    except zipfile.BadZipFile as err:
        raise _fail("dSprites", p, f"not a whole zip archive, as an .npz is: truncated, or another format ({err})") \
            from err
    except (zlib.error, EOFError, OSError, ValueError) as err:
        raise _fail("dSprites", p, f"unreadable ({err})") from err
    factors = pd.DataFrame(codes[rows].astype(np.int64), columns=list(DSPRITES_FACTORS))
    vals = pd.DataFrame(values[rows, 1:].astype(np.float64), columns=list(DSPRITES_FACTORS))
    return FactorImages(images, factors, vals, DSPRITES_FACTORS, DSPRITES_SIZES, "dsprites", str(p), rows)


def _label_codes(labels: np.ndarray, p: Path) -> np.ndarray:
    """Shapes3D label values [N, 6] -> integer codes [N, 6]; a value off its factor's grid is an error."""
    codes = np.empty(labels.shape, np.int64)
    for j, (name, grid) in enumerate(zip(FACTORS_3D, VALUES_3D)):
        step = grid[1] - grid[0]
        k = np.rint((labels[:, j] - grid[0]) / step)
        ok = np.isfinite(k) & (k >= 0) & (k < len(grid))
        k = np.where(ok, k, 0).astype(np.int64)
        ok &= np.abs(labels[:, j] - grid[k]) <= 0.01 * step     # float noise only, never a neighbouring value
        if not ok.all():
            i = int(np.argmin(ok))
            raise _fail("Shapes3D", p, f"'labels' row {i} has {name} = {float(labels[i, j])!r}, none of its "
                                       f"{len(grid)} values {grid[0]:g}..{grid[-1]:g}")
        codes[:, j] = k
    return codes


def load_shapes3d(path: str | Path, n: int | None = None, *, seed: int = 0, size: int = 32) -> FactorImages:
    """``load_shapes3d("3dshapes.h5", n=20000, seed=0, size=32)`` -> images float32 [n, 3, size, size] in
    [-1, 1], the six factors of :data:`~circuitnb.data.sae.shapes3d.FACTORS_3D` as integer codes."""
    p = _existing(path, "Shapes3D")
    _check_size(size)
    try:  # only this loader needs h5py, so the package imports without it
        import h5py
    except ImportError as err:
        raise SAEDataError(f"reading the Shapes3D file '{p}' needs the h5py package: pip install h5py") from err
    try:
        # A 64 MB chunk cache: sorted reads then decompress each chunk of a compressed file once.
        with h5py.File(p, "r", rdcc_nbytes=64 << 20) as f:
            ds, lab = f.get("images"), f.get("labels")
            missing = [k for k, d in (("images", ds), ("labels", lab)) if not isinstance(d, h5py.Dataset)]
            if missing:
                raise _fail("Shapes3D", p, f"no dataset {missing} (it holds {sorted(f.keys())})")
            total = ds.shape[0] if ds.shape else 0
            if len(ds.shape) != 4 or ds.shape[1:] != (_SIDE, _SIDE, 3) or ds.dtype != np.uint8:
                raise _fail("Shapes3D", p, f"'images' is {ds.dtype} {list(ds.shape)}")
            if lab.shape != (total, 6) or lab.dtype.kind not in "iuf":
                raise _fail("Shapes3D", p, f"'labels' is {lab.dtype} {list(lab.shape)} beside {total} images")
            codes = _label_codes(np.asarray(lab[()], np.float64), p)
            rows = _rows(total, n, seed, "Shapes3D", p)
            order = np.argsort(rows, kind="stable")
            srt = rows[order]
            images = np.empty((len(rows), 3, size, size), np.float32)
            for a in range(0, len(rows), _BLOCK):              # h5py reads rows given in increasing order
                block = ds[srt[a:a + _BLOCK]].transpose(0, 3, 1, 2)
                images[order[a:a + _BLOCK]] = 2 * area_resize(block / 255.0, size) - 1
    except SAEDataError:
        raise
    except (OSError, KeyError, ValueError, TypeError) as err:
        raise _fail("Shapes3D", p, f"unreadable ({err})") from err
    factors = pd.DataFrame(codes[rows], columns=list(FACTORS_3D))
    return FactorImages(images, factors, shapes3d_values(factors), FACTORS_3D, SIZES_3D, "shapes3d", str(p), rows)


def load_factor_file(path: str | Path, n: int | None = None, *, seed: int = 0, size: int = 32) -> FactorImages:
    """``load_factor_file(path, n=2000)``: :func:`load_dsprites` for a .npz, :func:`load_shapes3d` for .h5/.hdf5."""
    suffix = Path(path).suffix.lower()
    if suffix == ".npz":
        return load_dsprites(path, n, seed=seed, size=size)
    if suffix in (".h5", ".hdf5"):
        return load_shapes3d(path, n, seed=seed, size=size)
    raise SAEDataError(f"data file '{path}': suffix {suffix!r} is neither .npz (dSprites) nor .h5/.hdf5 (Shapes3D)")
