"""How long must Part V's attention VAE train before the convergence rule calls it converged? Held-out
negative ELBO at each snapshot for a few (subjects, steps) settings of the quick profile, one model each.

    python benchmarks/mri_length.py --settings 16:800 48:800 16:3200 48:3200 --out benchmarks/results/mri-convergence

Each setting trains replicate 0 of ``--kind`` through the book's own ``load_or_train_mri`` in a throw-away
cache (one thread), on the phantom; prints one JSON line per setting: training slices, held-out healthy
slices, seconds (data + training + scoring), the held-out negative ELBO (nats per slice) at each snapshot,
and the rule's relative change over the last quarter with its CI and status
(:func:`circuitnb.measures.convergence.convergence`, tolerance ``converged_tol``).
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--settings", nargs="+", default=["16:800", "16:3200"],
                    help="SUBJECTS:STEPS or SUBJECTS:STEPS:SCHEDULE (constant or cosine)")
    ap.add_argument("--kind", default="attention")
    ap.add_argument("--out", type=Path, default=None, help="folder for results.jsonl")
    args = ap.parse_args()
    torch.set_num_threads(1)
    import circuitnb.core.config as C
    from circuitnb.modeling.mri.cache import load_or_train_mri, mri_split
    lines = []
    with tempfile.TemporaryDirectory() as cache:
        for setting in args.settings:
            n, steps, schedule = [*setting.split(":"), "constant"][:3]
            cfg = C.load("quick", mri=dict(n_subjects=int(n), steps=int(steps), lr_schedule=schedule),
                         cache_dir=cache, device="cpu")
            n, steps = int(n), int(steps)
            start = time.perf_counter()
            split = mri_split(cfg)
            m = load_or_train_mri(cfg, args.kind, 0, progress=False)
            c = m.meta["convergence"]
            line = dict(subjects=n, steps=steps, schedule=schedule, kind=args.kind,
                        train_slices=len(split.train.images), heldout_healthy=len(split.heldout_healthy.images),
                        seconds=round(time.perf_counter() - start, 1), snapshot_steps=m.meta["heldout_steps"],
                        nelbo=[round(float(np.mean(v)), 1) for v in m.meta["heldout_nelbo"]],
                        rel_change=round(c["rel_improvement"], 4), ci=[round(c["ci_low"], 4), round(c["ci_high"], 4)],
                        status=c["status"])
            print(json.dumps(line), flush=True)
            lines.append(line)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "results.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))


if __name__ == "__main__":
    main()
