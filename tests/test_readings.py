"""Readings of the paper's undefined quantities: each reading or estimator against a known answer."""
import numpy as np
import pandas as pd
import pytest
import torch

from circuitnb.analysis import phases
from circuitnb.core.readings import READINGS, options, readings_table
from circuitnb.interventions.impact import apply
from circuitnb.interventions.registry import Intervention
from circuitnb.measures import head_functions, metrics, quantities

from conftest import random_unet


def test_every_quantity_has_a_default_among_its_readings():
    table = readings_table()
    assert (table.groupby("quantity").default.sum() == 1).all()
    assert len(READINGS) >= 7 and all(len(r.options) >= 2 for r in READINGS.values())
    assert options("ablation")[0] == "zero" and set(options("ablation")) == {"zero", "mean", "bypass"}


def _forward_with(unet, x_t, tt, edits):
    """unet(x_t, tt) with bare torch forward hooks: module path -> f(module, input) replacing the output."""
    modules = dict(unet.named_modules())
    handles = [modules[p].register_forward_hook(lambda m, args, out, f=f: f(m, args[0]))
               for p, f in edits.items()]
    try:
        with torch.no_grad():
            return unet(x_t, tt).sample
    finally:
        for h in handles:
            h.remove()


def _shortcut(m, x):
    return (x if m.conv_shortcut is None else m.conv_shortcut(x)) / m.output_scale_factor


def _branch_paths(unet, block: str) -> dict:
    """Each resnet / attention module of one block (e.g. "up_blocks.0") -> its shortcut path, by hand."""
    out = {}
    for name, m in unet.named_modules():
        if name.startswith(block + ".resnets.") and name.count(".") == 3:
            out[name] = _shortcut
        elif name.startswith(block + ".attentions.") and name.count(".") == 3:
            out[name] = lambda m, x: x / m.rescale_output_factor
    return out


@pytest.mark.parametrize("site,block", [("down1.res0", None), ("up0", "up_blocks.0"),
                                        ("dec_late", "up_blocks.2"), ("enc_middle", "down_blocks.1")])
def test_bypass_keeps_only_the_shortcut_path(site, block):
    unet = random_unet(0)
    paths = {"down_blocks.1.resnets.0": _shortcut} if block is None else _branch_paths(unet, block)
    x_t = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    tt = torch.full((2,), 300)
    expected = _forward_with(unet, x_t, tt, paths)
    got = apply(unet, [Intervention("bypass", site)], x_t, tt)
    assert torch.allclose(got, expected, atol=1e-5)
    assert not torch.allclose(got, apply(unet, [], x_t, tt), atol=1e-3)       # the bypass changed something


def test_bypass_of_an_attention_layer_returns_its_input():
    from circuitnb.hooking.sites import site_names, site_table
    unet = random_unet(0)
    layer = site_names(unet, "attn")[0]
    x_t = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(2))
    tt = torch.full((2,), 300)
    expected = _forward_with(unet, x_t, tt, {site_table(unet)[layer].path: lambda m, x: x / m.rescale_output_factor})
    assert torch.allclose(apply(unet, [Intervention("bypass", layer)], x_t, tt), expected, atol=1e-5)


def test_hungarian_matching_recovers_a_planted_permutation():
    rng = np.random.default_rng(0)
    a = rng.random((8, 64))
    perm = rng.permutation(8)
    b = a[perm] + 0.01 * rng.standard_normal((8, 64))          # head i of b is head perm[i] of a
    match = quantities.match_heads(a, b)                         # head i of a -> head match[i] of b
    assert (perm[match] == np.arange(8)).all()
    assert (quantities.match_heads(a, a) == np.arange(8)).all()


def test_normalised_entropy_of_uniform_attention_is_one():
    for k in (64, 256):
        p = torch.full((1, 2, 4, k), 1.0 / k)
        bits = metrics.attention_entropy(p).numpy()
        assert np.allclose(bits, np.log2(k)) and np.allclose(metrics.normalised_entropy(bits, k), 1.0)


def test_global_rule_accepts_a_head_at_the_papers_level_only_under_the_lower_threshold():
    rng = np.random.default_rng(0)
    u = np.clip(0.85 + 0.01 * rng.standard_normal((30, 1)), 0, 1)      # a head near the paper's 1 - S
    assert head_functions.global_p(u[:, 0], head_functions.GLOBAL_THRESHOLDS["h080"]) < 1e-6
    assert head_functions.global_p(u[:, 0], head_functions.GLOBAL_THRESHOLDS["h090"]) > 0.5
    table = pd.DataFrame(dict(head=["h"], function=["global structure"], score=[u.mean()], p=[1.0]))
    for name, accepted in (("h080", True), ("h090", False)):
        out = head_functions.with_global_threshold(table, u, head_functions.GLOBAL_THRESHOLDS[name])
        assert bool(out.significant.iloc[0]) is accepted


def _profile(values: np.ndarray) -> pd.DataFrame:
    t = np.linspace(0, 999, len(values)).round().astype(int)
    return pd.DataFrame(values, index=pd.Index(t, name="t"))


def test_phase_test_says_no_phases_for_a_smooth_profile_and_finds_three_steps():
    rng = np.random.default_rng(0)
    x = np.linspace(-1, 1, 20)
    smooth = _profile(np.c_[x ** 2, 0.5 * x ** 2 - x] + 0.01 * rng.standard_normal((20, 2)))
    assert phases.phase_test(smooth)["verdict"] == "no phases"
    steps = np.repeat([0.0, 1.0, -1.0], [7, 6, 7])
    stepped = _profile(np.c_[steps, -steps] + 0.05 * rng.standard_normal((20, 2)))
    out = phases.phase_test(stepped)
    assert out["verdict"] == "3 phases" and out["phases"] == 3 and not out["smooth_wins"]


def test_head_energy_after_an_identity_output_projection_is_the_share_of_the_width():
    import circuitnb.core.config as C
    from circuitnb.analysis.head_energies import head_energies
    from circuitnb.modeling.unet import build_scheduler
    unet = random_unet(0)
    for m in unet.modules():
        if type(m).__name__ == "Attention":
            with torch.no_grad():
                m.to_out[0].weight.copy_(torch.eye(*m.to_out[0].weight.shape))
            heads, width = m.heads, m.to_out[0].weight.shape[0]
    x0 = torch.rand(3, 3, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1
    e = head_energies(unet, build_scheduler(C.load("smoke")), x0, [100, 600])
    assert len(e) == 2 * 3 * len(e["head"].unique()) and (e.before > 0).all()
    # head k's contribution W_k h_k fills 1 / heads of the width with h_k and leaves the rest 0
    assert np.allclose(e.after, e.before * (width // heads) / width, rtol=1e-5)


def test_a_verdict_that_differs_between_readings_is_flagged():
    from circuitnb.analysis.readings import flips, judged
    from circuitnb.measures.verdicts import Estimate, measured_row
    near, far = Estimate(1.22, 1.21, 1.23, 3, more=((0.9, 1.215, 1.225),)), Estimate(0.1, 0.05, 0.15, 3,
                                                                                       more=((0.9, 0.06, 0.14),))
    a = judged([measured_row("abl_dec_late", near), measured_row("abl_middle", far)], "ablation", "zero")
    b = judged([measured_row("abl_dec_late", far), measured_row("abl_middle", far)], "ablation", "bypass")
    table = flips(pd.concat([a, b], ignore_index=True)).set_index(["id", "reading"])
    assert table.verdict[("abl_dec_late", "zero")] == "reproduced"
    assert table.verdict[("abl_dec_late", "bypass")] == "contradicted"
    assert table.flips[("abl_dec_late", "zero")] and not table.flips[("abl_middle", "zero")]
    assert table["default"][("abl_dec_late", "zero")] and not table["default"][("abl_dec_late", "bypass")]


def test_every_undefined_quantity_is_in_the_sensitivity_registry():
    # Chapter 12 and the scorecard read the sensitivity table, built by looping over this registry.
    from circuitnb.analysis.readings import BY_QUANTITY, NO_ROWS
    assert set(BY_QUANTITY) | set(NO_ROWS) == set(READINGS) and not set(BY_QUANTITY) & set(NO_ROWS)


def test_segmentation_alone_overfits_smooth_profiles_and_the_phase_test_does_not():
    # The finding: BIC segmentation picks (nearly) the cap on smooth profiles; against a cubic fit
    # the same profiles read "no phases".
    rng = np.random.default_rng(1)
    x = np.linspace(-1, 1, 20)
    k, verdicts = [], []
    for _ in range(20):
        prof = _profile(np.c_[[np.polyval(rng.normal(size=3), x) + 0.05 * rng.standard_normal(20)
                               for _ in range(8)]].T)
        seg = phases.phases(prof)
        k.append(int(seg[seg.chosen].k.iloc[0]))
        verdicts.append(phases.phase_test(prof)["verdict"])
    assert min(k) >= 5 and verdicts == ["no phases"] * 20


# --- the config's readings choose the scorecard's rows ---------------------------------------------
def test_readings_config_field_is_validated_and_chosen():
    import circuitnb.core.config as C
    from circuitnb.core.readings import chosen
    cfg = C.load("smoke", readings=["ife=knn"])
    assert chosen(cfg)["ife"] == "knn" and chosen(cfg)["ablation"] == READINGS["ablation"].default
    assert chosen(C.load("smoke", readings="['ablation=bypass']"))["ablation"] == "bypass"   # papermill's string
    for bad in (["ife=nearest"], ["colour=red"], ["ife"]):
        with pytest.raises(C.ConfigError, match="'readings'"):
            C.load("smoke", readings=bad)


def test_scorecard_shows_the_chosen_readings_row():
    from circuitnb.chapters.diffusion.scorecard import with_readings
    card = pd.DataFrame(dict(id=["a", "b"], ours=[1.0, 2.0], ci_low=[0.9, 1.9], ci_high=[1.1, 2.1],
                             verdict=["reproduced", "contradicted"], reason=["r1", "r2"],
                             verdict_r0=["reproduced", "contradicted"], replicates_disagree=[True, False]))
    sens = pd.DataFrame(dict(id=["a", "a", "b"], undefined=["ife", "ife", "ablation"],
                             reading=["binned", "knn", "mean"], ours=[1.0, 5.0, 7.0], ci_low=[0.9, 4.0, 6.0],
                             ci_high=[1.1, 6.0, 8.0], verdict=["reproduced", "contradicted", "inconclusive"],
                             reason=["x", "y", "z"]))
    picked = {q: r.default for q, r in READINGS.items()} | {"ife": "knn"}
    out = with_readings(card, sens, picked)
    a, b = out.set_index("id").loc["a"], out.set_index("id").loc["b"]
    assert (a.ours, a.ci_low, a.ci_high, a.verdict, a.reading) == (5.0, 4.0, 6.0, "contradicted", "ife=knn")
    assert a.reason == "reading ife=knn: y" and pd.isna(a.verdict_r0) and not a.replicates_disagree
    assert (b.ours, b.verdict, b.reading, b.verdict_r0) == (2.0, "contradicted", "", "contradicted")  # default kept
    assert with_readings(card, sens, {q: r.default for q, r in READINGS.items()}).drop(columns="reading").equals(card)
