"""The scorecard covers every claim of the paper; verdict rules, audit, result cache, phase segmentation."""
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from circuitnb.measures import claims
from circuitnb.core import results
from circuitnb.chapters import common, scorecard, temporal

SHARED_CLAIMS = Path(__file__).resolve().parents[2] / "shared" / "paper" / "claims.csv"


def test_claims_file_is_the_papers():
    paper = claims.load()
    assert len(paper) == 75 and paper["id"].is_unique
    if not SHARED_CLAIMS.exists():
        pytest.skip(f"no shared claims file at {SHARED_CLAIMS} to compare the package's copy with")
    assert claims.CLAIMS_CSV.read_bytes() == SHARED_CLAIMS.read_bytes()     # copied verbatim


def test_verdict_rules():
    paper = claims.load()
    rows = [claims.row("acc_syn_100", 88.0, 87.0, 89.0),                    # inside the CI
            claims.row("acc_syn_300", 90.0, 89.9, 90.1),                    # 8% off: within tolerance
            claims.row("acc_syn_600", 50.0, 49.0, 51.0),                    # far off
            claims.row("cc_syn_100", 0.5, comparable=False, why="scale"),
            claims.row("t4_cc_cel", 0.1, kind="direction", holds=False),
            claims.row("acc_cel_300", 92.85, 92.5, 93.1, complement=100),    # error 7.15% vs 4.1%: not close
            claims.row("acc_cel_900", 99.62, 99.55, 99.70, complement=100),  # error 0.38% vs 0.4%: close
            claims.row("cc_ratio_600", 1.04, 1.004, 1.079, null=1.0),         # within 10%, but the other way
            claims.row("cc_ratio_900", 1.01, 0.95, 1.07, null=1.0)]           # CI holds 1: judged by value
    card = claims.scorecard(rows, paper).set_index("id")
    assert card.loc["acc_syn_100", "verdict"] == "reproduced"
    assert card.loc["acc_syn_300", "verdict"] == "reproduced"
    assert card.loc["acc_syn_600", "verdict"] == "contradicted"
    assert card.loc["cc_syn_100", "verdict"] == "not comparable"
    assert card.loc["t4_cc_cel", "verdict"] == "contradicted"
    assert card.loc["acc_cel_100", "verdict"] == "not measured"
    assert card.loc["acc_cel_300", "verdict"] == "contradicted"
    assert card.loc["acc_cel_900", "verdict"] == "reproduced"
    assert card.loc["cc_ratio_600", "verdict"] == "contradicted"
    assert card.loc["cc_ratio_900", "verdict"] == "reproduced"
    with pytest.raises(ValueError, match="does not have"):
        claims.scorecard([claims.row("nope", 1.0)], paper)
    with pytest.raises(ValueError, match="why"):
        claims.row("cc_syn_100", 0.5, comparable=False)
    with pytest.raises(ValueError, match="holds"):
        claims.row("t4_cc_cel", 0.5, kind="direction")


def test_scorecard_covers_every_claim(tiny_cfg, celeba_root, monkeypatch):
    monkeypatch.setenv("CIRCUITNB_CELEBA", str(celeba_root))
    from circuitnb.core import config
    cfg = config.with_overrides(tiny_cfg, n_samples=8, n_bootstrap=100)
    models = common.load_models(cfg)
    sweeps = common.load_sweeps(cfg, models)
    rows = scorecard.measure_all(cfg, models, sweeps)
    card = claims.scorecard(rows)
    assert set(card["id"]) == set(claims.load()["id"])
    assert "not measured" not in set(card.verdict), card[card.verdict == "not measured"]["id"].tolist()
    assert card.loc[card.verdict != "not comparable", "ours"].notna().all()
    n = card.set_index("id").loc["n_per_condition", "ours"]
    assert n == 8


def test_audit_flags_the_papers_inconsistencies():
    audit = scorecard.audit(claims.load()).set_index("check")
    d_row = audit.loc["Table 4 circuit complexity: Cohen's d from the reported means and SDs"]
    assert not d_row.consistent
    assert "d = 0.27" in d_row.recomputed
    assert bool(audit.loc["Table 1 t=100: ratio from the reported means", "consistent"])
    power = audit[audit.index.str.startswith("§1.1")].iloc[0]
    assert "power = 0.80" in power.recomputed and not power.consistent


def test_result_cache_reuses_and_repairs(tiny_cfg):
    class M:
        meta = {"key": "m1"}
    calls = []
    compute = lambda: calls.append(1) or {"x": np.arange(3)}   # noqa: E731
    a = results.cached(tiny_cfg, "thing", M(), compute, t=(1, 2))
    b = results.cached(tiny_cfg, "thing", M(), compute, t=(1, 2))
    assert len(calls) == 1 and (a["x"] == b["x"]).all()
    results.cached(tiny_cfg, "thing", M(), compute, t=(1, 3))        # other settings: recomputed
    assert len(calls) == 2
    path = results.result_path(tiny_cfg, "thing", ["m1"], t=(1, 2))
    path.write_bytes(b"not a pickle")
    results.cached(tiny_cfg, "thing", M(), compute, t=(1, 2))
    assert len(calls) == 3 and not list(path.parent.glob("*.tmp"))


def test_segment_recovers_planted_phases():
    x = np.r_[np.zeros(5), np.ones(4) * 3, np.ones(6) * -2][:, None] + 0.01 * np.random.default_rng(0).normal(size=(15, 1))
    starts, sse = temporal.segment(x, 3)
    assert starts == [5, 9] and sse < 0.01
    prof = pd.DataFrame({"a": x[:, 0], "b": -x[:, 0]}, index=np.arange(15)[::-1] * 60)   # t descending
    table = temporal.phases(prof, max_k=5)
    chosen = table[table.chosen].iloc[0]
    assert chosen.k == 3
    with pytest.raises(ValueError, match="'k'"):
        temporal.segment(x, 0)
