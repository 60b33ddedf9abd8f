"""Cost of recording: a forward pass that records every head vs a plain forward pass, side by side.

    python benchmarks/hook_overhead.py [--profile quick] [--batch 32] [--repeats 21] [--no-memory]

Four passes of the same model on the same input (x at t = 500, one timestep),
run back to back in every repeat, in an order that rotates, so that load on a
shared machine hits all of them alike:

* plain: the model as built, with diffusers' default fused attention
  (``AttnProcessor2_0``): the fair baseline, the processor every unhooked pass uses;
* hooks: every head handed to a hook: each attention layer's probabilities
  ``[B, heads, Q, K]`` (all heads, kept as a running-mean map) and each head's
  output ``[B, Q, head_dim]`` (kept as its energy): the cost of the hooked
  processor and of calling ``fn(x, ctx)`` at 27 sites;
* heads: the same plus per-head entropy (Eq. 1) computed inside the hook, as
  the sweep records heads: the benchmark's ratio;
* heads+blocks: also every block output (down, mid, up) reduced to summary
  statistics: the workload this benchmark timed before (it measured 1.149-1.209
  with probabilities and blocks).

Reported: medians of wall time, and the median over repeats of each repeat's
ratio to the plain pass (wall, and process CPU time, which counts less of the
time spent waiting for a core). Entering the contexts (site lookup, hook
registration) happens once per sweep, not per forward pass, so it is left out
of the timed region. Memory: peak resident memory of a 50-timestep and a
5-timestep sweep (heads+blocks), each in a fresh subprocess (goal: flat, ratio ~ 1).
Last line: ``ratio=<heads / plain wall time>`` (goal <= 1.05).
"""
from __future__ import annotations

import argparse
import contextlib
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


def head_energy(x: torch.Tensor) -> torch.Tensor:
    return x.float().pow(2).mean((1, 2))                  # [B, Q, head_dim] -> [B]


WORKLOADS = ("plain", "hooks", "heads", "heads+blocks")


def recorders(unet, workload: str) -> contextlib.ExitStack:
    """The recording contexts of one workload (see the module docstring), entered but not yet run."""
    table = sites.site_table(unet)
    probs = [n for n, s in table.items() if s.kind == "probs"]
    heads = [n for n, s in table.items() if s.kind == "head"]
    entropy = probs if workload != "hooks" else []
    acts = [n for n, s in table.items() if s.kind == "block"] if workload == "heads+blocks" else []
    reduce = {**{n: entropy_bits for n in entropy}, **{n: head_energy for n in heads},
              **{n: activation_stats for n in acts}}
    stack = contextlib.ExitStack()
    stack.rec = stack.enter_context(record(unet, entropy + heads + acts, reduce=reduce))
    stack.maps = {n: RunningMean() for n in probs}
    stack.enter_context(record(unet, probs, reduce=stack.maps))
    return stack


def sweep(profile: str, batch: int, n_timesteps: int) -> None:
    """Child process: record a sweep over n_timesteps, print peak RSS in MiB as JSON."""
    import resource
    torch.manual_seed(0)
    cfg = C.load(profile)
    unet = build_unet(cfg).eval()
    size = cfg.data.image_size
    x = torch.randn(batch, 3, size, size)
    with torch.no_grad(), recorders(unet, "heads+blocks") as stack:
        for t in torch.linspace(0, 999, n_timesteps).long():
            unet(x, t.expand(batch))
        held = sum(v.numel() * v.element_size() for n in stack.rec.calls for v in stack.rec.calls[n])
        held += sum(m.total.numel() * m.total.element_size() for m in stack.maps.values())
    print(json.dumps({"peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "held": held}))


def timed(unet, x, t, workload: str) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) of one forward pass under ``workload``."""
    ctx = contextlib.nullcontext() if workload == "plain" else recorders(unet, workload)
    with ctx:
        wall, cpu = time.perf_counter(), time.process_time()
        unet(x, t)
        return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--profile", default="quick")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=21)
    ap.add_argument("--no-memory", action="store_true", help="skip the two sweep subprocesses")
    ap.add_argument("--sweep", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.sweep:
        return sweep(args.profile, args.batch, args.sweep)
    torch.manual_seed(0)
    cfg = C.load(args.profile)
    unet = build_unet(cfg).eval()
    table = sites.site_table(unet)
    size = cfg.data.image_size
    x, t = torch.randn(args.batch, 3, size, size), torch.full((args.batch,), 500)
    wall, cpu = {w: [] for w in WORKLOADS}, {w: [] for w in WORKLOADS}
    with torch.no_grad():
        for w in WORKLOADS:                               # warm-up: allocator, kernels, processors
            timed(unet, x, t, w)
        for i in range(args.repeats):
            k = i % len(WORKLOADS)
            for w in WORKLOADS[k:] + WORKLOADS[:k]:       # rotate the order: drift in load cancels
                dw, dc = timed(unet, x, t, w)
                wall[w].append(dw)
                cpu[w].append(dc)

    def ratio(times: dict, w: str) -> float:
        # Median over repeats of the per-repeat ratio: each repeat's passes ran back to back, under
        # the same load, so this is steadier on a shared machine than a ratio of medians.
        return statistics.median(a / b for a, b in zip(times[w], times["plain"]))
    med = {w: statistics.median(v) for w, v in wall.items()}
    n_heads = sum(s.kind == "head" for s in table.values())
    n_layers = sum(s.kind == "probs" for s in table.values())
    n_blocks = sum(s.kind == "block" for s in table.values())
    print(f"profile={args.profile} {size}px batch={args.batch} threads={torch.get_num_threads()} "
          f"torch={torch.__version__}: {n_heads} heads in {n_layers} attention layers, {n_blocks} blocks")
    print(f"median wall time of {args.repeats} rotated passes: "
          + ", ".join(f"{w} {med[w] * 1000:.1f} ms" for w in WORKLOADS))
    print("median per-repeat ratio to plain, process CPU time: "
          + ", ".join(f"{w} {ratio(cpu, w):.3f}" for w in WORKLOADS[1:]))
    if not args.no_memory:
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
        print(f"peak RSS: 5-timestep sweep {peaks[5]['peak_mib']:.0f} MiB, 50-timestep sweep "
              f"{peaks[50]['peak_mib']:.0f} MiB, memory ratio={peaks[50]['peak_mib'] / peaks[5]['peak_mib']:.3f}; "
              f"held by the recording: {peaks[5]['held'] / 1024:.0f} KiB vs {peaks[50]['held'] / 1024:.0f} KiB")
    print("median per-repeat ratio to plain, wall time: "
          + ", ".join(f"{w} {ratio(wall, w):.3f}" for w in WORKLOADS[1:]))
    print(f"ratio={ratio(wall, 'heads'):.3f}")


if __name__ == "__main__":
    main()
