import math
import re

import numpy as np
import pytest
import torch

import circuitnb.core.config as C
from circuitnb import data
from circuitnb.core.errors import UserError
from circuitnb.modeling import sampling, train
from circuitnb.modeling.checkpoints import WEIGHTS, CacheEntry
from circuitnb.modeling.train import TrainingError, load_or_train
from circuitnb.modeling.unet import build_scheduler


def weights(unet):
    return torch.cat([p.detach().flatten() for p in unet.parameters()])


def test_one_training_step_learns(tiny_cfg):
    cfg = C.with_overrides(tiny_cfg, train_steps=1, warmup_steps=0)   # warm-up would make step 1 lr = 0
    before = weights(train.build_unet(cfg))
    model = load_or_train(cfg, "synthetic", progress=False)
    assert not model.from_cache and model.meta["steps"] == 1
    assert math.isfinite(model.meta["losses"][0]) and 0.1 < model.meta["losses"][0] < 10
    assert not torch.equal(before, weights(model.unet))


def test_cache_hit_skips_training(tiny_cfg):
    first = load_or_train(tiny_cfg, "synthetic", progress=False)
    calls = []
    second = load_or_train(tiny_cfg, "synthetic", progress=False, callback=lambda s, loss: calls.append(s))
    assert second.from_cache and not calls
    assert torch.equal(weights(first.unet), weights(second.unet))
    # Any training-relevant change is a different cache entry.
    third = load_or_train(C.with_overrides(tiny_cfg, learning_rate=1e-3), "synthetic", progress=False)
    assert not third.from_cache and third.meta["key"] != first.meta["key"]


def test_same_seed_same_weights(tiny_cfg, tmp_path):
    a = load_or_train(tiny_cfg, "synthetic", progress=False)
    b = load_or_train(C.with_overrides(tiny_cfg, cache_dir=str(tmp_path / "other")), "synthetic", progress=False)
    assert not b.from_cache
    assert torch.equal(weights(a.unet), weights(b.unet))
    assert a.meta["losses"] == b.meta["losses"]


def test_resume_after_interruption_matches_uninterrupted(tiny_cfg, tmp_path):
    reference = load_or_train(tiny_cfg, "synthetic", progress=False)
    cfg = C.with_overrides(tiny_cfg, cache_dir=str(tmp_path / "interrupted"))

    def crash(step, loss):
        if step == 5:                               # the last checkpoint was at step 4
            raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        load_or_train(cfg, "synthetic", progress=False, callback=crash)
    key = reference.meta["key"]
    entry = CacheEntry(cfg.cache_path, key)
    assert entry.checkpoint_dir.exists() and not entry.final_dir.exists()
    seen = []
    resumed = load_or_train(cfg, "synthetic", progress=False, callback=lambda s, loss: seen.append(s))
    assert seen == [5, 6] and resumed.meta["resumed"]
    assert torch.equal(weights(reference.unet), weights(resumed.unet))
    assert resumed.meta["losses"] == reference.meta["losses"]
    assert not entry.checkpoint_dir.exists()          # cleaned once final


def test_damaged_cache_is_detected_and_retrained(tiny_cfg):
    first = load_or_train(tiny_cfg, "synthetic", progress=False)
    entry = CacheEntry(tiny_cfg.cache_path, first.meta["key"])
    path = entry.final_dir / "unet" / WEIGHTS
    blob = bytearray(path.read_bytes())
    blob[-100] ^= 0xFF                                 # flip bits inside a tensor
    path.write_bytes(bytes(blob))
    assert entry.verify() == f"{path} does not match its sha256 in the manifest"
    with pytest.warns(UserWarning, match=f"damaged model cache entry: {re.escape(str(path))} "):
        again = load_or_train(tiny_cfg, "synthetic", progress=False)
    assert not again.from_cache and entry.verify() is None
    assert torch.equal(weights(first.unet), weights(again.unet))
    (entry.final_dir / "meta.json").write_text("{not json")
    with pytest.warns(UserWarning, match=re.escape(str(entry.final_dir / "meta.json"))):
        assert not load_or_train(tiny_cfg, "synthetic", progress=False).from_cache


def test_nan_loss_stops_with_clear_message(tiny_cfg, monkeypatch):
    monkeypatch.setattr(train, "loss_weights", lambda scheduler, t, *a: torch.full((len(t),), float("nan")))
    with pytest.raises(TrainingError, match="loss became nan at step 1.*learning_rate"):
        load_or_train(tiny_cfg, "synthetic", progress=False)


def test_celeba_model_and_key_uses_data(tiny_cfg, celeba_root):
    cfg = C.with_overrides(tiny_cfg, celeba_root=str(celeba_root))
    model = load_or_train(cfg, "celeba", progress=False)
    assert model.meta["source"] == "celeba" and model.meta["n_images"] == 16 - 8   # the rest are held out
    assert model.meta["fingerprint"] == data.fingerprint(data.images(cfg, "celeba"))


def test_mse_by_timestep_and_sampling(tiny_cfg):
    model = load_or_train(tiny_cfg, "synthetic", progress=False)
    x0 = data.images(tiny_cfg, "synthetic")[:5]
    frame = sampling.noise_mse_by_timestep(model.unet, model.scheduler, x0, [10, 900], seed=0)
    assert list(frame.columns) == ["t", "image", "mse"] and len(frame) == 10 and (frame.mse > 0).all()
    again = sampling.noise_mse_by_timestep(model.unet, model.scheduler, x0, [10, 900], seed=0)
    np.testing.assert_array_equal(frame.mse, again.mse)
    samples = sampling.sample_images(model.unet, model.scheduler, 3, num_inference_steps=5)
    assert samples.shape == (3, 3, 16, 16) and np.abs(samples).max() <= 1
    seen = []
    last = sampling.ddim_trajectory(model.unet, model.scheduler, 3, steps=5,
                                    callback=lambda t, x_t, x0_hat: seen.append((t, x0_hat.shape)))
    assert [s for _, s in seen] == [(3, 3, 16, 16)] * 5 and seen[0][0] > seen[-1][0]     # t counts down
    np.testing.assert_array_equal(last.clamp(-1, 1).numpy(), samples)       # one loop behind both


def test_snapshots_over_training(tiny_cfg):
    """EMA weights kept at evenly spaced steps: distinct from the final ones, equal to a shorter run's."""
    assert train.snapshot_steps(tiny_cfg) == [2, 3, 4, 6]          # round(k * 6 / 4), k = 1..4
    final = load_or_train(tiny_cfg, "synthetic", progress=False)
    at3 = load_or_train(tiny_cfg, "synthetic", progress=False, at_step=3)
    assert at3.from_cache and not torch.equal(weights(at3.unet), weights(final.unet))
    assert torch.equal(weights(load_or_train(tiny_cfg, "synthetic", progress=False, at_step=6).unet),
                       weights(final.unet))
    # The snapshot at step 3 is what a 3-step run of the same seed ends with (the warm-up, EMA and
    # data draws do not depend on train_steps), so it is the model "after 3 steps", not something else.
    short = load_or_train(C.with_overrides(tiny_cfg, train_steps=3), "synthetic", progress=False)
    assert torch.equal(weights(short.unet), weights(at3.unet))
    with pytest.raises(UserError, match="'at_step' = 5 is not a saved"):
        load_or_train(tiny_cfg, "synthetic", progress=False, at_step=5)
    # A damaged snapshot is reported and the model retrained, so every snapshot is back.
    entry = CacheEntry(tiny_cfg.cache_path, final.meta["key"])
    path = entry.snapshot_dir(3) / "unet" / WEIGHTS
    blob = bytearray(path.read_bytes())
    blob[-100] ^= 0xFF
    before = weights(at3.unet)
    path.write_bytes(bytes(blob))
    assert torch.equal(weights(at3.unet), before)          # a loaded model does not alias its cache file
    assert not train.is_cached(tiny_cfg, "synthetic")
    with pytest.warns(UserWarning, match=f"damaged training snapshot: {re.escape(str(path))} "):
        again = load_or_train(tiny_cfg, "synthetic", progress=False)
    assert not again.from_cache and train.is_cached(tiny_cfg, "synthetic")
    assert torch.equal(weights(load_or_train(tiny_cfg, "synthetic", progress=False, at_step=3).unet),
                       weights(at3.unet))


def test_loading_one_snapshot_checks_the_others(tiny_cfg):
    """A snapshot load hashes every other snapshot (without building it): a damaged one retrains the model,
    and the snapshot comes back with its own key, so results cached per model keep steps apart."""
    final = load_or_train(tiny_cfg, "synthetic", progress=False)
    at3 = load_or_train(tiny_cfg, "synthetic", progress=False, at_step=3)
    assert at3.meta["key"] == f"{final.meta['key']}-step3" and at3.meta["steps"] == 3 == len(at3.meta["losses"])
    path = CacheEntry(tiny_cfg.cache_path, final.meta["key"]).snapshot_dir(2) / "unet" / WEIGHTS
    blob = bytearray(path.read_bytes())
    blob[-100] ^= 0xFF
    path.write_bytes(bytes(blob))
    with pytest.warns(UserWarning, match=f"damaged training snapshot: {re.escape(str(path))} "):
        again = load_or_train(tiny_cfg, "synthetic", progress=False, at_step=3)
    assert not again.from_cache and torch.equal(weights(again.unet), weights(at3.unet))
    assert train.is_cached(tiny_cfg, "synthetic")


def test_min_snr_weights_follow_hang_et_al(tiny_cfg):
    # eps-prediction: w_t = min(SNR_t, gamma) / SNR_t; 1 where SNR <= gamma (high t), gamma / SNR below.
    scheduler = build_scheduler(tiny_cfg)
    t = torch.tensor([0, 10, 500, 999])
    abar = scheduler.alphas_cumprod[t].double()
    snr = abar / (1 - abar)
    expected = torch.where(snr > 5.0, 5.0 / snr, torch.ones_like(snr))
    assert torch.allclose(train.loss_weights(scheduler, t, "min_snr", 5.0).double(), expected, rtol=1e-5)
    assert (train.loss_weights(scheduler, t, "mse", 5.0) == 1).all()
    assert train.loss_weights(scheduler, t, "min_snr", 5.0)[0] < 0.01      # t = 0: SNR in the thousands


def test_precision_keys_the_cache_and_is_recorded(tiny_cfg):
    fp32 = C.with_overrides(tiny_cfg, precision="fp32", train_steps=4, n_snapshots=1)
    bf16 = C.with_overrides(fp32, precision="bf16")
    assert train.model_key(fp32, "synthetic") != train.model_key(bf16, "synthetic")
    m32, m16 = (load_or_train(c, "synthetic", progress=False) for c in (fp32, bf16))
    assert (m32.meta["precision"], m16.meta["precision"]) == ("fp32", "bf16")
    # Master weights stay fp32 under bf16 autocast, and the two runs start from the same weights and batches,
    # so after 4 steps they differ by bf16 rounding only: far less than the weights' own size.
    w32, w16 = (torch.cat([p.detach().flatten() for p in m.unet.parameters()]) for m in (m32, m16))
    assert w16.dtype == torch.float32
    assert 0 < (w32 - w16).norm() < 0.05 * w32.norm()


def test_bf16_and_fp32_losses_agree_within_the_seed_spread(tiny_cfg):
    # bf16 and fp32 training curves agree within seed-to-seed spread. Same seed, the two precisions;
    # and fp32 with another seed: |mean loss bf16 - fp32| over the run must be below the seed-to-seed gap
    # plus the steps' own sampling error.
    base = C.with_overrides(tiny_cfg, train_steps=40, n_snapshots=1, warmup_steps=5)
    runs = {name: load_or_train(C.with_overrides(base, precision=p, seed=s), "synthetic", progress=False)
            for name, p, s in (("fp32", "fp32", 0), ("bf16", "bf16", 0), ("fp32_seed1", "fp32", 1))}
    loss = {k: np.asarray(m.meta["losses"][-20:]) for k, m in runs.items()}
    sampling = 2 * np.sqrt(loss["fp32"].var(ddof=1) / 20 + loss["bf16"].var(ddof=1) / 20)
    seeds_apart = abs(loss["fp32_seed1"].mean() - loss["fp32"].mean())
    assert abs(loss["bf16"].mean() - loss["fp32"].mean()) < seeds_apart + sampling


def test_models_trained_side_by_side_equal_those_trained_one_at_a_time(tiny_cfg, tmp_path):
    # Concurrent training (the build's worker pool, one thread per worker) must give the same weights
    # as training the models one at a time. Both sides run on one thread, so the kernels are the same.
    from circuitnb.publish import book
    side = C.with_overrides(tiny_cfg, cache_dir=str(tmp_path / "side"), train_steps=6, n_snapshots=2)
    alone = C.with_overrides(side, cache_dir=str(tmp_path / "alone"))
    book._train_in_parallel([book.RequiredModel(f"r{r}", side, "synthetic", r) for r in range(2)], progress=False)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for r in range(2):
            a = load_or_train(side, "synthetic", replicate=r, progress=False)
            b = load_or_train(alone, "synthetic", replicate=r, progress=False)
            assert a.from_cache and not b.from_cache
            for (name, x), y in zip(a.unet.state_dict().items(), b.unet.state_dict().values()):
                assert torch.equal(x, y), name
    finally:
        torch.set_num_threads(threads)
