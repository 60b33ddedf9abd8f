"""Latency of one live update of the intervention playground, and the bare model call it wraps.

    python benchmarks/widget_latency.py [--profile quick] [--repeats 20]

Uses the profile's trained models (from the cache; trains them if missing).
Each repeat moves one control (t, then kind, then strength) and times the
whole update (two forward passes of one image, x0 estimate, three PNGs). The
baseline is the same two forward passes through ``interventions.impact``.
Last line: ``ratio=<update / bare impact call>``.
"""
from __future__ import annotations

import argparse
import statistics
import time

import circuitnb
from circuitnb import data
from circuitnb.chapters import common
from circuitnb.interventions.impact import impact
from circuitnb.viz import widgets


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--profile", default="quick")
    ap.add_argument("--repeats", type=int, default=20)
    args = ap.parse_args()
    cfg = circuitnb.load(args.profile)
    models = {name: ms[0] for name, ms in common.models_and_sweeps(cfg)[0].items()}
    images = {n: data.images(cfg, n, split="analysis")[:64] for n in models}
    pg = widgets.Playground(cfg, models, images)
    moves = [(pg.t, lambda i: 100 + 37 * i), (pg.kind, lambda i: ["zero", "temperature", "scale", "mean"][i % 4]),
             (pg.strength, lambda i: 0.25 + 0.1 * (i % 10))]
    live, bare = [], []
    for i in range(args.repeats):
        control, value = moves[i % len(moves)]
        start = time.perf_counter()
        control.value = value(i)
        live.append(time.perf_counter() - start)
        m, iv = models[pg.model.value], pg.intervention()
        ref = images[pg.model.value][:pg.reference_size] if iv.kind == "mean" else None
        start = time.perf_counter()
        impact(m.unet, m.scheduler, images[pg.model.value][:1], pg.t.value, [iv], seed=pg.seed, reference_x0=ref)
        bare.append(time.perf_counter() - start)
    print(f"profile {args.profile}: live update median {1000 * statistics.median(live):.1f} ms "
          f"(max {1000 * max(live):.1f} ms) over {args.repeats} control changes")
    print(f"bare impact() call median {1000 * statistics.median(bare):.1f} ms")
    print(f"ratio={statistics.median(live) / statistics.median(bare):.3f}")


if __name__ == "__main__":
    main()
