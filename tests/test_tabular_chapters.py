"""Part III's chapters 30-32 as package functions on tiny replicate tabular VAEs (and Part II's image VAEs):
tables, CSVs, glued values, the world's known-answer tables, the explorer, and the scorecard against
claims_tabular.csv (a verdict, "by design" or "not comparable" with a reason for every claim)."""
import numpy as np
import pandas as pd
import pytest

import circuitnb.core.config as C
from circuitnb.analysis.tabular import claims as tab_claims
from circuitnb.analysis.tabular import common as tab_common
from circuitnb.chapters.tabular import comparison, data_models, interventions
from circuitnb.measures import verdicts

R = 2
KINDS = ["vae", "beta_vae", "dip_vae_ii"]
TABLES = ["world", "penguins"]


@pytest.fixture(scope="module")
def cfg(tmp_path_factory):
    return C.load("smoke", replicates=R, device="cpu",
                  vae=dict(n_images=96, n_analysis=40, n_samples=8, steps=5, kinds=["vae", "beta_vae"],
                           datasets=["shapes"], fvae_votes=20),
                  tabular=dict(replicates=R, datasets=TABLES, kinds=KINDS, steps=20),
                  cache_dir=str(tmp_path_factory.mktemp("cache")))


def test_chapter30_tables_models_and_convergence(cfg, tables):
    res = data_models.run(cfg)
    assert list(res.tables["datasets"].dataset) == TABLES
    models = res.tables["models"]
    assert len(models) == len(KINDS) * len(TABLES) * R and set(models.replicate) == set(range(R))
    assert models.groupby(["kind", "dataset"]).seed.nunique().eq(R).all()            # a seed per replicate
    assert (models.mse > 0).all() and np.isfinite(models.nelbo).all()
    assert len(res.tables["convergence"]) == len(models)
    assert (res.tables["convergence"].latent_dim == cfg.tabular.latent_dim).all()
    assert {"size", "kind", "grade", "target"} <= set(res.tables["world_graph"].node)
    res.export_all()
    assert (tables / "30_tabular_data_models" / "training_wide.csv").exists()
    assert res.values["n_total"] == len(models) and "models converged" in res.values["converged_line"]


def test_chapter31_techniques_known_answer_tables_and_explorer(cfg, tables):
    res = interventions.run(cfg)
    cal = res.tables["calibration"]
    assert set(cal.measure) == {"ces_raw", "ces", "ces_normalised", "active_latents", "raw_top_collapsed"}
    assert set(cal.n_models) == {R}
    paths = res.tables["paths"]                      # the world's three factors, four measures each
    assert set(paths.factor) == {"size", "kind", "grade"} and len(paths) == len(KINDS) * 3 * 4
    leak = paths[paths.measure == "leak_share"]["mean"]
    assert ((leak >= 0) & (leak <= 1)).all()
    assert len(res.tables["world_latents"]) == len(KINDS) * R
    ex = res.data["explorer"]
    assert ex.data["kind"] == "tabular" and len(ex.data["models"]) == len(KINDS) * len(TABLES)
    key = ex.data["models"][0]
    assert np.asarray(ex.data["decoded"][key]).shape[:2] == (cfg.tabular.latent_dim, cfg.vae.traversal_steps)
    assert len(ex.data["columns"][key]) == np.asarray(ex.data["decoded"][key]).shape[2]
    html = ex.to_html()
    assert "circuitnbTabular" in html and "http" not in html.split("<script>")[1][:2000]
    res.export_all()
    assert (tables / "31_tabular_interventions" / "paths.csv").exists()


def test_world_interventions_change_only_descendants(cfg):
    """The known answer behind the leak share: in the data, do(factor) changes its descendant columns only."""
    from circuitnb.data.tabular import tabular_data
    held = tabular_data(cfg, "world", "heldout")
    for f, (cols, x_do) in tab_common.sources(held, 0).items():
        changed = {b.name for b in held.blocks if not np.allclose(x_do[:, b.start:b.stop], held.x[:, b.start:b.stop])}
        assert changed and changed <= set(cols), (f, changed, cols)


def test_chapter32_comparison_and_scorecard(cfg, tables):
    res = comparison.run(cfg)
    card, paper = res.tables["scorecard"], tab_claims.paper()
    assert list(card.id) == list(paper.id)
    assert np.allclose(card.paper, paper.paper_value.astype(float))                   # read from the data file
    assert set(card.verdict) <= set(verdicts.VERDICTS) - {"not measured"}
    labelled = card[card.verdict.isin(verdicts.LABELS)]
    assert (labelled.reason.str.len() > 10).all()
    assert set(card[card.id.str.startswith("tab_ces_beta")].verdict) == {"not comparable"}
    assert card.set_index("id").loc["tab_n_architectures", "ours"] == len(KINDS)
    judged = card[card.id.isin(["tab_modularity_reduction", "tab_ces_mse_r", "tab_spec_auc_r"])]
    assert len(judged) == 3 and set(judged.verdict) <= set(verdicts.OUTCOMES)
    con = res.tables["contrast"]
    assert set(con.kind) == {"vae", "beta_vae", "all (pooled)"}                      # DIP-VAE-II has no image twin
    assert {"null_low", "null_high", "beyond_null"} <= set(con.columns)
    # the correlation in the scorecard is the one over every tabular model, recomputed here by scipy
    from scipy import stats as sps
    w = res.tables["per_model_wide"]
    r = sps.pearsonr(w.ces, w.mse).statistic
    assert card.set_index("id").loc["tab_ces_mse_r", "ours"] == pytest.approx(r)
    assert len(w) == len(KINDS) * len(TABLES) * R
    assert set(res.tables["holm_readings"].reference) == set(tab_claims.REFERENCES)
    res.show("scorecard")
    assert len(pd.read_csv(tables / "32_tabular_comparison" / "scorecard.csv")) == len(paper)
    assert res.values["n_claims"] == len(paper)
