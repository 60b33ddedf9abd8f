"""Execute the book's notebooks with papermill, then compile them with Jupyter Book 1.x.

    run_notebook("book/01_data_and_model.ipynb", {"timesteps": [50, 500]})
    build_book("smoke")     # -> _build/html/index.html

``build_book`` first trains or loads every model the book needs, in the
terminal with progress bars (:func:`prepare_models`), so notebooks only load
them; then it prints one line per notebook with its elapsed time. Notebooks are
executed into a staging copy of the book (``_build/src``), never in place, so
the sources stay output-free; ``_config.yml`` sets ``execute_notebooks: "off"``
and Jupyter Book only renders what papermill ran. The build uses ``-W``
(warnings are errors). Papermill's injected-parameters cell is tagged
``remove-cell`` in the executed copy, so pages show the notebook's own
parameters cell only.
"""
from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from circuitnb import data
from circuitnb.core import config as config_mod
from circuitnb.core.errors import UserError
from circuitnb.core.machine import check_writable_file
from circuitnb.data.vae.datasets import vae_data
from circuitnb.publish import executors
from circuitnb.publish.parameters import (
    check_parameters,
    declared_names,
    notebook_params,
    params_for,
)


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
    for part in toc.get("parts") or []:          # a book in parts (Part I: the diffusion paper, Part II: the VAEs)
        walk(part.get("chapters"))
    return [Path(f).with_suffix(".ipynb") for f in files if (Path(root) / f).with_suffix(".ipynb").exists()]


def _kernel_config(sockets: Path):
    # The kernel talks to papermill over local IPC sockets instead of TCP: nothing is sent over the
    # network, and ipykernel has no reason for its "running over TCP without encryption" warning.
    # The socket files go to ``sockets`` (a private temporary folder), not to the kernel's working
    # folder: a killed build would leave them in the book's sources, where the next copy trips on them.
    from traitlets.config import Config
    return Config({"KernelManager": {"transport": "ipc", "ip": str(sockets / "kernel-ipc")}})


def _hide_injected_cell(output: Path) -> None:
    """Tag papermill's injected-parameters cell ``remove-cell``: readers see the notebook's own cell."""
    import nbformat
    nb = nbformat.read(str(output), as_version=4)
    for cell in nb.cells:
        tags = cell.metadata.setdefault("tags", [])
        if "injected-parameters" in tags and "remove-cell" not in tags:
            tags.append("remove-cell")
    nbformat.write(nb, str(output))


def _failure(notebook: Path, err, output: Path) -> NotebookError:
    # papermill counts cells of the executed copy, which has its injected-parameters cell; the
    # source notebook has one cell fewer before the failing one.
    import nbformat
    index = err.cell_index
    try:
        cells = nbformat.read(str(output), as_version=4).cells
        real = [c for c in cells if "papermill-error-cell-tag" not in c.metadata.get("tags", [])]
        injected = sum("injected-parameters" in c.metadata.get("tags", []) for c in real[:err.cell_index])
        index = err.cell_index - injected
    except (OSError, ValueError):
        pass
    return NotebookError(f"{notebook}: cell {index} (counting from 0 in the notebook; In [{err.exec_count}]) "
                         f"failed: {err.ename}: {err.evalue}; executed copy with the traceback: {output}")


def run_notebook(notebook: Path, params: dict, output: Path | str | None = None,
                 progress: bool | None = None) -> Path:
    """Execute one notebook with papermill; returns the executed copy's path."""
    import papermill as pm
    notebook = Path(notebook)
    params = notebook_params(notebook, params)
    check_parameters(notebook, params)
    output = Path(output) if output else Path("_build/executed") / notebook.name
    check_writable_file(output, "-o")
    # The kernel inherits this environment; a non-inline MPLBACKEND (e.g. Agg, common on CI)
    # would make every figure vanish from the executed notebook, so the kernel gets none.
    backend = os.environ.pop("MPLBACKEND", None)
    # Every table a chapter shows is also written as CSV (chapters.report); the kernel runs in the
    # notebook's folder, so it is told where: $CIRCUITNB_TABLES, else _build/tables under this directory.
    os.environ.setdefault("CIRCUITNB_TABLES", str(Path.cwd().resolve() / "_build" / "tables"))
    try:
        with tempfile.TemporaryDirectory(prefix="circuitnb-kernel-") as sockets:
            # The kernel is stopped at once when the last cell is done ("immediate"), not asked to exit and
            # waited for: every output has arrived and every file it writes is written by then, and a
            # graceful stop (interrupt, shutdown request, wait for the exit of a process holding torch)
            # took about 3 s of each notebook's 10-20 s in a warm build.
            pm.execute_notebook(str(notebook), str(output), parameters=params, kernel_name="python3",
                                cwd=str(notebook.parent), config=_kernel_config(Path(sockets)),
                                progress_bar=sys.stderr.isatty() if progress is None else progress,
                                shutdown_kernel="immediate")
    except pm.PapermillExecutionError as err:
        raise _failure(notebook, err, output) from None
    finally:
        if backend is not None:
            os.environ["MPLBACKEND"] = backend
    _hide_injected_cell(output)
    return output


# --- every notebook of the book, several at a time ---------------------------------------------------
def start_order(notebooks: list[Path]) -> list[Path]:
    """The order the notebooks start in: reading order, except those that gather other chapters' results.

    No chapter imports another (chapters are leaves; tests/test_layers.py), so this order is not needed for
    the code to run: any order computes the same numbers. It only spares waiting on the result cache's
    locks, because the gathering chapters read entries the others compute. Chapter 12 (readings) reads
    every Part I result (the intervention, IFE, head-test, divergence and head-energy entries of
    :mod:`circuitnb.analysis`), so it starts after Part I's other chapters and runs beside Part II's,
    which need none of them. The scorecard (chapter 10) reads the ``claims_<chapter>`` entries of chapters
    2-9 (:mod:`circuitnb.analysis.claim_sources`) and chapter 12's ``sensitivity`` entry
    (:func:`circuitnb.analysis.readings.sensitivity`), so it starts last. Why: both used to start last,
    together, and the scorecard waited about five minutes for the lock of the sensitivity table that
    chapter 12 was computing, with a core idle.
    """
    def rank(nb: Path) -> int:
        if nb.stem == "10_scorecard":
            return 3
        if nb.stem == "12_readings":
            return 1
        return 2 if nb.stem.startswith("2") else 0           # Part II: 20_..., 21_..., 22_...
    return sorted(notebooks, key=rank)                      # stable: reading order within a rank


def _execute_one(notebook: Path, output: Path, params: dict, threads: int) -> float:
    """Worker process: execute one notebook whose kernel runs ``threads`` threads; returns the seconds."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):      # read by torch in the kernel, at import
        os.environ[var] = str(threads)
    start = time.perf_counter()
    run_notebook(notebook, params, output=output, progress=False)
    return time.perf_counter() - start


def execute_notebooks(jobs: list[tuple[Path, Path]], params: dict,
                      executor: executors.Executor | None = None, per_notebook: dict[str, dict] | None = None) -> None:
    """Execute each (notebook, executed copy) with papermill, one kernel per core with one thread each.

    Two single-thread processes beat one two-thread process on this work (as for training: the quick
    UNet's step 0.73 s against 0.98 s), and much of a notebook (imports, figures) runs on one thread
    anyway. Notebooks share work through the result cache: a result another kernel is computing is
    waited for (its entry's lock), never computed twice. Prints one line per notebook as it ends; on the
    first failure the notebooks not yet started are cancelled and its error is raised. ``executor``
    (default: the one ``params`` names, else the local pool) runs them; on Ray each is a task of one core.
    ``per_notebook``: parameters of one notebook only, by its path (a template run once per chapter).
    """
    profile = params.get("profile", "quick")
    executor = executor or executors.make_executor(params.get("executor", "local"), params.get("ray_address", ""))
    resources = executors.notebook_resources(executor, params.get("device") or "auto")
    first = start_order([nb for nb, _ in jobs])
    order = sorted(jobs, key=lambda job: first.index(job[0]))
    workers, threads = executor.plan(len(order), resources)
    own = per_notebook or {}
    named = {str(nb): (nb, out, {**params_for(nb, params), **own.get(str(nb), {})}, threads) for nb, out in order}
    for label, seconds in executor.map(_execute_one, named, resources):
        nb = Path(label)
        print(f"{nb.parent.name}/{nb.name}: executed in {seconds:.1f} s (profile {profile}, {workers} notebook(s) "
              f"at a time, {threads} thread(s) each, {executor.name})", file=sys.stderr, flush=True)


# --- models first, in the terminal ------------------------------------------------------------------
@dataclass(frozen=True)
class RequiredModel:
    """One model the book loads: calling it trains it, or loads it from the cache."""
    label: str
    cfg: config_mod.Config
    dataset: str
    replicate: int = 0
    part: str = "unet"          # "unet" (Part I), else a family of modeling.families: vae, tabular, sae, mri
    kind: str = ""              # the family's architecture or sparsifier ("" for a UNet)

    def __call__(self, progress: bool = True, position: int | None = None, callback=None):
        """The trained model; ``callback(step, loss)`` runs after each step of a UNet's training."""
        if self.part != "unet":
            if callback is not None:
                raise ValueError(f"{self.label}: only a UNet's training takes a step callback")
            from circuitnb.modeling.families import FAMILIES
            return FAMILIES[self.part].load_or_train(self.cfg, self.kind, self.dataset, self.replicate,
                                                     progress=progress)
        from circuitnb.modeling.train import load_or_train
        return load_or_train(self.cfg, self.dataset, progress=progress, replicate=self.replicate, position=position,
                             callback=callback)

    @property
    def key(self) -> str:
        """The cache key this process gives the model: for a UNet the device and CPU in force resolve precision
        'auto', so another machine may key the same settings otherwise."""
        if self.part != "unet":
            from circuitnb.modeling.families import FAMILIES
            return FAMILIES[self.part].key(self.cfg, self.kind, self.dataset, self.replicate)
        from circuitnb.modeling.train import model_key
        return model_key(self.cfg, self.dataset, self.replicate)

    @property
    def cached(self) -> bool:
        if self.part != "unet":
            from circuitnb.modeling.families import FAMILIES
            return FAMILIES[self.part].is_cached(self.cfg, self.kind, self.dataset, self.replicate)
        from circuitnb.modeling.train import is_cached
        return is_cached(self.cfg, self.dataset, self.replicate)


def required_models(cfg: config_mod.Config, parts: tuple[str, ...] = ("unet", "vae")) -> list[RequiredModel]:
    """Every model the notebooks of ``parts`` load: ``cfg.run.replicates`` UNets per dataset
    (analysis.replicates.load_models), then each family's members (:mod:`circuitnb.modeling.families`:
    Part II's VAEs, Part III's tabular VAEs, Part IV's VAE-SAEs, Part V's MRI VAEs)."""
    from circuitnb.modeling.families import FAMILIES
    out = [RequiredModel(f"{ds} r{r}", cfg, ds, r) for ds in data.DATASETS
           for r in range(cfg.run.replicates)] if "unet" in parts else []
    for part in (p for p in FAMILIES if p in parts):
        out += [RequiredModel(" ".join(x for x in (part, k, ds, f"r{r}") if x), cfg, ds, r, part, k)
                for k, ds, r in FAMILIES[part].members(cfg)]
    return out


def _train_one(model: RequiredModel, threads: int, position: int | None, progress: bool, callback=None,
               bars: str = "tqdm") -> tuple[float, str]:
    """Worker: train (or load) one model on ``threads`` threads; returns the seconds it took and its key.

    ``bars`` 'ray' shows a UNet's progress as a bar the Ray driver draws (fed by the step ``callback``)."""
    import torch
    torch.set_num_threads(threads)
    start = time.perf_counter()
    bar = (executors.StepBar(f"train {model.label}", model.cfg.train.train_steps)
           if progress and bars == "ray" and model.part == "unet" else None)
    try:
        model(progress=progress and bar is None, position=position, callback=executors.chain(callback, bar))
    finally:
        if bar is not None:
            bar.close()
    if model.part == "unet":                # its snapshots' held-out scores (chapter 1), while a core is ours
        from circuitnb.analysis.convergence import model_scores
        model_scores(model.cfg, model.dataset, model.replicate)
    return time.perf_counter() - start, model.key


def _train_in_parallel(models: list[RequiredModel], progress: bool, executor: executors.Executor | None = None,
                       resources: executors.Resources | None = None) -> set[str]:
    """Train the models side by side on ``executor`` (default: worker processes here, one per core: one thread
    each beats two threads on one model, measured 0.73 s against 0.98 s per step of the quick UNet on 2
    cores). Each entry's lock keeps two workers from training one key."""
    executor, resources = executor or executors.LocalPoolExecutor(), resources or executors.Resources()
    workers, threads = executor.plan(len(models), resources)
    by_label = {m.label: m for m in models}
    jobs = {m.label: (m, threads, i % workers if executor.bars == "tqdm" else None, progress, None, executor.bars)
            for i, m in enumerate(models)}
    for label, (seconds, key) in executor.map(_train_one, jobs, resources):
        # A worker's model this process cannot find would be trained again here: say why instead.
        if key != by_label[label].key:
            raise UserError(f"model {label}: a worker keyed it {key}, this machine {by_label[label].key}: precision "
                            "'auto' resolves otherwise there (another CPU or GPU); give -p precision fp32 or bf16")
        if not by_label[label].cached:
            raise UserError(f"model {label}: a worker trained it, but it is not in {by_label[label].cfg.cache_path} "
                            "here: the cache must be one shared folder at the same path on every machine")
        print(f"model {label}: trained in {seconds:.1f} s ({workers} at a time, {threads} thread(s) each, "
              f"{executor.name})", file=sys.stderr, flush=True)
    return set(by_label)


def parts_of(notebooks: list[Path]) -> tuple[str, ...]:
    """The parts whose models ``notebooks`` load, from their chapter numbers (:func:`circuitnb.core.config.
    notebook_part`; Part I's UNets: "unet"); Part III's chapters also compare with Part II's shapes VAEs."""
    parts = {config_mod.notebook_part(nb) or "unet" for nb in notebooks if Path(nb).name[:2].isdigit()}
    if "tabular" in parts:
        parts.add("vae")
    return tuple(p for p in ("unet", *config_mod.PARTS) if p in parts)


def prepare_models(cfg: config_mod.Config, progress: bool = True, parts: tuple[str, ...] = ("unet", "vae")) -> dict:
    """Train or load every model of :func:`required_models` of ``parts``, with a progress bar per training.

    Every model's data is read first (a bad ``celeba_root`` or $CIRCUITNB_CELEBA fails
    here, before the first training), and the cache folder is checked. Models missing
    from the cache are trained in parallel worker processes when there are several, or
    as Ray tasks with ``executor`` 'ray' (:mod:`circuitnb.publish.executors`).
    """
    needed = required_models(cfg, parts)
    config_mod.check_cache_dir(cfg)
    executor = executors.make_executor(cfg.run.executor, cfg.run.ray_address)
    resources = executors.model_resources(executor, cfg.run.device, cfg.device)
    from circuitnb.modeling.precision import describe
    print(describe(cfg.train.precision, cfg.device), file=sys.stderr, flush=True)
    for model in sorted(needed, key=lambda m: m.dataset != "celeba"):   # a bad CelebA folder fails first,
        if model.part == "vae":                                             # before any draw is cached
            vae_data(model.cfg, model.dataset, "train", model.replicate)
        elif model.part == "unet":
            data.images(model.cfg, model.dataset, "train", model.replicate)
    missing = [m for m in needed if not m.cached]
    # One missing model trains here, unless a cluster is asked for (this machine may not be one of its workers).
    remote = executor.name != "local"
    by_workers = _train_in_parallel(missing, progress, executor, resources) if len(missing) > 1 or (
        missing and remote) else set()
    out = {}
    for model in needed:
        start = time.perf_counter()
        trained = model(progress=progress)
        if model.label in by_workers:                 # trained just now, in a worker; reported there
            trained = dataclasses.replace(trained, from_cache=False)
        else:
            how = "loaded from the cache" if trained.from_cache else "trained"
            print(f"model {model.label}: {how} in {time.perf_counter() - start:.1f} s", file=sys.stderr, flush=True)
        out[model.label] = trained
    return out


def stage_sources(root: Path, stage: Path, notebooks: list[Path]) -> None:
    """A fresh copy of the book's sources in ``stage``, where papermill writes the executed notebooks."""
    shutil.rmtree(stage, ignore_errors=True)
    # The executed .ipynb stands in for each notebook; its MyST twin (book/NN.md, paired by jupytext) stays out.
    paired = {nb.with_suffix(".md").name for nb in notebooks}
    # Sockets, pipes and the like (a killed kernel's leftovers, from versions that kept them in book/)
    # are not sources: only files and folders are copied.
    shutil.copytree(root / "book", stage / "book", ignore=lambda d, names: [
        n for n in names if n.endswith(".ipynb") or n == ".ipynb_checkpoints" or n in paired
        or not (Path(d, n).is_file() or Path(d, n).is_dir())])
    for name in ("_config.yml", "_toc.yml"):
        shutil.copy2(root / name, stage / name)


# Parameters of the build itself, which no notebook takes: where the models train and the notebooks run.
BUILD_ONLY = frozenset({"executor", "ray_address"})


def build_book(profile: str, params: dict | None = None, root: Path = Path(".")) -> Path:
    """Train or load the models, execute every notebook of ``_toc.yml`` on ``profile``, build with ``-W``."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise UserError(f"parameter '--root' = {str(root)!r} is not a folder; give the project folder "
                        "holding _config.yml and _toc.yml")
    root = root.resolve()
    for name in ("_config.yml", "_toc.yml"):
        if not (root / name).is_file():
            raise UserError(f"parameter '--root' = {str(root)!r} has no {name}; give the project folder")
    params = {**(params or {}), "profile": profile}
    if params.get("model_dir"):
        raise UserError("parameter 'model_dir': the book of a model of your own is built by "
                        "circuitnb.publish.yours.build_your_book (what `circuitnb book -p model_dir DIR` runs)")
    stage = root / "_build" / "src"
    notebooks = toc_notebooks(root)
    taken: set[str] = set()
    for nb in notebooks:                          # validate everything before any compute
        own = params_for(root / nb, params)
        check_parameters(root / nb, own)
        part = config_mod.notebook_part(nb)
        taken |= {k for k in params if config_mod.notebook_name(k, part) in own}
    unknown = sorted(set(params) - taken - BUILD_ONLY)
    if unknown:
        problem = next(filter(None, map(config_mod.misnamed, unknown)), None)
        raise UserError(problem or f"unknown parameter(s) {unknown}: no notebook of the book takes them; the "
                                   f"notebooks take {sorted(declared_names(root, notebooks))}, the build "
                                   f"{sorted(BUILD_ONLY)}")
    cfg = config_mod.load(profile, **{k: v for k, v in params.items() if config_mod.lookup(k)})
    prepare_models(cfg, parts=parts_of(notebooks))
    stage_sources(root, stage, notebooks)
    os.environ["CIRCUITNB_TABLES"] = str(root / "_build" / "tables")
    execute_notebooks([(root / nb, stage / nb) for nb in notebooks], params)
    return compile_html(stage, root)


def compile_html(stage: Path, out: Path) -> Path:
    """Jupyter Book over the executed sources in ``stage``, warnings as errors, HTML under ``out/_build/html``;
    returns its index page."""
    jupyter_book = Path(sys.executable).parent / "jupyter-book"   # the venv's own, beside this Python
    cmd = [str(jupyter_book), "build", str(stage), "--path-output", str(out), "-W", "-n", "--keep-going", "--all"]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise NotebookError(f"jupyter-book build failed (exit {done.returncode}):\n{done.stdout[-4000:]}\n"
                            f"{done.stderr[-4000:]}")
    return out / "_build" / "html" / "index.html"
