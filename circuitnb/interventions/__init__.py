"""Causal interventions on sites (§3.2.5, §4.6), their impact (Eq. 5) and circuit-level analyses."""
# The built-in kinds register on import of any interventions module, so the registry is never empty.
from circuitnb.interventions import library  # noqa: F401
