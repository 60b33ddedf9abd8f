"""The one training loop of Parts II-V (modeling.loop): step order, the NaN stop, snapshots in eval mode, seeding."""
import numpy as np
import pytest
import torch

from circuitnb.modeling.loop import batches, cosine_lr, run_steps, seeded


def _toy(seed=0):
    with seeded(seed):
        net = torch.nn.Linear(2, 1)
    return net, torch.optim.SGD(net.parameters(), lr=0.1)


def test_steps_are_one_based_and_snapshots_run_in_eval_mode_after_the_update():
    net, opt = _toy()
    x, seen, modes, after_weights = torch.ones(4, 2), [], [], []

    def after(value):
        after_weights.append(net.weight.detach().clone())
        return {}

    def step(s):
        seen.append((s, net.training))
        return net(x).pow(2).mean(), after

    def snapshot(s):
        modes.append((s, net.training))
        assert torch.equal(net.weight, after_weights[-1])           # the snapshot sees this step's update

    run_steps(net, opt, step, 5, name="toy", lr=0.1, progress=False, callback=snapshot, callback_steps=[2, 5])
    assert [s for s, _ in seen] == [1, 2, 3, 4, 5] and all(training for _, training in seen)
    assert modes == [(2, False), (5, False)] and not net.training


def test_the_cosine_schedule_sets_each_step_lr_from_peak_towards_zero():
    lr_at = cosine_lr(0.1, 4)
    assert [round(lr_at(s), 6) for s in (1, 2, 3, 4)] == [0.1, round(0.05 * (1 + np.cos(np.pi / 4)), 6), 0.05,
                                                          round(0.05 * (1 + np.cos(3 * np.pi / 4)), 6)]
    net, opt = _toy()
    used = []

    def step(s):
        used.append(opt.param_groups[0]["lr"])                       # the lr this step's update will use
        return net(torch.ones(1, 2)).sum(), lambda value: {}

    run_steps(net, opt, step, 4, name="toy", lr=0.1, progress=False, lr_at=lr_at)
    assert used == [lr_at(s) for s in (1, 2, 3, 4)] and used[-1] < 0.02


def test_a_nan_loss_stops_with_the_trainer_step_and_lr():
    net, opt = _toy()
    losses = iter([1.0, float("nan")])

    def step(s):
        return net(torch.ones(1, 2)).sum() * 0 + next(losses), lambda value: {}

    with pytest.raises(FloatingPointError, match=r"^toy\('a'\): loss is nan at step 2; try a smaller lr \(now 0.5\) "
                                                 r"or beta$"):
        run_steps(net, opt, step, 3, name="toy('a')", lr=0.5, hint=" or beta", progress=False)


def test_seeded_initialises_from_the_seed_and_leaves_the_global_rng():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    a, _ = _toy(seed=4)
    b, _ = _toy(seed=4)
    assert torch.equal(torch.rand(3), expected)                        # the caller's stream is untouched
    assert torch.equal(a.weight, b.weight)


def test_batches_cover_the_rows_in_order_on_the_model_device():
    net, _ = _toy()
    x = np.arange(14, dtype=np.float64).reshape(7, 2)
    got = list(batches(net, x, 3))
    assert [len(b) for b in got] == [3, 3, 1] and all(b.dtype == torch.float32 for b in got)
    assert torch.equal(torch.cat(got), torch.as_tensor(x, dtype=torch.float32))
