import pytest

import circuitnb.core.config as C
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
    with pytest.raises(Exception):
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
