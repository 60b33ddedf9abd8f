"""The one load_or_train of Parts II-V (modeling.store): train once, read back, retrain a damaged entry."""
import json

import pytest
import torch

from circuitnb.core import cache
from circuitnb.modeling import store
from circuitnb.modeling.checkpoints import CacheEntry


def _spec(tmp_path, calls):
    entry = CacheEntry(tmp_path, "toy-0123")

    def make(folder):
        calls.append("make")
        net = torch.nn.Linear(3, 2)
        torch.nn.init.constant_(net.weight, 0.5)
        store.save_weights(net, folder / "net.safetensors")
        return net, store.write_meta(folder, {"steps": 7, "shape": (2, 3)}), False

    def load(folder):
        calls.append("load")
        return store.load_weights(torch.nn.Linear(3, 2), folder / "net.safetensors"), store.read_meta(folder), True

    return store.ModelSpec(entry, {"key": entry.key, "seed": 0}, make=make, load=load)


def test_trains_once_then_reads_back_the_same_weights_and_meta(tmp_path):
    calls = []
    spec = _spec(tmp_path, calls)
    assert not store.is_cached(spec.entry)
    net, meta, hit = store.load_or_train(spec)
    assert (calls, hit, meta) == (["make"], False, {"steps": 7, "shape": [2, 3]})   # what a hit reads back
    assert store.is_cached(spec.entry)
    assert cache.read_manifest(spec.entry.final_dir)["settings"] == {"key": "toy-0123", "seed": 0}
    net2, meta2, hit2 = store.load_or_train(spec)
    assert (calls, hit2, meta2) == (["make", "load"], True, meta)
    assert torch.equal(net2.weight, net.weight) and torch.equal(net2.bias, net.bias)


def test_a_damaged_entry_is_reported_and_retrained(tmp_path):
    calls = []
    spec = _spec(tmp_path, calls)
    store.load_or_train(spec)
    (spec.entry.final_dir / "meta.json").write_text(json.dumps({"steps": 8}))
    assert not store.is_cached(spec.entry)
    with pytest.warns(cache.CacheWarning, match="meta.json"):
        _, meta, hit = store.load_or_train(spec)
    assert (calls, hit, meta["steps"]) == (["make", "make"], False, 7)


@pytest.fixture
def smoke_cfg(tmp_path):
    import circuitnb
    return circuitnb.load("smoke", cache_dir=str(tmp_path))


def test_replicate_entry_hashes_settings_and_keyed_inputs(smoke_cfg):
    cfg = smoke_cfg
    settings = store.replicate_settings(cfg, ("vae.steps", "vae.lr", "vae.latent_dim"), kind="vae")
    assert settings == {"kind": "vae", "vae_steps": cfg.vae.steps, "vae_lr": cfg.vae.lr, "latent_dim": 6}
    a = store.replicate_entry(cfg, "vae-vae-shapes", settings, seed=0, data="ab")
    assert a.key.startswith("vae-vae-shapes-") and a.dir == cfg.cache_path / "models" / a.key
    assert store.replicate_entry(cfg, "vae-vae-shapes", settings, data="ab", seed=0).key == a.key   # order-free
    assert store.replicate_entry(cfg, "vae-vae-shapes", settings, seed=1, data="ab").key != a.key


def test_check_kind_and_nan_stops_are_one_line_training_errors():
    from circuitnb.modeling.train import TrainingError
    assert store.check_kind("vae", ("vae",), "vae.kinds") == "vae"
    with pytest.raises(TrainingError, match=r"parameter 'vae.kinds' has 'vqvae'; choose from \('vae',\)"):
        store.check_kind("vqvae", ("vae",), "vae.kinds")
    with pytest.raises(TrainingError, match=r"loss is nan; lower 'vae.lr' \(now 0.1\)"):
        with store.nan_stops("vae.lr", 0.1):
            raise FloatingPointError("loss is nan")


# Recorded before the parts' fields were renamed (vae_steps -> vae.steps, ...): keys hash each field under its
# flat key name, so renaming a field must not re-key a trained model. A deliberate change to the smoke profile,
# the drawn data or the keyed inputs changes these too; record the new keys then (mri.lr_schedule, a new keyed field,
# re-keyed the MRI models and every chapter result).
SMOKE_KEYS = {
    ("vae", "beta_vae", "shapes", 0): "vae-beta_vae-shapes-e56370dae795031a",
    ("vae", "factor_vae", "causal", 1): "vae-factor_vae-causal-a0e15946bfa623fb",
    ("tabular", "dip_vae_ii", "world", 0): "tab-dip_vae_ii-world-b10992dde1b3d0e1",
    ("sae", "topk_auxk", "dsprites", 0): "sae-topk_auxk-dsprites-3b27358a5602847e",
    ("sae", "l1", "shapes3d", 1): "sae-l1-shapes3d-2f2fc0aab67cbefc",
    ("mri", "attention", None, 0): "mri-attention-50446aa3ffc8e6ec",
    ("mri", "non_bayesian", None, 1): "mri-non_bayesian-050f0b59fa3463ec",
}


def test_smoke_model_and_chapter_keys_are_the_recorded_ones(smoke_cfg):
    from circuitnb.chapters.common import _NOT_KEYED
    from circuitnb.core import results
    from circuitnb.core.config import override_names
    from circuitnb.modeling.mri import cache as mri
    from circuitnb.modeling.sae import cache as sae
    from circuitnb.modeling.tabular import cache as tabular
    from circuitnb.modeling.vae import cache as vae
    caches = dict(vae=vae, tabular=tabular, sae=sae, mri=mri)
    for (part, kind, dataset, replicate), key in SMOKE_KEYS.items():
        where = (kind, replicate) if dataset is None else (kind, dataset, replicate)
        assert caches[part].model_key(smoke_cfg, *where) == key, (part, kind, dataset, replicate)
    # a chapter's result key reads every field but the two paths (chapters.common.cached_chapter)
    reads = [f for f in override_names() if f not in _NOT_KEYED]
    assert results.result_path(smoke_cfg, "chapter_x_run", [], reads=reads).parent.name == (
        "chapter_x_run-6c04a207f70c96c7")
