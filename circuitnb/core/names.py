"""How config fields are named: bare for Part I, qualified by their section for the other parts.

    qualify("image_size")                  # 'image_size' (Part I: data.image_size)
    qualify("vae.image_size")              # 'vae.image_size'
    qualify("image_size", part="vae")      # 'vae.image_size': a Part II notebook's own image_size
    field_value(cfg, "sae.hidden")         # cfg.sae.hidden
    notebook_part("book/41_sae_dead_neurons.ipynb")   # 'sae'

Part I's fields (data, model, train, analysis, run) keep their bare names; each later part's fields
are addressed as ``<part>.<field>`` (``tabular.steps``), and inside that part (``part=``, what a part's
notebook declares) by their bare name, which then wins over a Part I field of the same name. Cache keys
and manifests name a field by :func:`key_name`, fixed per field so that no rename re-keys a trained model.
"""
from __future__ import annotations

import dataclasses
import difflib
from pathlib import Path
from typing import Any

from circuitnb.core.errors import UserError
from circuitnb.core.sections import (
    AnalysisConfig,
    DataConfig,
    ModelConfig,
    MriConfig,
    RunConfig,
    SaeConfig,
    TabularConfig,
    TrainConfig,
    VaeConfig,
)

__all__ = ["ConfigError", "SECTIONS", "PARTS", "PART_TITLES", "FIELDS", "display_name", "key_name", "lookup",
           "qualify", "misnamed", "field_value", "notebook_part", "notebook_name"]


class ConfigError(UserError, ValueError):
    """A user-supplied parameter is unknown, mistyped or out of range."""


SECTIONS = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig, "analysis": AnalysisConfig,
            "run": RunConfig, "vae": VaeConfig, "tabular": TabularConfig, "sae": SaeConfig, "mri": MriConfig}
PARTS = ("vae", "tabular", "sae", "mri")                      # sections whose fields are qualified
PART_TITLES = {"vae": "Part II", "tabular": "Part III", "sae": "Part IV", "mri": "Part V"}
_CHAPTER_PART = {"2": "vae", "3": "tabular", "4": "sae", "5": "mri"}    # book/NN_*: N's first digit

# What cache keys and manifests call a part's field: one flat namespace with the part's prefix, but for
# Part II's fields listed here, which have none. Fixed: a different name is a different key for every
# trained model and every cached result that reads the field.
_KEY_PREFIX = {"vae": "vae_", "tabular": "tab_", "sae": "sae_", "mri": "mri_"}
_KEY_UNPREFIXED = frozenset({"vae.latent_dim", "vae.disc_hidden", "vae.disc_layers", "vae.traversal_steps",
                             "vae.traversal_range", "vae.patch_units", "vae.fvae_votes", "vae.dci_trees"})


def display_name(section: str, name: str) -> str:
    """``display_name("vae", "steps")`` -> 'vae.steps'; a Part I field keeps its bare name."""
    return f"{section}.{name}" if section in PARTS else name


def _index() -> dict[str, tuple[str, dataclasses.Field]]:
    index = {}
    for section, cls in SECTIONS.items():
        for f in dataclasses.fields(cls):
            qualified = display_name(section, f.name)
            assert qualified not in index, f"duplicate config field name {qualified}"
            index[qualified] = (section, f)
    return index


FIELDS = _index()                       # qualified name -> (section, field), in section order


def key_name(qualified: str) -> str:
    """``key_name("sae.hidden")`` -> 'sae_hidden': the field's name in cache keys and manifests."""
    section, name = FIELDS[qualified][0], FIELDS[qualified][1].name
    if section not in PARTS or qualified in _KEY_UNPREFIXED:
        return name
    return _KEY_PREFIX[section] + name


# Key names that are not the field's own name: refused as parameters, each naming the qualified name to use.
_RETIRED = {key_name(q): q for q, (s, f) in FIELDS.items() if s in PARTS and key_name(q) != f.name}
assert not set(_RETIRED) & (set(FIELDS) | {f.name for _, f in FIELDS.values()}), "a retired name is in use"


def lookup(name: str, part: str | None = None) -> str | None:
    """The qualified field ``name`` means (inside ``part`` when given: its bare names first), else None."""
    if part is not None and "." not in name and f"{part}.{name}" in FIELDS:
        return f"{part}.{name}"
    return name if name in FIELDS else None


def misnamed(name: str) -> str | None:
    """Why ``name`` is no field when it looks like one: a retired flat name, a part's field given bare, or a
    qualified name of no field; None for any other name (a notebook's own parameter, a typo)."""
    if name in FIELDS:
        return None
    if name in _RETIRED:
        return f"{name!r} is now {_RETIRED[name]!r}"
    owners = [f"{p}.{name}" for p in PARTS if f"{p}.{name}" in FIELDS]
    if owners:
        return f"{name!r} belongs to a part; say which: {', '.join(map(repr, owners))}"
    if "." in name:
        return _unknown(name, None)
    return None


def _unknown(name: str, part: str | None) -> str:
    own = [q.split(".", 1)[1] for q in FIELDS if q.startswith(f"{part}.")] if part else []
    hint = difflib.get_close_matches(name, sorted(FIELDS) + own, n=1)
    return (f"unknown parameter {name!r}" + (f" (did you mean {hint[0]!r}?)" if hint else "")
            + f"; known: {', '.join(sorted(FIELDS))}")


def qualify(name: str, part: str | None = None) -> str:
    """``qualify("steps", "sae")`` -> 'sae.steps'; a :class:`ConfigError` of one line when ``name`` names no field."""
    found = lookup(name, part)
    if found is None:
        raise ConfigError(misnamed(name) or _unknown(name, part))
    return found


def field_value(cfg: Any, qualified: str) -> Any:
    """``field_value(cfg, "vae.image_size")`` -> ``cfg.vae.image_size``."""
    section, f = FIELDS[qualified]
    return getattr(getattr(cfg, section), f.name)


def notebook_part(path: str | Path) -> str | None:
    """The part whose fields a notebook's bare parameters name: 'vae' for book/2N_*, ...; None for Part I."""
    return _CHAPTER_PART.get(Path(path).name[:1]) if Path(path).name[:2].isdigit() else None


def notebook_name(name: str, part: str | None) -> str | None:
    """What a notebook of ``part`` calls the book-wide parameter ``name``, or None when it is not its to take.

    ``notebook_name("vae.image_size", "vae")`` -> 'image_size'; ``notebook_name("image_size", "vae")`` -> None
    (Part I's image_size; a Part II notebook's image_size is its own); names of no field pass as they are."""
    section, dot, bare = name.partition(".")
    if dot:
        return bare if section == part else None
    mine, everyone = lookup(name, part), lookup(name)
    return name if mine == everyone else None
