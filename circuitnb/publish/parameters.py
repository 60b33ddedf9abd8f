"""Which notebook takes which parameter, checked before anything runs.

    params_for(Path("book/21_vae_interventions.ipynb"), {"vae.steps": 100, "seed": 1})   # {"steps": 100, "seed": 1}
    check_parameters(Path("book/21_vae_interventions.ipynb"), {"steps": 100})             # or a one-line UserError

A notebook declares its parameters in its ``parameters`` cell under bare names; a part's notebook
(book/2N-5N) takes its part's fields bare (:func:`circuitnb.core.config.notebook_part`), so the book-wide
``-p vae.image_size 32`` reaches Part II's notebooks as ``image_size`` and ``-p image_size 32`` Part I's.
"""
from __future__ import annotations

import json
from pathlib import Path

from circuitnb.core import config as config_mod
from circuitnb.core.errors import UserError

__all__ = ["check_notebook_file", "check_parameters", "notebook_params", "params_for", "declared_names"]


def check_notebook_file(path: Path) -> None:
    """A named error unless ``path`` is a readable Jupyter notebook (JSON with cells)."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"notebook {str(path)!r} does not exist")
    if path.is_dir():
        raise UserError(f"notebook {str(path)!r} is a folder; give a .ipynb file")
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as err:
        raise UserError(f"notebook {str(path)!r} cannot be read ({err.strerror or err})") from None
    except UnicodeDecodeError:
        raise UserError(f"notebook {str(path)!r} is not UTF-8 text; expected a Jupyter notebook "
                        "(.ipynb JSON)") from None
    if not text.strip():
        raise UserError(f"notebook {str(path)!r} is empty; expected a Jupyter notebook (.ipynb JSON)")
    try:
        nb = json.loads(text)
    except ValueError as err:
        raise UserError(f"notebook {str(path)!r} is not JSON ({err}); expected a Jupyter notebook (.ipynb)") from None
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        raise UserError(f"notebook {str(path)!r} is JSON but not a notebook (no 'cells' list)")


def check_parameters(notebook: Path, params: dict) -> None:
    """Reject parameters the notebook does not declare, and bad config values, before running.

    ``params`` are named as the notebook names them: a part's notebook takes its part's fields bare."""
    import papermill as pm
    check_notebook_file(notebook)
    declared = pm.inspect_notebook(str(notebook))
    unknown = sorted(set(params) - set(declared))
    if unknown:
        problem = next(filter(None, map(config_mod.misnamed, unknown)), None)
        raise UserError(f"{notebook.name}: " + (problem or f"unknown parameter(s) {unknown}; the notebook takes "
                                                           f"{sorted(declared)}"))
    part = config_mod.notebook_part(notebook)
    profile = params.get("profile", "quick")
    config_mod.load(profile, part=part, **{k: v for k, v in params.items() if config_mod.lookup(k, part)})


def notebook_params(notebook: Path, params: dict) -> dict:
    """``params`` as ``notebook`` names them, for ``circuitnb run``: a bare name is the notebook's own (in a
    part's notebook, that part's field), a qualified name of its part loses the qualifier
    (``vae.image_size`` -> ``image_size`` for book/2N_*), and another part's is an error naming both."""
    part = config_mod.notebook_part(notebook)
    out: dict = {}
    for name, value in params.items():
        section, dot, bare = name.partition(".")
        if dot and section != part:
            problem = config_mod.misnamed(name) if section not in config_mod.PARTS else (
                f"parameter {name!r} is for {config_mod.PART_TITLES[section]}'s notebooks; {notebook.name} is "
                f"{config_mod.PART_TITLES.get(part or '', 'Part I')}'s")
            raise UserError(problem or f"parameter {name!r} is not a parameter of {notebook.name}")
        local = bare if dot else name
        if local in out:
            raise UserError(f"parameter {local!r} is given twice for {notebook.name}, bare and qualified")
        out[local] = value
    return out


def params_for(notebook: Path, params: dict) -> dict:
    """The part of a book-wide ``params`` that ``notebook`` declares, as it names them. Each part's notebooks
    take their own parameters: ``vae.image_size`` reaches Part II's as ``image_size``; a bare name reaches the
    notebooks where it means the same field as in Part I (``seed``, ``replicates`` but for the parts that have
    their own), and a name of no field the notebooks that declare it."""
    import papermill as pm
    declared = pm.inspect_notebook(str(notebook))
    part = config_mod.notebook_part(notebook)
    routed = {config_mod.notebook_name(k, part): v for k, v in params.items()}
    return {k: v for k, v in routed.items() if k in declared}


def declared_names(root: Path, notebooks: list[Path]) -> set[str]:
    """The book-wide names of every notebook's parameters (a part's own fields qualified: ``mri.root``)."""
    import papermill as pm
    return {config_mod.lookup(name, config_mod.notebook_part(nb)) or name
            for nb in notebooks for name in pm.inspect_notebook(str(root / nb))}
