"""Chapters 1, 2 and 7 as package functions: run(cfg) on tiny replicate models, and known answers for the
statistics chapter 7 adds (image-level averaging over timesteps, Table 4 at the model level, its claim rows)."""
import warnings

import numpy as np
import pandas as pd
import pingouin as pg
import pytest

import circuitnb.core.config as C
from circuitnb import data
from circuitnb.analysis import cross_dataset as T4
from circuitnb.analysis.per_image import intervention_impact_per_image
from circuitnb.chapters.diffusion import cross_dataset as X
from circuitnb.chapters.diffusion import data_and_model, performance
from circuitnb.data.celeba import NaturalFaces
from circuitnb.data.synthetic import PART_ID, SyntheticFaces
from circuitnb.measures import claims

R = 2


@pytest.fixture(scope="module")
def cfg(tmp_path_factory, celeba_root):
    # cache_dir as a field (not $CIRCUITNB_CACHE) so the three chapters share one module-wide cache.
    return C.load("smoke", replicates=R, device="cpu", n_images=16, n_analysis=8, n_samples=4, batch_size=4,
                  train_steps=4, checkpoint_every=2, warmup_steps=1, block_out_channels=(8, 16, 16),
                  timesteps=[100, 900], celeba_root=str(celeba_root),
                  cache_dir=str(tmp_path_factory.mktemp("cache")))


def _finite(frame, columns):
    return np.isfinite(frame[columns].to_numpy(float)).all()


def _known_ids(frame):
    return set(frame.id) <= set(claims.load().id)


# --- run(cfg) -----------------------------------------------------------------------------------------
def test_chapter1_states_split_seeds_and_every_replicate(cfg, tables):
    res = data_and_model.run(cfg)
    sp = res.tables["splits"].set_index("dataset")
    assert list(sp.index) == list(data.DATASETS)
    assert (sp.n_train + sp.n_analysis == sp.n_available).all() and (sp.n_analysis == 8).all()
    assert (sp.n_train == 8).all() and (sp.n_analysed == 4).all() and sp.loc["celeba", "source"] == "celeba"
    reps = res.tables["replicates"]
    assert len(reps) == 2 * R
    assert sorted(set(reps.seed)) == sorted(data.replicate_seed(cfg, r, n) for n in data.DATASETS for r in range(R))
    assert _finite(reps, ["final_loss", "train_seconds"]) and (reps.steps == 4).all()
    mse = res.tables["noise_mse"]
    assert len(mse) == 2 * 2 and (mse.n_models == R).all() and (mse.n_images == 4).all()
    assert _finite(mse, ["mean", "ci_low", "ci_high"]) and (mse.ci_low < mse["mean"]).all()
    assert len(res.data["losses"]) == R and all(set(d) == set(data.DATASETS) for d in res.data["losses"])
    assert res.data["samples"]["synthetic"].shape == (R * data_and_model.N_GENERATED, 3, 16, 16)
    assert res.values["seeds"] == "0, 500, 1000, 1500" and res.values["n_train_celeba"] == 8
    assert abs(res.tables["parts"].pixel_share.sum() - 1) < 1e-9
    res.export_all()
    assert {p.stem for p in (tables / data_and_model.CHAPTER).glob("*.csv")} == set(res.tables)


def test_chapter2_levels_are_means_over_models_of_image_means(cfg, tables):
    res = performance.run(cfg)
    acc = res.tables["accuracy"]
    assert list(acc.columns[:6]) == ["dataset", "t", "mean", "ci_low", "ci_high", "paper"]
    assert len(acc) == 4 and _finite(acc, ["mean", "ci_low", "ci_high", "paper"]) and (acc.n_models == R).all()
    # Known answer: the mean over models of each model's mean over its held-out images.
    per = res.tables["per_model"]
    want = per[(per.dataset == "celeba") & (per.t == 100)].accuracy.mean()
    assert acc.set_index(["dataset", "t"]).loc[("celeba", 100), "mean"] == pytest.approx(want)
    fc = res.tables["feature_complexity"]
    assert len(fc) == 4 and _finite(fc, ["mean", "ci_low", "ci_high"])
    rows = res.tables["claims"].set_index("id")
    assert _known_ids(rows.reset_index()) and set(rows.index) == {f"{q}_{d}_{t}" for q in ("acc", "fc")
                                                                   for d in ("syn", "cel") for t in (100, 900)}
    assert pd.isna(rows.loc["acc_syn_100", "label"]) and np.isfinite(rows.loc["acc_syn_100", "eq_low"])
    assert len(rows.loc["acc_syn_100", "replicates"]) == R
    assert rows.loc["fc_cel_900", "label"] == "not comparable" and rows.loc["fc_cel_900", "reason"]
    res.show("accuracy")
    assert (tables / performance.CHAPTER / "accuracy.csv").exists()


def test_chapter7_table4_at_the_model_level(cfg, tables):
    res = X.run(cfg)
    t4 = res.tables["table4"]
    assert list(t4.metric) == list(T4.METRICS)
    assert _finite(t4, ["syn", "cel", "d", "diff", "paper_d", "p_models", "p_holm", "mde_models", "mde_images"])
    # The image is the unit: n_images per model, never images x timesteps.
    assert (t4.n_images == 4).all() and (t4.n_t == 2).all() and (t4.n_models == R).all()
    assert (t4.p_holm >= t4.p_models - 1e-12).all()
    assert (t4.d_null_low <= t4.d_null_high).all()
    per_t = res.tables["per_timestep"]
    assert len(per_t) == 4 * 2 and _finite(per_t, ["syn", "cel", "d"])
    rows = res.tables["claims"].set_index("id")
    assert _known_ids(rows.reset_index()) and len(rows) == 8
    for s in ("cc", "fh"):
        assert (rows.loc[[f"t4_{s}_syn", f"t4_{s}_cel"], "label"] == "not comparable").all()
    for s in ("ent", "ii"):                                    # levels, judged: an estimate with its CIs
        r = rows.loc[f"t4_{s}_cel"]
        assert pd.isna(r.label) and r.ci_low <= r.eq_low <= r.ours <= r.eq_high <= r.ci_high
        assert r.ours == pytest.approx(t4.set_index("metric").cel[[k for k, v in T4.METRICS.items()
                                                                    if v[0] == s][0]])
    res.show("table4")
    assert (tables / X.CHAPTER / "table4.csv").exists()


# --- known answers ------------------------------------------------------------------------------------
def _per(means: dict, n_images: int = 30, timesteps=(100, 900), sd: float = 0.1, seed: int = 0) -> pd.DataFrame:
    """Per-(image, t) values: {metric: {dataset: [model means]}}; each image has its own offset, shared over t."""
    rng = np.random.default_rng(seed)
    rows = []
    for metric, by_ds in means.items():
        for ds, ms in by_ds.items():
            for r, m in enumerate(ms):
                img = m + sd * rng.standard_normal(n_images)
                for t in timesteps:
                    rows.append(pd.DataFrame(dict(metric=metric, dataset=ds, replicate=r, t=t,
                                                  image=np.arange(n_images), value=img + 0.01 * (t / 100))))
    return pd.concat(rows, ignore_index=True)


def test_image_level_averages_each_image_over_timesteps():
    per = _per({"Circuit Complexity": {"synthetic": [1.0], "celeba": [2.0]}}, n_images=5, timesteps=(100, 300, 900))
    img = T4.image_level(per)
    assert len(img) == 2 * 5 and (img.n_t == 3).all()
    one = per[(per.dataset == "celeba") & (per.image == 3)].value.mean()
    assert img[(img.dataset == "celeba") & (img.image == 3)].value.item() == pytest.approx(one)


def test_table4_finds_a_dataset_effect_beyond_the_seed_spread_and_not_a_seed_sized_one():
    metrics = list(T4.METRICS)
    means = {metrics[0]: {"synthetic": [1.0, 1.02, 0.98], "celeba": [1.5, 1.52, 1.49]},      # real effect
             **{m: {"synthetic": [1.0, 1.3, 0.8], "celeba": [1.2, 0.9, 1.1]} for m in metrics[1:]}}  # seed-sized
    t4 = T4.table4(T4.image_level(_per(means)), alpha=0.05).set_index("metric")
    assert t4.loc[metrics[0], "d_beyond_null"] and t4.loc[metrics[0], "diff_beyond_null"]
    assert t4.loc[metrics[0], "diff"] == pytest.approx(0.5, abs=0.05)
    assert not t4.loc[metrics[1:], "d_beyond_null"].any() and not t4.loc[metrics[1:], "diff_beyond_null"].any()
    # Holm over the four metrics, as pingouin computes it.
    assert t4.p_holm.to_numpy() == pytest.approx(pg.multicomp(t4.p_models.to_numpy(), method="holm")[1])
    assert (t4.n_images == 30).all() and (t4.n_models == 3).all()


def test_minimum_detectable_effect_has_80_percent_power_at_the_design_n():
    means = {m: {"synthetic": [1.0, 1.1, 0.9], "celeba": [1.0, 1.1, 0.9]} for m in T4.METRICS}
    t4 = T4.table4(T4.image_level(_per(means, n_images=20)), alpha=0.05)
    assert pg.power_ttest(d=t4.mde_models.iloc[0], n=3, alpha=0.05) == pytest.approx(0.80, abs=1e-3)
    assert pg.power_ttest(d=t4.mde_images.iloc[0], n=20, alpha=0.05) == pytest.approx(0.80, abs=1e-3)
    assert t4.mde_models.iloc[0] > t4.mde_images.iloc[0]        # fewer units, larger detectable effect


def test_intervention_impact_is_the_layer_ablation_mean_per_image():
    ivs = pd.DataFrame(dict(dataset="synthetic", t=100, image=[0, 0, 1, 1, 0],
                            family=["layer ablation"] * 4 + ["feature scaling"], impact=[1.0, 3.0, 0.5, 0.7, 99.0]))
    out = intervention_impact_per_image(ivs).set_index("image").value
    assert out.to_dict() == pytest.approx({0: 2.0, 1: 0.6})


def test_table4_claims_are_levels_not_contrasts():
    means = {m: {"synthetic": [4.0, 4.1, 3.9], "celeba": [5.0, 5.1, 4.9]} for m in T4.METRICS}
    img = T4.image_level(_per(means))
    rows = pd.DataFrame(T4.table4_claims(img)).set_index("id")
    # A level is the mean over models of that dataset's metric, whatever the contrast says.
    assert rows.loc["t4_ent_syn", "ours"] == pytest.approx(img[(img.metric == "Attention Entropy")
                                                              & (img.dataset == "synthetic")].value.mean())
    assert rows.loc["t4_ent_cel", "ours"] == pytest.approx(5.0, abs=0.1)
    assert list(rows.index) == [f"t4_{s}_{d}" for s in ("cc", "ent", "fh", "ii") for d in ("syn", "cel")]


def test_part_shares_and_matched_attributes_by_hand():
    labels = np.zeros((2, 2, 2), np.uint8)
    labels[0, 0, 0] = PART_ID["eyes"]                              # image 0: one eye pixel of four
    attrs = pd.DataFrame(dict(gender=["male", "female"], age=["young", "young"], expression=["smiling", "neutral"],
                              accessory=["none", "glasses"], skin_tone=[0.1, 0.2]))
    faces = SyntheticFaces(images=np.zeros((2, 3, 2, 2), np.float32), labels=labels, attributes=attrs, seed=0)
    parts = data_and_model.part_shares(faces).set_index("part")
    assert parts.loc["eyes", "pixel_share"] == pytest.approx(0.125)
    assert parts.loc["eyes", "images_with_part"] == pytest.approx(0.5)
    assert parts.loc["background", "pixel_share"] == pytest.approx(0.875)
    nat_attrs = pd.DataFrame({"Male": [1, 1, -1, -1], "Young": [1, -1, -1, -1], "Smiling": [1, 1, 1, -1],
                              "Eyeglasses": [-1, -1, -1, -1]})
    nat = NaturalFaces(images=np.zeros((4, 3, 2, 2), np.float32), names=list("abcd"), source="celeba",
                       attributes=nat_attrs)
    m = data_and_model.matched_attributes(faces, nat).set_index("celeba_attribute")
    assert m.natural_share.to_dict() == pytest.approx({"Male": 0.5, "Young": 0.25, "Smiling": 0.75, "Eyeglasses": 0})
    assert m.synthetic_share.to_dict() == pytest.approx({"Male": 0.5, "Young": 1.0, "Smiling": 0.5, "Eyeglasses": 0.5})
    lfw = NaturalFaces(images=nat.images, names=list("abcd"), source="lfw")
    assert data_and_model.matched_attributes(faces, lfw).natural_share.isna().all()


def test_splits_follow_a_smaller_natural_set(monkeypatch, cache):
    # The LFW stand-in has 100 faces: with n_images = 120 the rule applies to the 100 that exist.
    monkeypatch.delenv("CIRCUITNB_CELEBA", raising=False)
    small = C.load("smoke", n_images=120, n_analysis=20, celeba_root="", device="cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")                   # the stand-in's notice (chapter 1 prints it)
        sp = data_and_model.splits(small).set_index("dataset")
    assert sp.loc["synthetic", ["n_available", "n_train", "n_analysis"]].tolist() == [120, 100, 20]
    assert sp.loc["celeba", ["source", "n_available", "n_train", "n_analysis"]].tolist() == ["lfw", 100, 80, 20]
