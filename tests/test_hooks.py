import dataclasses
import math

import pytest
import torch
from diffusers import UNet2DModel
from diffusers.models.attention_processor import AttnProcessor

import circuitnb.core.config as C
from circuitnb.hooking import hooks, sites
from circuitnb.hooking.attention import HookedAttnProcessor, attention_modules
from circuitnb.hooking.hooks import HookContext, activation_stats, attach, edit, entropy_bits, record
from circuitnb.interventions.impact import apply, impact, patch_from
from circuitnb.interventions.registry import Intervention
from circuitnb.measures import metrics
from circuitnb.modeling.unet import build_scheduler, build_unet

from conftest import random_unet


@pytest.fixture(scope="module")
def unet():
    return random_unet(0)


@pytest.fixture(scope="module")
def batch():
    g = torch.Generator().manual_seed(1)
    return torch.randn(3, 3, 16, 16, generator=g), torch.tensor([10, 300, 900])


def no_hooks_left(unet):
    return all(not m._forward_hooks and not m._forward_pre_hooks for m in unet.modules()) and \
        not any(isinstance(a.get_processor(), HookedAttnProcessor) for a in attention_modules(unet).values())


ALL = lambda u: [n for n, s in sites.site_table(u).items() if s.kind != "head"]  # noqa: E731


@torch.no_grad()
def test_recording_does_not_change_output(unet, batch):
    x, t = batch
    base = unet(x, t).sample                                 # fused default processor
    with record(unet, ALL(unet) + ["down2.attn0.h3"], reduce={"up0.attn0.probs": entropy_bits}) as rec:
        out = unet(x, t).sample
    assert (out - base).abs().max() < 1e-5
    assert rec["down2.attn0.probs"].shape == (3, 8, 16, 16) and rec["up0.attn0.probs"].shape == (3, 8)
    originals = {p: m.get_processor() for p, m in attention_modules(unet).items()}
    try:
        for m in attention_modules(unet).values():
            m.set_processor(AttnProcessor())
        classic = unet(x, t).sample
        with record(unet, ALL(unet)):
            assert torch.equal(unet(x, t).sample, classic)       # bit for bit against the classic processor
    finally:
        for p, m in attention_modules(unet).items():
            m.set_processor(originals[p])
    assert no_hooks_left(unet)


def test_probs_are_distributions_and_match_sites(unet, batch):
    x, t = batch
    with torch.no_grad(), record(unet, ["up0.attn1.probs", "skip5", "down2"]) as rec:
        unet(x, t)
    p = rec["up0.attn1.probs"]
    assert torch.allclose(p.sum(-1), torch.ones(3, 8, 16), atol=1e-5) and (p >= 0).all()
    table = sites.site_table(unet)
    assert tuple(rec["skip5"].shape[1:]) == table["skip5"].shape
    assert torch.equal(rec["skip5"], rec["down2"])            # the last skip is the last encoder output


def test_hooks_removed_after_exception(unet, batch):
    x, t = batch
    with pytest.raises(RuntimeError, match="boom"):
        with record(unet, ALL(unet)), edit(unet, {"mid": lambda x, ctx: x, "up0.attn0.h1": lambda x, ctx: x}):
            raise RuntimeError("boom")
    assert no_hooks_left(unet)

    def bad(x, ctx):
        raise RuntimeError("boom inside the forward pass")
    with pytest.raises(RuntimeError, match="inside the forward"):
        with edit(unet, {"down2.attn0.probs": bad}), torch.no_grad():
            unet(x, t)
    assert no_hooks_left(unet)


@torch.no_grad()
def test_identity_edits_leave_outputs_unchanged(unet, batch):
    x, t = batch
    names = ["conv_in", "down0", "down1.res0", "mid", "up0", "up0.attn0", "up0.attn0.probs", "up0.attn0.h3",
             "skip0", "skip5", "enc_middle"]
    with record(unet, ["up0.attn0.probs", "up0.attn0.h3"]):    # the same (classic) attention kernel
        base = unet(x, t).sample
    with edit(unet, {n: (lambda x, ctx: x) for n in names}):
        assert torch.equal(unet(x, t).sample, base)
    with edit(unet, {n: (lambda x, ctx: None) for n in names}):   # None also means "leave it"
        assert torch.equal(unet(x, t).sample, base)
    assert no_hooks_left(unet)


@torch.no_grad()
def test_context_names_site_timestep_head_and_batch(unet, batch):
    x, t = batch
    seen = {}

    def look(x, ctx):
        assert isinstance(ctx, HookContext)
        seen[ctx.site] = ctx
    names = ["down2.attn0.probs", "up0.attn1.h5", "mid", "skip2", "enc_middle"]
    with attach(unet, {n: look for n in names}, observe=True):
        unet(x, t)
    assert set(seen) == {"down2.attn0.probs", "up0.attn1.h5", "mid", "skip2", "down1"}   # groups expand
    assert all(torch.equal(c.t, t) and c.batch == 3 for c in seen.values())
    assert seen["up0.attn1.h5"].head == 5 and seen["down2.attn0.probs"].head is None
    assert seen["mid"].inp is not None and seen["mid"].inp.shape == (3, 32, 4, 4)   # what identity ablation uses
    assert seen["skip2"].inp is None and seen["up0.attn1.h5"].inp is None
    with attach(unet, {"mid": look}, observe=True):
        unet(x[:2], 7)                                                    # a plain int timestep
    assert isinstance(seen["mid"].t, torch.Tensor) and int(seen["mid"].t) == 7 and seen["mid"].batch == 2
    with pytest.raises(dataclasses.FrozenInstanceError):
        seen["mid"].site = "down0"                                        # frozen: hooks cannot rewrite it


@torch.no_grad()
def test_edits_can_depend_on_the_timestep(unet, batch):
    x, t = batch
    late = lambda x, ctx: torch.zeros_like(x) if int(ctx.t.max()) > 500 else None   # noqa: E731
    with edit(unet, {"mid": late}):
        early, late_out = unet(x, torch.full((3,), 100)).sample, unet(x, torch.full((3,), 900)).sample
    assert torch.equal(early, unet(x, torch.full((3,), 100)).sample)
    with edit(unet, {"mid": lambda x, ctx: torch.zeros_like(x)}):
        assert torch.equal(late_out, unet(x, torch.full((3,), 900)).sample)


def test_activation_stats_by_hand():
    x = torch.tensor([[0.0, 0.0005, 2.0, -2.0], [1.0, 1.0, 1.0, 1.0]]).view(2, 1, 2, 2)
    s = activation_stats(x)
    f = x.flatten(1)
    assert torch.allclose(s[:, 0], f.mean(1)) and torch.allclose(s[:, 1], f.std(1))
    assert s[:, 2].tolist() == [-2.0, 1.0] and s[:, 3].tolist() == [2.0, 1.0] and s[:, 4].tolist() == [0.5, 0.0]
    big = torch.randn(4, 64, 32, 32) * 3 + 1
    std, mean = torch.std_mean(big.flatten(1), 1)
    assert torch.allclose(activation_stats(big)[:, :2], torch.stack([mean, std], 1), rtol=1e-5)


@pytest.mark.parametrize("site", ["conv_in", "down0", "down1", "down2", "mid", "up0", "up1", "up2",
                                  "down2.attn0", "up0.attn1", "mid.res1", "skip0", "skip3"])
def test_ablating_any_site_changes_output(unet, batch, site):
    x, t = batch
    with torch.no_grad():
        base = unet(x, t).sample
        with edit(unet, {site: lambda x, ctx: torch.zeros_like(x)}):
            out = unet(x, t).sample
    assert (out - base).abs().max() > 1e-4
    assert no_hooks_left(unet)


def test_patching_with_itself_is_identity(unet, batch):
    x, t = batch
    with torch.no_grad():
        with record(unet, ["up0.attn0.probs"]):      # same (classic) attention kernel as the patched run
            base = unet(x, t).sample
        names = ["down1", "mid", "up0.attn0", "skip2", "up0.attn0.probs"]
        source = patch_from(unet, names, x, t)
        out = apply(unet, [Intervention("patch", n, source=source) for n in names], x, t)
    assert torch.equal(out, base)


def test_uniform_attention_has_max_entropy(unet, batch):
    x, t = batch
    spec = [Intervention("uniform", "down2.attn0")]
    with torch.no_grad(), record(unet, ["down2.attn0.probs"], reduce=entropy_bits) as rec:
        apply(unet, spec, x, t)
    assert torch.allclose(rec["down2.attn0.probs"], torch.full((3, 8), math.log2(16)), atol=1e-5)
    assert metrics.max_entropy(16) == 4.0


def test_one_head_perturbations_touch_only_that_head(unet, batch):
    x, t = batch
    for kind, strength in [("temperature", 0.3), ("noise", 2.0), ("shuffle", None), ("uniform", None)]:
        with torch.no_grad(), record(unet, ["up0.attn0.probs"]) as base:
            unet(x, t)
        with torch.no_grad(), record(unet, ["up0.attn0.probs"]) as rec:
            apply(unet, [Intervention(kind, "up0.attn0", strength=strength, head=2)], x, t)
        a, b = base["up0.attn0.probs"], rec["up0.attn0.probs"]
        assert torch.equal(a[:, [0, 1, 3, 4, 5, 6, 7]], b[:, [0, 1, 3, 4, 5, 6, 7]]), kind
        assert not torch.allclose(a[:, 2], b[:, 2]), kind
        assert torch.allclose(b.sum(-1), torch.ones_like(b.sum(-1)), atol=1e-5), kind
    sharp = entropy_bits(torch.softmax(torch.log(a[:, 2:3]) / 0.3, -1))
    assert (sharp < entropy_bits(a[:, 2:3])).all()          # T < 1 sharpens


def test_all_heads_ablated_equals_removing_attention(batch):
    # With the output projection's bias at zero, zeroing every head leaves only the residual:
    # the layer then returns its input, which is identity ablation of the attention layer.
    u = build_unet(C.load("smoke"), seed=3).eval()
    with torch.no_grad():
        for p in u.parameters():
            p.add_(0.05 * torch.randn_like(p))
        u.down_blocks[2].attentions[0].to_out[0].bias.zero_()
    x, t = batch
    heads = apply(u, [Intervention("head_ablate", "down2.attn0")], x, t)
    layer = apply(u, [Intervention("identity", "down2.attn0")], x, t)
    # Equal in exact arithmetic; in float32 the two runs order their sums differently (hooked vs
    # fused attention processors, 1 or 2 threads). A sum of n terms is off by at most n * eps * the
    # size of its terms (Higham's gamma_n), so the tolerance is float32 eps x the longest reduction
    # in this UNet (a GroupNorm over (2C / groups) x H x W at a level with a concatenated skip, or a
    # 3x3 conv over 2C inputs) x the size of the outputs. Machines differ by ~1e-5 here; this is ~2e-4.
    cfg = u.config
    n = max(max(9 * 2 * c, 2 * c // cfg.norm_num_groups * (cfg.sample_size // 2 ** level) ** 2)
            for level, c in enumerate(cfg.block_out_channels))
    tol = n * torch.finfo(heads.dtype).eps * heads.abs().max().item()
    assert (heads - layer).abs().max().item() <= tol
    assert (heads - apply(u, [], x, t)).abs().max().item() > 100 * tol   # the ablation itself is far larger


def test_interventions_compose_and_validate(unet, batch):
    x, t = batch
    with torch.no_grad():
        twice = apply(unet, [Intervention("scale", "mid", 2.0), Intervention("scale", "mid", 1.5)], x, t)
        once = apply(unet, [Intervention("scale", "mid", 3.0)], x, t)
    assert torch.allclose(twice, once, atol=1e-5)
    zero_mid = apply(unet, [Intervention("zero", "mid")], x, t)
    for site in ("", "mid", "enc_early"):                         # cut_mid acts on mid whatever the site says
        assert torch.equal(apply(unet, [Intervention("cut_mid", site)], x, t), zero_mid)
    with pytest.raises(ValueError, match="'kind'"):
        Intervention("explode", "mid")
    with pytest.raises(sites.SiteError, match="unknown site 'mdi'"):
        apply(unet, [Intervention("zero", "mdi")], x, t)
    with pytest.raises(ValueError, match="identity ablation of 'down0'"):
        apply(unet, [Intervention("identity", "down0")], x, t)   # 16x16 -> 8x8 cannot be skipped
    with pytest.raises(ValueError, match="'head' = 9"):
        apply(unet, [Intervention("uniform", "up0.attn0", head=9)], x, t)


def test_impact_score(unet):
    x0 = torch.rand(4, 3, 16, 16) * 2 - 1
    sched = build_scheduler(C.load("smoke"))
    none = impact(unet, sched, x0, 300, [])
    assert none.impact == 0.0 and none.mse_base > 0
    scaled = impact(unet, sched, x0, 300, [Intervention("scale", "mid", 1.0)])
    assert scaled.impact == 0.0
    for spec in ([Intervention("zero", "enc_middle")], [Intervention("mean", "middle")],
                 [Intervention("cut_skip", "up2")], [Intervention("cut_mid")],
                 [Intervention("scale", "up1", 0.5, channels=(0, 1, 2))]):
        r = impact(unet, sched, x0, 300, spec)
        assert r.impact != 0 and r.per_image_int.shape == (4,)
    assert no_hooks_left(unet)


def test_mean_ablation_of_constant_reference_is_exact(unet, batch):
    x, t = batch
    one = x[:1].expand(3, -1, -1, -1)
    tt = t[:1].expand(3)
    ref = patch_from(unet, ["mid"], one, tt)
    with torch.no_grad():
        out = apply(unet, [Intervention("mean", "mid")], one, tt, reference=ref)
        assert torch.allclose(out, unet(one, tt).sample, atol=1e-6)


def _public_configs():
    cifar = dict(sample_size=32, block_out_channels=(128, 256, 256, 256), layers_per_block=2,
                 down_block_types=("DownBlock2D", "AttnDownBlock2D", "DownBlock2D", "DownBlock2D"),
                 up_block_types=("UpBlock2D", "UpBlock2D", "AttnUpBlock2D", "UpBlock2D"),
                 attention_head_dim=None, norm_num_groups=32)
    celebahq = dict(sample_size=256, block_out_channels=(128, 128, 256, 256, 512, 512), layers_per_block=2,
                    down_block_types=("DownBlock2D",) * 4 + ("AttnDownBlock2D", "DownBlock2D"),
                    up_block_types=("UpBlock2D", "AttnUpBlock2D") + ("UpBlock2D",) * 4,
                    attention_head_dim=None, norm_num_groups=32)
    return {"google/ddpm-cifar10-32": cifar, "google/ddpm-celebahq-256": celebahq}


@pytest.mark.parametrize("name", list(_public_configs()))
def test_site_tables_of_public_checkpoint_configs(name):
    config = _public_configs()[name]
    unet = UNet2DModel(**config).eval()              # random weights: the config alone, no download
    table = sites.site_table(unet)
    n_attn = len(attention_modules(unet))
    assert len(sites.site_names(unet, "attn")) == n_attn > 0
    n_skips = 1 + sum(len(b.resnets) + (b.downsamplers is not None) for b in unet.down_blocks)
    assert len(sites.site_names(unet, "skip")) == n_skips
    assert set(sites.groups(unet)) == {"enc_early", "enc_middle", "enc_late", "middle",
                                       "dec_early", "dec_middle", "dec_late"}
    assert table["mid.attn0"].kind == "attn"
    if config["sample_size"] <= 32:
        hooks.check_shapes(unet)                     # a forward pass confirms every tabled shape


# ---------------------------------------------------------------- any model's diffusers Attention (Part V's VAE)
def _mri_vae(kind="attention"):
    from circuitnb.modeling.mri import MriVAE
    torch.manual_seed(0)
    return MriVAE(4, 16, (8, 16), latent_dim=6, heads=2, kind=kind, dropout=0.1).eval()


def test_mri_vae_attention_heads_are_sites_by_name():
    vae = _mri_vae()
    table = sites.site_table(vae)
    for layer in ("encoder.attn", "decoder.attn"):              # found by attention_modules, no MriVAE code
        assert table[f"{layer}.probs"].kind == "probs" and table[f"{layer}.probs"].shape == (2, 16, 16)
        assert [table[f"{layer}.h{k}"].index for k in range(2)] == [0, 1]
        assert table[f"{layer}.h0"].shape == (16, 8)
    assert sites.site_names(vae, "head") == ["encoder.attn.h0", "encoder.attn.h1", "decoder.attn.h0",
                                             "decoder.attn.h1"]
    assert all(n in table for g in sites.groups(vae).values() for n in g)
    assert not any(table[n].kind in ("probs", "head") for g in sites.groups(vae).values() for n in g)
    assert not sites.site_names(_mri_vae("no_attention"), "probs")  # no attention, no head sites


@torch.no_grad()
def test_recording_and_ablating_a_head_of_an_mri_vae():
    vae, x = _mri_vae(), torch.rand(3, 4, 16, 16) * 2 - 1
    base = vae(x).mean
    with record(vae, ["encoder.attn.probs", "decoder.attn.h1"],
                reduce={"encoder.attn.probs": entropy_bits}) as rec:
        again = vae(x).mean
    assert torch.allclose(base, again, atol=1e-5)               # the hooked processor: ~2e-7 from the fused one
    h = rec["encoder.attn.probs"]
    assert h.shape == (3, 2) and ((h >= 0) & (h <= math.log2(16) + 1e-5)).all()
    assert rec["decoder.attn.h1"].shape == (3, 16, 8)
    with edit(vae, {"decoder.attn.h1": lambda y, ctx: y}):       # identity edit
        assert torch.allclose(vae(x).mean, base, atol=1e-5)
    seen = []

    def zero(y, ctx):
        seen.append((ctx.site, ctx.head, ctx.t))
        return torch.zeros_like(y)
    with edit(vae, {"decoder.attn.h1": zero}):
        ablated = vae(x).mean
    assert not torch.allclose(ablated, base) and seen == [("decoder.attn.h1", 1, None)]
    assert no_hooks_left(vae) and torch.equal(vae(x).mean, base)


def test_unet_site_table_keeps_its_names_with_generic_attention_sites(unet):
    # the generic head sites are for other models; the UNet's own table names its heads as before
    table = sites.site_table(unet)
    heads = [n for n, s in table.items() if s.kind == "head"]
    assert heads and all(".attn" in n and n.split(".")[0] in {f"down{i}" for i in range(9)} | {"mid"} |
                         {f"up{i}" for i in range(9)} for n in heads)
    assert not any(n.startswith(("down_blocks", "mid_block", "up_blocks")) for n in table)
    n_heads = sum(a.heads for a in attention_modules(unet).values())
    assert len(heads) == n_heads and len(sites.site_names(unet, "probs")) == len(attention_modules(unet))
