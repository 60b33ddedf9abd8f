"""The book of a model of your own: Part I's chapters run on a diffusers ``UNet2DModel`` folder, nothing trained.

    circuitnb book --profile smoke -p model_dir ~/models/ddpm-cifar10-32      # the command line's way
    build_your_book("smoke", {"model_dir": "~/models/ddpm-cifar10-32"})     # -> HTML; CSVs beside it
    res = run_chapter(cfg, "04_attention_specialization")                    # one chapter's result

Every Part I chapter of ``_toc.yml`` becomes one page: the template ``book/yours/your_model.ipynb`` executed
by papermill with that chapter's name and shown under its title. The chapter's own ``run(cfg)`` decides what
it can compute on one model (:mod:`circuitnb.analysis.yours`): its tables, each also a CSV under
``_build/your_model/tables/<chapter>/``, or one line saying why it is skipped. The model is checked (one line
per problem, :mod:`circuitnb.modeling.user_model`) and its images read before any page runs. The pages go to
``_build/your_model/src`` and the HTML to ``_build/your_model/_build/html``, so the book's own build is left
as it was.
"""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Callable

import nbformat
import yaml

from circuitnb.analysis import yours
from circuitnb.chapters.diffusion import (
    attention_evolution,
    attention_specialization,
    circuit_complexity,
    cross_dataset,
    data_and_model,
    explorers,
    interventions,
    over_training,
    performance,
    readings,
    robustness,
    scorecard,
    temporal_dynamics,
)
from circuitnb.chapters.report import ChapterResult
from circuitnb.core import config as config_mod
from circuitnb.core.errors import UserError
from circuitnb.publish.book import BUILD_ONLY, check_parameters, compile_html, execute_notebooks, toc_notebooks

TEMPLATE = Path("book") / "yours" / "your_model.ipynb"
# Each Part I notebook's chapter function, by the notebook's name.
CHAPTERS: dict[str, Callable[..., ChapterResult]] = {
    "01_data_and_model": data_and_model.run, "02_performance": performance.run,
    "03_circuit_complexity": circuit_complexity.run, "04_attention_specialization": attention_specialization.run,
    "05_temporal_dynamics": temporal_dynamics.run, "06_interventions": interventions.run,
    "07_cross_dataset": cross_dataset.run, "08_attention_evolution": attention_evolution.run,
    "09_robustness": robustness.run, "10_scorecard": scorecard.run, "11_explorers": explorers.run,
    "12_readings": readings.run, "13_over_training": over_training.run,
}


def run_chapter(cfg: config_mod.Config, chapter: str) -> ChapterResult:
    """``chapter``'s result on ``cfg`` (a model of your own when ``cfg.run.model_dir`` is set)."""
    if chapter not in CHAPTERS:
        raise UserError(f"parameter 'chapter' = {chapter!r}; choose one of {sorted(CHAPTERS)}")
    return CHAPTERS[chapter](cfg)


def _title(root: Path, chapter: str) -> str:
    """The chapter notebook's own title (its first heading), e.g. "3. Circuit complexity"."""
    nb = nbformat.read(str(root / "book" / f"{chapter}.ipynb"), as_version=4)
    for cell in nb.cells:
        for line in cell.source.splitlines() if cell.cell_type == "markdown" else []:
            if line.startswith("# "):
                return line[2:].strip()
    return chapter


def _retitle(path: Path, title: str) -> None:
    """Put ``title`` in place of the template's first heading: each page keeps its chapter's title."""
    nb = nbformat.read(str(path), as_version=4)
    cell = next(c for c in nb.cells if c.cell_type == "markdown")
    lines = cell.source.splitlines()
    cell.source = "\n".join([f"# {title}: your model", *lines[1:]])
    nbformat.write(nb, str(path))


def index_page(cfg: config_mod.Config, chapters: list[str], titles: dict[str, str]) -> str:
    """The book's first page: the model, its images, and each chapter: run, or skipped and why."""
    m = yours.load(cfg)
    rows = [f"| {titles[c]} | {yours.SKIPPED.get(c, 'runs on your model')} |" for c in chapters]
    return "\n".join([
        "# Your model", "",
        f"Part I of the book on the diffusers `UNet2DModel` in `{cfg.run.model_dir}` (content key "
        f"`{m.meta['key']}`; scheduler: {m.meta['scheduler']}). Nothing is trained: every chapter reads this "
        f"one model, on these images: {yours.image_note(cfg)}.", "",
        "| chapter | on your model |", "| --- | --- |", *rows, "",
        "Each table of each page is also a CSV under `_build/your_model/tables/<chapter>/`.", ""])


def build_your_book(profile: str, params: dict, root: Path = Path(".")) -> Path:
    """Check the model and its images, run every Part I chapter on it (papermill), build the HTML with ``-W``."""
    root = Path(root).expanduser().resolve()
    template = root / TEMPLATE
    params = {**params, "profile": profile}
    check_parameters(template, {k: v for k, v in {**params, "chapter": "01_data_and_model"}.items()
                                if k not in BUILD_ONLY})
    fields = set(config_mod.override_names())
    cfg = config_mod.load(profile, **{k: v for k, v in params.items() if k in fields})
    config_mod.check_cache_dir(cfg)
    m = yours.load(cfg)                               # every folder problem is one line, before any page runs
    x0 = yours.heldout_images(cfg, yours.images_name(cfg))
    print(f"your model: {cfg.run.model_dir} ({m.meta['key']}), {len(x0)} images: {yours.image_note(cfg)}",
          file=sys.stderr, flush=True)
    chapters = [nb.stem for nb in toc_notebooks(root) if nb.stem in CHAPTERS]
    titles = {c: _title(root, c) for c in chapters}
    out = root / "_build" / "your_model"
    stage = out / "src"
    (stage / "pages").mkdir(parents=True, exist_ok=True)
    (stage / "book").mkdir(parents=True, exist_ok=True)
    jobs, own = [], {}
    for chapter in chapters:
        page = stage / "pages" / f"{chapter}.ipynb"        # one copy per chapter: the executor keys jobs by path
        page.write_bytes(template.read_bytes())
        jobs.append((page, stage / "book" / f"{chapter}.ipynb"))
        own[str(page)] = {"chapter": chapter}
    (stage / "book" / "index.md").write_text(index_page(cfg, chapters, titles))
    toc = dict(format="jb-book", root="book/index", chapters=[{"file": f"book/{c}"} for c in chapters])
    (stage / "_toc.yml").write_text(yaml.safe_dump(toc, sort_keys=False))
    book_config = yaml.safe_load((root / "_config.yml").read_text())
    book_config.update(title="circuitnb: your model", exclude_patterns=["_build", "pages", "**.ipynb_checkpoints"])
    (stage / "_config.yml").write_text(yaml.safe_dump(book_config, sort_keys=False))
    for folder in ("vendor", "_static"):                  # offline scripts and the book's CSS, as its own build
        shutil.rmtree(stage / "book" / folder, ignore_errors=True)
        if (root / "book" / folder).is_dir():
            shutil.copytree(root / "book" / folder, stage / "book" / folder)
    os.environ["CIRCUITNB_TABLES"] = str(out / "tables")
    execute_notebooks(jobs, params, per_notebook=own)
    for chapter in chapters:
        _retitle(stage / "book" / f"{chapter}.ipynb", titles[chapter])
    return compile_html(stage, out)
