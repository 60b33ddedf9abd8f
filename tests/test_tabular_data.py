"""Part III's tables: offline loading, schemas, preprocessing, the split rule, the synthetic world's known answers,
and one-line errors for bad names, files and columns."""
import socket

import numpy as np
import pandas as pd
import pytest

from circuitnb.core.config import load
from circuitnb.core.errors import UserError
from circuitnb.data import tabular as tab
from circuitnb.data.tabular import real, world
from circuitnb.data.tabular.schema import Column, Schema, TabularDataError, level_codes, load_csv

ROWS = {"heart": 296, "penguins": 333, "affairs": 6366, "anes96": 944, "breast_cancer": 569}


@pytest.fixture(scope="module")
def cfg():
    return load("smoke", device="cpu")


def test_real_sets_load_offline_with_their_schemas(monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("a data set tried to open a network connection")
    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    tab._real.cache_clear()
    mixed = 0
    for name, rs in real.REAL.items():
        frame = rs.load()
        s = rs.schema
        assert len(frame) == ROWS[name] and list(frame.columns) == [*s.names(), s.target]
        for c in s.columns:
            if c.kind == "continuous":
                assert pd.api.types.is_numeric_dtype(frame[c.name]) and frame[c.name].nunique() > 2, c.name
            else:                                                   # every level in use, nothing outside them
                assert set(level_codes(frame[c.name], c, name)) == set(range(len(c.levels))), c.name
        assert set(frame[s.target]) == {0, 1} and s.source and s.target_note
        mixed += bool(s.names("continuous")) and bool(s.names("categorical"))
    assert mixed >= 2
    assert sum(bool(rs.schema.names("ordinal")) for rs in real.REAL.values()) >= 2
    tab._real.cache_clear()


def test_encoding_standardises_on_training_rows_one_hot_and_levels(cfg):
    for name in tab.TAB_DATASETS:
        tr, ho = tab.tabular_data(cfg, name, "train"), tab.tabular_data(cfg, name, "heldout")
        assert tr.x.dtype == np.float32 and tr.x.shape[1] == ho.x.shape[1] == tr.blocks[-1].stop
        for b in tr.blocks:
            v = tr.x[:, b.start:b.stop]
            if b.kind == "continuous":
                assert abs(v.mean()) < 1e-5 and abs(v.std(ddof=1) - 1) < 1e-4       # training statistics
            elif b.kind == "categorical":
                assert set(np.unique(v)) <= {0.0, 1.0} and (v.sum(1) == 1).all()
            else:
                assert set(np.unique(v)) <= set(range(b.n_levels))
        # the held-out rows are encoded with the training statistics, not their own
        c = tr.schema.names("continuous")[0]
        b = next(b for b in tr.blocks if b.name == c)
        expect = (ho.frame[c].to_numpy(float) - tr.encoding.mean[c]) / tr.encoding.sd[c]
        np.testing.assert_allclose(ho.x[:, b.start], expect, rtol=1e-5, atol=1e-5)


def test_real_split_is_a_stratified_partition_shared_by_replicates(cfg):
    for name in real.REAL:
        full = real.REAL[name].load()
        tr, ho = tab.tabular_data(cfg, name, "train"), tab.tabular_data(cfg, name, "heldout")
        both = pd.concat([tr.frame, ho.frame]).sort_values(list(full.columns)).reset_index(drop=True)
        pd.testing.assert_frame_equal(both, full.sort_values(list(full.columns)).reset_index(drop=True),
                                      check_dtype=False)
        assert abs(len(ho) / len(full) - cfg.tabular.heldout_fraction) < 0.01
        assert abs(tr.y.mean() - ho.y.mean()) < 0.03                               # stratified by target
        np.testing.assert_array_equal(tab.tabular_data(cfg, name, "train", replicate=1).x, tr.x)


def test_world_split_rule_determinism_and_fingerprints(cfg):
    tr0, tr1 = tab.tabular_data(cfg, "world", "train", 0), tab.tabular_data(cfg, "world", "train", 1)
    ho = tab.tabular_data(cfg, "world", "heldout")
    n_ho = len(ho)
    assert len(tr0) + n_ho == cfg.tabular.world_rows
    u_ho = ho.world.noise["length"]
    assert not set(u_ho) & set(tr0.world.noise["length"]) and not set(u_ho) & set(tr1.world.noise["length"])
    assert tr0.fingerprint != tr1.fingerprint                               # replicate r draws its own rows
    np.testing.assert_array_equal(tab.tabular_data(cfg, "world", "heldout", 2).x, ho.x)   # one held-out set
    again = tab.tabular_data(load("smoke", device="cpu"), "world", "train", 0)
    np.testing.assert_array_equal(again.x, tr0.x)
    assert again.fingerprint == tr0.fingerprint
    other = load("smoke", device="cpu", seed=1)
    assert tab.tabular_data(other, "world", "train").fingerprint != tr0.fingerprint
    heart = [tab.tabular_data(c, "heart", "heldout").fingerprint for c in (cfg, other)]
    assert heart[0] != heart[1]                                             # another seed holds out other rows
    assert tab.tab_seed(cfg, 1, "heart") != tab.tab_seed(cfg, 0, "heart") != tab.tab_seed(cfg, 0, "penguins")


def test_world_ground_truth_is_consistent():
    w = world.draw_world(4000, seed=3)
    v, f = w.values, w.factors
    assert np.corrcoef(v["length"], f["size"])[0, 1] > 0.85
    assert np.corrcoef(v["hue"], f["kind"])[0, 1] > 0.85
    assert 0.92 < (v["colour"] == f["kind"]).mean() < 0.98                # 5% mislabelled
    assert np.corrcoef(v["grade_level"], f["grade"])[0, 1] > 0.8
    assert abs(np.corrcoef(v["length"], f["grade"])[0, 1]) < 0.06          # independent factors
    for factor, cols in world.FACTOR_GROUPS.items():
        for c in cols:
            assert c in world.descendants(factor)
            assert all(p == factor or p in cols or (p, c) in world.CROSS_GROUP_EDGES for p in world.PARENTS[c])
    assert set(world.EDGES) >= set(world.CROSS_GROUP_EDGES) and ("weight", "score") in world.CROSS_GROUP_EDGES
    np.testing.assert_array_equal(world.draw_world(4000, seed=3).values["risk"], v["risk"])


@pytest.mark.parametrize("node,value", [("hue", 0.0), ("length", 2.0), ("size", -1.0), ("colour", 2), ("score", 1.0)])
def test_an_intervention_changes_exactly_the_descendants(node, value):
    w = world.draw_world(2000, seed=5)
    w2 = world.intervene(w, node, value)
    assert (w2.values[node] == value).all()
    down = set(world.descendants(node))
    for other in world.NODES:
        changed = not np.array_equal(w2.values[other], w.values[other])
        if other == node:
            continue
        assert changed == (other in down), (node, other)
    np.testing.assert_array_equal(w2.noise["risk"], w.noise["risk"])


def test_world_descendants_are_the_stated_ones():
    assert world.descendants("length") == ("weight", "score", "risk")
    assert world.descendants("hue") == ("risk",)
    assert world.descendants("risk") == ()
    assert "target" in world.descendants("size") and "target" not in world.descendants("length")


def _one_line(err: Exception) -> str:
    text = str(err)
    assert isinstance(err, UserError) and "\n" not in text
    return text


def test_bad_names_give_one_line(cfg):
    with pytest.raises(TabularDataError) as e:
        tab.tabular_data(cfg, "iris")
    assert "'dataset' = 'iris'" in _one_line(e.value) and "penguins" in str(e.value)
    with pytest.raises(TabularDataError, match="'split'"):
        tab.tabular_data(cfg, "heart", "analysis")
    with pytest.raises(TabularDataError, match="'node'"):
        world.descendants("colour_code")


SCHEMA = Schema("mine", (Column("age", "continuous"), Column("colour", "categorical", ("red", "blue")),
                         Column("grade", "ordinal", (1, 2, 3))), target="label", source="test")


@pytest.mark.parametrize("text,match", [
    (None, "does not exist"),
    ("age,colour,label\n1,red,0\n", "column 'grade' is missing"),
    ("age,colour,grade,label\n1,red,2,0\nold,blue,1,1\n", "continuous column 'age' has non-numeric value 'old'"),
    ("age,colour,grade,label\n1,green,2,0\n", "categorical column 'colour' has value 'green' outside"),
    ("age,colour,grade,label\n1,red,4,0\n", "ordinal column 'grade' has value 4 outside"),
    ("age,colour,grade,label\n1,red,2,yes\n", "target column 'label' must hold 0 and 1"),
    ("age,colour,grade,label\n,red,2,1\n", "column 'age' has 1 missing values"),
])
def test_load_csv_checks_file_and_columns(tmp_path, text, match):
    path = tmp_path / "mine.csv"
    if text is not None:
        path.write_text(text)
    with pytest.raises(TabularDataError) as e:
        load_csv(path, SCHEMA)
    assert match in _one_line(e.value) and "mine.csv" in str(e.value)


def test_load_csv_reads_a_good_file_and_encodes_it(tmp_path):
    path = tmp_path / "mine.csv"
    path.write_text("age,colour,grade,label,extra\n30,red,1,0,x\n40,blue,3,1,y\n50,blue,2,1,z\n")
    frame = load_csv(path, SCHEMA)
    assert list(frame.columns) == ["age", "colour", "grade", "label"]
    enc = tab.Encoding.fit(frame, SCHEMA)
    np.testing.assert_allclose(enc.transform(frame), [[-1, 1, 0, 0], [0, 0, 1, 2], [1, 0, 1, 1]])
    assert enc.layout == (("age", "continuous", 1), ("colour", "categorical", 2), ("grade", "ordinal", 3))


def test_tables_for_the_book(cfg):
    t = tab.datasets_table(cfg)
    assert list(t.dataset) == list(tab.TAB_DATASETS) and (t.train_rows > t.heldout_rows).all()
    assert t.set_index("dataset").loc["affairs", ["continuous", "categorical", "ordinal"]].tolist() == [2, 2, 4]
    s = tab.schema_table(tab.schema_of("world"))
    assert len(s) == len(world.COLUMNS) + 1 and set(s.type) == {"continuous", "categorical", "ordinal",
                                                                 "target (binary)"}
