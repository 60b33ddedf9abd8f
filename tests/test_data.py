import numpy as np
import pytest

import circuitnb.core.config as C
from circuitnb import data
from circuitnb.data import DataError, generate_faces, load_celeba, read_attributes


@pytest.fixture(scope="module")
def faces():
    return generate_faces(600, image_size=32, seed=0)


def test_shapes_ranges_and_determinism(faces):
    assert faces.images.shape == (600, 3, 32, 32) and faces.images.dtype == np.float32
    assert faces.labels.shape == (600, 32, 32)
    assert -1 <= faces.images.min() and faces.images.max() <= 1
    again = generate_faces(50, image_size=32, seed=0)      # image i depends only on (seed, i)
    np.testing.assert_array_equal(again.images, faces.images[:50])
    assert not np.array_equal(generate_faces(50, 32, seed=1).images, again.images)


def test_attribute_correlations(faces):
    a = faces.attributes
    assert (a.loc[a.gender == "female", "facial_hair"] == "none").all()          # facial hair only men
    assert (a.loc[a.gender == "male", "accessory"] != "earrings").all()          # earrings only women
    assert (a.loc[a.hair_length == "bald", ["gender", "age"]] == ["male", "old"]).all().all()
    grey_old = (a.loc[a.age == "old", "hair_colour"] == "grey").mean()
    assert 0.55 < grey_old < 0.85 and (a.loc[a.age == "young", "hair_colour"] != "grey").all()
    long_f = (a.loc[a.gender == "female", "hair_length"] == "long").mean()
    long_m = (a.loc[a.gender == "male", "hair_length"] == "long").mean()
    assert long_f > 0.6 and long_m < 0.2
    glasses_old = (a.loc[a.age == "old", "accessory"] == "glasses").mean()
    glasses_young = (a.loc[a.age == "young", "accessory"] == "glasses").mean()
    assert glasses_old > glasses_young + 0.15


def test_masks_follow_attributes_and_anatomy(faces):
    a = faces.attributes
    fh = faces.mask("facial_hair").any(axis=(1, 2))
    assert not fh[(a.facial_hair == "none").to_numpy()].any()
    assert fh[(a.facial_hair == "beard").to_numpy()].all()
    acc = faces.mask("accessories").any(axis=(1, 2))
    assert acc[(a.accessory == "glasses").to_numpy()].all() and not acc[(a.accessory == "none").to_numpy()].any()
    for part in ("background", "skin", "eyes", "mouth", "nose"):
        assert faces.mask(part).any(axis=(1, 2)).all(), part
    rows = np.arange(32)[None, :, None]
    def centre_row(part):
        m = faces.mask(part)
        return (m * rows).sum() / m.sum()
    assert centre_row("brows") < centre_row("eyes") < centre_row("nose") < centre_row("mouth")
    assert not faces.mask("hair").any(axis=(1, 2))[(a.hair_length == "bald").to_numpy()].any()
    with pytest.raises(ValueError, match="unknown part"):
        faces.mask("ears")


def test_parts_differ_in_colour(faces):
    # Eyes are dark and the mouth is red: the masks mark what the pixels show.
    img = (faces.images + 1) / 2
    eyes = img.transpose(1, 0, 2, 3)[:, faces.mask("eyes")].mean(axis=1)
    skin = img.transpose(1, 0, 2, 3)[:, faces.mask("skin")].mean(axis=1)
    assert eyes.mean() < skin.mean() - 0.2


def test_celeba_sample_loads(celeba_root):
    nat = load_celeba(celeba_root, n=24, image_size=32, match_attributes=False)
    assert nat.images.shape == (24, 3, 32, 32) and nat.source == "celeba" and not nat.skipped
    assert nat.names == sorted(nat.names) and nat.names[0] == "000002.jpg"
    assert -1 <= nat.images.min() and nat.images.max() <= 1 and nat.images.std() > 0.2


def test_corrupt_file_skipped_and_reported(small_celeba):
    with pytest.warns(UserWarning, match="skipped 1 unreadable"):
        nat = load_celeba(small_celeba, n=100, image_size=16, match_attributes=False)
    assert len(nat) == 10 and len(nat.skipped) == 1 and nat.skipped[0].startswith("999999.jpg (")
    assert "999999.jpg" not in nat.names


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_partial_attribute_file(small_celeba, seed):
    # Asking for more images than the folder holds makes every file a candidate, whatever the seed, so the
    # corrupt one is always met and named; the partial attribute file gives rows for exactly the kept
    # images it lists.
    attrs = read_attributes(small_celeba / "list_attr_celeba.txt")
    assert len(attrs) == 4 and attrs.shape[1] == 40 and set(np.unique(attrs.to_numpy())) <= {-1, 1}
    with pytest.warns(UserWarning, match=r"skipped 1 unreadable.*999999\.jpg \("):
        nat = load_celeba(small_celeba, n=11, image_size=16, seed=seed, match_attributes=True)
    assert len(nat) == 10 and nat.skipped == [s for s in nat.skipped if s.startswith("999999.jpg (")]
    assert list(nat.attributes.index) == [nm for nm in nat.names if nm in attrs.index] and len(nat.attributes) == 4


@pytest.mark.parametrize("line,message", [
    ("000001.jpg" + " 1" * 39 + " 0", "'000001.jpg' is '0'; allowed: 1 or -1"),
    ("000001.jpg" + " 1" * 39 + " yes", "is 'yes'; allowed: 1 or -1"),
    ("000001.jpg" + " 1" * 39, "39 values for 40 attributes"),
])
def test_malformed_attribute_rows_are_named(tmp_path, celeba_root, line, message):
    header = (celeba_root / "list_attr_celeba.txt").read_text().splitlines()[1]
    path = tmp_path / "list_attr_celeba.txt"
    path.write_text(f"1\n{header}\n{line}\n")
    with pytest.raises(DataError, match=f"{path}:3: .*{message}"):
        read_attributes(path)
    path.write_text(f"2\n{header}\n000001.jpg{' 1' * 40}\n000001.jpg{' -1' * 40}\n")
    with pytest.raises(DataError, match=f"{path}:4: a second row for '000001.jpg' \\(the first is on line 3\\)"):
        read_attributes(path)
    path.write_bytes(b"1\n" + header.encode() + b"\n000001.jpg \xe9 1\n")
    with pytest.raises(DataError, match=f"{path}:3: byte 0xe9 .* not UTF-8"):
        read_attributes(path)


def test_attribute_matching_moves_marginals(celeba_root):
    attrs = read_attributes(celeba_root / "list_attr_celeba.txt")
    names = list(attrs.index)
    picked = data.celeba.select_matching(attrs, names, 120, seed=0)
    target = data.celeba._SYNTHETIC_MARGINALS["Eyeglasses"]
    before = (attrs["Eyeglasses"] > 0).mean()
    after = (attrs.loc[picked, "Eyeglasses"] > 0).mean()
    assert abs(after - target) < abs(before - target)


def test_missing_folder_names_parameter(tmp_path):
    with pytest.raises(DataError, match="celeba_root"):
        load_celeba(tmp_path / "nothing", n=4, image_size=16)


def test_lfw_fallback_with_notice(cache, monkeypatch):
    monkeypatch.delenv("CIRCUITNB_CELEBA", raising=False)
    cfg = C.load("smoke", n_images=100)   # 16 of them held out for analysis
    with pytest.warns(UserWarning, match="scikit-image"):
        nat = data._natural.__wrapped__("", 100, 16, 0, True, str(cache))
    assert nat.source == "lfw" and len(nat) == 100 and "stand-in" in nat.notice
    assert cfg.celeba_root == "" and nat.images.shape == (100, 3, 16, 16)


def test_fingerprint_tracks_content():
    x = generate_faces(4, 16, 0).images
    assert data.fingerprint(x) == data.fingerprint(x.copy())
    y = x.copy()
    y[0, 0, 0, 0] += 0.5
    assert data.fingerprint(y) != data.fingerprint(x)


def test_celeba_fingerprint_and_model_key_change_when_an_image_changes(small_celeba, cache):
    from circuitnb.modeling.train import cache_key
    cfg = C.load("smoke", n_images=8, n_analysis=4, n_samples=4, celeba_root=str(small_celeba),
                 match_attributes=False, device="cpu")
    data._natural.cache_clear()                         # loads are memoised per process
    before = data.fingerprint(data.images(cfg, "celeba"))   # the first 8 files by name: all readable
    folder = small_celeba / "img_align_celeba"
    victim = folder / sorted(p.name for p in folder.iterdir())[0]
    from PIL import Image
    with Image.open(victim) as im:
        im.transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(victim, quality=95)   # same name, same size, new pixels
    data._natural.cache_clear()
    after = data.fingerprint(data.images(cfg, "celeba"))
    assert after != before and cache_key(cfg, "celeba", after) != cache_key(cfg, "celeba", before)
    data._natural.cache_clear()


def test_decoded_celeba_is_cached_and_keyed_by_the_files_content(small_celeba, tiny_cfg, monkeypatch):
    from circuitnb import data
    from circuitnb.data import celeba as celeba_mod
    cfg = C.with_overrides(tiny_cfg, celeba_root=str(small_celeba), match_attributes=False)
    data._natural.cache_clear()
    with pytest.warns(UserWarning, match="skipped 1 unreadable"):
        first = data.natural_faces(cfg)
    decoded = []
    real = celeba_mod._load_image
    monkeypatch.setattr(celeba_mod, "_load_image", lambda *a: decoded.append(a) or real(*a))
    data._natural.cache_clear()                          # a new process: only the disk cache is left
    with pytest.warns(UserWarning, match="skipped 1 unreadable"):      # still said on a cache hit
        again = data.natural_faces(cfg)
    assert decoded == [] and again.names == first.names and np.array_equal(again.images, first.images)
    # Same names, other bytes: the entry is not served.
    img = small_celeba / "img_align_celeba"
    (img / first.names[0]).write_bytes((img / first.names[1]).read_bytes())
    data._natural.cache_clear()
    with pytest.warns(UserWarning, match="skipped 1 unreadable"):
        changed = data.natural_faces(cfg)
    assert len(decoded) == len(first.names) + 1                       # decoded again, the corrupt file too
    assert np.array_equal(changed.images[0], changed.images[1]) and not np.array_equal(changed.images[0],
                                                                                        first.images[0])


def test_the_drawn_sets_split_rule():
    """Training: replicate r's own draw less its last n_heldout rows; held out: the base draw's last n_heldout."""
    from circuitnb.data.splits import check_choice, draw_seed, split_draw
    assert split_draw("train", 3, 10, 4) == (3, slice(0, 6))
    assert split_draw("analysis", 3, 10, 4) == split_draw("heldout", 0, 10, 4) == (0, slice(6, 10))
    assert draw_seed(7, 2, offset=700) == 7 + 2 * data.REPLICATE_STRIDE + 700
    assert check_choice("train", data.SPLITS, "split", DataError) == "train"
    with pytest.raises(DataError, match=r"parameter 'split' = 'test'; choose one of \('train', 'analysis'\)"):
        check_choice("test", data.SPLITS, "split", DataError)
