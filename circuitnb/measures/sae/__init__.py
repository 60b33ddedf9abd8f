"""Part IV's measures: dead units under several thresholds, per-unit monosemanticity, and both with
MIG and DCI at every snapshot of the sparsity schedule.

    dead_rate_curve(codes, (0, 0.01, 0.05))         # DataFrame: dead rate per threshold, non-decreasing
    monosemanticity(codes, factors)                 # per unit: best factor, eta^2, score
    schedule_measures(trained.snapshots, factors)   # one row per snapshot step

Readings are stated in each module's docstring.
"""
from circuitnb.measures.sae.dead_neurons import DEFAULT_FRACTIONS, dead_rate_curve, dead_units, firing_rates
from circuitnb.measures.sae.monosemanticity import READINGS, eta_squared, mean_monosemanticity, monosemanticity
from circuitnb.measures.sae.over_schedule import schedule_measures, snapshot_measures

__all__ = ["DEFAULT_FRACTIONS", "READINGS", "dead_rate_curve", "dead_units", "eta_squared", "firing_rates",
           "mean_monosemanticity", "monosemanticity", "schedule_measures", "snapshot_measures"]
