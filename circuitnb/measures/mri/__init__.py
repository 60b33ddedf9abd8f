"""Part V's measures: anomaly scores, ROC/PR AUC, best Dice, and uncertainty calibration.

    px = pixel_scores(x, mc_predict(model, x, 16), "standardized")     # [N, H, W]
    roc_auc(slice_scores(px, brain_mask(x)), lesion)                   # slice-level detection
    reliability_table(unc, err), uncertainty_spearman(unc, err)        # do uncertain pixels err more?

Readings are stated in each module's docstring.
"""
from circuitnb.measures.mri.anomaly import (
    PIXEL_READINGS,
    SLICE_READINGS,
    best_dice,
    brain_mask,
    dice,
    pixel_scores,
    pr_auc,
    roc_auc,
    slice_scores,
)
from circuitnb.measures.mri.calibration import ence, reliability_table, uncertainty_spearman

__all__ = ["PIXEL_READINGS", "SLICE_READINGS", "best_dice", "brain_mask", "dice", "ence", "pixel_scores", "pr_auc",
           "reliability_table", "roc_auc", "slice_scores", "uncertainty_spearman"]
