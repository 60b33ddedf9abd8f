"""Part III's comparison statistics against known answers on hand-built inputs: Holm-Sidak
counts on constructed p-values, Pearson CIs on data with a known r, the same-data null on constructed models,
reference detection, the downstream AUC; and the claims file's rows."""
import numpy as np
import pandas as pd
import pingouin as pg
import pytest
from scipy import stats as sps

from circuitnb.analysis.tabular import claims as tab_claims
from circuitnb.analysis.tabular.common import downstream_auc
from circuitnb.analysis.tabular.compare import correlation, detected, domain_contrast, pairwise
from circuitnb.measures import verdicts


def frame(values: dict) -> pd.DataFrame:
    """{(kind, dataset): [value per replicate]} -> the per-model frame (measure "m")."""
    return pd.DataFrame([dict(kind=k, dataset=ds, replicate=r, measure="m", value=v)
                         for (k, ds), vals in values.items() for r, v in enumerate(vals)])


def holm_sidak(p):
    """Holm-Sidak step-down adjusted p-values written out from the definition (Holm 1979 with Sidak's step)."""
    p = np.asarray(p, float)
    order, m = np.argsort(p), len(p)
    adj, running = np.empty(m), 0.0
    for i, j in enumerate(order):
        running = max(running, 1 - (1 - p[j]) ** (m - i))
        adj[j] = min(1.0, running)
    return adj


def test_pairwise_is_welch_with_holm_sidak_over_the_family():
    rng = np.random.default_rng(0)
    vals = {("a", "t1"): 10 + rng.normal(0, 0.1, 4), ("b", "t1"): 0 + rng.normal(0, 0.1, 4),
            ("c", "t1"): 0.05 + rng.normal(0, 0.1, 4), ("a", "t2"): rng.normal(0, 1, 4),
            ("b", "t2"): rng.normal(0, 1, 4), ("c", "t2"): 30 + rng.normal(0, 0.1, 4)}
    out = pairwise(frame(vals), "m", kinds=["a", "b", "c"])
    assert len(out) == 6 and list(out.a[:3]) == ["a", "a", "b"]
    welch = [sps.ttest_ind(vals[(a, ds)], vals[(b, ds)], equal_var=False).pvalue for ds, a, b in
             zip(out.dataset, out.a, out.b)]
    np.testing.assert_allclose(out.p, welch)
    np.testing.assert_allclose(out.p_holm_sidak, holm_sidak(welch), rtol=1e-5)
    # a-b and a-c on t1, a-c and b-c on t2 are huge; b-c on t1 and a-b on t2 are noise.
    assert out.reject.sum() == 4
    assert set(zip(out.dataset[out.reject], out.a[out.reject], out.b[out.reject])) == {
        ("t1", "a", "b"), ("t1", "a", "c"), ("t2", "a", "c"), ("t2", "b", "c")}


def test_holm_sidak_count_on_constructed_p_values():
    p = np.array([0.001, 0.0125, 0.02, 0.3, 0.04])
    adj = holm_sidak(p)
    # By hand: m = 5; 1-(1-.001)^5 = .004990, 1-(1-.0125)^4 = .04907, then .02 -> 1-(.98)^3 = .0588 > .05.
    assert adj[0] == pytest.approx(0.004990, abs=1e-6) and adj[1] == pytest.approx(0.049070, abs=1e-6)
    assert (adj <= 0.05).sum() == 2
    from statsmodels.stats.multitest import multipletests
    assert (multipletests(p, method="holm-sidak")[0] == (adj <= 0.05)).all()


def test_undefined_pairs_stay_out_of_the_family():
    out = pairwise(frame({("a", "t"): [1.0], ("b", "t"): [2.0, 3.0], ("c", "t"): [5.0, 5.0]}), "m")
    assert out.p.isna().sum() == 2 and not out.reject[out.p.isna()].any()           # n = 1 on a side
    assert out.p.notna().sum() == 1


def test_correlation_recovers_a_known_r_with_fisher_intervals():
    rng = np.random.default_rng(1)
    rho, n = 0.6, 3000
    x = rng.standard_normal(n)
    y = rho * x + np.sqrt(1 - rho ** 2) * rng.standard_normal(n)
    c = correlation(x, y)
    assert c["ci_low"] < rho < c["ci_high"] and c["eq_low"] > c["ci_low"] and c["eq_high"] < c["ci_high"]
    ref = pg.corr(x, y)
    assert c["r"] == pytest.approx(float(ref["r"].iloc[0]))
    assert c["ci_low"] == pytest.approx(ref["CI95"].iloc[0][0], abs=0.006)
    # Fisher z by hand for the 90% interval
    z, se = np.arctanh(c["r"]), 1 / np.sqrt(n - 3)
    assert c["eq_low"] == pytest.approx(np.tanh(z - 1.6448536 * se), abs=1e-6)
    assert c["estimate"].ci(0.90) == pytest.approx((c["eq_low"], c["eq_high"]))


def test_correlation_undefined_for_too_few_or_constant_values():
    assert np.isnan(correlation([1, 2, 3], [1, 2, 4])["r"])
    assert np.isnan(correlation([1, 2, 3, 4, 5], [1, 1, 1, 1, 1])["r"])
    c = correlation([1, 2, np.nan, 4, 5, 6], [2, 4, 5, 8, 10, 12])
    assert c["n"] == 5 and c["r"] == pytest.approx(1.0)


def test_domain_contrast_against_the_same_data_null():
    # Image models at 1.0, 1.1, 0.9; tabular seed r on three tables at half of that: ratio 0.5, far outside
    # the seed-to-seed null (ratios between two seeds on the same data, about 0.8 to 1.25).
    img = frame({("vae", "shapes"): [1.0, 1.1, 0.9]})
    tab = frame({("vae", t): [0.5 * v for v in (1.0, 1.1, 0.9)] for t in ("t1", "t2", "t3")})
    c = domain_contrast(tab, img, by=["kind", "measure"])
    row = c.iloc[0]
    assert row.kind == "vae" and row.measure == "m" and row.contrast == "ratio"
    assert row.effect == pytest.approx(0.5) and row.n_pairs == 3 and row.n_tab == 3 and row.n_img == 3
    assert row.null_low == pytest.approx(0.9 / 1.1) and row.null_high == pytest.approx(1.1 / 0.9)
    assert bool(row.beyond_null)
    # The same seeds on tables as on images, in another order: the contrast is inside the null.
    tab2 = frame({("vae", "t1"): [1.1, 0.9, 1.0]})
    row2 = domain_contrast(tab2, img, by=["kind", "measure"]).iloc[0]
    assert not bool(row2.beyond_null) and row2.null_low <= row2.effect <= row2.null_high


def test_domain_contrast_compares_only_shared_groups():
    img = frame({("vae", "shapes"): [1.0, 1.2]})
    tab = frame({("vae", "t"): [0.4, 0.5], ("dip_vae_ii", "t"): [0.1, 0.2]})
    c = domain_contrast(tab, img, by=["kind", "measure"])
    assert list(c.kind) == ["vae"]


def test_detected_counts_same_pair_same_direction():
    ref = pd.DataFrame(dict(dataset=["t"] * 3, a=["a", "a", "b"], b=["b", "c", "c"], diff=[1.0, -2.0, 3.0],
                            p_holm_sidak=[0.01, 0.01, 0.01], reject=[True, True, True]))
    test = ref.assign(diff=[0.5, 2.0, 1.0], reject=[True, True, False])          # second: wrong direction
    d = detected(test, ref)
    assert (d["n_reference"], d["n_detected"], d["n_test"], d["n_pairs"]) == (3, 1, 2, 3)
    assert list(d["table"].detected) == [True, False, False]


def test_downstream_auc_known_answers():
    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, 400)
    z = np.c_[y + 0.01 * rng.standard_normal(400), rng.standard_normal(400)]
    assert downstream_auc(z[:200], y[:200], z[200:], y[200:]) == pytest.approx(1.0)
    noise = rng.standard_normal((400, 2))
    assert abs(downstream_auc(noise[:200], y[:200], noise[200:], y[200:]) - 0.5) < 0.12
    assert np.isnan(downstream_auc(z[:10], np.zeros(10, int), z[10:20], y[10:20]))


def test_claims_file_rows_and_margins_are_valid():
    paper, margins = tab_claims.paper(), tab_claims.margins()
    assert list(paper.id) == list(margins.id) and paper.id.str.startswith("tab_").all()
    assert paper.paper_value.notna().all() and paper.note.str.contains("abstract").all()
    assert paper.set_index("id").loc["tab_spec_auc_r", "p_value"] == "<.001"
    # Every claim gets a row (a verdict, "by design" or "not comparable" with a reason) from measured rows.
    rows = [verdicts.measured_row(cid, verdicts.replicate_ci([0.1, 0.2, 0.3])) for cid in paper.id]
    card = tab_claims.scorecard(rows)
    assert list(card.id) == list(paper.id) and set(card.verdict) <= set(verdicts.OUTCOMES)


def test_no_tabular_paper_numbers_typed_in_part_three():
    from pathlib import Path
    root = Path(__file__).resolve().parents[1]
    numbers = {v for v in tab_claims.paper().paper_value.astype(str) if "." in v}
    assert {"0.043", "0.133", "-0.886", "0.46"} <= numbers | {"0.46"}
    files = [*root.glob("circuitnb/*/tabular/*.py"), *root.glob("book/3[0-9]_*.md")]
    assert files
    texts = {str(f): f.read_text() for f in files}
    for n in ("0.043", "0.133", "0.886", "0.460", "0.46"):
        assert not [f for f, t in texts.items() if n in t], n
