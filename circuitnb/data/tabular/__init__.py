"""Part III's data: five real tables shipped inside installed packages and a synthetic world with a known DAG.

    d = tabular_data(cfg, "penguins", "train", replicate=0)    # TabularData: x [n, D] float32, y [n], blocks
    h = tabular_data(cfg, "world", "heldout")                  # no model ever trains on these rows
    datasets_table(cfg)                                        # source, rows, column types, target, per set
    schema_table(schema_of("heart"))                           # every column's type, levels and encoding

Sets (:data:`TAB_DATASETS`): ``world`` (:mod:`~circuitnb.data.tabular.world`, the known answers) and the real
``heart``, ``penguins``, ``affairs``, ``anes96``, ``breast_cancer`` (:mod:`~circuitnb.data.tabular.real`).
Preprocessing: :mod:`~circuitnb.data.tabular.schema` (continuous standardised with the training rows' mean and
sd, categorical one-hot, ordinal as its level index 0..K-1); a user table loads with
:func:`~circuitnb.data.tabular.schema.load_csv`.

Split rule (as Part II's): a fraction ``tabular.heldout_fraction`` of the rows is
held out and never trained on, the same rows for every replicate and architecture, so models are compared on
the same held-out rows. Real sets: the held-out rows are drawn per target class (stratified) by a generator
seeded with the run's seed and the set; replicates share the training rows and differ in their training seed
(as Part I's CelebA models). World (:mod:`circuitnb.data.splits`): replicate r trains on its own draw of
``tabular.world_rows`` rows (seed ``seed + 1000 r + offset``) less its last ``n_heldout``; the held-out rows are the
base draw's last ``n_heldout``. The encoding is fitted once, on the base (replicate 0) training rows, and applied
to every split and replicate, so the held-out bytes are the same for every model.

The image benchmark of Part III is Part II's shapes set, read through Part II's loader
(``circuitnb.data.vae.datasets.vae_data(cfg, "shapes", split, replicate)``) and modelled by Part II's convolutional
VAEs (``circuitnb.modeling.vae.cache.load_or_train_vae``): an image is not a row of typed columns, so it is not
wrapped here.
"""
from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass

import numpy as np
import pandas as pd

from circuitnb.core.config import Config
from circuitnb.data import fingerprint
from circuitnb.data.splits import check_choice, draw_seed, split_draw
from circuitnb.data.tabular.real import REAL
from circuitnb.data.tabular.schema import (
    Block,
    Column,
    Encoding,
    Schema,
    TabularDataError,
    check_frame,
    load_csv,
    schema_table,
)
from circuitnb.data.tabular.world import WORLD_SCHEMA, World, draw_world

TAB_DATASETS = ("world", "heart", "penguins", "affairs", "anes96", "breast_cancer")
TAB_SPLITS = ("train", "heldout")
# Models of two sets never share a seed, nor one of Part I's (offsets 0, 500) or Part II's (0, 700).
_OFFSET = {name: 100 + 10 * i for i, name in enumerate(TAB_DATASETS)}

__all__ = ["TAB_DATASETS", "TAB_SPLITS", "TabularData", "tabular_data", "tab_seed", "check_tab_dataset",
           "schema_of", "datasets_table", "schema_table", "load_csv", "check_frame", "Schema", "Column", "Block",
           "Encoding", "TabularDataError", "fingerprint"]


@dataclass(frozen=True)
class TabularData:
    name: str
    split: str
    replicate: int
    schema: Schema
    encoding: Encoding          # fitted on the base training rows
    frame: pd.DataFrame         # raw values of the rows: schema columns + target
    x: np.ndarray               # float32 [n, D], the VAE's input (see encoding.blocks)
    y: np.ndarray               # int64 [n], the downstream binary target
    world: World | None = None  # the synthetic world's rows (factors, noise) for interventions; None for real sets

    def __len__(self) -> int:
        return len(self.x)

    @property
    def blocks(self) -> tuple[Block, ...]:
        return self.encoding.blocks

    @property
    def layout(self) -> tuple[tuple[str, str, int], ...]:
        return self.encoding.layout

    @property
    def factors(self) -> pd.DataFrame | None:
        return None if self.world is None else self.world.factors

    @property
    def fingerprint(self) -> str:
        """Content hash of x and y, for cache keys."""
        return fingerprint(np.concatenate([self.x, self.y[:, None].astype(np.float32)], axis=1))


def check_tab_dataset(name: str) -> str:
    return check_choice(name, TAB_DATASETS, "dataset", TabularDataError)


def schema_of(name: str) -> Schema:
    return WORLD_SCHEMA if check_tab_dataset(name) == "world" else REAL[name].schema


def tab_seed(cfg: Config, replicate: int, dataset: str) -> int:
    """The training seed (world: also its draw) of one replicate: seed + 1000 r + the set's offset."""
    return draw_seed(cfg.run.seed, replicate, _OFFSET[check_tab_dataset(dataset)])


@functools.lru_cache(maxsize=8)
def _real(name: str) -> pd.DataFrame:
    return REAL[name].load()


@functools.lru_cache(maxsize=8)
def _world(n: int, seed: int) -> World:
    return draw_world(n, seed)


def _rows(world: World, rows) -> World:
    return dataclasses.replace(world, values={k: v[rows] for k, v in world.values.items()},
                               noise={k: v[rows] for k, v in world.noise.items()})


def _n_heldout(n: int, fraction: float) -> int:
    return min(max(2, round(fraction * n)), n - 2)


def _heldout_mask(y: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Stratified: ``fraction`` of each target class, chosen by a generator seeded with ``seed``."""
    rng = np.random.default_rng(seed)
    mask = np.zeros(len(y), bool)
    for cls in np.unique(y):
        idx = np.flatnonzero(y == cls)
        mask[rng.permutation(idx)[: round(fraction * len(idx))]] = True
    return mask


def _split(cfg: Config, name: str, split: str, replicate: int) -> tuple[pd.DataFrame, World | None]:
    t = cfg.tabular
    if name == "world":
        n = t.world_rows
        which, rows = split_draw(split, replicate, n, _n_heldout(n, t.heldout_fraction))
        world = _rows(_world(n, tab_seed(cfg, which, name)), rows)
        return world.frame, world
    frame = _real(name)
    mask = _heldout_mask(frame[schema_of(name).target].to_numpy(int), t.heldout_fraction,
                         tab_seed(cfg, 0, name))
    return frame[mask if split == "heldout" else ~mask].reset_index(drop=True), None


def tabular_data(cfg: Config, dataset: str, split: str = "train", replicate: int = 0) -> TabularData:
    """One split of a Part III table (see the module docstring for the rule)."""
    check_tab_dataset(dataset)
    check_choice(split, TAB_SPLITS, "split", TabularDataError)
    schema = schema_of(dataset)
    encoding = Encoding.fit(_split(cfg, dataset, "train", 0)[0], schema)
    frame, world = _split(cfg, dataset, split, replicate)
    return TabularData(dataset, split, replicate, schema, encoding, frame, encoding.transform(frame),
                       frame[schema.target].to_numpy(np.int64), world)


def datasets_table(cfg: Config, names: tuple[str, ...] | None = None) -> pd.DataFrame:
    """One row per set: source, rows (train / held-out), columns by type, one-hot width, target and its rate."""
    rows = []
    for name in names or TAB_DATASETS:
        s = schema_of(name)
        tr, ho = tabular_data(cfg, name, "train"), tabular_data(cfg, name, "heldout")
        rows.append(dict(dataset=name, source=s.source, rows=len(tr) + len(ho), train_rows=len(tr),
                         heldout_rows=len(ho), **{k: len(s.names(k)) for k in ("continuous", "categorical", "ordinal")},
                         encoded_width=tr.x.shape[1], target=s.target, target_meaning=s.target_note,
                         positive_rate=float(np.concatenate([tr.y, ho.y]).mean()), notes=s.notes))
    return pd.DataFrame(rows)
