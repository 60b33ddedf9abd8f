"""The interventions' public names in one place (kept so ``from circuitnb.interventions.kinds import ...`` works).

    from circuitnb.interventions.kinds import KINDS, Intervention, impact
    "temperature" in KINDS          # True: KINDS is a live view of the registry
    impact(unet, scheduler, x0, 300, [Intervention("zero", "enc_middle")]).impact

Kinds are registered in :mod:`circuitnb.interventions.library` (see
:func:`~circuitnb.interventions.registry.kinds_table`); applying them and the
impact score (Eq. 5) live in :mod:`circuitnb.interventions.impact`.
"""
from __future__ import annotations

from circuitnb.interventions import library  # noqa: F401  (registers the built-in kinds)
from circuitnb.interventions.impact import (ImpactResult, apply, impact, impacts, paired_inputs, patch_from,
                                            predicted_x0, reference_activations)
from circuitnb.interventions.registry import (KINDS, Intervention, Kind, Param, get, hooks_for, kinds,
                                              kinds_table, register)

__all__ = ["KINDS", "ImpactResult", "Intervention", "Kind", "Param", "apply", "get", "hooks_for", "impact",
           "impacts", "kinds", "kinds_table", "paired_inputs", "patch_from", "predicted_x0",
           "reference_activations", "register"]
