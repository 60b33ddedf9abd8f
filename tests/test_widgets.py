"""The live playground (kernel side) and the static explorers' data."""
import time

import numpy as np
import pytest
import torch

import circuitnb.core.config as C
from circuitnb.analysis.interventions import intervention_sweep
from circuitnb.chapters import common
from circuitnb.chapters.diffusion import explorers
from circuitnb.core import config
from circuitnb.hooking import hooks
from circuitnb.interventions import registry
from circuitnb.interventions.impact import apply, impact
from circuitnb.interventions.registry import KINDS, Intervention
from circuitnb.modeling.train import TrainedModel
from circuitnb.modeling.unet import build_scheduler
from circuitnb.viz import widgets

from conftest import random_unet


@pytest.fixture(scope="module")
def playground():
    cfg = C.load("smoke", block_out_channels=(16, 32, 32), device="cpu")
    models = {}
    for k, name in enumerate(("synthetic", "celeba")):
        u = random_unet(k)
        models[name] = TrainedModel(unet=u, scheduler=build_scheduler(cfg), meta={"key": name}, from_cache=False)
    rng = np.random.default_rng(0)
    images = {n: rng.uniform(-1, 1, (6, 3, 16, 16)).astype(np.float32) for n in models}
    return widgets.Playground(cfg, models, images, reference_size=4)


def _direct(pg, iv):
    m = pg.models[pg.model.value]
    imgs = pg.images[pg.model.value]
    ref = imgs[: pg.reference_size] if iv.kind == "mean" else None
    return impact(m.unet, m.scheduler, imgs[pg.image.value: pg.image.value + 1], pg.t.value, [iv], seed=pg.seed,
                  reference_x0=ref)


@pytest.mark.parametrize("controls, expected", [
    (dict(kind="zero", site="enc_middle"), Intervention("zero", "enc_middle")),
    (dict(kind="mean", site="middle"), Intervention("mean", "middle")),
    (dict(kind="scale", site="up1", strength=1.5), Intervention("scale", "up1", 1.5)),
    (dict(kind="temperature", site="up0.attn1", head=3, strength=0.25),
     Intervention("temperature", "up0.attn1", 0.25, head=3)),
    (dict(kind="head_ablate", site="down2.attn0", head=5), Intervention("head_ablate", "down2.attn0", head=5)),
    (dict(kind="cut_skip", site="up2"), Intervention("cut_skip", "up2")),
    (dict(kind="cut_mid", site="enc_early"), Intervention("cut_mid", "mid")),      # its registered fixed site
])
def test_controls_drive_the_model_and_match_a_direct_call(playground, controls, expected):
    pg = playground
    pg.model.value, pg.image.value, pg.t.value = "celeba", 2, 450
    pg.head.value, pg.strength.value = -1, 0.5
    before = (pg.views["x0_hat"].value, pg.result["impact"])
    for name in ("site", "head", "strength", "kind"):
        if name in controls:
            getattr(pg, name).value = controls[name]
    iv = pg.intervention()
    assert (iv.kind, iv.site, iv.strength, iv.head) == (expected.kind, expected.site, expected.strength, expected.head)
    direct = _direct(pg, iv)
    assert pg.result["mse_base"] == pytest.approx(direct.mse_base, rel=1e-5)
    assert pg.result["mse_int"] == pytest.approx(direct.mse_int, rel=1e-5)
    assert pg.result["impact"] == pytest.approx(direct.impact, rel=1e-4, abs=1e-7)
    assert (pg.views["x0_hat"].value, pg.result["impact"]) != before       # the views changed
    assert "impact" in pg.status.value and bytes(pg.views["x_t"].value)[:4] == b"\x89PNG"


def test_every_control_updates_the_view(playground):
    pg = playground
    pg.kind.value, pg.site.value, pg.strength.value = "scale", "mid", 0.5
    for control, value in ((pg.model, "synthetic"), (pg.image, 4), (pg.t, 700), (pg.strength, 2.0)):
        before = pg.views["x0_hat"].value
        control.value = value
        assert pg.views["x0_hat"].value != before, control.description
    assert pg.widget.children                               # builds the layout


def test_one_live_update_is_fast(playground):
    pg = playground
    start = time.perf_counter()
    pg.t.value = 123
    elapsed = time.perf_counter() - start
    assert elapsed < 5.0                                     # generous; the benchmark prints the real latency


def test_explorer_html_is_self_contained(tiny_cfg, celeba_root, monkeypatch):
    monkeypatch.setenv("CIRCUITNB_CELEBA", str(celeba_root))
    cfg = config.with_overrides(tiny_cfg, n_samples=6, n_bootstrap=100, timesteps=[100, 600])
    every_model, every_sweep = common.models_and_sweeps(cfg)
    models = {name: ms[0] for name, ms in every_model.items()}          # the explorers show replicate 0
    sweeps = {name: sw[0] for name, sw in every_sweep.items()}
    att = explorers.attention_explorer(cfg, sweeps, query_stride=1)
    assert att.data["maps"] and len(att.data["queries"]) == att.data["grid"] ** 2
    html = att.to_html()
    assert "https://" not in html and "http://" not in html          # nothing to fetch from anywhere
    assert html.count('<script type="application/json">') == 1 and att.nbytes == len(html.encode())
    iv = explorers.intervention_explorer(cfg, models)
    # The explorer's predicted images belong to chapter 6's numbers: same per-image MSE for image 0.
    ivs = intervention_sweep(cfg, models)
    grid = explorers._intervention_grid(cfg, models["synthetic"], "synthetic", 0)
    for name in ("zero enc_middle", "mean middle", "noise 1.0 up0.attn0", "cut_skip up1"):
        row = ivs[(ivs.dataset == "synthetic") & (ivs.t == 600) & (ivs.name == name) & (ivs.image == 0)]
        assert grid[(600, name)]["mse"] == pytest.approx(float(row.mse_int.iloc[0]), rel=1e-4), name
    assert len(iv.data["pred"]) == 2 * 2 * len(iv.data["entries"])
    assert list(iv.data["kinds"]) == list(KINDS) and {e["kind"] for e in iv.data["entries"]} <= set(KINDS)
    scrub = explorers.denoising_scrubber(cfg, models, steps=5)
    assert len(scrub.data["steps"]) == 5 and len(scrub.data["x"]["celeba"]) == 5


def test_one_uint8_conversion():
    from circuitnb.viz.plotting import to_uint8
    x = np.stack([np.full((2, 3), v) for v in (-1.5, 0.0, 1.0)])           # [3, H, W], one value per channel
    assert to_uint8(x).shape == (2, 3, 3) and to_uint8(x)[0, 0].tolist() == [0, 128, 255]
    assert to_uint8(np.stack([x, -x])).shape == (2, 2, 3, 3)              # [N, 3, H, W] -> [N, H, W, 3]


def test_a_registered_toy_kind_shows_up_everywhere(playground):
    @registry.register("negate", family="scaling", params={"strength": (0.5, 2.0, 1.0)},
                       doc="x -> -strength * x")
    def negate(x, ctx, iv):
        return -iv.strength * x
    try:
        # validation
        assert "negate" in KINDS and "negate" in registry.kinds("scaling")
        with pytest.raises(ValueError, match="'negate' needs a 'strength'"):
            Intervention("negate", "mid")
        with pytest.raises(ValueError, match=r"'strength' of 'negate' = 3.0; allowed: \[0.5, 2\]"):
            Intervention("negate", "mid", 3.0)
        # apply: the same as the hand-written edit
        unet = playground.models["synthetic"].unet
        x, t = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(0)), torch.tensor([50, 700])
        with torch.no_grad(), hooks.edit(unet, {"mid": lambda x, ctx: -1.5 * x}):
            by_hand = unet(x, t).sample
        assert torch.equal(apply(unet, [Intervention("negate", "mid", 1.5)], x, t), by_hand)
        # the playground: offered, its slider takes the registered range, and it runs
        pg = widgets.Playground(playground.cfg, playground.models, playground.images, reference_size=4)
        assert "negate" in pg.kind.options
        pg.site.value, pg.strength.value = "mid", 3.5
        pg.kind.value = "negate"
        assert (pg.strength.min, pg.strength.max, pg.strength.value) == (0.5, 2.0, 2.0)
        assert pg.intervention() == Intervention("negate", "mid", 2.0, seed=pg.seed)
        assert pg.result["intervention"].kind == "negate" and "x -> -strength * x" in pg.about.value
        # the explorers' legend and the table of kinds
        assert explorers.kind_legend()["negate"] == "scaling: x -> -strength * x"
        row = registry.kinds_table().set_index("name").loc["negate"]
        assert row.family == "scaling" and row.params == "strength in [0.5, 2]"
    finally:
        registry.unregister("negate")
    assert "negate" not in KINDS and "negate" not in widgets.playground_kinds()
