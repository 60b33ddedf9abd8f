"""The synthetic tabular world: a stated DAG of three latent factors and seven columns, so measures have a known answer.

    w = draw_world(2000, seed=0)
    w.frame                              # raw columns (strings for categorical and ordinal levels) + target
    w.factors                            # the latent factors of every row: size, kind (0..2), grade
    w2 = intervene(w, "hue", np.zeros(len(w)))    # do(hue = 0): hue's descendants recomputed, noise kept
    descendants("length")                # ('weight', 'score', 'risk')

Structural equations (every u_* an independent standard normal, drawn once per row and kept by interventions;
Phi is the standard normal CDF; bin(v; c) counts the cut points c below v)::

    size   = u_size                                    factor, continuous
    kind   = floor(3 Phi(u_kind))                      factor, categorical 0..2, uniform
    grade  = u_grade                                   factor, continuous
    length = 0.9 size + 0.4 u                          continuous           size -> length
    weight = 0.8 length + 0.4 u                        continuous           length -> weight
    colour = kind, or kind + 1 mod 3 where |u| > 1.96  categorical (5 % mislabelled)   kind -> colour
    hue    = 1.2 (kind - 1) + 0.4 u                    continuous           kind -> hue
    grade_level = bin(grade + 0.3 u; -0.8, 0, 0.8)     ordinal D < C < B < A            grade -> grade_level
    score  = 0.7 (grade_level - 1.5) + 0.4 weight + 0.4 u   continuous      grade_level, weight -> score
    risk   = bin(0.9 hue - 0.6 score + 0.5 u; -0.7, 0.7)    ordinal low < mid < high    hue, score -> risk
    target = 1[size - 0.8 grade + 0.8 (kind = 2) + 0.5 u > 0]   the downstream label, not a VAE input

Ground truth a measure can be checked against: :data:`FACTOR_GROUPS` (the column group each factor drives:
its children and their within-group child), :data:`EDGES` (every parent -> child edge: factor -> column and
column -> column), :data:`CROSS_GROUP_EDGES` and :func:`descendants` (what an intervention on a node changes).
Three column edges cross groups (weight -> score, hue -> risk, score -> risk); ``risk`` is a collider of the
kind and grade groups, driven by no factor's group alone. Deterministic per seed (numpy's PCG64).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import ndtr

from circuitnb.data.tabular.schema import Column, Schema, TabularDataError

FACTORS = ("size", "kind", "grade")
COLOURS = ("red", "green", "blue")
GRADES = ("D", "C", "B", "A")
RISKS = ("low", "mid", "high")
COLUMNS = ("length", "weight", "colour", "hue", "grade_level", "score", "risk")
NODES = (*FACTORS, *COLUMNS, "target")                         # topological order
PARENTS: dict[str, tuple[str, ...]] = {
    "size": (), "kind": (), "grade": (), "length": ("size",), "weight": ("length",), "colour": ("kind",),
    "hue": ("kind",), "grade_level": ("grade",), "score": ("grade_level", "weight"), "risk": ("hue", "score"),
    "target": ("size", "grade", "kind")}
EDGES: tuple[tuple[str, str], ...] = tuple((p, c) for c in NODES for p in PARENTS[c])
FACTOR_GROUPS: dict[str, tuple[str, ...]] = {"size": ("length", "weight"), "kind": ("colour", "hue"),
                                             "grade": ("grade_level", "score")}
_GROUP_OF = {c: f for f, cols in FACTOR_GROUPS.items() for c in cols}
# Column -> column edges between two groups (or into risk, which no group holds): (weight, score), (hue, risk),
# (score, risk).
CROSS_GROUP_EDGES: tuple[tuple[str, str], ...] = tuple(
    (p, c) for p, c in EDGES if p in COLUMNS and c in COLUMNS and _GROUP_OF.get(p) != _GROUP_OF.get(c))

WORLD_SCHEMA = Schema(
    "world",
    (Column("length", "continuous", (), "driven by the factor size"),
     Column("weight", "continuous", (), "child of length"),
     Column("colour", "categorical", COLOURS, "the factor kind, 5% mislabelled"),
     Column("hue", "continuous", (), "driven by the factor kind"),
     Column("grade_level", "ordinal", GRADES, "the factor grade, binned with noise"),
     Column("score", "continuous", (), "child of grade_level and weight"),
     Column("risk", "ordinal", RISKS, "child of hue and score (a collider of two groups)")),
    target="target", source="circuitnb.data.tabular.world.draw_world: procedural, a stated DAG (this module)",
    target_note="1[size - 0.8 grade + 0.8 (kind = 2) + 0.5 u > 0]: depends on the factors only",
    notes="no rows dropped; replicate r draws its own rows")


@dataclass(frozen=True)
class World:
    values: dict        # node -> float64 [n] (categorical and ordinal: their integer codes)
    noise: dict         # node -> float64 [n], the exogenous u of each node

    def __len__(self) -> int:
        return len(self.values["size"])

    @property
    def factors(self) -> pd.DataFrame:
        return pd.DataFrame({f: self.values[f] for f in FACTORS}).astype({"kind": int})

    @property
    def frame(self) -> pd.DataFrame:
        """The observed table: raw column values (level names for colour, grade_level, risk) and the target."""
        v = self.values
        names = {"colour": COLOURS, "grade_level": GRADES, "risk": RISKS}
        out = {c: (np.asarray(names[c])[v[c].astype(int)] if c in names else v[c]) for c in COLUMNS}
        return pd.DataFrame({**out, "target": v["target"].astype(int)})


def _bin(v: np.ndarray, cuts: tuple[float, ...]) -> np.ndarray:
    return (v[:, None] > np.asarray(cuts)[None]).sum(1).astype(float)


def _equation(node: str, v: dict, u: np.ndarray) -> np.ndarray:
    """The structural equation of ``node`` (see the module docstring)."""
    if node in ("size", "grade"):
        return u.copy()
    if node == "kind":
        return np.minimum(np.floor(3 * ndtr(u)), 2)
    if node == "length":
        return 0.9 * v["size"] + 0.4 * u
    if node == "weight":
        return 0.8 * v["length"] + 0.4 * u
    if node == "colour":
        return np.where(np.abs(u) > 1.96, (v["kind"] + 1) % 3, v["kind"])
    if node == "hue":
        return 1.2 * (v["kind"] - 1) + 0.4 * u
    if node == "grade_level":
        return _bin(v["grade"] + 0.3 * u, (-0.8, 0.0, 0.8))
    if node == "score":
        return 0.7 * (v["grade_level"] - 1.5) + 0.4 * v["weight"] + 0.4 * u
    if node == "risk":
        return _bin(0.9 * v["hue"] - 0.6 * v["score"] + 0.5 * u, (-0.7, 0.7))
    if node == "target":
        return (v["size"] - 0.8 * v["grade"] + 0.8 * (v["kind"] == 2) + 0.5 * u > 0).astype(float)
    raise AssertionError(node)  # pragma: no cover


def _solve(noise: dict, fixed: dict) -> dict:
    values: dict = {}
    for node in NODES:
        values[node] = np.asarray(fixed[node], float).copy() if node in fixed else _equation(node, values, noise[node])
    return values


def draw_world(n: int, seed: int) -> World:
    """``n`` rows of the world, deterministic for ``seed``."""
    rng = np.random.default_rng(seed)
    noise = {node: rng.standard_normal(n) for node in NODES}
    return World(_solve(noise, {}), noise)


def descendants(node: str) -> tuple[str, ...]:
    """Every node downstream of ``node`` in :data:`EDGES`, in topological order."""
    _check_node(node)
    found = {node}
    for child in NODES:                                   # topological order: parents come first
        if any(p in found for p in PARENTS[child]):
            found.add(child)
    return tuple(c for c in NODES if c in found and c != node)


def intervene(world: World, node: str, values) -> World:
    """do(node = values): ``node`` set (a code for colour, grade_level, risk and kind), its descendants recomputed
    from their equations with every exogenous u kept, every other node unchanged."""
    _check_node(node)
    values = np.broadcast_to(np.asarray(values, float), (len(world),))
    fixed = {k: world.values[k] for k in NODES if k != node and k not in descendants(node)}
    return dataclasses.replace(world, values=_solve(world.noise, {**fixed, node: values}))


def _check_node(node: str) -> None:
    if node not in NODES:
        raise TabularDataError(f"parameter 'node' = {node!r}; choose one of {NODES}")
