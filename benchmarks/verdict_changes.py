"""Which verdicts changed between two scorecards, and by how much.

    python benchmarks/verdict_changes.py before.csv after.csv --out changes.csv

``before`` may be session 2's scorecard (columns id, verdict, ours, ci_low, ci_high; verdicts
"reproduced"/"contradicted"/"not comparable"), ``after`` today's (same columns, three outcomes plus
labels). A change's size: reproduced <-> contradicted counts 2, any other change 1; ties are broken
by how far our value moved, relative to the paper's value.
"""
from __future__ import annotations

import argparse
import sys

import numpy as np
import pandas as pd

STEP = {frozenset(("reproduced", "contradicted")): 2}


def changes(before: pd.DataFrame, after: pd.DataFrame) -> pd.DataFrame:
    m = before.merge(after, on="id", suffixes=("_before", "_after"), how="outer")
    num = lambda c: pd.to_numeric(m[c], errors="coerce")       # noqa: E731
    paper = num("paper_after") if "paper_after" in m else num("paper")
    moved = (num("ours_after") - num("ours_before")).abs() / paper.abs().replace(0, np.nan)
    size = [0 if a == b else STEP.get(frozenset((a, b)), 1) for a, b in zip(m.verdict_before, m.verdict_after)]
    out = pd.DataFrame(dict(id=m.id, verdict_before=m.verdict_before, verdict_after=m.verdict_after,
                            ours_before=num("ours_before"), ours_after=num("ours_after"),
                            ci_before=[f"[{lo:.4g}, {hi:.4g}]"
                                       for lo, hi in zip(num("ci_low_before"), num("ci_high_before"))],
                            ci_after=[f"[{lo:.4g}, {hi:.4g}]"
                                      for lo, hi in zip(num("ci_low_after"), num("ci_high_after"))],
                            paper=paper, relative_move=moved, size=size,
                            reason_after=m.get("reason", m.get("reason_after"))))
    return out.sort_values(["size", "relative_move"], ascending=False).reset_index(drop=True)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("before")
    p.add_argument("after")
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    before, after = pd.read_csv(args.before), pd.read_csv(args.after)
    if "paper" not in before and "paper_value" in before:
        before = before.rename(columns={"paper_value": "paper"})
    table = changes(before, after)
    table.to_csv(args.out, index=False)
    print("before:", before.verdict.value_counts().to_dict())
    print("after: ", after.verdict.value_counts().to_dict())
    changed = table[table["size"] > 0]
    print(f"{len(changed)} of {len(table)} verdicts changed; the ten largest:")
    with pd.option_context("display.width", 250, "display.max_colwidth", 60):
        print(changed.head(10).drop(columns=["reason_after"]).to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
