"""Causal interventions on sites (§3.2.5, §4.6), their impact (Eq. 5) and circuit-level analyses."""
