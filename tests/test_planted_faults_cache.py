"""A manifest of another format version is never trusted (circuitnb.core.cache and the model
cache on top of it). Its hashes may all match, yet they were written under another layout: the entry counts as
damaged, is warned about in one line naming the manifest and its format, removed, and never read back."""
import json

import pytest

from circuitnb.core import cache, inventory
from circuitnb.modeling.checkpoints import CacheEntry

from conftest import random_unet
from test_cache import write_entry


def reformat(entry, version) -> None:
    """Rewrite ``entry``'s manifest with another format version (None: no format field), every hash intact."""
    path = entry / cache.MANIFEST
    manifest = json.loads(path.read_text())
    if version is None:
        del manifest["format"]
    else:
        manifest["format"] = version
    path.write_text(json.dumps(manifest))


@pytest.mark.parametrize("version", [cache.FORMAT + 1, 0, "1", None])
def test_a_manifest_of_another_format_is_damaged_and_never_read_back(tmp_path, version):
    entry = tmp_path / "results" / "e-1"
    write_entry(entry, {"value.pkl": b"1"})
    assert cache.verify(entry) is None
    reformat(entry, version)
    assert cache.read_manifest(entry) is None
    found = f"format {version!r}" if version is not None else "no format version"
    assert cache.verify(entry) == f"{entry / cache.MANIFEST} has {found}; this version reads format {cache.FORMAT} only"
    assert inventory.scan(tmp_path)[0].status == "damaged"                     # what `circuitnb cache ls` shows
    loads = []
    with pytest.warns(cache.CacheWarning) as record:
        assert cache.read_verified(entry, loads.append, "test entry", "recomputing") is cache.MISSING
    assert not loads and not entry.exists()
    assert len(record) == 1 and str(entry / cache.MANIFEST) in str(record[0].message)
    assert "\n" not in str(record[0].message)


def test_get_or_make_recomputes_an_entry_of_another_format(tmp_path):
    entry = tmp_path / "results" / "e-2"
    write_entry(entry, {"v": b"old"})
    reformat(entry, cache.FORMAT + 1)
    with pytest.warns(cache.CacheWarning, match="has format 2"):
        value = cache.get_or_make(entry, lambda d: (d / "v").read_bytes(),
                                  lambda tmp: (tmp / "v").write_bytes(b"new") and b"new", kind="t", settings={})
    assert value == b"new" and cache.read_manifest(entry)["format"] == cache.FORMAT


def test_model_weights_and_snapshots_of_another_format_are_not_loaded(tmp_path):
    entry = CacheEntry(tmp_path, "synthetic-1")
    entry.write_final(random_unet(0), {"key": "synthetic-1", "steps": 2})
    entry.write_snapshot(random_unet(1), 1)
    assert entry.final_unet() is not None and entry.snapshot_intact(1)        # both load while their format is ours
    reformat(entry.final_dir, cache.FORMAT + 1)
    reformat(entry.snapshot_dir(1), cache.FORMAT + 1)
    assert "has format 2" in entry.verify()
    with pytest.warns(cache.CacheWarning, match="damaged model cache entry: .*has format 2"):
        assert entry.final_unet() is None
    with pytest.warns(cache.CacheWarning, match="damaged training snapshot: .*has format 2"):
        assert not entry.snapshot_intact(1)
    assert not entry.final_dir.exists() and not entry.snapshot_dir(1).exists()
