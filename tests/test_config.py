import dataclasses

import pytest

import circuitnb.core.config as C
from circuitnb.core import machine
from circuitnb.core.config import ConfigError


@pytest.mark.parametrize("profile", sorted(C.PROFILES))
def test_profiles_load(profile):
    cfg = C.load(profile)
    assert cfg.profile == profile
    assert cfg.model.n_heads == 8


def test_paper_profile_is_paper_scale():
    cfg = C.load("paper")
    assert cfg.data.n_images == 2000 and cfg.model.block_out_channels[-1] == 256
    assert cfg.model.num_train_timesteps == 1000 and cfg.model.beta_schedule == "squaredcos_cap_v2"
    assert cfg.analysis.timesteps == (100, 300, 600, 900)


def test_overrides_apply_and_lists_parse():
    cfg = C.load("smoke", image_size=32, n_images=100, timesteps="[50, 500]", seed=3, device="cpu",
                 train_steps=7)
    assert (cfg.data.image_size, cfg.data.n_images, cfg.run.seed, cfg.run.device) == (32, 100, 3, "cpu")
    assert cfg.analysis.timesteps == (50, 500) and cfg.train.train_steps == 7
    assert C.load("smoke", timesteps=[1, 2]).analysis.timesteps == (1, 2)


def test_config_is_frozen_and_hash_is_stable():
    a, b = C.load("quick"), C.load("quick")
    with pytest.raises(dataclasses.FrozenInstanceError, match="image_size"):
        a.data.image_size = 64
    assert C.config_hash(a.model, a.train) == C.config_hash(b.model, b.train)
    assert C.config_hash(a.model) != C.config_hash(C.load("quick", n_heads=4).model)


BAD = [
    ({"image_sise": 32}, "image_sise"),             # typo, with a suggestion
    ({"image_size": 30}, "image_size"),             # not a multiple of 8
    ({"image_size": "32"}, "image_size"),           # wrong type
    ({"image_size": 4096}, "image_size"),           # too large
    ({"n_images": 0}, "n_images"),
    ({"n_images": 2.5}, "n_images"),
    ({"timesteps": [100, 1000]}, "timesteps"),      # out of [0, 999]
    ({"timesteps": [-1]}, "timesteps"),
    ({"timesteps": []}, "timesteps"),
    ({"timesteps": [100, 100]}, "timesteps"),       # duplicates
    ({"timesteps": [100.5]}, "timesteps"),          # not integers
    ({"timesteps": "[100,"}, "timesteps"),          # unparsable string
    ({"seed": -1}, "seed"),
    ({"seed": True}, "seed"),                       # bool is not an int
    ({"device": "gpu"}, "device"),
    ({"device": 0}, "device"),
    ({"celeba_root": "/no/such/folder"}, "celeba_root"),
    ({"celeba_root": 5}, "celeba_root"),
    ({"train_steps": 0}, "train_steps"),
    ({"train_steps": "many"}, "train_steps"),
    ({"learning_rate": 0}, "learning_rate"),
    ({"n_heads": 5}, "n_heads"),                    # does not divide the width
    ({"block_out_channels": [16, 32, 48], "norm_num_groups": 32}, "norm_num_groups"),
    ({"n_samples": 1}, "n_samples"),
    ({"match_attributes": "yes"}, "match_attributes"),
    ({"n_analysis": 64}, "n_analysis"),             # smoke has 64 images: none left to train on
    ({"n_samples": 17}, "n_samples"),               # more than smoke's 16 held-out images
    ({"replicates": 0}, "replicates"),
    ({"head_t": 10_000}, "head_t"),
    ({"n_permutations": 10}, "n_permutations"),
    ({"n_phase_timesteps": 3}, "n_phase_timesteps"),
]


@pytest.mark.parametrize("overrides,name", BAD, ids=[f"{n}-{i}" for i, (_, n) in enumerate(BAD)])
def test_bad_parameters_are_rejected_by_name(overrides, name):
    with pytest.raises(ConfigError, match=f"'{name}'"):
        C.load("smoke", **overrides)


def test_unknown_profile_and_typo_suggestion():
    with pytest.raises(ConfigError, match="'profile'"):
        C.load("fast")
    with pytest.raises(ConfigError, match="did you mean 'image_size'"):
        C.load("quick", image_sise=32)


def test_auto_device_resolves(monkeypatch):
    import torch
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert C.load("smoke").device == "cuda"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert C.load("smoke").device == "cpu"
    assert C.load("smoke", device="cpu").device == "cpu"


def test_none_keeps_the_profile_value():
    cfg = C.load("smoke", n_samples=None, timesteps=None, seed=3)
    assert cfg.analysis.n_samples == C.load("smoke").analysis.n_samples and cfg.run.seed == 3
    with pytest.raises(C.ConfigError, match="n_sample"):
        C.load("smoke", n_sample=None)


def test_devices_are_checked_against_what_torch_sees(monkeypatch):
    import torch
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for device in ("cuda", "cuda:0"):
        with pytest.raises(ConfigError, match=f"'device' = '{device}'.*sees no CUDA device.*'cpu' or 'auto'"):
            C.load("smoke", device=device)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(machine, "machine_memory", lambda device="cpu": 2 ** 34)
    assert C.load("smoke", device="cuda:1").run.device == "cuda:1"
    with pytest.raises(ConfigError, match="'cuda:2'.*'cuda:0' to 'cuda:1'"):
        C.load("smoke", device="cuda:2")
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    with pytest.raises(ConfigError, match="'mps'.*no Apple MPS"):
        C.load("smoke", device="mps")


def test_sizes_over_the_machine_memory_are_rejected(monkeypatch):
    monkeypatch.setattr(machine, "machine_memory", lambda device="cpu": 4 * 2 ** 30)   # a 4 GiB machine
    for profile in C.PROFILES:                                   # every preset fits it
        C.load(profile)
    with pytest.raises(ConfigError, match=r"'n_images' = 100000 and 'image_size' = 128 need at least 18\.3 GiB"):
        C.load("smoke", n_images=100_000, image_size=128)
    with pytest.raises(ConfigError, match="'batch_size' = 2048"):
        C.load("smoke", batch_size=2048, image_size=64)
    need = machine.memory_estimate(C.load("quick"))
    assert need["images"] == 2000 * 3 * 32 * 32 * 4 and 0 < need["activations"] < 2 ** 30


def test_cache_dir_must_be_a_writable_folder(tmp_path, monkeypatch):
    monkeypatch.delenv("CIRCUITNB_CACHE", raising=False)
    assert C.check_cache_dir(C.load("smoke", cache_dir=str(tmp_path / "new" / "cache"))) == tmp_path / "new" / "cache"
    assert not (tmp_path / "new").exists()                       # checking creates nothing
    (tmp_path / "file").write_text("")
    with pytest.raises(ConfigError, match="parameter 'cache_dir' = .* is a file"):
        C.check_cache_dir(C.load("smoke", cache_dir=str(tmp_path / "file")))
    with pytest.raises(ConfigError, match="lies under the file"):
        C.check_cache_dir(C.load("smoke", cache_dir=str(tmp_path / "file" / "cache")))
    (tmp_path / "c" / "models").parent.mkdir()
    (tmp_path / "c" / "models").write_text("")
    with pytest.raises(ConfigError, match="models' is a file where the cache keeps a folder"):
        C.check_cache_dir(C.load("smoke", cache_dir=str(tmp_path / "c")))
    monkeypatch.setenv("CIRCUITNB_CACHE", str(tmp_path / "file"))
    with pytest.raises(ConfigError, match=r"\$CIRCUITNB_CACHE"):
        C.check_cache_dir(C.load("smoke"))
