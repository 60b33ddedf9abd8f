"""Part V's MRI data (circuitnb.data.mri): the brain phantom stand-in, and the BraTS2020 loader checked on a tiny
folder in the official layout written here with nibabel, planted bad subjects included."""
import ast
import gzip
import inspect
import re
import shutil

import numpy as np
import pytest

from circuitnb.core.errors import UserError
from circuitnb.data.mri import (
    CLIP_PERCENTILES,
    LABELS,
    MODALITIES,
    SEG_OF_TISSUE,
    TISSUES,
    MRIDataError,
    load_brats,
    mri_slices,
    phantom,
    phantom_dataset,
    phantom_volume,
    slice_volume,
)

nib = pytest.importorskip("nibabel")

T = {name: k for k, name in enumerate(TISSUES)}
BRAIN = [T["csf"], T["grey"], T["white"]]


@pytest.fixture(scope="module")
def ph():
    return phantom_dataset(12, 32, 12, seed=0)


# ------------------------------------------------------------------------------------------------- phantom
def test_phantom_layout_and_slice_rules(ph):
    n = len(ph)
    assert ph.images.shape == (n, 4, 32, 32) and ph.images.dtype == np.float32 and n > 100
    assert ph.images.min() == -1 and 0.9 < ph.images.max() <= 1
    assert ph.masks.shape == (n, 32, 32) and ph.masks.dtype == np.uint8
    assert set(np.unique(ph.masks)) == set(LABELS)            # all of core, oedema, enhancing are drawn
    n_px = (ph.masks > 0).sum((1, 2))
    np.testing.assert_array_equal(ph.lesion, n_px >= 10)      # lesion slices: >= min_lesion_px labelled pixels
    assert (n_px[~ph.lesion] == 0).all()                      # healthy slices: no label at all
    assert ph.lesion.any() and (~ph.lesion).any()
    assert sorted(set(ph.subject)) == [f"phantom_{k:03d}" for k in range(12)]
    assert ph.slice_index.dtype == np.int64 and set(ph.slice_index) <= set(range(12))
    assert ph.source == "phantom" and ph.skipped == {}
    assert ph.dropped["little_brain"] == 0                    # the slab keeps brain in every slice
    assert len(ph) + ph.dropped["small_lesion"] == 12 * 12
    assert "12 subjects" in ph.summary()


def test_phantom_is_deterministic_per_seed(ph):
    again = phantom_dataset(12, 32, 12, seed=0)
    for f in ("images", "masks", "lesion", "subject", "slice_index"):
        np.testing.assert_array_equal(getattr(again, f), getattr(ph, f))
    assert not np.array_equal(phantom_dataset(2, 32, 12, seed=1).images, ph.images[ph.subject < "phantom_002"])


def test_a_subject_does_not_depend_on_its_batch(ph):
    for k in (0, 7, 11):
        alone = phantom_dataset(1, 32, 12, seed=0, first=k)
        rows = ph.subject == f"phantom_{k:03d}"
        np.testing.assert_array_equal(alone.images, ph.images[rows])
        np.testing.assert_array_equal(alone.masks, ph.masks[rows])
        np.testing.assert_array_equal(alone.slice_index, ph.slice_index[rows])
    part = phantom_dataset(4, 32, 12, seed=0, first=5)
    np.testing.assert_array_equal(part.images, ph.images[np.isin(ph.subject, [f"phantom_{k:03d}" for k in
                                                                                range(5, 9)])])


def test_the_phantom_goes_through_the_brats_path():
    # At antialias 1 a phantom subject is slice_volume of its raw stack, as a BraTS subject is.
    images, seg, _ = phantom_volume(4, seed=0, side=32, depth=10)
    direct = slice_volume(images, seg, "phantom_004", 32)
    drawn = phantom_dataset(1, 32, 10, seed=0, first=4, antialias=1)
    np.testing.assert_array_equal(drawn.images, direct.images)
    np.testing.assert_array_equal(drawn.masks, direct.masks)


def test_masks_are_the_drawn_lesion_exactly():
    labels = set()
    for k in range(6):
        images, seg, tissue = phantom_volume(k, seed=0, side=192, depth=12, lesion_rate=1.0)
        assert images.shape == (12, 4, 192, 192) and images.dtype == np.float32
        np.testing.assert_array_equal(seg, SEG_OF_TISSUE[tissue])
        assert (seg == 2).any() and (seg == 4).any()          # a small core can fall between slices
        labels |= set(np.unique(seg))
        assert ((images == 0).all(1) == (tissue == 0)).all()  # foreground is exactly the head
        # Nesting, in the plane of each slice: the core touches only enhancing tumour, enhancing tumour never
        # touches healthy tissue, and the oedema touches only brain (the whole tumour lies inside the brain).
        pad = np.pad(tissue, 1, mode="edge")
        for axis in (1, 2):
            for shift in (-1, 1):
                nb = np.roll(pad, shift, axis)[1:-1, 1:-1, 1:-1]
                assert set(np.unique(nb[seg == 1])) <= {T["necrosis"], T["enhancing"]}
                assert set(np.unique(nb[seg == 4])) <= {T["necrosis"], T["enhancing"], T["oedema"]}
                assert set(np.unique(nb[seg == 2])) <= set(BRAIN) | {T["enhancing"], T["oedema"]}
    assert labels == set(LABELS)


def test_healthy_and_lesion_subjects():
    none = phantom_dataset(6, 32, 12, seed=0, lesion_rate=0.0)
    assert not none.lesion.any() and not none.masks.any()
    every = phantom_dataset(6, 32, 12, seed=0, lesion_rate=1.0)
    for s in set(every.subject):                               # a tumour spans some slices, not all
        rows = every.subject == s
        assert every.lesion[rows].any() and (~every.lesion[rows]).any()
    # The anatomy does not depend on the lesion draw: healthy slices of a lesion subject are its healthy slices.
    a, b = phantom_volume(2, lesion_rate=1.0)[2], phantom_volume(2, lesion_rate=0.0)[2]
    np.testing.assert_array_equal(a[a < T["necrosis"]], b[a < T["necrosis"]])


def test_contrasts_are_those_of_mr():
    means = []
    for k in range(6):
        images, _, tissue = phantom_volume(k, seed=0, side=64, depth=16, lesion_rate=1.0)
        means.append([[images[:, m][tissue == t].mean() for t in range(len(TISSUES))] for m in range(4)])
    mu = dict(zip(MODALITIES, np.median(means, 0)))           # [modality][tissue], raw units
    flair, t1, t1ce, t2 = (dict(zip(TISSUES, mu[m])) for m in MODALITIES)
    assert t1["csf"] < t1["grey"] < t1["white"]                 # CSF dark on T1, white brighter than grey
    assert t2["csf"] > t2["grey"] > t2["white"]                 # CSF bright on T2, the order reversed
    assert flair["csf"] < min(flair["grey"], flair["white"])   # FLAIR suppresses CSF ...
    assert flair["oedema"] == max(flair.values())               # ... so oedema is its brightest tissue
    assert t1ce["enhancing"] == max(t1ce.values())              # gadolinium: the rim is brightest on T1ce
    assert t1["enhancing"] < t1["white"]                        # and not on T1
    assert t1["scalp"] > t1["grey"] and max(v["skull"] for v in (flair, t1, t1ce, t2)) < 0.2


def test_subjects_vary():
    tissues = [phantom_volume(k, seed=0, side=64, depth=16)[2] for k in range(6)]
    heads = [(t > 0).sum() for t in tissues]
    g = (np.arange(64) + 0.5) / 32 - 1
    deep = (g[None, :] / 0.66) ** 2 + (g[:, None] / 0.8) ** 2 < 0.25     # inside the white matter: no sulci
    ventricles = [((t == T["csf"]) & deep).sum() for t in tissues]
    centres = [np.argwhere(t[8] > 0).mean(0) for t in tissues]
    assert len(set(heads)) == 6 and max(heads) / min(heads) > 1.1
    assert max(ventricles) / min(ventricles) > 1.3
    assert np.ptp(np.array(centres), 0).min() > 0.5           # head position jitters, in pixels
    # Intensities jitter too: the same tissue is not equally bright in two subjects.
    white = []
    for k in range(3):
        images, _, tissue = phantom_volume(k, seed=0, side=32, depth=4)
        white.append(images[:, 1][tissue == T["white"]].mean())
    assert len(set(np.round(white, 4))) == 3


def test_bad_phantom_parameters_are_user_errors():
    for kw, says in (({"n_subjects": 0}, "'n_subjects'"), ({"size": 2}, "'size'"), ({"lesion_rate": 1.5},
                     "'lesion_rate'"), ({"antialias": 0}, "'antialias'"), ({"min_brain": -0.1}, "'min_brain'"),
                     ({"min_lesion_px": 0}, "'min_lesion_px'"), ({"n_slices": True}, "'n_slices'")):
        with pytest.raises(MRIDataError, match=says):
            phantom_dataset(**{"n_subjects": 1, **kw})
    with pytest.raises(MRIDataError, match="gave no slice"):
        phantom_dataset(1, 16, 4, min_brain=1.0)
    assert issubclass(MRIDataError, UserError)


def test_every_phantom_docstring_says_stand_in():
    tree = ast.parse(inspect.getsource(phantom))
    docs = [ast.get_docstring(tree)] + [ast.get_docstring(f) for f in ast.walk(tree)
                                        if isinstance(f, ast.FunctionDef)]
    assert len(docs) >= 5 and all(d and "stand-in" in d for d in docs)


# -------------------------------------------------------------------------------------------------- BraTS
X, Y, Z = 24, 24, 12
CORE, LESION_SLICES, SMALL_SLICE = (slice(4, 9), slice(10, 15)), (5, 6, 7), 9


def _volumes(seed: int, lesion: bool = True) -> tuple[dict, np.ndarray]:
    """A subject in BraTS' voxel axes (x, y, axial): no brain in slice 0, a speck in slice 1, a disk after;
    a 5 x 5 lesion at x 4..8, y 10..14 in slices 5-7 and a one-voxel lesion in slice 9."""
    rng = np.random.default_rng(seed)
    xx, yy = np.meshgrid(np.arange(X), np.arange(Y), indexing="ij")
    brain = np.zeros((X, Y, Z), bool)
    brain[:, :, 2:] = ((xx - 12) ** 2 + (yy - 12) ** 2 < 81)[:, :, None]
    brain[11:14, 11:14, 1] = True                             # 9 of 576 pixels: under min_brain = 0.1
    vols = {m: np.where(brain, rng.uniform(1, 100, brain.shape), 0).astype(np.float32) for m in MODALITIES}
    seg = np.zeros((X, Y, Z), np.uint8)
    if lesion:
        seg[4:9, 10:15, 5:8] = 2
        seg[5:8, 11:14, 5:8] = 4
        seg[6, 12, 5:8] = 1
        seg[12, 12, SMALL_SLICE] = 2
    return vols, seg


def _write(folder, vols, seg, ext=".nii.gz", shape=None):
    folder.mkdir(parents=True)
    for key, arr in {**vols, "seg": seg}.items():
        arr = arr if shape is None or key != "flair" else arr.reshape(shape)
        nib.save(nib.Nifti1Image(arr, np.eye(4)), str(folder / f"{folder.name}_{key}{ext}"))


def _subject(root, k):
    return root / f"BraTS20_Training_{k:03d}"


BAD = {  # subject number -> (what is planted, what the report must say)
    3: ("missing t1ce", "no t1ce file"),
    4: ("t2 of 10 slices", "shapes differ"),
    5: ("flair gzip cut in half", "flair.nii.gz is unreadable"),
    6: ("t1 random bytes", "t1.nii.gz is unreadable .*not a gzip file"),
    7: ("seg 4-D", "seg.nii.gz is 4-D"),
    8: ("seg label 3", r"labels \[3.0\]"),
    9: ("t1ce constant over the brain", "t1ce is constant over the brain"),
    10: ("NaN in t2", "NaN"),
}


def _plant(root, k):
    vols, seg = _volumes(k)
    d = _subject(root, k)
    if k == 4:
        vols["t2"] = vols["t2"][:, :, :10]
    if k == 7:
        seg = np.stack([seg, seg], -1)
    if k == 8:
        seg[0, 0, 3] = 3
    if k == 9:
        vols["t1ce"] = np.where(vols["t1ce"] > 0, 5, 0).astype(np.float32)
    if k == 10:
        vols["t2"][12, 12, 4] = np.nan
    _write(d, vols, seg)
    if k == 3:
        (d / f"{d.name}_t1ce.nii.gz").unlink()
    if k == 5:
        f = d / f"{d.name}_flair.nii.gz"
        f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
    if k == 6:
        (d / f"{d.name}_t1.nii.gz").write_bytes(np.random.default_rng(0).bytes(400))


@pytest.fixture(scope="module")
def brats(tmp_path_factory):
    root = tmp_path_factory.mktemp("MICCAI_BraTS2020_TrainingData")
    _write(_subject(root, 1), *_volumes(1))
    _write(_subject(root, 2), *_volumes(2, lesion=False))
    for k in BAD:
        _plant(root, k)
    vols, seg = _volumes(11)                                  # uncompressed .nii, flair with a trailing axis of 1
    _write(_subject(root, 11), vols, seg, ext=".nii", shape=(X, Y, Z, 1))
    (root / "name_mapping.csv").write_text("not a subject\n")
    (root / "notes").mkdir()
    return root


def test_brats_reads_the_usable_subjects_and_names_the_rest(brats):
    d = load_brats(brats, 24, min_lesion_px=4)
    good = [f"BraTS20_Training_{k:03d}" for k in (1, 2, 11)]
    assert sorted(set(d.subject)) == good and d.source == str(brats)
    assert sorted(d.skipped) == [f"BraTS20_Training_{k:03d}" for k in BAD]
    for k, (_, says) in BAD.items():
        assert re.search(says, d.skipped[f"BraTS20_Training_{k:03d}"]), (k, d.skipped)
    assert all("\n" not in why for why in d.skipped.values())
    assert "skipped 8 subjects" in d.summary()


def test_brats_slice_rules(brats):
    d = load_brats(brats, 24, min_lesion_px=4)
    kept = [2, 3, 4, 5, 6, 7, 8, 10, 11]                      # 0: no brain, 1: a speck, 9: a one-pixel lesion
    for s in ("BraTS20_Training_001", "BraTS20_Training_011"):
        rows = d.subject == s
        assert d.slice_index[rows].tolist() == kept
        assert d.slice_index[rows][d.lesion[rows]].tolist() == list(LESION_SLICES)
    rows = d.subject == "BraTS20_Training_002"
    assert d.slice_index[rows].tolist() == [2, 3, 4, 5, 6, 7, 8, 9, 10, 11] and not d.lesion[rows].any()
    assert d.dropped == {"little_brain": 6, "small_lesion": 2}
    # A lower threshold at a coarser size: the one-voxel lesion is still too small to count, and not healthy.
    half = load_brats(brats, 12, min_lesion_px=1)
    assert 9 not in half.slice_index[half.subject == "BraTS20_Training_001"]
    steps = load_brats(brats, 24, min_lesion_px=4, slice_step=3)
    assert set(steps.slice_index) <= {0, 3, 6, 9} and 3 in steps.slice_index
    assert len(set(load_brats(brats, 24, n_subjects=1).subject)) == 1


def test_brats_orientation_and_labels(brats):
    d = load_brats(brats, 24, min_lesion_px=4)
    row = np.flatnonzero((d.subject == "BraTS20_Training_001") & (d.slice_index == 6))[0]
    _, seg = _volumes(1)
    np.testing.assert_array_equal(d.masks[row], seg[:, :, 6].T)   # rows are axis 1 (y), columns axis 0 (x)
    assert (d.masks[row][CORE[1], CORE[0]] > 0).all() and d.masks[row].sum() > 0
    assert set(np.unique(d.masks)) == set(LABELS)


def test_brats_normalisation_by_hand(brats):
    d = load_brats(brats, 24, min_lesion_px=4)
    vols, _ = _volumes(1)
    fg = np.stack([vols[m] for m in MODALITIES]).any(0)
    for m, name in enumerate(MODALITIES):
        lo, hi = np.percentile(vols[name][fg], CLIP_PERCENTILES)
        want = np.where(fg, np.clip((vols[name] - lo) / (hi - lo), 0, 1) * 2 - 1, -1)
        for row in np.flatnonzero(d.subject == "BraTS20_Training_001"):
            k = d.slice_index[row]
            np.testing.assert_allclose(d.images[row, m], want[:, :, k].T, atol=1e-6)
    assert d.images.min() == -1 and d.images.max() == 1


def test_brats_resizes_by_area_averaging(brats):
    full, half = load_brats(brats, 24, min_lesion_px=1), load_brats(brats, 12, min_lesion_px=1)
    both = np.intersect1d(full.slice_index[full.subject == "BraTS20_Training_002"],
                          half.slice_index[half.subject == "BraTS20_Training_002"])
    for k in both:
        a = full.images[(full.subject == "BraTS20_Training_002") & (full.slice_index == k)][0]
        b = half.images[(half.subject == "BraTS20_Training_002") & (half.slice_index == k)][0]
        np.testing.assert_allclose(b, a.reshape(4, 12, 2, 12, 2).mean((2, 4)), atol=1e-6)


def test_a_mask_pixel_takes_the_label_covering_most_of_it_ties_to_the_tumour():
    images = np.ones((1, 4, 4, 4), np.float32)
    images[0, :, 0, 0] = 2                                    # not constant
    seg = np.array([[[2, 0, 1, 0],
                     [2, 0, 0, 0],
                     [4, 1, 2, 2],
                     [1, 4, 4, 2]]], np.uint8)
    d = slice_volume(images, seg, "s", 2, min_brain=0.0, min_lesion_px=1)
    np.testing.assert_array_equal(d.masks[0], [[2, 0], [4, 2]])   # tie 2/0 -> 2; 1 of 4 -> 0; tie 4/1 -> 4; 3 of 4


def test_a_folder_with_nothing_usable_is_one_clear_line(brats, tmp_path):
    for k in (3, 8):
        shutil.copytree(_subject(brats, k), _subject(tmp_path / "bad", k))
    with pytest.raises(MRIDataError) as err:
        load_brats(tmp_path / "bad")
    msg = str(err.value)
    assert "\n" not in msg and str(tmp_path / "bad") in msg and "no usable subject (2 skipped" in msg
    assert "no t1ce file" in msg and "BraTS20_Training_NNN_{flair,t1,t1ce,t2,seg}.nii.gz" in msg
    (tmp_path / "empty").mkdir()
    with pytest.raises(MRIDataError, match="no subject folders; expected subfolders BraTS20_Training_NNN"):
        load_brats(tmp_path / "empty")
    shutil.copytree(_subject(brats, 1), _subject(tmp_path / "up" / "MICCAI", 1))
    with pytest.raises(MRIDataError, match="one level down, in 'MICCAI'"):
        load_brats(tmp_path / "up")
    with pytest.raises(MRIDataError, match="not found"):
        load_brats(tmp_path / "nowhere")
    with pytest.raises(MRIDataError, match="gave no slice"):
        load_brats(brats, 24, min_brain=1.0)


def test_bad_brats_parameters(brats):
    for kw, says in (({"size": 3}, "'size'"), ({"min_brain": 2}, "'min_brain'"), ({"n_subjects": 0},
                     "'n_subjects'"), ({"slice_step": 0}, "'slice_step'")):
        with pytest.raises(MRIDataError, match=says):
            load_brats(brats, **kw)


def test_a_gzip_cut_at_the_header_is_skipped_too(brats, tmp_path):
    shutil.copytree(_subject(brats, 1), _subject(tmp_path, 1))
    f = _subject(tmp_path, 1) / "BraTS20_Training_001_seg.nii.gz"
    f.write_bytes(gzip.compress(b"\0" * 40))
    shutil.copytree(_subject(brats, 2), _subject(tmp_path, 2))
    d = load_brats(tmp_path, 24)
    assert set(d.subject) == {"BraTS20_Training_002"} and "seg.nii.gz is unreadable" in d.skipped[
        "BraTS20_Training_001"]


def test_mri_slices_picks_the_source(brats):
    assert mri_slices(size=16, n_subjects=2, n_slices=6).source == "phantom"
    assert mri_slices(brats, size=24, min_lesion_px=4).source == str(brats)
