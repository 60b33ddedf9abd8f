"""Execute the book's notebooks with papermill, then compile them with Jupyter Book 1.x.

    run_notebook("book/01_data_and_model.ipynb", {"timesteps": [50, 500]})
    build_book("smoke")     # -> _build/html/index.html

Notebooks are executed into a staging copy of the book (``_build/src``), never
in place, so the sources stay output-free; ``_config.yml`` sets
``execute_notebooks: "off"`` and Jupyter Book only renders what papermill ran.
The build uses ``-W`` (warnings are errors).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from circuitnb.core import config as config_mod
from circuitnb.core.errors import UserError


class NotebookError(UserError, RuntimeError):
    """A notebook failed; the message names the notebook and the cell."""


def toc_notebooks(root: Path) -> list[Path]:
    """The notebooks listed in ``_toc.yml``, in reading order (relative to ``root``)."""
    toc = yaml.safe_load((Path(root) / "_toc.yml").read_text())
    files = [toc["root"]]

    def walk(entries):
        for entry in entries or []:
            files.extend([entry["file"]] if "file" in entry else [])
            walk(entry.get("sections"))
    walk(toc.get("chapters"))
    return [Path(f).with_suffix(".ipynb") for f in files if (Path(root) / f).with_suffix(".ipynb").exists()]


def check_parameters(notebook: Path, params: dict) -> None:
    """Reject parameters the notebook does not declare, and bad config values, before running."""
    import papermill as pm
    declared = pm.inspect_notebook(str(notebook))
    unknown = sorted(set(params) - set(declared))
    if unknown:
        raise UserError(f"{notebook.name}: unknown parameter(s) {unknown}; the notebook takes {sorted(declared)}")
    config_fields = set(config_mod.override_names())
    profile = params.get("profile", "quick")
    config_mod.load(profile, **{k: v for k, v in params.items() if k in config_fields})


def run_notebook(notebook: Path, params: dict, output: Path | str | None = None) -> Path:
    """Execute one notebook with papermill; returns the executed copy's path."""
    import papermill as pm
    notebook = Path(notebook)
    check_parameters(notebook, params)
    output = Path(output) if output else Path("_build/executed") / notebook.name
    output.parent.mkdir(parents=True, exist_ok=True)
    # The kernel inherits this environment; a non-inline MPLBACKEND (e.g. Agg, common on CI)
    # would make every figure vanish from the executed notebook, so the kernel gets none.
    backend = os.environ.pop("MPLBACKEND", None)
    try:
        pm.execute_notebook(str(notebook), str(output), parameters=params, kernel_name="python3",
                            cwd=str(notebook.parent), progress_bar=sys.stderr.isatty())
    except pm.PapermillExecutionError as err:
        raise NotebookError(f"{notebook}: cell {err.exec_count} (index {err.cell_index}) failed: "
                            f"{err.ename}: {err.evalue}; executed copy with the traceback: {output}") from None
    finally:
        if backend is not None:
            os.environ["MPLBACKEND"] = backend
    return output


def build_book(profile: str, params: dict | None = None, root: Path = Path(".")) -> Path:
    """Execute every notebook of ``_toc.yml`` on ``profile``, then build the HTML with ``-W``."""
    root = Path(root).resolve()
    params = {**(params or {}), "profile": profile}
    stage = root / "_build" / "src"
    notebooks = toc_notebooks(root)
    for nb in notebooks:                          # validate everything before any compute
        check_parameters(root / nb, params)
    shutil.rmtree(stage, ignore_errors=True)
    # The executed .ipynb stands in for each notebook; its MyST twin (book/NN.md, paired by jupytext) stays out.
    paired = {nb.with_suffix(".md").name for nb in notebooks}
    shutil.copytree(root / "book", stage / "book", ignore=lambda d, names: [
        n for n in names if n.endswith(".ipynb") or n == ".ipynb_checkpoints" or n in paired])
    for name in ("_config.yml", "_toc.yml"):
        shutil.copy2(root / name, stage / name)
    for nb in notebooks:
        print(f"executing {nb} (profile {profile})", file=sys.stderr, flush=True)
        run_notebook(root / nb, params, output=stage / nb)
    jupyter_book = Path(sys.executable).parent / "jupyter-book"   # the venv's own, beside this Python
    cmd = [str(jupyter_book), "build", str(stage), "--path-output", str(root), "-W", "-n", "--keep-going", "--all"]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise NotebookError(f"jupyter-book build failed (exit {done.returncode}):\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}")
    return root / "_build" / "html" / "index.html"
