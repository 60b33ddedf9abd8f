"""Chapter 1 (paper §3.1, Fig. 3): the datasets and the trained models.

    shares = attribute_shares(circuitnb.data.synthetic_faces(cfg))
    mse = mse_table(cfg, models)      # one row per dataset, t and image
"""
from __future__ import annotations

import pandas as pd

from circuitnb import data
from circuitnb.core.config import Config
from circuitnb.modeling.sampling import noise_mse_by_timestep
from circuitnb.modeling.train import TrainedModel


def attribute_shares(faces: data.SyntheticFaces) -> pd.DataFrame:
    """Share of each value of each categorical attribute: columns attribute, value, share, count."""
    rows = []
    attrs = faces.attributes.drop(columns="skin_tone")
    for col in attrs.columns:
        counts = attrs[col].value_counts()
        rows += [dict(attribute=col, value=v, count=int(c), share=c / len(attrs)) for v, c in counts.items()]
    return pd.DataFrame(rows)


def natural_summary(faces: data.NaturalFaces) -> dict:
    """What natural dataset a run used: source, count, attribute coverage, skipped files."""
    return dict(source=faces.source, n_images=len(faces), notice=faces.notice,
                n_with_attributes=0 if faces.attributes is None else len(faces.attributes),
                n_skipped=len(faces.skipped), skipped=list(faces.skipped))


def mse_table(cfg: Config, models: dict[str, TrainedModel]) -> pd.DataFrame:
    """Noise-prediction MSE per image at each analysed timestep, for each model on its own data.

    Uses the first ``cfg.analysis.n_samples`` training images of each dataset and
    one seeded noise draw shared across timesteps. Columns: dataset, t, image, mse.
    """
    frames = []
    for name, model in models.items():
        x0 = data.images(cfg, name)[: cfg.analysis.n_samples]
        frame = noise_mse_by_timestep(model.unet, model.scheduler, x0, cfg.analysis.timesteps, seed=cfg.run.seed)
        frames.append(frame.assign(dataset=name))
    return pd.concat(frames, ignore_index=True)[["dataset", "t", "image", "mse"]]


def mse_summary(mse: pd.DataFrame) -> pd.DataFrame:
    """Mean MSE with a normal-approximation 95% CI per dataset and timestep."""
    g = mse.groupby(["dataset", "t"]).mse
    out = pd.DataFrame({"mean": g.mean(), "sem": g.sem(), "n": g.size()}).reset_index()
    out["ci95_low"], out["ci95_high"] = out["mean"] - 1.96 * out["sem"], out["mean"] + 1.96 * out["sem"]
    return out
