"""Part V's chapters 50-52 as package functions on tiny replicate MRI VAEs (smoke profile, the phantom): tables,
CSVs, glued values (every one the pages cite), the explorer, and the scorecard against claims_mri.csv (a verdict or
"not comparable" with a reason for every claim); and no number of the abstract typed into Part V's code or pages."""
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import circuitnb.core.config as C
from circuitnb.analysis.mri import claims as mri_claims
from circuitnb.analysis.mri import common as mri_common
from circuitnb.chapters.mri import circuits, data_models, detection
from circuitnb.measures import verdicts

ROOT = Path(__file__).resolve().parents[1]
R = 2
GLUE = re.compile(r"\{glue:text\}`([^`]+)`")


@pytest.fixture(scope="module")
def cfg(tmp_path_factory):
    return C.load("smoke", mri=dict(replicates=R), device="cpu", cache_dir=str(tmp_path_factory.mktemp("cache")))


@pytest.fixture
def tables(tmp_path, monkeypatch):
    monkeypatch.setenv("CIRCUITNB_TABLES", str(tmp_path / "tables"))
    return tmp_path / "tables"


@pytest.fixture(scope="module")
def results(cfg):
    return {m.CHAPTER: m.run(cfg) for m in (data_models, detection, circuits)}


def test_every_glued_name_of_part_five_exists(results):
    for chapter, res in results.items():
        text = (ROOT / "book" / f"{chapter}.md").read_text(encoding="utf-8")
        cited = set(GLUE.findall(text))
        assert cited and not cited - set(res.values), (chapter, sorted(cited - set(res.values)))


def test_chapter50_data_models_and_convergence(cfg, results, tables):
    res = results["50_mri_data_models"]
    m = cfg.mri
    d = res.tables["data"].iloc[0]
    assert d.source == "phantom" and "stand-in" in res.values["source_line"]
    assert d.heldout_lesion_slices > 0 and d.heldout_healthy_slices > 0 and d.train_healthy_slices > 0
    models = res.tables["models"]
    assert len(models) == len(m.kinds) * R
    assert models.groupby("kind").seed.nunique().eq(R).all()                  # a seed per replicate
    assert models.groupby("replicate").seed.nunique().eq(1).all()             # kinds share it (paired)
    assert np.isfinite(models.nelbo).all()
    assert res.values["params_attention"] > res.values["params_no_attention"]
    assert res.data["samples"].shape[1:] == (4, m.image_size, m.image_size)
    res.export_all()
    assert (tables / "50_mri_data_models" / "models.csv").exists()
    assert "models converged" in res.values["converged_line"]


def test_chapter51_baselines_contrasts_and_calibration(cfg, results, tables):
    res = results["51_mri_detection"]
    base = res.tables["baselines"]
    assert set(base.kind) == set(cfg.mri.kinds) and set(base.n_models) == {R}
    assert base["mean"].between(0, 1).all()                                  # AUCs, PR AUCs and Dice
    assert set(res.tables["readings"].pixel_reading) == {"error", "standardized"}
    con = res.tables["contrasts"]
    assert len(con) == 3 * 4 and set(con.outcome) <= {"helps", "hurts", "no difference shown", "undefined"}
    # a contrast is the mean of the per-replicate differences of the per-model values
    det = res.tables["per_model"]
    a = mri_common.primary(det[det.kind == "attention"], "slice_roc_auc").sort_values("replicate").value.to_numpy()
    b = mri_common.primary(det[det.kind == "non_bayesian"], "slice_roc_auc", pixel="error").sort_values(
        "replicate").value.to_numpy()
    row = con[(con.contrast == "Bayesian against deterministic") & (con.measure == "slice_roc_auc")].iloc[0]
    assert row.difference == pytest.approx(np.mean(a - b))
    cal = res.tables["calibration_per_model"]
    nb = cal[cal.kind == "non_bayesian"]
    assert not nb.varies.any() and nb.spearman.isna().all()                  # one shared variance: no ordering
    bayes = cal[(cal.kind == "attention") & (cal.uncertainty == "total")]
    assert bayes.varies.all() and bayes.spearman.between(-1, 1).all() and (bayes.ence >= 0).all()
    rel = res.tables["reliability"]
    assert (rel.groupby(["kind", "replicate", "uncertainty"]).n.sum() == cal.n_pixels.iloc[0]).all()
    res.export_all()
    assert (tables / "51_mri_detection" / "contrasts.csv").exists()
    assert 0 < res.values["chance_pr"] < 1


def test_chapter52_heads_ablation_scorecard_and_explorer(cfg, results, tables):
    res = results["52_mri_circuits"]
    ent = res.tables["entropy_per_model"]
    assert set(ent.kind) == {"attention", "non_bayesian"}                    # the kinds with attention
    k = len(mri_common.mri_split(cfg).heldout.images[0, 0]) // 2 ** len(cfg.mri.widths)
    assert ent.entropy.between(0, np.log2(k * k) + 1e-6).all() and ent.specialization.between(0, 1).all()
    abl = res.tables["ablation_per_model"]
    per_model = abl.groupby(["kind", "replicate"]).size()
    assert (per_model == 1 + 2 * (cfg.mri.heads + 1)).all()             # intact, every head, every layer
    assert (abl[abl.target == "none"].delta_auc == 0).all()
    assert set(res.tables["top_heads"].target) <= set(abl[abl["head"] >= 0].target)
    card, paper = res.tables["scorecard"], mri_claims.paper()
    assert list(card.id) == list(paper.id)
    assert np.allclose(card.paper, paper.paper_value.astype(float))         # read from the data file
    assert set(card.verdict) == {"not comparable"}                          # the phantom is not BraTS2020
    assert card.reason.str.contains("phantom").all() and card.ours.between(0, 1).all()
    assert np.isfinite(card.ci_low).all()                                   # our interval is shown beside
    primary = res.tables["readings"][res.tables["readings"].primary]
    assert len(primary) == 2 and np.allclose(primary.ours.to_numpy(), card.ours.to_numpy())
    ex = res.data["explorer"]
    assert ex.data["models"] == list(cfg.mri.kinds) and set(ex.data["heads"]["attention"]) == {
        "encoder.attn", "decoder.attn"} and not ex.data["heads"]["no_attention"]
    html = ex.to_html()
    assert "circuitnbMri" in html and "http" not in html
    res.show("scorecard")
    assert len(pd.read_csv(tables / "52_mri_circuits" / "scorecard.csv")) == len(paper)
    assert res.values["n_not_comparable"] == len(paper)


def test_scorecard_judges_the_aucs_given_a_brats_folder(cfg):
    # with mri.root set the same rows are judged by the equivalence rule, not labelled
    paper = mri_claims.paper().set_index("id").paper_value.astype(float)
    det = pd.DataFrame([dict(measure=m, value=paper[cid] + d) for cid, m in mri_claims.CLAIM_MEASURES.items()
                        for d in (-0.01, 0.0, 0.01)])
    brats = C.with_overrides(cfg, **{"mri.root": "/somewhere/BraTS"})
    assert mri_claims.stand_in_reason(brats) == ""
    rows = [verdicts.measured_row(cid, verdicts.replicate_ci(det[det.measure == m].value), unit="AUC")
            for cid, m in mri_claims.CLAIM_MEASURES.items()]
    card = mri_claims.scorecard(rows)
    assert set(card.verdict) == {"reproduced"}                              # within the margin, tight interval


def mri_numbers() -> set[str]:
    """The abstract's numbers as written ("0.83") with at least 2 significant digits and a decimal point."""
    p = pd.read_csv(mri_claims.PAPER, dtype=str).fillna("")
    texts = [*p.paper_value, *p.paper_sd] + [m for note in p.note for m in re.findall(r"\d*\.\d+", note)]
    return {t for t in texts if "." in t and "e" not in t.lower() and len(t.replace(".", "").lstrip("0")) >= 2}


def test_no_mri_paper_numbers_typed_in_part_five():
    numbers = mri_numbers()
    assert "0.83" in numbers
    pat = re.compile(r"(?<![\d.])(" + "|".join(re.escape(n) for n in sorted(numbers, key=len, reverse=True))
                     + r")(?!\d)")
    # The phantom's anatomy (circuitnb/data/mri/phantom.py) draws a brain radius from a range that starts at the
    # same two digits by chance; it is geometry in head units, not the abstract's AUC, so it is not searched.
    files = [f for f in ROOT.glob("circuitnb/*/mri/*.py") if f.name != "phantom.py"]
    files += [*ROOT.glob("book/5[0-9]_*.md"), *ROOT.glob("book/5[0-9]_*.ipynb"),
              ROOT / "tests" / "test_mri_analysis.py"]
    assert any(f.name == "claims.py" for f in files) and any(f.suffix == ".md" for f in files)
    found = [f"{f.relative_to(ROOT)}:{i}: {m.group(1)}" for f in files
             for i, line in enumerate(f.read_text(encoding="utf-8").splitlines(), 1) for m in pat.finditer(line)]
    assert not found, "abstract numbers typed in Part V (read them from claims_mri.csv):\n" + "\n".join(found)


def test_explorer_redraws_offline(results, tmp_path):
    """Each control of the MRI explorer redraws it in headless Chromium, with no network and no console error."""
    from circuitnb.publish import browser
    if browser.find_chromium() is None:
        pytest.skip("no Chromium (Debian: apt-get install chromium)")
    ex = results["52_mri_circuits"].data["explorer"]
    page = tmp_path / "mri.html"
    page.write_text(f"<!doctype html><html><body>{ex.to_html()}</body></html>", encoding="utf-8")
    sel = "document.querySelector('.circuitnb-explorer[data-kind=\"mri\"]')"
    snapshot = f"(() => {{ const r = {sel}; return [r.dataset.state, [...r.querySelectorAll('canvas')].map(" \
               "c => c.toDataURL())]; })()"
    with browser.Browser(root=tmp_path) as b:
        rep = b.load(page, settle=1.0)
        assert rep.external == [] and rep.errors == [], (rep.external, rep.errors)
        n_heads = 2 * results["52_mri_circuits"].values["heads_per_layer"]
        assert b.evaluate(f"{sel}.querySelectorAll('canvas').length") == 5 + n_heads
        for control, pick in (("slice", "el.value = 1"), ("modality", "el.value = 3"),
                              ("model", "el.value = 'no_attention'")):
            before = b.evaluate(snapshot)
            b.evaluate(f"(() => {{ const el = {sel}.querySelector('[data-control=\"{control}\"]'); {pick}; "
                       "el.dispatchEvent(new Event(el.tagName === 'INPUT' ? 'input' : 'change')); })()")
            after = b.evaluate(snapshot)
            assert after[0] != before[0] and after[1] != before[1], control
        assert b.evaluate(f"{sel}.querySelectorAll('canvas').length") == 5        # no attention, no head maps
        late = b.report(rep.url, tmp_path)
        assert late.external == [] and late.errors == [], (late.external, late.errors)
