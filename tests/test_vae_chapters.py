"""Part II's chapters 20-22 as package functions on tiny replicate VAEs: tables, CSVs, glued values, the
scorecard against claims_vae.csv (verdicts, "not comparable" with a reason) and the offline explorer."""
import numpy as np
import pandas as pd
import pytest

import circuitnb.core.config as C
from circuitnb.chapters.vae import data_models, interventions, measures
from circuitnb.measures import claims, verdicts

R = 2


@pytest.fixture(scope="module")
def cfg(tmp_path_factory):
    return C.load("smoke", replicates=R, device="cpu",
                  vae=dict(n_images=96, n_analysis=40, n_samples=8, steps=5, kinds=["vae", "beta_vae", "factor_vae"],
                           fvae_votes=20),
                  cache_dir=str(tmp_path_factory.mktemp("cache")))


def test_chapter20_lists_every_model_and_the_graph(cfg, tables):
    res = data_models.run(cfg)
    models = res.tables["models"]
    assert len(models) == 3 * 2 * R and set(models.replicate) == set(range(R))
    assert models.groupby(["kind", "dataset"]).seed.nunique().eq(R).all()          # a seed per replicate
    assert set(res.tables["training"].n_models) == {R}
    assert {"pos_y", "brightness"} <= set(res.tables["graph"].factor)
    res.show("models")
    assert (tables / "20_vae_data_models" / "models.csv").exists()
    assert res.values["n_total"] == 3 * 2 * R


def test_chapter21_levels_and_explorer(cfg, tables):
    res = interventions.run(cfg)
    med, pat = res.tables["mediation"], res.tables["patching"]
    # Chain networks: the whole latent layer mediates and restores all of each factor's effect.
    assert np.allclose(med[med.measure == "indirect_all"]["mean"], 1, atol=1e-4)
    assert np.allclose(med[med.measure == "direct_all"]["mean"], 0, atol=1e-4)
    assert np.allclose(pat[pat.measure == "whole_latent_layer"]["mean"], 1, atol=1e-6)
    assert set(res.tables["input"].n_models) == {R}
    graph = res.tables["graph"]                        # one row per edge of the causal graph and measure
    assert set(graph.edge) == {"pos_x -> pos_y", "size -> brightness", "brightness -> background",
                               "shape -> orientation", "pos_x -> orientation"}
    data_share = graph[graph.measure == "data_share"]
    assert (data_share.sd_models == 0).all()           # the images' own answer: the same for every model
    ex = res.data["explorer"]
    assert ex.data["kind"] == "traversal" and len(ex.data["models"]) == 6 and "traversal" in ex.to_html()
    assert "http" not in ex.to_html().split("<script>")[1][:200]                  # no network in the page


def test_chapter22_scorecard_readings_and_order(cfg, tables):
    res = measures.run(cfg)
    card = res.tables["scorecard"]
    paper = claims.load(measures.PAPER_VAE)
    assert list(card.id) == list(paper.id)
    assert np.allclose(card.paper, paper.paper_value.astype(float))                # read from the data file
    ces = card[card.id.str.startswith("vae_ces_")]
    assert (ces.verdict == "not comparable").all() and ces.reason.str.contains("scale").all()
    dis = card[card.id.str.startswith("vae_dis_")]
    assert set(dis.verdict) <= set(verdicts.OUTCOMES) and (dis.unit == "MIG (our reading)").all()
    arch = res.tables["architectures"]
    mig = arch[(arch.measure == "mig") & (arch.dataset == "shapes") & (arch.kind == "vae")].iloc[0]
    per = res.tables["per_model"]
    vals = per[(per.measure == "mig") & (per.dataset == "shapes") & (per.kind == "vae")].value
    assert mig["mean"] == pytest.approx(vals.mean()) and mig.n_models == R
    assert np.isnan(arch[(arch.measure == "factor_vae_score") & (arch.dataset == "causal")]["mean"]).all()
    readings = res.tables["readings"]
    assert len(readings) == 3 * 3 and set(readings.reading) == set(measures.READINGS.values())
    assert len(res.tables["order"]) == 2 * 4
    res.show("scorecard")
    assert len(pd.read_csv(tables / "22_vae_measures" / "scorecard.csv")) == len(paper)


def test_traversal_explorer_responds_offline(cfg, tmp_path):
    """The explorer's page fragment, alone in a page: moving each control redraws it, with no request
    leaving the folder and no console error (Chromium, as the book's offline check)."""
    from circuitnb.publish import browser
    if browser.find_chromium() is None:
        pytest.skip("no Chromium")
    ex = interventions.run(cfg).data["explorer"]
    page = tmp_path / "explorer.html"
    page.write_text(f"<!doctype html><html><body>{ex.to_html()}</body></html>")
    sel = "document.querySelector('.circuitnb-explorer')"
    snapshot = f"(() => [{sel}.dataset.state, [...{sel}.querySelectorAll('canvas')].map(c => c.toDataURL())])()"
    with browser.Browser(root=tmp_path) as b:
        rep = b.load(page, settle=1.0)
        assert rep.external == [] and rep.errors == [], (rep.external, rep.errors)
        for control, pick in [("latent", "el.value = el.options[1].value"), ("step", "el.value = '0'"),
                              ("model", "el.value = el.options[el.options.length - 1].value")]:
            before = b.evaluate(snapshot)
            b.evaluate(f"(() => {{ const el = {sel}.querySelector('[data-control=\"{control}\"]'); {pick}; "
                       f"el.dispatchEvent(new Event(el.tagName === 'INPUT' ? 'input' : 'change')); }})()")
            after = b.evaluate(snapshot)
            assert after[0] != before[0], (control, "state unchanged")
        assert b.report(rep.url, tmp_path).errors == []
