"""Cost of recording: forward pass with everything recorded vs a plain forward pass.

    python benchmarks/hook_overhead.py [--profile quick] [--batch 32] [--repeats 15]

Recorded: the probabilities of every attention layer (reduced inside the hook
to per-head entropy and a running-mean map) and every block output (down
blocks, mid block, up blocks; reduced to per-example summary statistics). The plain pass uses
diffusers' default fused attention. Timings alternate plain/recorded and take
medians. Memory: peak resident memory of a 50-timestep sweep and of a
5-timestep sweep, each in a fresh subprocess (goal: flat, ratio ~ 1).
Last line: ``ratio=<recorded / plain time>`` (goal <= 1.15).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import torch

import circuitnb.core.config as C
from circuitnb.hooking import sites
from circuitnb.hooking.hooks import RunningMean, activation_stats, entropy_bits, record
from circuitnb.modeling.unet import build_unet


def recorded_sites(unet):
    table = sites.site_table(unet)
    probs = [n for n, s in table.items() if s.kind == "probs"]
    acts = [n for n, s in table.items() if s.kind == "block"]       # down*, mid, up* outputs
    return probs, acts


def reducers(probs, acts):
    red = {n: activation_stats for n in acts}
    for n in probs:
        red[n] = entropy_bits
    return red


def sweep(profile: str, batch: int, n_timesteps: int) -> None:
    """Child process: record a sweep over n_timesteps, print peak RSS in MiB as JSON."""
    import resource
    torch.manual_seed(0)
    cfg = C.load(profile)
    unet = build_unet(cfg).eval()
    probs, acts = recorded_sites(unet)
    size = cfg.data.image_size
    x = torch.randn(batch, 3, size, size)
    maps = {n: RunningMean() for n in probs}
    with torch.no_grad(), record(unet, probs + acts, reduce=reducers(probs, acts)) as rec, \
            record(unet, probs, reduce=maps):
        for t in torch.linspace(0, 999, n_timesteps).long():
            unet(x, t.expand(batch))
        held = sum(v.numel() * v.element_size() for n in rec.calls for v in rec.calls[n])
        held += sum(m.total.numel() * m.total.element_size() for m in maps.values())
    print(json.dumps({"peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "held": held}))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--profile", default="quick")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--sweep", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.sweep:
        return sweep(args.profile, args.batch, args.sweep)
    torch.manual_seed(0)
    cfg = C.load(args.profile)
    unet = build_unet(cfg).eval()
    probs, acts = recorded_sites(unet)
    size = cfg.data.image_size
    x, t = torch.randn(args.batch, 3, size, size), torch.full((args.batch,), 500)
    plain, recorded = [], []
    with torch.no_grad():
        for _ in range(3):
            unet(x, t)
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            unet(x, t)
            plain.append(time.perf_counter() - t0)
            maps = {n: RunningMean() for n in probs}
            # Entering the contexts (site lookup, hook registration) happens once per sweep, not per
            # forward pass, so it is left out of the timed region.
            with record(unet, probs + acts, reduce=reducers(probs, acts)), record(unet, probs, reduce=maps):
                t0 = time.perf_counter()
                unet(x, t)
                recorded.append(time.perf_counter() - t0)
    p, r = statistics.median(plain), statistics.median(recorded)
    peaks = {}
    for n in (5, 50):
        # A fixed glibc mmap threshold. By default glibc raises the threshold after large frees, so
        # later activations come from the brk heap, where the recording's small kept tensors pin the
        # top and RSS creeps up (measured: 562 -> 684 MiB over 5 -> 40 timesteps with ~100 KiB held).
        # With the threshold fixed, large tensors are mmapped and returned on free.
        out = subprocess.run([sys.executable, __file__, "--profile", args.profile, "--batch", str(args.batch),
                              "--sweep", str(n)], capture_output=True, text=True, check=True,
                             env={**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536"})
        peaks[n] = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"profile={args.profile} batch={args.batch} threads={torch.get_num_threads()} "
          f"sites: {len(probs)} attention-probability, {len(acts)} activation")
    print(f"plain forward {p * 1000:.1f} ms, recorded forward {r * 1000:.1f} ms (median of {args.repeats})")
    print(f"peak RSS: 5-timestep sweep {peaks[5]['peak_mib']:.0f} MiB, 50-timestep sweep "
          f"{peaks[50]['peak_mib']:.0f} MiB, memory ratio={peaks[50]['peak_mib'] / peaks[5]['peak_mib']:.3f}; "
          f"held by the recording: {peaks[5]['held'] / 1024:.0f} KiB vs {peaks[50]['held'] / 1024:.0f} KiB")
    print(f"ratio={r / p:.3f}")


if __name__ == "__main__":
    main()
