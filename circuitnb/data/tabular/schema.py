"""Schemas of Part III's tables: each column's type, the target, the source; the encoding the VAEs read.

    schema = Schema("mine", (Column("age", "continuous"), Column("colour", "categorical", ("red", "blue")),
                             Column("grade", "ordinal", ("low", "mid", "high"))), target="label",
                    source="my file")
    frame = load_csv("mine.csv", schema)                # checked: one clear line per bad file or column
    enc = Encoding.fit(frame_train, schema)             # continuous statistics from the training rows only
    x = enc.transform(frame)                            # float32 [n, D]; enc.blocks say which columns are which

Preprocessing (the same for every data set, and stated in the book's data table):

* continuous: standardised, (v - mean) / sd with the mean and sd (ddof = 1) of the *training* rows, so nothing
  about the held-out rows leaks into the model; one column of ``x``;
* categorical with K levels: one-hot, K columns in the schema's level order;
* ordinal with K ordered levels: the level's index 0..K-1, one column (the model reads it as an integer).

The target is a separate binary vector (1 = the schema's positive class); it is never an input of the VAE.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from circuitnb.data.celeba import DataError

KINDS = ("continuous", "categorical", "ordinal")


class TabularDataError(DataError):
    """A tabular data set, file or column is unusable (one line: the file or column and what is accepted)."""


@dataclass(frozen=True)
class Column:
    name: str
    kind: str                   # "continuous" | "categorical" | "ordinal"
    levels: tuple = ()          # categorical: its levels; ordinal: its levels in order (raw values, lowest first)
    note: str = ""              # what it measures, in which unit

    def __post_init__(self):
        if self.kind not in KINDS:
            raise TabularDataError(f"column {self.name!r}: kind {self.kind!r}; choose one of {KINDS}")
        if self.kind != "continuous" and len(self.levels) < 2:
            raise TabularDataError(f"column {self.name!r}: a {self.kind} column needs at least 2 levels")


@dataclass(frozen=True)
class Schema:
    name: str
    columns: tuple[Column, ...]
    target: str                 # name of the binary (0/1) target column of the frame
    source: str                 # package and function (or file) the rows come from
    target_note: str = ""       # what 1 means and how it was derived
    notes: str = ""             # rows dropped, columns left out, and why

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise TabularDataError(f"data set {self.name!r} has no column {name!r}; "
                               f"its columns: {[c.name for c in self.columns]}")

    def names(self, kind: str | None = None) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if kind is None or c.kind == kind)


@dataclass(frozen=True)
class Block:
    """Where one raw column sits in the encoded matrix ``x``: columns ``start:stop``."""
    name: str
    kind: str
    start: int
    stop: int
    n_levels: int               # categorical/ordinal: K; continuous: 1


@dataclass(frozen=True)
class Encoding:
    """The preprocessing of one data set, fitted on its training rows (see the module docstring)."""
    schema: Schema
    mean: dict = field(default_factory=dict)     # continuous column -> training mean
    sd: dict = field(default_factory=dict)       # continuous column -> training sd (ddof = 1)

    @classmethod
    def fit(cls, train: pd.DataFrame, schema: Schema) -> Encoding:
        mean, sd = {}, {}
        for name in schema.names("continuous"):
            v = train[name].to_numpy(float)
            mean[name], sd[name] = float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0
            if not sd[name] > 0:
                raise TabularDataError(f"data set {schema.name!r}: continuous column {name!r} is constant in the "
                                       "training rows; drop it from the schema")
        return cls(schema, mean, sd)

    @property
    def blocks(self) -> tuple[Block, ...]:
        out, at = [], 0
        for c in self.schema.columns:
            width = len(c.levels) if c.kind == "categorical" else 1
            out.append(Block(c.name, c.kind, at, at + width, 1 if c.kind == "continuous" else len(c.levels)))
            at += width
        return tuple(out)

    @property
    def layout(self) -> tuple[tuple[str, str, int], ...]:
        """(name, kind, n_levels) per column: all a tabular VAE needs to know about the data."""
        return tuple((b.name, b.kind, b.n_levels) for b in self.blocks)

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        """The encoded rows, float32 [n, D] (D = sum of the blocks' widths)."""
        parts = []
        for c in self.schema.columns:
            v = frame[c.name]
            if c.kind == "continuous":
                parts.append(((v.to_numpy(float) - self.mean[c.name]) / self.sd[c.name])[:, None])
            else:
                code = level_codes(v, c, f"data set {self.schema.name!r}")
                parts.append(np.eye(len(c.levels))[code] if c.kind == "categorical" else code[:, None])
        return np.concatenate(parts, axis=1).astype(np.float32)


def level_codes(values: pd.Series, column: Column, where: str) -> np.ndarray:
    """Index of each value in ``column.levels`` (int64 [n]); a value outside them is a one-line error naming
    ``where`` (the data set or file)."""
    lookup = {_key(lv): i for i, lv in enumerate(column.levels)}
    keys = [_key(v) for v in values]
    bad = [v for v, k in zip(values, keys) if k not in lookup]
    if bad:
        first = bad[0].item() if isinstance(bad[0], np.generic) else bad[0]
        raise TabularDataError(f"{where}: {column.kind} column {column.name!r} has value {first!r} "
                               f"outside its levels {list(column.levels)}")
    return np.array([lookup[k] for k in keys], dtype=np.int64)


def _key(v):
    # 1, 1.0 and "1" in a CSV all mean level 1; strings stay strings.
    if isinstance(v, str):
        try:
            return float(v)
        except ValueError:
            return v
    return float(v) if isinstance(v, (int, float, np.integer, np.floating)) else v


def check_frame(frame: pd.DataFrame, schema: Schema, where: str) -> pd.DataFrame:
    """``frame`` restricted to the schema's columns and target, after checking every column's type and the
    target; ``where`` names the file or data set in the one-line error."""
    wanted = [*schema.names(), schema.target]
    missing = [n for n in wanted if n not in frame.columns]
    if missing:
        raise TabularDataError(f"{where}: column {missing[0]!r} is missing; "
                               f"the file has {list(frame.columns)}")
    frame = frame[wanted].reset_index(drop=True)
    for n in wanted:
        if frame[n].isna().any():
            raise TabularDataError(f"{where}: column {n!r} has {int(frame[n].isna().sum())} missing values; "
                                   "drop or fill those rows first")
    for c in schema.columns:
        if c.kind == "continuous" and not pd.api.types.is_numeric_dtype(frame[c.name]):
            first = next(v for v in frame[c.name] if not _is_number(v))
            raise TabularDataError(f"{where}: continuous column {c.name!r} has non-numeric value {first!r}")
        if c.kind != "continuous":
            level_codes(frame[c.name], c, where)
    y = frame[schema.target]
    if not pd.api.types.is_numeric_dtype(y) or not set(np.unique(y.to_numpy(float))) <= {0.0, 1.0}:
        raise TabularDataError(f"{where}: target column {schema.target!r} must hold 0 and 1 only; "
                               f"found {sorted(map(str, y.unique()))[:5]}")
    return frame


def _is_number(v) -> bool:
    try:
        float(v)
        return True
    except (TypeError, ValueError):
        return False


def load_csv(path: str | Path, schema: Schema) -> pd.DataFrame:
    """``load_csv("mine.csv", schema)`` -> the file's rows, checked against ``schema`` (one line per problem)."""
    path = Path(path).expanduser()
    if not path.is_file():
        what = "is a folder, not a file" if path.is_dir() else "does not exist"
        raise TabularDataError(f"CSV file {str(path)!r} {what}")
    try:
        frame = pd.read_csv(path)
    except (ValueError, UnicodeDecodeError) as err:
        raise TabularDataError(f"CSV file {str(path)!r} cannot be read as CSV "
                               f"({str(err).splitlines()[0] if str(err) else type(err).__name__})") from None
    return check_frame(frame, schema, f"CSV file {str(path)!r}")


def schema_table(schema: Schema) -> pd.DataFrame:
    """One row per column (the target last): name, type, levels, note: the table the book shows."""
    def levels(c: Column) -> str:
        return "" if c.kind == "continuous" else (" < " if c.kind == "ordinal" else ", ").join(map(str, c.levels))

    encoded = {"continuous": lambda c: "standardised (training mean, sd)",
               "categorical": lambda c: f"one-hot ({len(c.levels)} columns)",
               "ordinal": lambda c: f"level index 0..{len(c.levels) - 1}"}
    rows = [dict(column=c.name, type=c.kind, levels=levels(c), encoded_as=encoded[c.kind](c), note=c.note)
            for c in schema.columns]
    rows.append(dict(column=schema.target, type="target (binary)", levels="0, 1", encoded_as="not a VAE input",
                     note=schema.target_note))
    return pd.DataFrame(rows)
