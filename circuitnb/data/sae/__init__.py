"""Part IV's data with known factors (hybrid VAE-SAE): Shapes3D- and dSprites-style images, drawn or read.

    s = shapes3d_dataset(2000, 32, seed=0)        # FactorImages: images float32 [N, 3, 32, 32], six factors
    d = dsprites_dataset(2000, 32, seed=0)        # FactorImages: images float32 [N, 1, 32, 32], five factors
    real = load_factor_file("3dshapes.h5", n=2000, seed=0, size=32)   # the real benchmark, when a user has it
    s.factors                                     # int codes, one column per factor; s.n_values their sizes

Every source returns one type, :class:`FactorImages`, so a model or measure reads a drawn set and a real file
alike. Drawn sets (deterministic per seed, an image independent of its batch):

* :func:`shapes3d_dataset`, a procedural scene with Shapes3D's six factors and sizes
  (:mod:`~circuitnb.data.sae.shapes3d`; floor, wall and object hue 10 each, scale 8, shape 4, orientation 15);
* :func:`dsprites_dataset`, Part II's dSprites-style shapes (:func:`circuitnb.data.shapes.shapes_dataset`)
  with dSprites' 32 positions per axis by default, so its factor sizes are those of the real file.

Real files (:mod:`~circuitnb.data.sae.files`; neither can be downloaded here): :func:`load_dsprites` reads
the dSprites ``.npz``, :func:`load_shapes3d` the Shapes3D ``.h5`` (needs h5py), both subsampled with a seed and
shrunk by area averaging. Bad files and parameters raise :class:`SAEDataError` (one line, exit status 2).
"""
from __future__ import annotations

from circuitnb.data.sae.files import (
    DSPRITES_FACTORS,
    DSPRITES_SIZES,
    area_resize,
    load_dsprites,
    load_factor_file,
    load_shapes3d,
)
from circuitnb.data.sae.shapes3d import (
    FACTORS_3D,
    HUES,
    ORIENTATIONS_3D,
    SCALES_3D,
    SHAPES_3D,
    SIZES_3D,
    VALUES_3D,
    FactorImages,
    SAEDataError,
    factor_grid,
    render_shapes3d,
    shapes3d_dataset,
    shapes3d_regions,
    shapes3d_values,
)
from circuitnb.data.shapes import shapes_dataset

__all__ = ["FactorImages", "SAEDataError", "shapes3d_dataset", "render_shapes3d", "shapes3d_regions",
           "shapes3d_values", "factor_grid", "dsprites_dataset", "load_dsprites", "load_shapes3d",
           "load_factor_file", "area_resize", "FACTORS_3D", "SIZES_3D", "VALUES_3D", "HUES", "SCALES_3D",
           "SHAPES_3D", "ORIENTATIONS_3D", "DSPRITES_FACTORS", "DSPRITES_SIZES"]


def dsprites_dataset(n: int, size: int = 32, seed: int = 0, *, n_pos: int = 32, antialias: int = 2) -> FactorImages:
    """``dsprites_dataset(2000, 32, seed=0)``: :func:`~circuitnb.data.shapes.shapes_dataset` as FactorImages.

    The same images and codes as ``shapes_dataset(n, size, seed, n_pos=n_pos, antialias=antialias)``; the
    columns are those :func:`load_dsprites` gives a real file (``n_pos=32`` matches its sizes too).
    """
    try:
        d = shapes_dataset(n, size, seed, n_pos=n_pos, antialias=antialias)
    except ValueError as err:                                  # its parameter check, as a user error
        raise SAEDataError(str(err)) from err
    return FactorImages(d.images, d.factors, d.values, d.factor_names, d.n_values, "dsprites", "procedural")
