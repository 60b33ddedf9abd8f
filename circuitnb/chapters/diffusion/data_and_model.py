"""Chapter 1 (paper §3.1, Fig. 3): the datasets, their train/analysis split, and every replicate model.

    res = data_model.run(cfg)      # res.tables["splits"], ["replicates"], ["noise_mse"], ...; res.data: images

Everything later chapters stand on is stated here: which natural data stands
behind "celeba" (CelebA, or the LFW stand-in with its notice), how many images
each model trains on and how many are held out for analysis, the seed of each
replicate model, its loss curve, its noise-prediction error on held-out images
and samples it generates.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from circuitnb import data
from circuitnb.analysis import convergence, replicates, yours
from circuitnb.chapters import common
from circuitnb.chapters.report import ChapterResult
from circuitnb.core.config import Config
from circuitnb.modeling import precision, train
from circuitnb.modeling.unet import describe

CHAPTER = "01_data_and_model"
N_GRID = 16                # images per data grid (Figs. 1.1, 1.2)
N_GENERATED = 8            # samples generated per replicate model (Fig. 3's sample panel; one row per model)
LOSS_WINDOW = 50           # steps in the "final loss" mean and the loss curves' running mean
# CelebA attributes that the CelebA selection matches to the synthetic law (data.celeba), with the synthetic
# attribute value each corresponds to.
MATCHED = {"Male": ("gender", "male"), "Young": ("age", "young"), "Smiling": ("expression", "smiling"),
           "Eyeglasses": ("accessory", "glasses")}


def attribute_shares(faces: data.SyntheticFaces) -> pd.DataFrame:
    """Share of each value of each categorical attribute: ``attribute_shares(data.synthetic_faces(cfg))``
    -> columns attribute, value, count, share."""
    rows = []
    attrs = faces.attributes.drop(columns="skin_tone")
    for col in attrs.columns:
        counts = attrs[col].value_counts()
        rows += [dict(attribute=col, value=v, count=int(c), share=c / len(attrs)) for v, c in counts.items()]
    return pd.DataFrame(rows)


def part_shares(faces: data.SyntheticFaces) -> pd.DataFrame:
    """What the part masks cover: ``part_shares(faces)`` -> part, pixel_share (mean over images of the share of
    pixels labelled with the part), images_with_part (share of images where it appears at all)."""
    rows = []
    for part in data.PARTS:
        m = faces.mask(part).reshape(len(faces), -1)
        rows.append(dict(part=part, pixel_share=float(m.mean()), images_with_part=float(m.any(1).mean())))
    return pd.DataFrame(rows)


def matched_attributes(syn: data.SyntheticFaces, nat: data.NaturalFaces) -> pd.DataFrame:
    """The four attributes the CelebA selection matches: share in the synthetic set and in the natural images
    that have attribute rows (nan for the LFW stand-in, which has none)."""
    rows = []
    for celeba_name, (col, value) in MATCHED.items():
        attrs = nat.attributes
        natural = float((attrs[celeba_name] > 0).mean()) if attrs is not None and len(attrs) else np.nan
        rows.append(dict(attribute=f"{col} = {value}", celeba_attribute=celeba_name,
                         synthetic_share=float((syn.attributes[col] == value).mean()), natural_share=natural,
                         n_natural_with_attributes=0 if attrs is None else len(attrs)))
    return pd.DataFrame(rows)


def natural_summary(faces: data.NaturalFaces) -> dict:
    """What natural dataset a run used: source, count, attribute coverage, skipped files."""
    return dict(source=faces.source, n_images=len(faces), notice=faces.notice,
                n_with_attributes=0 if faces.attributes is None else len(faces.attributes),
                n_skipped=len(faces.skipped), skipped=list(faces.skipped))


def splits(cfg: Config) -> pd.DataFrame:
    """Train/analysis split sizes per dataset: configured, available and used.

    ``n_analysed``: the held-out images every chapter measures per model and timestep (the first ``n_samples``
    analysis images). The natural set may hold fewer than ``n_images`` readable images; the split rule
    (:func:`circuitnb.data.images`) then applies to what is there.
    """
    rows = []
    for name in data.DATASETS:
        n_train, n_analysis = (len(data.images(cfg, name, split)) for split in data.SPLITS)
        rows.append(dict(dataset=name, source=data.source(cfg, name), n_images=cfg.data.n_images,
                         n_analysis_configured=cfg.data.n_analysis, n_available=n_train + n_analysis,
                         n_train=n_train, n_analysis=n_analysis, n_analysed=min(cfg.analysis.n_samples, n_analysis)))
    return pd.DataFrame(rows)


def replicate_table(cfg: Config, models: dict) -> pd.DataFrame:
    """One row per trained model: dataset, replicate, seed (:func:`circuitnb.data.replicate_seed`), its
    training data, steps, seconds, final loss (mean of the last ``LOSS_WINDOW`` steps), cache key."""
    rows = []
    for name, ms in models.items():
        for r, m in enumerate(ms):
            own = name == "synthetic"          # synthetic replicates draw their own faces; CelebA's share them
            rows.append(dict(dataset=name, replicate=r, seed=data.replicate_seed(cfg, r, name),
                             training_data=f"own draw (seed {data.replicate_seed(cfg, r, name)})" if own else "shared",
                             n_train=int(m.meta["n_images"]), steps=int(m.meta["steps"]),
                             precision=m.meta.get("precision", "fp32"), train_seconds=float(m.meta["train_seconds"]),
                             final_loss=float(np.mean(m.meta["losses"][-LOSS_WINDOW:])), key=m.meta["key"]))
    return pd.DataFrame(rows)


def noise_mse_per_image(sw) -> pd.DataFrame:
    """Noise-prediction MSE (per pixel, eps units) of one sweep per image and t: dataset, t, image, value."""
    return sw.mse[["dataset", "t", "image", "mse"]].rename(columns={"mse": "value"})


def generated(cfg: Config, models: dict, n: int = N_GENERATED) -> dict[str, np.ndarray]:
    """``n`` DDIM samples of every replicate model, stacked per dataset [R n, 3, H, W] (cached per model);
    every model starts from the same noise (seed ``cfg.run.seed``), so rows differ only by the model."""
    return {name: np.concatenate([convergence.model_samples(cfg, m, n) for m in ms]) for name, ms in models.items()}


def snapshot_samples(cfg: Config, n: int = N_GENERATED, replicate: int = 0) -> dict[str, np.ndarray]:
    """``n`` samples of replicate ``replicate`` of each dataset at every saved training step, from the same
    noise: {dataset: [steps x n, 3, H, W]}, one row per step."""
    return {name: np.concatenate([convergence.model_samples(cfg, train.load_or_train(
        cfg, name, progress=False, replicate=replicate, at_step=step), n) for step in train.snapshot_steps(cfg)])
        for name in data.DATASETS}


def run(cfg: Config) -> ChapterResult:
    """Chapter 1: data, split, architecture, every replicate's training and held-out error, samples."""
    if (res := common.on_your_model(cfg, CHAPTER)) is not None:
        return _on_your_model(cfg, res)
    models, sweeps = common.models_and_sweeps(cfg)
    syn, nat = data.synthetic_faces(cfg), data.natural_faces(cfg)
    res = ChapterResult(CHAPTER)
    res.tables["splits"] = sp = splits(cfg)
    res.tables["replicates"] = reps = replicate_table(cfg, models)
    res.tables["correlations"] = pd.DataFrame({"correlation stated and implemented": data.CORRELATIONS})
    res.tables["attributes"] = attribute_shares(syn)
    res.tables["matched_attributes"] = matched_attributes(syn, nat)
    res.tables["parts"] = part_shares(syn)
    res.tables["architecture"] = arch = describe(models["synthetic"][0].unet)
    per = replicates.per_replicate(sweeps, noise_mse_per_image)
    mse = replicates.across_replicates(per, ["dataset", "t"])
    res.tables["noise_mse"] = mse = mse.sort_values(["dataset", "t"], ascending=[False, True],
                                                      ignore_index=True)        # synthetic first
    res.tables["noise_mse_per_model"] = replicates.model_means(per, ["t"]).rename(columns={"value": "mse"})
    conv = convergence.unet_convergence(cfg)
    res.tables["convergence"] = conv["per_model"]
    res.tables["heldout_curves"] = conv["curves"]
    res.tables["noise_r2_by_step"] = conv["r2"].pivot_table(index=["dataset", "replicate", "step"], columns="t",
                                                            values="r2").add_prefix("r2_t").reset_index()
    res.data.update(synthetic=syn.images[:N_GRID], labels=syn.labels[:N_GRID], parts=data.PARTS,
                    natural=nat.images[:N_GRID], mse=mse.rename(columns={"mean": "value"}),
                    losses=[{name: ms[r].meta["losses"] for name, ms in models.items()}
                            for r in range(cfg.run.replicates)],
                    seeds=[data.replicate_seed(cfg, r, name) for name in data.DATASETS
                           for r in range(cfg.run.replicates)],
                    samples=generated(cfg, models), curves=conv["curves"], steps=train.snapshot_steps(cfg),
                    snapshot_samples=snapshot_samples(cfg))
    natural = natural_summary(nat)
    by_ds = sp.set_index("dataset")
    res.values = dict(profile=cfg.profile, seed=cfg.run.seed, timesteps=", ".join(map(str, cfg.analysis.timesteps)),
                      image_size=cfg.data.image_size, n_syn=len(syn),
                      n_nat=natural["n_images"], nat_source=natural["source"], nat_attr=natural["n_with_attributes"],
                      nat_skipped=natural["n_skipped"],
                      nat_notice=natural["notice"] or "none: real CelebA images were used.",
                      n_images=cfg.data.n_images, n_analysis=cfg.data.n_analysis, n_samples=int(by_ds.n_analysed.min()),
                      n_models=cfg.run.replicates, seeds=", ".join(str(s) for s in sorted(set(reps.seed))),
                      n_parameters=int(arch.attrs["n_parameters"]), channels=str(cfg.model.block_out_channels),
                      n_heads=int(arch.heads.sum()), n_layers=len(arch), steps=cfg.train.train_steps,
                      batch_size=cfg.train.batch_size, learning_rate=cfg.train.learning_rate,
                      loss_window=LOSS_WINDOW, n_generated=N_GENERATED,
                      precision_line=precision.describe(cfg.train.precision, cfg.device),
                      loss_weighting=cfg.train.loss_weighting, lr_schedule=cfg.train.lr_schedule,
                      converged_line=conv["summary"]["line"], n_converged=conv["summary"]["n_converged"],
                      n_models_all=conv["summary"]["n_models"], converged_tol=cfg.analysis.converged_tol,
                      n_heldout_t=cfg.analysis.n_heldout_t,
                      snapshot_steps=", ".join(map(str, train.snapshot_steps(cfg))))
    for name in data.DATASETS:
        r = reps[reps.dataset == name]
        res.values.update({f"n_train_{name}": int(by_ds.loc[name, "n_train"]),
                           f"n_analysis_{name}": int(by_ds.loc[name, "n_analysis"]),
                           f"final_loss_{name}": float(r.final_loss.mean()),
                           f"seconds_{name}": float(r.train_seconds.sum())})
        c = conv["per_model"][conv["per_model"].dataset == name]
        res.values.update({f"heldout_loss_{name}": float(c.loss_final.mean()), f"bpd_{name}": float(c.bpd_final.mean()),
                           f"improvement_{name}": ", ".join(f"{v:.1%}" for v in c.rel_improvement)})
    return res


def _on_your_model(cfg: Config, res: ChapterResult) -> ChapterResult:
    """A model of your own: what it is (config, attention layers and heads, schedule), the images it is
    analysed on, and its noise-prediction error per t on them."""
    models, sweeps = common.models_and_sweeps(cfg)
    m = next(iter(models.values()))[0]
    c = m.unet.config
    arch = describe(m.unet)
    res.tables["model"] = pd.DataFrame([dict(
        model_dir=cfg.run.model_dir, key=m.meta["key"], sample_size=m.meta["image_size"], channels=c.in_channels,
        block_out_channels=str(list(c.block_out_channels)), layers_per_block=c.layers_per_block,
        down_block_types=", ".join(c.down_block_types), up_block_types=", ".join(c.up_block_types),
        mid_block=str(c.mid_block_type), n_parameters=int(arch.attrs["n_parameters"]), attention_layers=len(arch),
        heads=int(arch.heads.sum()) if len(arch) else 0, scheduler=m.meta["scheduler"],
        beta_schedule=m.scheduler.config.beta_schedule, num_train_timesteps=m.meta["num_train_timesteps"],
        images=yours.image_note(cfg))])
    res.tables["architecture"] = arch
    per = replicates.per_replicate(sweeps, noise_mse_per_image)
    res.tables["noise_mse"] = yours.over_images(per, ["dataset", "t"])
    res.notes.update(model="your model's config, size and schedule, and the images it is analysed on",
                     architecture="every attention layer: heads, head size, width and tokens (keys per query)",
                     noise_mse="noise-prediction MSE per t (per pixel, eps units), mean over images, 95% t-interval",
                     training=yours.LEFT_OUT["convergence"] + " (the book's training sets, splits and loss "
                              "curves describe its own models)")
    res.values.update(n_parameters=int(arch.attrs["n_parameters"]), n_layers=len(arch))
    return res
