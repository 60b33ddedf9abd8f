"""Sanity benchmark: the metric functions on a 2,000-image x 4-timestep sweep of recorded reductions.

    python benchmarks/metrics_speed.py [--images 2000] [--timesteps 4]

Inputs have the shapes the `quick` profile's hooks record (3 attention layers of
8 heads over 64 tokens; block outputs of 128 x 8 x 8), filled with random
values: the timing, not the values, is the point. Prints seconds per 1,000
images for each metric, then the total; last line ``seconds_per_1000_images=<x>``.
"""
from __future__ import annotations

import argparse
import time

import torch

from circuitnb.measures import metrics, stats


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=2000)
    ap.add_argument("--timesteps", type=int, default=4)
    ap.add_argument("--chunk", type=int, default=250)
    args = ap.parse_args()
    g = torch.Generator().manual_seed(0)
    timings = {"entropy+specialization": 0.0, "feature_complexity": 0.0, "information_flow_efficiency": 0.0}
    entropies = []
    for _ in range(args.timesteps):
        for _layer in range(3):
            for s in range(0, args.images, args.chunk):
                probs = torch.softmax(torch.randn(min(args.chunk, args.images - s), 8, 64, 64, generator=g), -1)
                t0 = time.perf_counter()
                entropies.append(metrics.attention_entropy(probs))
                metrics.specialization(probs)
                timings["entropy+specialization"] += time.perf_counter() - t0
        blocks = [torch.randn(args.images, 128, 8, 8, generator=g) for _ in range(2)]
        t0 = time.perf_counter()
        for b in blocks:
            metrics.feature_complexity(b)
        timings["feature_complexity"] += time.perf_counter() - t0
        t0 = time.perf_counter()
        metrics.information_flow_efficiency(blocks[0], blocks[1])
        timings["information_flow_efficiency"] += time.perf_counter() - t0
    h = torch.cat(entropies).numpy()
    t0 = time.perf_counter()
    stats.compare_table({f"head {k}": (h[:args.images // 2, k], h[args.images // 2:, k]) for k in range(8)})
    timings["statistics (8 comparisons)"] = time.perf_counter() - t0
    per_k = 1000 / args.images
    for name, sec in timings.items():
        print(f"{name}: {sec:.2f} s total, {sec * per_k:.2f} s per 1,000 images")
    total = sum(timings.values())
    print(f"{args.images} images x {args.timesteps} timesteps: {total:.2f} s")
    print(f"seconds_per_1000_images={total * per_k:.2f}")


if __name__ == "__main__":
    main()
