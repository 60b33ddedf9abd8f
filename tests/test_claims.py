"""The scorecard covers every claim of the paper; verdict rules, audit, result cache, phase segmentation."""
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from circuitnb.analysis import phases
from circuitnb.chapters.diffusion import scorecard
from circuitnb.core import results
from circuitnb.core.cache import CacheWarning
from circuitnb.measures import audit, claims, verdicts

SHARED_CLAIMS = Path(__file__).resolve().parents[2] / "shared" / "paper" / "claims.csv"


def test_claims_file_is_the_papers():
    paper = claims.load()
    assert len(paper) == 75 and paper["id"].is_unique
    if not SHARED_CLAIMS.exists():
        pytest.skip(f"no shared claims file at {SHARED_CLAIMS} to compare the package's copy with")
    assert claims.CLAIMS_CSV.read_bytes() == SHARED_CLAIMS.read_bytes()     # copied verbatim


def test_scorecard_covers_every_claim(tiny_cfg, celeba_root, monkeypatch, tmp_path):
    monkeypatch.setenv("CIRCUITNB_CELEBA", str(celeba_root))
    monkeypatch.setenv("CIRCUITNB_TABLES", str(tmp_path))
    from circuitnb.core import config
    cfg = config.with_overrides(tiny_cfg, n_samples=8, n_bootstrap=100, replicates=2)
    res = scorecard.run(cfg)
    card = res.tables["scorecard"]
    assert list(card["id"]) == list(claims.load()["id"])                      # every claim, paper order
    assert "not measured" not in set(card.verdict), card[card.verdict == "not measured"]["id"].tolist()
    assert set(card.verdict) <= set(verdicts.VERDICTS)
    judged = card[card.verdict.isin(verdicts.OUTCOMES)]
    assert judged.ours.notna().all() and len(judged) > 0
    assert {"verdict_r0", "verdict_r1", "replicates_disagree", "reason", "unit"} <= set(card.columns)
    n = card.set_index("id").loc["n_per_condition"]
    assert n.ours == 8 and n.verdict == "by design"
    res.export_all()
    assert (tmp_path / "10_scorecard" / "scorecard.csv").exists()


def test_audit_flags_the_papers_inconsistencies():
    checks = audit.audit(claims.load()).set_index("check")
    d_row = checks.loc["Table 4 circuit complexity: Cohen's d from the reported means and SDs"]
    assert not d_row.consistent
    assert "d = 0.27" in d_row.recomputed
    assert bool(checks.loc["Table 1 t=100: ratio from the reported means", "consistent"])
    power = checks[checks.index.str.startswith("§1.1: power")].iloc[0]
    assert "power = 0.80" in power.recomputed and not power.consistent
    mde = checks[checks.index.str.startswith("§1.1: the smallest effect")].iloc[0]
    assert "minimum detectable d = 0.40" in mde.recomputed


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
    with pytest.warns(CacheWarning, match=f"{path.name} does not match its sha256"):       # named, never loaded
        results.cached(tiny_cfg, "thing", M(), compute, t=(1, 2))
    assert len(calls) == 3 and not list(path.parent.glob("*.tmp"))


def test_segment_recovers_planted_phases():
    noise = 0.01 * np.random.default_rng(0).normal(size=(15, 1))
    x = np.r_[np.zeros(5), np.ones(4) * 3, np.ones(6) * -2][:, None] + noise
    starts, sse = phases.segment(x, 3)
    assert starts == [5, 9] and sse < 0.01
    prof = pd.DataFrame({"a": x[:, 0], "b": -x[:, 0]}, index=np.arange(15)[::-1] * 60)   # t descending
    table = phases.phases(prof, max_k=5)
    chosen = table[table.chosen].iloc[0]
    assert chosen.k == 3
    with pytest.raises(ValueError, match="'k'"):
        phases.segment(x, 0)
