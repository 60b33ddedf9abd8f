"""Part IV's chapters 40-42 as package functions on tiny replicate hybrid VAE-SAEs (smoke profile): tables, CSVs,
glued values, the explorer, and the scorecard against claims_sae.csv (a verdict, "by design" or "not comparable"
with a reason for every claim); and no number of the abstract typed into Part IV's code or pages."""
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import circuitnb.core.config as C
from circuitnb.analysis.sae import claims as sae_claims
from circuitnb.analysis.sae import common as sae_common
from circuitnb.chapters.sae import data_models, dead_neurons, interpretability
from circuitnb.measures import verdicts

ROOT = Path(__file__).resolve().parents[1]
R = 2


@pytest.fixture(scope="module")
def cfg(tmp_path_factory):
    return C.load("smoke", sae=dict(replicates=R), device="cpu", cache_dir=str(tmp_path_factory.mktemp("cache")))


@pytest.fixture
def tables(tmp_path, monkeypatch):
    monkeypatch.setenv("CIRCUITNB_TABLES", str(tmp_path / "tables"))
    return tmp_path / "tables"


def test_chapter40_sets_models_and_convergence(cfg, tables):
    res = data_models.run(cfg)
    s = cfg.sae
    assert list(res.tables["datasets"].dataset) == list(s.datasets)
    assert res.tables["datasets"].source.str.contains("stand-in").all()
    models = res.tables["models"]
    assert len(models) == len(s.methods) * len(s.datasets) * R
    assert models.groupby(["method", "dataset"]).seed.nunique().eq(R).all()          # a seed per replicate
    assert models.groupby(["dataset", "replicate"]).seed.nunique().eq(1).all()       # methods share it (paired)
    assert (models.k_final == res.values["k_end"]).all() and np.isfinite(models.nelbo).all()
    steps, k, end = res.data["schedule"]
    assert all(x.shape[1] == 3 for x in res.data["samples"].values())
    assert k[0] == s.hidden and k[-1] == res.values["k_end"] and k[end - 1] == res.values["k_end"]
    res.export_all()
    assert (tables / "40_sae_data_models" / "training_wide.csv").exists()
    assert "models converged" in res.values["converged_line"]


def test_chapter41_dead_units_revival_ratio_auxk_and_explorer(cfg, tables):
    res = dead_neurons.run(cfg)
    s = cfg.sae
    thr = res.tables["thresholds"]
    assert set(thr.n_models) == {R} and len(thr) == len(s.methods) * len(s.datasets) * len(
        set(s.dead_fractions))
    # a unit dead at one threshold is dead at every larger one: per model the curve never falls
    dead = res.tables["dead"]
    for _, g in dead.groupby(["method", "dataset", "replicate", "when"]):
        assert np.all(np.diff(g.sort_values("threshold").dead_rate) >= 0)
    rev = res.tables["revival_per_model"]
    assert (rev.n_revived <= rev.n_dead_end).all() and (rev.n_ever_revived >= rev.n_revived).all()
    # the revival count agrees with the dead rates at both moments: dead_last = dead_end - revived + died
    assert (rev.n_dead_last == rev.n_dead_end - rev.n_revived + rev.n_died).all()
    assert set(res.tables["ratios"].method) == {"topk", "l1"}
    assert set(res.tables["auxk"].outcome) <= set(
        ["contradicts intrinsic", "consistent with intrinsic", "not at equal reconstruction",
         "not at equal sparsity", "inconclusive"])
    ex = res.data["explorer"]
    key = ex.data["models"][0]
    assert len(ex.data["models"]) == len(s.methods) * len(s.datasets)
    assert np.asarray(ex.data["firing"][key]).shape == (s.n_snapshots, s.hidden)
    html = ex.to_html()
    assert "circuitnbSae" in html and "http" not in html
    res.export_all()
    assert (tables / "41_sae_dead_neurons" / "auxk.csv").exists()
    assert 0 <= res.values["revived_total"] <= res.values["dead_end_total"]
    assert res.values["primary_threshold"] == 0.0


def test_the_dead_threshold_reading_applies_to_the_chapter_and_the_scorecard_alike(cfg, tables):
    # One config gives one reading everywhere: 'rare' (fires on < 1% of held-out images) moves chapter 41's
    # glued rates, the scorecard rows and the readings table's primary flag together, from the same models.
    rare = C.with_overrides(cfg, readings=["dead_threshold=rare"])
    assert sae_claims.threshold(cfg) == 0.0 and sae_claims.threshold(rare) == 0.01
    by_reading = {}
    for c in (cfg, rare):
        res = dead_neurons.run(c)
        final = res.tables["dead"].query("when == 'final' and method == 'topk' and dataset == 'dsprites'")
        at_tau = final[np.isclose(final.threshold, sae_claims.threshold(c))].dead_rate.mean()
        assert res.values["dead_topk_dsprites"] == pytest.approx(100 * at_tau)
        out = sae_claims.claims(c, sae_common.dead_frame(c), sae_common.model_frame(c), sae_common.all_analyses(c))
        row = next(r for r in out["rows"] if r["id"] == "sae_dead_topk_dsprites")
        assert row["ours"] == pytest.approx(at_tau)
        primary = out["readings"].query("primary and id == 'sae_dead_topk_dsprites'")
        assert list(primary.threshold) == [sae_claims.threshold(c)]
        by_reading[c.analysis.readings] = at_tau
    assert by_reading[("dead_threshold=rare",)] >= by_reading[()]      # a larger threshold never kills fewer
    with pytest.raises(C.ConfigError, match="dead_threshold 0.01, which is not one of 'sae.dead_fractions'"):
        C.with_overrides(cfg, readings=["dead_threshold=rare"], sae=dict(dead_fractions=[0.0, 0.05]))


def test_analysis_is_cached_per_model(cfg):
    m = sae_common.models(cfg)[("topk", "dsprites")][0]
    a = sae_common.analysis(cfg, m)
    assert list(a["schedule"].step) == a["steps"] and a["schedule_end"] in a["steps"]
    from circuitnb.core import results
    path = results.result_path(cfg, "sae_analysis", [m.meta["key"]], sae_common.READS,
                               data=sae_claims.sae_data(cfg, "dsprites", "analysis").images, dataset="dsprites")
    assert path.exists()


def test_chapter42_measures_and_scorecard(cfg, tables):
    res = interpretability.run(cfg)
    card, paper = res.tables["scorecard"], sae_claims.paper()
    assert list(card.id) == list(paper.id)
    assert np.allclose(card.paper, paper.paper_value.astype(float))                  # read from the data file
    assert set(card.verdict) <= set(verdicts.VERDICTS) - {"not measured"}
    labelled = card[card.verdict.isin(verdicts.LABELS)]
    assert (labelled.reason.str.len() > 10).all()
    judged = card[card.id.str.startswith(("sae_dead_", "sae_ratio_", "sae_revived"))]
    assert len(judged) == 7 and set(judged.verdict) <= set(verdicts.OUTCOMES)
    assert card.set_index("id").loc["sae_k_start", "ours"] == cfg.sae.hidden
    # the Top-k dSprites dead rate in the scorecard is the mean of the per-model rates, recomputed here
    dead = sae_common.dead_frame(cfg)
    sub = dead[(dead.method == "topk") & (dead.dataset == "dsprites") & (dead.threshold == 0) & (dead.when == "final")]
    assert card.set_index("id").loc["sae_dead_topk_dsprites", "ours"] == pytest.approx(sub.dead_rate.mean())
    assert res.tables["readings"].primary.sum() == 4
    res.show("scorecard")
    assert len(pd.read_csv(tables / "42_sae_interpretability" / "scorecard.csv")) == len(paper)
    assert res.values["n_claims"] == len(paper)


def sae_numbers() -> set[str]:
    """The abstract's numbers as written (notes: "34.4", "1.8") and as stored (fractions: "0.344"), at least 2
    significant digits with a decimal point (shorter ones, "0.9", occur by chance)."""
    p = pd.read_csv(sae_claims.PAPER, dtype=str).fillna("")
    texts = [*p.paper_value, *p.paper_sd] + [m for note in p.note for m in re.findall(r"\d*\.\d+", note)]
    return {t for t in texts if "." in t and "e" not in t.lower() and len(t.replace(".", "").lstrip("0")) >= 2}


def test_no_sae_paper_numbers_typed_in_part_four():
    numbers = sae_numbers()
    assert {"0.344", "34.4", "62.7", "90.6", "1.8", "2.2", "0.044"} <= numbers
    pat = re.compile(r"(?<![\d.])(" + "|".join(re.escape(n) for n in sorted(numbers, key=len, reverse=True))
                     + r")(?!\d)")
    files = [*ROOT.glob("circuitnb/*/sae/*.py"), *ROOT.glob("book/4[0-9]_*.md"), *ROOT.glob("book/4[0-9]_*.ipynb")]
    assert any(f.name == "claims.py" for f in files) and any(f.suffix == ".md" for f in files)
    found = [f"{f.relative_to(ROOT)}:{i}: {m.group(1)}" for f in files
             for i, line in enumerate(f.read_text(encoding="utf-8").splitlines(), 1) for m in pat.finditer(line)]
    assert not found, "abstract numbers typed in Part IV (read them from claims_sae.csv):\n" + "\n".join(found)
