"""The dSprites-style shapes and the causal shapes world (circuitnb.data.shapes)."""
import numpy as np
import pandas as pd
import pytest

from circuitnb.data.shapes import (
    CAUSAL_GRAPH,
    CAUSAL_ORDER,
    FACTORS,
    ORIENTATIONS,
    SCALES,
    causal_shapes,
    descendants,
    intervene,
    render,
    shapes_dataset,
)


@pytest.fixture(scope="module")
def data():
    return shapes_dataset(3000, 16, seed=0)


@pytest.fixture(scope="module")
def world():
    return causal_shapes(1000, 16, seed=0)


def test_shapes_deterministic_per_seed(data):
    again = shapes_dataset(3000, 16, seed=0)
    np.testing.assert_array_equal(again.images, data.images)
    pd.testing.assert_frame_equal(again.factors, data.factors)
    assert not np.array_equal(shapes_dataset(3000, 16, seed=1).images, data.images)


def test_shapes_layout_and_coverage(data):
    assert data.images.shape == (3000, 1, 16, 16) and data.images.dtype == np.float32
    assert data.images.min() == -1 and data.images.max() == 1          # background -1, shape +1
    assert data.factor_names == FACTORS and data.n_values == (3, 6, 40, 16, 16)
    # 3,000 uniform draws: the rarest code (1 of 40) is expected 75 times, so every code appears.
    for name, n in zip(FACTORS, data.n_values):
        assert sorted(data.factors[name].unique()) == list(range(n)), name
    assert set(data.values["scale"]) <= set(SCALES) and set(data.values["orientation"]) <= set(ORIENTATIONS)
    assert data.values["pos_x"].between(0, 1).all() and data.values["pos_y"].between(0, 1).all()
    assert (np.abs(data.images) < 1).any()                              # anti-aliased edges
    hard = shapes_dataset(50, 16, seed=0, antialias=1).images
    assert set(np.unique(hard)) == {-1.0, 1.0}


def test_render_reproduces_dataset_exactly(data):
    for i in (0, 7, 2999):
        np.testing.assert_array_equal(render(data.factors.iloc[i], 16), data.images[i])
        np.testing.assert_array_equal(data.render(data.factors.iloc[i].to_dict()), data.images[i])
    np.testing.assert_array_equal(data.render(data.factors.iloc[100:300]), data.images[100:300])


def test_render_intervention_changes_one_factor():
    row = {"shape": 0, "scale": 0, "orientation": 0, "pos_x": 8, "pos_y": 8}
    area = [(render({**row, "scale": s}, 32) > 0).sum() for s in range(6)]
    assert all(a < b for a, b in zip(area, area[1:]))                   # bigger scale, more pixels
    left, right = render({**row, "pos_x": 0}, 32), render({**row, "pos_x": 15}, 32)
    col = np.arange(32)
    def centre(x):
        return ((x[0] + 1).sum(0) * col).sum() / (x[0] + 1).sum()
    assert centre(left) < 12 < 20 < centre(right)                       # pos_x moves it right
    square, heart = render(row, 32), render({**row, "shape": 2}, 32)
    assert not np.array_equal(square, heart)


def test_sizes_16_32_64():
    for size in (16, 32, 64):
        assert shapes_dataset(4, size, seed=0).images.shape == (4, 1, size, size)
    with pytest.raises(ValueError, match="size"):
        shapes_dataset(4, 4, seed=0)


def test_causal_graph_is_ordered_and_descendants_by_hand():
    assert set(CAUSAL_GRAPH) == set(CAUSAL_ORDER)
    for child, parents in CAUSAL_GRAPH.items():                          # parents come first
        assert all(CAUSAL_ORDER.index(p) < CAUSAL_ORDER.index(child) for p in parents)
    assert descendants("size") == {"brightness", "background"}
    assert descendants("pos_x") == {"pos_y", "orientation"}
    assert descendants("shape") == {"orientation"} and descendants("background") == set()


def test_causal_world_follows_its_equations(world):
    v = world.values
    assert np.corrcoef(v["size"], v["brightness"])[0, 1] > 0.5          # size -> brightness
    assert np.corrcoef(v["pos_x"], v["pos_y"])[0, 1] < -0.5             # pos_x -> pos_y (falling)
    # Independent exogenous factors: |r| < 0.1 is 3 standard errors (1/sqrt(1000)) from 0.
    assert abs(np.corrcoef(v["size"], v["pos_x"])[0, 1]) < 0.1
    assert world.images.shape == (1000, 1, 16, 16) and -1 <= world.images.min() <= world.images.max() <= 1
    np.testing.assert_array_equal(causal_shapes(1000, 16, seed=0).images, world.images)
    assert all(world.codes[f].between(0, n - 1).all() for f, n in zip(world.factor_names, world.n_values))


DO_VALUES = {"shape": 2.0, "size": 1.0, "pos_x": 0.9, "pos_y": 0.2, "brightness": 0.95,
             "background": 0.05, "orientation": 1.0}


@pytest.mark.parametrize("name", CAUSAL_ORDER)
def test_intervention_moves_descendants_only(world, name):
    after = intervene(world, name, DO_VALUES[name])
    assert (after.values[name] == DO_VALUES[name]).all()
    for f in CAUSAL_ORDER:
        if f == name:
            continue
        if f in descendants(name):
            assert (after.values[f] != world.values[f]).mean() > 0.3, f"do({name}) left {f} unchanged"
        else:
            np.testing.assert_array_equal(after.values[f], world.values[f], err_msg=f"do({name}) moved {f}")
    pd.testing.assert_frame_equal(after.noise, world.noise)
    assert not np.array_equal(after.images, world.images)
    np.testing.assert_array_equal(intervene(world, name, DO_VALUES[name]).images, after.images)


def test_intervening_on_observed_values_is_identity(world):
    # Consistency: do(X = x) with each unit's own x changes nothing.
    same = intervene(world, "size", world.values["size"].to_numpy())
    np.testing.assert_array_equal(same.images, world.images)
    pd.testing.assert_frame_equal(same.values, world.values)
    with pytest.raises(ValueError, match="unknown factor"):
        intervene(world, "colour", 1.0)
