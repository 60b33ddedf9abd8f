"""A model of your own: tiny UNet2DModels of configurations the book never trains, saved in diffusers' layouts,
read back, hooked, and run through Part I's chapters; bad folders give one line."""
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from diffusers import DDPMScheduler, UNet2DModel
from PIL import Image

import circuitnb.core.config as C
from circuitnb.analysis import yours
from circuitnb.chapters.diffusion import (
    attention_evolution,
    attention_specialization,
    circuit_complexity,
    cross_dataset,
    data_and_model,
    explorers,
    interventions,
    over_training,
    performance,
    readings,
    robustness,
    scorecard,
    temporal_dynamics,
)
from circuitnb.core.errors import UserError
from circuitnb.hooking import hooks, sites
from circuitnb.modeling import user_model

ROOT = Path(__file__).resolve().parents[1]

# Configurations the book never trains (its UNet: attention only in the last encoder / first decoder block,
# 8 heads, 3 channels, no mid-block attention), each with the heads each attention layer must have.
CONFIGS = {
    # 2 blocks, attention only at the low resolution, 2 heads of size 8; the scheduler config beside config.json.
    "low_res_2_heads": (dict(
        sample_size=16, block_out_channels=(8, 16), layers_per_block=1, norm_num_groups=4, attention_head_dim=8,
        down_block_types=("DownBlock2D", "AttnDownBlock2D"), up_block_types=("AttnUpBlock2D", "UpBlock2D"),
        add_attention=False), "beside", {"down1.attn0": 2, "up0.attn0": 2, "up0.attn1": 2}),
    # 3 blocks, attention at the middle resolution and in the mid block, heads of size 4 (4 and 6 heads);
    # the scheduler in scheduler/.
    "three_blocks_mid_attention": (dict(
        sample_size=16, block_out_channels=(8, 16, 24), layers_per_block=2, norm_num_groups=4, attention_head_dim=4,
        down_block_types=("DownBlock2D", "AttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "AttnUpBlock2D", "UpBlock2D"), add_attention=True), "subfolder",
        {"down1.attn0": 4, "down1.attn1": 4, "mid.attn0": 6, "up1.attn0": 4, "up1.attn1": 4, "up1.attn2": 4}),
    # 8 px, 1 channel, attention at both resolutions with 4 and 8 heads; a pipeline folder (unet/, scheduler/).
    "grey_8px_two_resolutions": (dict(
        sample_size=8, in_channels=1, out_channels=1, block_out_channels=(8, 16), layers_per_block=1,
        norm_num_groups=4, attention_head_dim=2, down_block_types=("AttnDownBlock2D", "AttnDownBlock2D"),
        up_block_types=("AttnUpBlock2D", "AttnUpBlock2D"), add_attention=False), "pipeline",
        {"down0.attn0": 4, "down1.attn0": 8, "up0.attn0": 8, "up0.attn1": 8, "up1.attn0": 4, "up1.attn1": 4}),
    # No mid block, resnet down/upsamplers, attention_head_dim None (one head per layer, as google/ddpm-*).
    "no_mid_block_one_head": (dict(
        sample_size=16, block_out_channels=(8, 16), layers_per_block=1, norm_num_groups=4, attention_head_dim=None,
        mid_block_type=None, down_block_types=("ResnetDownsampleBlock2D", "AttnDownBlock2D"),
        up_block_types=("AttnUpBlock2D", "ResnetUpsampleBlock2D")), "none", {"down1.attn0": 1, "up0.attn0": 1,
                                                                             "up0.attn1": 1}),
}
FAST = dict(device="cpu", timesteps=[100, 600], head_t=100, n_samples=6, n_intervention_samples=4, n_bootstrap=100,
            n_permutations=100, n_phase_timesteps=6)


def save(root: Path, name: str, seed: int = 0) -> Path:
    """``name``'s UNet (random weights, perturbed so every site matters) in its layout under ``root``."""
    config, layout, _ = CONFIGS[name]
    torch.manual_seed(seed)
    unet = UNet2DModel(**config)
    with torch.no_grad():
        for p in unet.parameters():
            p.add_(0.05 * torch.randn_like(p))
    folder = root / name
    scheduler = DDPMScheduler(beta_schedule="squaredcos_cap_v2", clip_sample=True)
    if layout == "pipeline":
        unet.save_pretrained(folder / "unet")
        scheduler.save_pretrained(folder / "scheduler")
        (folder / "model_index.json").write_text(json.dumps({"_class_name": "DDPMPipeline",
                                                             "unet": ["diffusers", "UNet2DModel"],
                                                             "scheduler": ["diffusers", "DDPMScheduler"]}))
    else:
        unet.save_pretrained(folder)
        if layout != "none":
            scheduler.save_pretrained(folder if layout == "beside" else folder / "scheduler")
    return folder


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("models")
    return {name: save(root, name) for name in CONFIGS}


@pytest.fixture(scope="module")
def own_images(tmp_path_factory) -> Path:
    """Eight RGB images of odd sizes, and first in name order a file that is not an image."""
    folder = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    for i in range(8):
        Image.fromarray((rng.random((20 + i, 30, 3)) * 255).astype(np.uint8)).save(folder / f"{i:02d}.png")
    (folder / "00_notes.jpg").write_bytes(b"not a jpeg")
    return folder


@pytest.fixture(scope="module")
def module_cache(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CIRCUITNB_CACHE", str(tmp_path_factory.mktemp("cache")))
        yield


@pytest.mark.parametrize("name", list(CONFIGS))
def test_every_layout_loads_with_its_heads_and_shapes(saved, name):
    config, _, heads = CONFIGS[name]
    unet, scheduler = user_model.load_user_model(saved[name])
    assert not unet.training and user_model.image_shape(saved[name]) == (config["sample_size"],
                                                                           config.get("in_channels", 3))
    assert scheduler.config.beta_schedule == ("linear" if CONFIGS[name][1] == "none" else "squaredcos_cap_v2")
    table = sites.site_table(unet)
    assert {s: table[f"{s}.probs"].shape[0] for s in sites.site_names(unet, "attn")} == heads
    for layer, n in heads.items():                   # one .h{k} site per head, [tokens, head_dim] each
        assert [table[f"{layer}.h{k}"].index for k in range(n)] == list(range(n))
    hooks.check_shapes(unet)                          # a forward pass confirms every tabled shape
    assert user_model.model_key(saved[name]).startswith("yours-")


def _cfg(folder, **extra):
    return C.load("smoke", model_dir=str(folder), **{**FAST, **extra})


def _finite(frame: pd.DataFrame, columns) -> bool:
    return bool(np.isfinite(frame[list(columns)].to_numpy(float)).all())


def test_model_chapters_run_on_a_three_block_model_with_mid_attention(saved, module_cache, celeba_root):
    cfg = _cfg(saved["three_blocks_mid_attention"])
    heads = CONFIGS["three_blocks_mid_attention"][2]
    res = {m.CHAPTER: m.run(cfg) for m in (
        data_and_model, performance, circuit_complexity, attention_specialization, temporal_dynamics, interventions,
        attention_evolution, explorers)}
    assert not any(r.skipped for r in res.values())
    model = res["01_data_and_model"]
    arch = model.tables["architecture"].set_index("layer")
    assert model.tables["model"].n_parameters.iloc[0] > 0 and sorted(arch.heads) == sorted(heads.values())
    assert arch.heads["mid_block.attentions.0"] == 6 and arch.tokens["mid_block.attentions.0"] == 16   # 4x4
    assert set(arch.tokens) == {64, 16}                                                                # and 8x8
    for chapter, table, cols in (("01_data_and_model", "noise_mse", ["mean", "ci_low", "ci_high"]),
                                 ("02_performance", "accuracy", ["mean", "ci_low", "ci_high"]),
                                 ("03_circuit_complexity", "levels", ["mean", "ci_low", "ci_high"])):
        frame = res[chapter].tables[table]
        assert list(frame.t) == [100, 600] and _finite(frame, cols) and (frame.n_images == 6).all(), chapter
    h = res["04_attention_specialization"].tables["heads"]
    assert h.groupby("layer", sort=False).size().to_dict() == heads
    assert _finite(h, ["entropy", "entropy_ci_low", "specialization", "importance"]) and h.function.notna().all()
    assert h.groupby("layer").n_keys.first().to_dict() == {layer: 16 if layer == "mid.attn0" else 64 for layer in heads}
    ife = res["05_temporal_dynamics"].tables["ife_ranges"]
    assert set(ife.group) == {"early", "middle", "late"} and _finite(ife, ["low", "high"])
    t3 = res["06_interventions"].tables["table3"]
    assert set(t3.group) == {"enc_early", "enc_middle", "enc_late", "middle", "dec_early", "dec_middle",
                             "dec_late"} and _finite(t3, ["impact", "ci_low", "ci_high"])
    sizes = res["06_interventions"].tables["circuit_size"].set_index("components")
    assert sizes.n_components["heads"] == sum(heads.values())
    evo = res["08_attention_evolution"].tables["attention_by_t"]
    assert len(evo) == 2 * sum(heads.values()) and _finite(evo, ["entropy", "entropy_norm", "specialization"])
    assert (evo.entropy <= np.log2(evo.n_keys) + 1e-6).all()
    ex = res["11_explorers"]
    assert ex.data["attention"].data["layers"] == ["down1.attn0", "down1.attn1", "up1.attn0", "up1.attn1",
                                                   "up1.attn2"]                  # one grid: the mid block's left out
    assert "mid.attn0" in ex.notes["layers"]
    for r in res.values():                           # each left-out table is named with its reason, in one line
        assert all("\n" not in line for line in r.notes.values())


def test_chapters_on_a_grey_8px_model_with_two_resolutions_and_own_images(saved, module_cache, own_images):
    cfg = _cfg(saved["grey_8px_two_resolutions"], images_dir=str(own_images))
    with pytest.warns(UserWarning, match="00_notes.jpg"):
        x0 = yours.heldout_images(cfg, "yours")
    assert x0.shape == (6, 1, 8, 8) and "greyscale" in yours.image_note(cfg)
    heads = CONFIGS["grey_8px_two_resolutions"][2]
    h = attention_specialization.run(cfg).tables["heads"]
    assert h.groupby("layer", sort=False).size().to_dict() == heads and set(h.n_keys) == {64, 16}
    assert (h.dataset == "yours").all() and _finite(h, ["entropy", "entropy_norm", "importance"])
    assert (h.entropy_norm <= 1 + 1e-6).all()
    levels = circuit_complexity.run(cfg).tables["levels"]
    assert _finite(levels, ["mean"]) and (levels.n_heads == sum(heads.values())).all()
    ph = readings.run(cfg).tables["phases"]
    assert len(ph) == 1 and ph.n_timesteps.iloc[0] == 6


def test_chapters_on_a_model_without_mid_block(saved, module_cache, celeba_root):
    cfg = _cfg(saved["no_mid_block_one_head"])
    res = interventions.run(cfg)
    assert "cut_mid" not in set(res.tables["interventions"].name)       # nothing to cut
    assert "middle" not in set(res.tables["table3"].group)
    assert _finite(res.tables["interventions"], ["impact"])
    assert len(temporal_dynamics.run(cfg).tables["phases"]) == 1


@pytest.mark.parametrize("module", [cross_dataset, robustness, scorecard, over_training])
def test_chapters_that_need_two_datasets_or_replicates_say_why_in_one_line(saved, module_cache, celeba_root,
                                                                           module):
    res = module.run(_cfg(saved["low_res_2_heads"]))
    assert res.skipped == yours.SKIPPED[res.chapter] and "\n" not in res.skipped
    assert res.skipped.startswith("skipped on your model: ") and not res.tables


def _one_line(fn) -> str:
    with pytest.raises(UserError) as err:
        fn()
    assert "\n" not in str(err.value)
    return str(err.value)


def test_bad_folders_give_one_line(saved, tmp_path):
    good = saved["low_res_2_heads"]
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "no config.json" in _one_line(lambda: user_model.load_user_model(empty))
    assert "not a folder" in _one_line(lambda: user_model.load_user_model(tmp_path / "missing"))
    wrong = tmp_path / "wrong"
    shutil.copytree(good, wrong)
    config = json.loads((wrong / "config.json").read_text())
    (wrong / "config.json").write_text(json.dumps({**config, "_class_name": "UNet2DConditionModel"}))
    assert "UNet2DConditionModel" in _one_line(lambda: user_model.load_user_model(wrong))
    wider = tmp_path / "wider"                         # weights of another width than config.json says
    shutil.copytree(good, wider)
    UNet2DModel(**{**CONFIGS["low_res_2_heads"][0], "block_out_channels": (8, 24)}).save_pretrained(tmp_path / "w")
    shutil.copy(tmp_path / "w" / "diffusion_pytorch_model.safetensors", wider)
    msg = _one_line(lambda: user_model.load_user_model(wider))
    assert "diffusion_pytorch_model.safetensors: weights do not match config.json" in msg and "mismatch" in msg
    partial = tmp_path / "partial"                    # a parameter missing: diffusers would only warn
    shutil.copytree(good, partial)
    from safetensors.torch import load_file, save_file
    weights = partial / "diffusion_pytorch_model.safetensors"
    save_file({k: v for k, v in load_file(weights).items() if k != "conv_out.weight"}, weights)
    assert "missing, e.g. conv_out.weight" in _one_line(lambda: user_model.load_user_model(partial))
    bare = tmp_path / "bare"
    bare.mkdir()
    shutil.copy(good / "config.json", bare)
    assert "no weights" in _one_line(lambda: user_model.load_user_model(bare))
    sample = tmp_path / "sample"                     # a v-prediction schedule: the output is not eps
    shutil.copytree(good, sample)
    sched = json.loads((sample / "scheduler_config.json").read_text())
    (sample / "scheduler_config.json").write_text(json.dumps({**sched, "prediction_type": "v_prediction"}))
    assert "prediction_type" in _one_line(lambda: user_model.load_user_model(sample))
    assert "'model_dir'" in _one_line(lambda: C.load("smoke", model_dir=str(tmp_path / "missing")))
    assert "'images_dir'" in _one_line(lambda: C.load("smoke", images_dir=str(tmp_path)))


def test_command_line_names_a_bad_model_folder_in_one_line(tmp_path, capsys, module_cache):
    from circuitnb.cli import main
    (tmp_path / "config.json").write_text(json.dumps({"_class_name": "VQModel"}))
    assert main(["book", "--profile", "smoke", "-p", "model_dir", str(tmp_path), "--root", str(ROOT)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "VQModel" in err and "UNet2DModel" in err


def test_the_page_template_runs_a_chapter_with_papermill(saved, module_cache, celeba_root, tmp_path, monkeypatch):
    import jupytext
    import nbformat

    from circuitnb.publish import yours as pages
    from circuitnb.publish.book import run_notebook
    template = ROOT / pages.TEMPLATE
    assert [c.source for c in jupytext.read(template.with_suffix(".md")).cells] == [
        c.source for c in nbformat.read(template, as_version=4).cells]          # the jupytext pair agrees
    monkeypatch.setenv("CIRCUITNB_TABLES", str(tmp_path / "tables"))
    params = dict(profile="smoke", chapter="03_circuit_complexity", model_dir=str(saved["low_res_2_heads"]),
                  timesteps=[100, 600], n_samples=6, device="cpu")
    out = run_notebook(template, params, output=tmp_path / "page.ipynb", progress=False)
    levels = pd.read_csv(tmp_path / "tables" / "03_circuit_complexity" / "levels.csv")
    assert list(levels.t) == [100, 600] and np.isfinite(levels["mean"]).all() and (levels.n_heads == 6).all()
    text = out.read_text()
    assert "CelebA-vs-synthetic ratios" in text              # the left-out table and why
    pages._retitle(out, pages._title(ROOT, "03_circuit_complexity"))
    assert nbformat.read(str(out), as_version=4).cells[0].source.startswith("# 3. Circuit complexity: your model")
    index = pages.index_page(C.load("smoke", model_dir=str(saved["low_res_2_heads"]), device="cpu",
                                    timesteps=[100, 600], n_samples=6), ["03_circuit_complexity", "07_cross_dataset"],
                             {"03_circuit_complexity": "3. Circuit complexity", "07_cross_dataset": "7. Cross"})
    assert "| 3. Circuit complexity | runs on your model |" in index and yours.SKIPPED["07_cross_dataset"] in index
