"""Part III's new measures on tabular VAEs, each our reading of a technique the abstract only names.

    posterior_calibrated_ces(deltas, mu, logvar)          # CES calibrated by the posterior (posterior_ces)
    feature_group_disentanglement(group_effects(...))     # FGD over column groups (feature_groups)
    per_group_scores(z, group_codes(x, groups), ...)      # MIG and DCI with the groups as the factors

Path-specific activation patching, the third technique, needs the model and lives in
:mod:`circuitnb.interventions.tabular.path_patching`.
"""
from circuitnb.measures.tabular.feature_groups import (
    column_groups,
    feature_group_disentanglement,
    group_codes,
    group_effects,
    per_group_scores,
)
from circuitnb.measures.tabular.posterior_ces import (
    READINGS,
    calibrated_effects,
    posterior_calibrated_ces,
    posterior_weights,
)

__all__ = ["READINGS", "calibrated_effects", "column_groups", "feature_group_disentanglement", "group_codes",
           "group_effects", "per_group_scores", "posterior_calibrated_ces", "posterior_weights"]
