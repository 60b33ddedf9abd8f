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


# --- the parts' fields: qualified ("vae.image_size"), nested (vae=dict(...)), or bare inside a part ------------
def test_qualified_and_nested_names_reach_the_part_and_only_it():
    smoke = C.load("smoke")
    cfg = C.load("smoke", **{"vae.image_size": 32, "sae.hidden": 64})
    assert (cfg.vae.image_size, cfg.sae.hidden, cfg.data.image_size) == (32, 64, smoke.data.image_size)
    cfg = C.load("smoke", vae=dict(image_size=32, steps=7), tabular=dict(replicates=1))
    assert (cfg.vae.image_size, cfg.vae.steps, cfg.tabular.replicates) == (32, 7, 1)
    assert (cfg.data.image_size, cfg.run.replicates) == (smoke.data.image_size, smoke.run.replicates)
    assert C.load("smoke", image_size=32).vae.image_size == smoke.vae.image_size     # a bare name is Part I's
    assert C.load("smoke", **{"mri.root": None}).mri.root == smoke.mri.root           # None: the profile's


def test_inside_a_part_bare_names_are_its_own_first_then_part_one():
    smoke = C.load("smoke")
    cfg = C.load("smoke", part="sae", steps=7, replicates=1, seed=3)
    assert (cfg.sae.steps, cfg.sae.replicates, cfg.run.seed) == (7, 1, 3)
    assert (cfg.train.train_steps, cfg.run.replicates) == (smoke.train.train_steps, smoke.run.replicates)
    cfg = C.load("smoke", part="vae", image_size=32, replicates=1)      # Part II has no replicates of its own
    assert (cfg.vae.image_size, cfg.data.image_size, cfg.run.replicates) == (32, smoke.data.image_size, 1)
    assert C.load("smoke", part="mri", **{"vae.steps": 5}).vae.steps == 5         # qualified names still work
    with pytest.raises(ConfigError, match=r"^parameter 'sae.steps' is given twice$"):
        C.load("smoke", part="sae", steps=7, **{"sae.steps": 8})
    with pytest.raises(ConfigError, match=r"^parameter 'part' = 'diffusion': choose one of"):
        C.load("smoke", part="diffusion")


def test_every_retired_flat_name_says_its_qualified_name_in_one_line():
    retired = {C.key_name(q): q for q in C.override_names() if "." in q and C.key_name(q) != q.split(".")[1]}
    assert len(retired) >= 74 and retired["tab_steps"] == "tabular.steps" and "latent_dim" not in retired
    for old, new in retired.items():
        with pytest.raises(ConfigError, match=rf"^'{old}' is now '{new}'$"):
            C.load("smoke", **{old: 1})
        with pytest.raises(ConfigError, match=rf"^'{old}' is now '{new}'$"):
            C.load("smoke", part=new.split(".")[0], **{old: None})


def test_a_bare_name_only_a_part_has_asks_which_part():
    with pytest.raises(ConfigError, match=r"^'latent_dim' belongs to a part; say which: 'vae.latent_dim', "
                                          r"'tabular.latent_dim', 'sae.latent_dim', 'mri.latent_dim'$"):
        C.load("smoke", latent_dim=4)
    with pytest.raises(ConfigError, match=r"^'patch_units' belongs to a part; say which: 'vae.patch_units'$"):
        C.load("smoke", patch_units=4)
    assert C.load("smoke", part="vae", patch_units=4).vae.patch_units == 4


def test_unknown_qualified_and_nested_names_and_a_section_given_a_value():
    with pytest.raises(ConfigError, match=r"^unknown parameter 'vae.image_sise' \(did you mean 'vae.image_size'\?\); "
                                          "known: "):
        C.load("smoke", **{"vae.image_sise": 32})
    with pytest.raises(ConfigError, match=r"^unknown parameter 'sae.kinds'"):
        C.load("smoke", sae=dict(kinds=["topk"]))                   # Part IV has methods, not kinds
    with pytest.raises(ConfigError, match=r"^unknown parameter 'data.image_size'"):
        C.load("smoke", **{"data.image_size": 32})                  # Part I's fields take bare names
    with pytest.raises(ConfigError, match=r"^unknown parameter 'stepz' \(did you mean 'steps'\?\)"):
        C.load("smoke", part="sae", stepz=3)
    with pytest.raises(ConfigError, match=r"^parameter 'vae' is Part II's section: give a dict of its fields"):
        C.load("smoke", vae=32)
    with pytest.raises(ConfigError, match=r"^parameter 'mri.heads' = 3 must|'mri.heads' = 3 must divide"):
        C.load("smoke", mri=dict(heads=3))
    assert all("\n" not in str(e) for e in _errors())


def _errors():
    for bad in (dict(latent_dim=1), {"vae_steps": 1}, {"vae.nope": 1}, dict(vae=1)):
        try:
            C.load("smoke", **bad)
        except ConfigError as err:
            yield err


def test_with_overrides_takes_qualified_and_nested_names():
    cfg = C.load("smoke")
    assert C.with_overrides(cfg, **{"sae.steps": 9}).sae.steps == 9
    assert C.with_overrides(cfg, vae=dict(beta=2.0), seed=4).vae.beta == 2.0
    with pytest.raises(ConfigError, match="'tab_lr' is now 'tabular.lr'"):
        C.with_overrides(cfg, tab_lr=0.1)


def test_name_helpers():
    cfg = C.load("smoke")
    assert C.qualify("image_size") == "image_size" and C.qualify("image_size", "vae") == "vae.image_size"
    assert C.qualify("seed", "mri") == "seed" and C.qualify("tabular.steps", "sae") == "tabular.steps"
    assert C.display_name("vae", "steps") == "vae.steps" and C.display_name("train", "train_steps") == "train_steps"
    assert [C.key_name(q) for q in ("vae.latent_dim", "vae.steps", "tabular.steps", "mri.root", "seed")] == [
        "latent_dim", "vae_steps", "tab_steps", "mri_root", "seed"]
    assert C.field_value(cfg, "sae.hidden") == cfg.sae.hidden and C.field_value(cfg, "seed") == cfg.run.seed
    parts = {nb: C.notebook_part(nb) for nb in ("book/01_data_and_model.ipynb", "10_scorecard.md", "20_vae.ipynb",
                                                 "book/31_x.md", "42_y.ipynb", "52_z.ipynb", "README.md")}
    assert list(parts.values()) == [None, None, "vae", "tabular", "sae", "mri", None]
    assert C.notebook_name("vae.image_size", "vae") == "image_size" and C.notebook_name("vae.image_size", None) is None
    assert C.notebook_name("image_size", "vae") is None and C.notebook_name("image_size", None) == "image_size"
    assert C.notebook_name("replicates", "vae") == "replicates" and C.notebook_name("replicates", "sae") is None
    assert C.notebook_name("profile", "mri") == "profile" and C.notebook_name("sae.steps", "vae") is None
