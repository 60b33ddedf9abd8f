"""Part IV's data with known factors (circuitnb.data.sae): the Shapes3D-style renderer, the dSprites-style set,
and the loaders of the real files, checked on small files written here in the real formats."""
import itertools
import zipfile

import numpy as np
import pandas as pd
import pytest

from circuitnb.core.errors import UserError
from circuitnb.data.sae import (
    DSPRITES_FACTORS,
    DSPRITES_SIZES,
    FACTORS_3D,
    SIZES_3D,
    VALUES_3D,
    SAEDataError,
    area_resize,
    dsprites_dataset,
    factor_grid,
    load_dsprites,
    load_factor_file,
    load_shapes3d,
    render_shapes3d,
    shapes3d_dataset,
    shapes3d_regions,
    shapes3d_values,
)
from circuitnb.data.shapes import render, shapes_dataset

BASE = {"floor_hue": 0, "wall_hue": 3, "object_hue": 6, "scale": 4, "shape": 0, "orientation": 7}


@pytest.fixture(scope="module")
def s3d():
    return shapes3d_dataset(300, 16, seed=0)


def _with(**change) -> dict:
    return {**BASE, **change}


# ----------------------------------------------------------------------------------------------- renderer
def test_factors_sizes_and_values_are_shapes3d():
    assert FACTORS_3D == ("floor_hue", "wall_hue", "object_hue", "scale", "shape", "orientation")
    assert SIZES_3D == (10, 10, 10, 8, 4, 15) and np.prod(SIZES_3D) == 480_000
    assert [len(v) for v in VALUES_3D] == list(SIZES_3D)
    for hues in VALUES_3D[:3]:                                 # evenly spaced in [0, 1)
        np.testing.assert_allclose(hues, np.arange(10) / 10)
    np.testing.assert_allclose(VALUES_3D[3][[0, -1]], [0.75, 1.25])
    np.testing.assert_allclose(VALUES_3D[5][[0, -1]], [-30, 30])
    grid = factor_grid()                                       # the real file's row order: orientation fastest
    assert len(grid) == 480_000 and not grid.duplicated().any()
    rows = np.ravel_multi_index(grid.to_numpy().T, SIZES_3D)
    np.testing.assert_array_equal(rows, np.arange(480_000))


def test_dataset_layout_and_exact_labels(s3d):
    assert s3d.images.shape == (300, 3, 16, 16) and s3d.images.dtype == np.float32 and len(s3d) == 300
    assert -1 <= s3d.images.min() and s3d.images.max() <= 1
    assert list(s3d.factors.columns) == list(FACTORS_3D) and s3d.factor_names == FACTORS_3D
    assert all(s3d.factors[f].dtype == np.int64 for f in FACTORS_3D) and s3d.n_values == SIZES_3D
    codes = s3d.factors.to_numpy()
    assert (codes >= 0).all() and (codes < np.array(SIZES_3D)).all()
    for j, f in enumerate(FACTORS_3D):
        np.testing.assert_array_equal(s3d.values[f].to_numpy(), VALUES_3D[j][codes[:, j]])
    assert s3d.name == "shapes3d" and s3d.source == "procedural" and s3d.rows is None


def test_deterministic_per_seed(s3d):
    again = shapes3d_dataset(300, 16, seed=0)
    np.testing.assert_array_equal(again.images, s3d.images)
    pd.testing.assert_frame_equal(again.factors, s3d.factors)
    assert not np.array_equal(shapes3d_dataset(300, 16, seed=1).images, s3d.images)
    first = shapes3d_dataset(40, 16, seed=0)                   # a smaller draw is the larger one's prefix
    np.testing.assert_array_equal(first.images, s3d.images[:40])


def test_an_image_does_not_depend_on_its_batch(s3d):
    # Alone, in reverse order, and in a batch that straddles the renderer's blocks of 128: bit for bit.
    np.testing.assert_array_equal(render_shapes3d(s3d.factors.iloc[137].to_dict(), 16), s3d.images[137])
    np.testing.assert_array_equal(render_shapes3d(s3d.factors.iloc[::-1], 16), s3d.images[::-1])
    np.testing.assert_array_equal(render_shapes3d(s3d.factors.iloc[100:250], 16), s3d.images[100:250])


def test_every_value_and_pair_of_values_is_drawn():
    f = shapes3d_dataset(3000, 8, seed=0).factors              # i.i.d. uniform codes: all combinations possible
    for name, k in zip(FACTORS_3D, SIZES_3D):
        assert sorted(f[name].unique()) == list(range(k))
    for a, b in itertools.combinations(FACTORS_3D, 2):
        k = SIZES_3D[FACTORS_3D.index(a)] * SIZES_3D[FACTORS_3D.index(b)]
        assert len(f.groupby([a, b]).size()) == k, (a, b)


def test_every_geometry_renders_differently():
    # All 8 x 4 x 15 scale/shape/orientation combinations at fixed hues: no two images alike, so the
    # geometric factors are identifiable from pixels (even a sphere's orientation).
    geo = factor_grid(SIZES_3D[3:], FACTORS_3D[3:])
    for hue in FACTORS_3D[:3]:
        geo[hue] = BASE[hue]
    x = render_shapes3d(geo, 16).reshape(len(geo), -1)
    assert len(np.unique(x, axis=0)) == len(geo) == 480


@pytest.mark.parametrize("factor, region", [("floor_hue", 0), ("wall_hue", 1), ("object_hue", 2)])
def test_a_hue_changes_exactly_its_own_surface(factor, region):
    for shape, orient in ((0, 0), (2, 14)):
        base = _with(shape=shape, orientation=orient)
        seen = shapes3d_regions(base, 32)[region] > 0
        for k in set(range(10)) - {base[factor]}:
            changed = (render_shapes3d(base, 32) != render_shapes3d({**base, factor: k}, 32)).any(0)
            np.testing.assert_array_equal(changed, seen)


def test_hues_are_hsv_colours():
    # A pixel wholly of the wall's right face is the HSV colour of its hue at a fixed value (shade).
    x = (render_shapes3d(_with(wall_hue=0), 32) + 1) / 2      # hue 0: red
    np.testing.assert_allclose(x[:, 2, 30] / x[0, 2, 30], [1, 0, 0], atol=1e-6)
    x = (render_shapes3d(_with(wall_hue=5), 32) + 1) / 2      # hue 0.5: cyan
    np.testing.assert_allclose(x[:, 2, 30] / x[1, 2, 30], [0, 1, 1], atol=1e-6)


def test_scale_shape_and_orientation_move_the_object():
    area = [shapes3d_regions(_with(scale=k), 32)[2].sum() for k in range(8)]
    assert np.all(np.diff(area) > 0)                           # larger scale, larger object
    room = shapes3d_regions(_with(scale=0), 32)[:2], shapes3d_regions(_with(scale=7), 32)[:2]
    free = (shapes3d_regions(_with(scale=7), 32)[2] == 0)     # where neither object is, the room is the same
    np.testing.assert_array_equal(room[0][:, free], room[1][:, free])
    masks = [shapes3d_regions(_with(shape=k), 32)[2] for k in range(4)]
    for a, b in itertools.combinations(range(4), 2):
        assert not np.array_equal(masks[a], masks[b])
    xs = np.arange(32) + 0.5
    for shape in range(4):                                     # apparent position follows orientation
        centre = [(r := shapes3d_regions(_with(shape=shape, orientation=k), 32)[2]).sum(0) @ xs / r.sum()
                  for k in range(15)]
        assert np.all(np.diff(centre) > 0), shape
    # The room turns too: the column where the top row passes from the left wall to the darker right wall.
    corner = [np.abs(np.diff(render_shapes3d(_with(orientation=k), 32)[1, 0])).argmax() for k in (0, 7, 14)]
    assert corner[0] > corner[1] > corner[2]


def test_regions_cover_each_pixel_once(s3d):
    r = shapes3d_regions(s3d.factors.iloc[:20], 16)
    np.testing.assert_allclose(r.sum(1), 1.0, atol=1e-6)
    assert (r[:, 2].sum((1, 2)) > 0).all()                     # every image shows its object


def test_bad_codes_and_parameters_are_user_errors():
    with pytest.raises(SAEDataError, match="'scale' has codes outside 0..7"):
        render_shapes3d(_with(scale=8))
    with pytest.raises(SAEDataError, match="lack"):
        render_shapes3d({"scale": 1})
    with pytest.raises(SAEDataError, match="'size'"):
        shapes3d_dataset(4, size=4)
    with pytest.raises(SAEDataError, match="'n'"):
        shapes3d_dataset(0)


def test_dsprites_dataset_is_the_shapes_set():
    d = dsprites_dataset(50, 16, seed=3)
    ref = shapes_dataset(50, 16, seed=3, n_pos=32)
    np.testing.assert_array_equal(d.images, ref.images)
    pd.testing.assert_frame_equal(d.factors, ref.factors)
    assert d.factor_names == DSPRITES_FACTORS and d.n_values == DSPRITES_SIZES and d.name == "dsprites"


# ----------------------------------------------------------------------------------------------- real files
def _dsprites_arrays(n: int = 300, seed: int = 0) -> dict:
    """A small file in dSprites' format whose pixels are drawn from its classes, sorted by factor like the real."""
    rng = np.random.default_rng(seed)
    classes = rng.integers(0, DSPRITES_SIZES, (n, 5))
    classes = classes[np.lexsort(classes.T[::-1])]
    imgs = render(pd.DataFrame(classes, columns=list(DSPRITES_FACTORS)), 64, n_pos=32, antialias=1)
    pos = np.linspace(0, 1, 32)
    values = np.column_stack([np.ones(n), classes[:, 0] + 1, np.linspace(0.5, 1, 6)[classes[:, 1]],
                              np.linspace(0, 2 * np.pi, 40)[classes[:, 2]], pos[classes[:, 3]], pos[classes[:, 4]]])
    return {"imgs": ((imgs[:, 0] + 1) / 2).astype(np.uint8),
            "latents_classes": np.column_stack([np.zeros(n, np.int64), classes]), "latents_values": values,
            "metadata": np.array({"description": "made for the tests"}, dtype=object)}


@pytest.fixture(scope="module")
def dsprites_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("dsprites") / "dsprites.npz"
    arrays = _dsprites_arrays()
    np.savez_compressed(path, **arrays)
    return path, arrays


def _shapes3d_arrays(n: int = 300, draw: bool = True) -> dict:
    """n rows of the full grid in the real file's order, rendered at 64 px (or blank) and stored as bytes."""
    codes = factor_grid().iloc[:: 480_000 // n].reset_index(drop=True)
    x = render_shapes3d(codes, 64) if draw else np.full((n, 3, 64, 64), -1.0)
    return {"images": np.round((x + 1) * 127.5).astype(np.uint8).transpose(0, 2, 3, 1),
            "labels": shapes3d_values(codes).to_numpy(), "codes": codes.to_numpy()}


def _write_h5(path, **datasets):
    h5py = pytest.importorskip("h5py")
    with h5py.File(path, "w") as f:
        for k, v in datasets.items():
            f.create_dataset(k, data=v, compression="gzip", chunks=(1, *v.shape[1:]) if v.ndim == 4 else None)
    return path


@pytest.fixture(scope="module")
def shapes3d_file(tmp_path_factory):
    arrays = _shapes3d_arrays()
    path = tmp_path_factory.mktemp("shapes3d") / "3dshapes.h5"
    return _write_h5(path, images=arrays["images"], labels=arrays["labels"]), arrays


def test_load_dsprites(dsprites_file):
    path, arrays = dsprites_file
    full = load_dsprites(path, size=64, seed=1)                # every row, permuted by the seed
    np.testing.assert_array_equal(np.sort(full.rows), np.arange(300))
    np.testing.assert_array_equal(full.images[:, 0], 2.0 * arrays["imgs"][full.rows] - 1)
    np.testing.assert_array_equal(full.factors.to_numpy(), arrays["latents_classes"][full.rows, 1:])
    np.testing.assert_array_equal(full.values.to_numpy(), arrays["latents_values"][full.rows, 1:])
    assert list(full.factors.columns) == list(DSPRITES_FACTORS) and full.n_values == DSPRITES_SIZES
    assert full.factors.dtypes.eq(np.int64).all() and full.source == str(path) and full.name == "dsprites"
    small = load_dsprites(path, n=40, seed=1, size=32)         # a prefix of the same permutation, 2x2 means
    np.testing.assert_array_equal(small.rows, full.rows[:40])
    blocks = full.images[:40].reshape(40, 1, 32, 2, 32, 2).mean((3, 5))
    np.testing.assert_allclose(small.images, blocks, atol=1e-6)
    assert small.images.shape == (40, 1, 32, 32) and small.images.dtype == np.float32
    assert not np.array_equal(load_dsprites(path, n=40, seed=2).rows, small.rows)


def test_load_dsprites_matches_the_drawn_set(dsprites_file):
    # The file's pixels came from shapes.render at 64 px: a real-format file and the drawn set agree on
    # what each code looks like, so models can move between them.
    path, _ = dsprites_file
    d = load_dsprites(path, n=20, size=64)
    redrawn = render(d.factors, 64, n_pos=32, antialias=1)
    np.testing.assert_array_equal(d.images, redrawn)


def test_load_shapes3d(shapes3d_file):
    path, arrays = shapes3d_file
    d = load_shapes3d(path, n=120, seed=0, size=64)
    assert d.images.shape == (120, 3, 64, 64) and d.images.dtype == np.float32 and d.name == "shapes3d"
    assert len(np.unique(d.rows)) == 120 and d.rows.max() < 300
    np.testing.assert_allclose(d.images, arrays["images"][d.rows].transpose(0, 3, 1, 2) / 127.5 - 1, atol=1e-6)
    np.testing.assert_array_equal(d.factors.to_numpy(), arrays["codes"][d.rows])
    pd.testing.assert_frame_equal(d.values, shapes3d_values(d.factors))
    assert d.factor_names == FACTORS_3D and d.n_values == SIZES_3D
    # At 16 px the file's images (rendered at 64, stored as bytes, area-averaged) match the renderer's own
    # 16 px images of the same codes to within the bytes' rounding and the two antialiasing grids.
    small = load_shapes3d(path, n=120, seed=0, size=16)
    np.testing.assert_array_equal(small.rows, d.rows)
    np.testing.assert_allclose(small.images, area_resize(d.images, 16), atol=1e-6)
    assert np.abs(small.images - render_shapes3d(small.factors, 16)).mean() < 0.02


def test_load_factor_file_dispatches_on_the_suffix(dsprites_file, shapes3d_file, tmp_path):
    assert load_factor_file(dsprites_file[0], n=5).name == "dsprites"
    assert load_factor_file(shapes3d_file[0], n=5).name == "shapes3d"
    with pytest.raises(SAEDataError, match="neither .npz"):
        load_factor_file(tmp_path / "x.png")


def test_area_resize_by_hand():
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    np.testing.assert_allclose(area_resize(x, 2)[0, 0], [[2.5, 4.5], [10.5, 12.5]])
    x = np.array([[[[0.0, 3.0, 6.0]]]]).repeat(3, axis=2)     # 3 -> 2: thirds of the middle pixel go both ways
    np.testing.assert_allclose(area_resize(x, 2)[0, 0, 0], [(2 * 0 + 3) / 3, (3 + 2 * 6) / 3])
    np.testing.assert_allclose(area_resize(np.full((2, 3, 64, 64), 0.3), 48), 0.3, atol=1e-6)


def _npz(tmp_path, **change):
    arrays = {**_dsprites_arrays(40), **change}
    arrays = {k: v for k, v in arrays.items() if v is not None}
    np.savez(tmp_path / "d.npz", **arrays)
    return tmp_path / "d.npz"


def _truncated(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


DSPRITES_BAD = {
    "missing": (lambda p: p / "none.npz", "not found"),
    "not a zip": (lambda p: (p / "d.npz").write_text("hello") and p / "d.npz", "not a whole zip archive"),
    "truncated": (lambda p: _truncated(_npz(p)), "truncated, or another format"),
    "no imgs": (lambda p: _npz(p, imgs=None), r"lacks \['imgs'\]"),
    "imgs shape": (lambda p: _npz(p, imgs=np.zeros((40, 32, 64), np.uint8)), r"'imgs' is uint8 \[40, 32, 64\]"),
    "imgs dtype": (lambda p: _npz(p, imgs=np.zeros((40, 64, 64), np.float32)), "'imgs' is float32"),
    "classes rows": (lambda p: _npz(p, latents_classes=np.zeros((39, 6), int)), "'latents_classes' is"),
    "values cols": (lambda p: _npz(p, latents_values=np.zeros((40, 5))), "'latents_values' is"),
    "classes range": (lambda p: _npz(p, latents_classes=np.full((40, 6), 3)), r"column 1 \(shape\)"),
    "pixel values": (lambda p: _npz(p, imgs=np.full((40, 64, 64), 255, np.uint8)), "values up to 255"),
}


@pytest.mark.parametrize("case", DSPRITES_BAD)
def test_bad_dsprites_files_raise_one_clear_line(tmp_path, case):
    make, says = DSPRITES_BAD[case]
    path = make(tmp_path)
    with pytest.raises(SAEDataError, match=says) as err:
        load_dsprites(path)
    msg = str(err.value)
    assert isinstance(err.value, UserError) and "\n" not in msg     # the CLI prints it as one line, exit 2
    assert msg.startswith(f"dSprites file '{path}'") and "expected an .npz archive" in msg


def _h5(tmp_path, **change):
    arrays = {k: v for k, v in _shapes3d_arrays(20, draw=False).items() if k != "codes"}
    arrays = {k: v for k, v in {**arrays, **change}.items() if v is not None}
    return _write_h5(tmp_path / "s.h5", **arrays)


def _off_grid():
    labels = _shapes3d_arrays(20, draw=False)["labels"].copy()   # pandas hands out a read-only view
    labels[3, 3] = 0.9                                          # between two of the eight scales
    return labels


SHAPES3D_BAD = {
    "missing": (lambda p: p / "none.h5", "not found"),
    "not hdf5": (lambda p: (p / "s.h5").write_text("hello") and p / "s.h5", "unreadable"),
    "truncated": (lambda p: _truncated(_h5(p)), "unreadable"),
    "no labels": (lambda p: _h5(p, labels=None), r"no dataset \['labels'\]"),
    "images shape": (lambda p: _h5(p, images=np.zeros((20, 64, 64), np.uint8)), r"'images' is uint8 \[20, 64, 64\]"),
    "labels rows": (lambda p: _h5(p, labels=np.zeros((19, 6))), r"'labels' is float64 \[19, 6\]"),
    "off the grid": (lambda p: _h5(p, labels=_off_grid()), "row 3 has scale = 0.9"),
}


@pytest.mark.parametrize("case", SHAPES3D_BAD)
def test_bad_shapes3d_files_raise_one_clear_line(tmp_path, case):
    pytest.importorskip("h5py")
    make, says = SHAPES3D_BAD[case]
    path = make(tmp_path)
    with pytest.raises(SAEDataError, match=says) as err:
        load_shapes3d(path)
    msg = str(err.value)
    assert isinstance(err.value, UserError) and "\n" not in msg
    assert msg.startswith(f"Shapes3D file '{path}'") and "expected an HDF5 file" in msg


def test_bad_parameters_of_the_loaders(dsprites_file):
    path, _ = dsprites_file
    with pytest.raises(SAEDataError, match="'n' = 301: .* holds 300 images"):
        load_dsprites(path, n=301)
    with pytest.raises(SAEDataError, match="'size'"):
        load_dsprites(path, size=2)


def test_a_truncated_stream_is_named(tmp_path):
    # An archive whose directory survives but whose pixel data stops early (a stored member cut short).
    arrays = _dsprites_arrays(40)
    np.savez(tmp_path / "d.npz", **arrays)
    with zipfile.ZipFile(tmp_path / "d.npz") as zf:
        members = {m: zf.read(m) for m in zf.namelist()}
    with zipfile.ZipFile(tmp_path / "cut.npz", "w") as zf:
        for m, data in members.items():
            zf.writestr(m, data[: len(data) // 2] if m == "imgs.npy" else data)
    with pytest.raises(SAEDataError, match="ends inside image 19 of 40"):
        load_dsprites(tmp_path / "cut.npz")
