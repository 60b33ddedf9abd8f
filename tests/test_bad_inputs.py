"""Bad inputs: every error a user can cause ends in one line naming the parameter or file
(exit status 2, the cache untouched, nothing trained); unusable images are skipped and named; notebooks
report the failing cell of the source notebook, run on a quiet kernel, and hide papermill's injected
cell; the book trains or loads its models before any notebook runs."""
import os
import re
from pathlib import Path

import pytest
import torch
from PIL import Image

import circuitnb.core.config as C
from circuitnb import data
from circuitnb.cli import main
from circuitnb.core import machine
from circuitnb.core.errors import UserError
from circuitnb.data import load_celeba

from test_cache import snapshot, write_entry

ROOT = Path(__file__).resolve().parents[1]

# --- 7. every user-caused error: one line, exit 2, the parameter or file named, the cache untouched ------
@pytest.fixture
def filled_cache(cache):
    write_entry(cache / "results" / "kept-1", {"value.pkl": b"\x80\x04K\x01."})
    return cache


def one_line_error(capsys, argv, *names):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    for name in names:
        assert name in err, (name, err)
    return err


def test_devices_torch_cannot_see(capsys, filled_cache, monkeypatch):
    before = snapshot(filled_cache)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    one_line_error(capsys, ["train", "--profile", "smoke", "-p", "device", "cuda"], "'device'", "'cpu'")
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    one_line_error(capsys, ["train", "--profile", "smoke", "-p", "device", "mps"], "'device'", "MPS")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    one_line_error(capsys, ["train", "--profile", "smoke", "-p", "device", "cuda:3"], "'cuda:0'")
    with pytest.raises(C.ConfigError, match="'device'"):          # --debug shows the traceback instead
        main(["--debug", "train", "--profile", "smoke", "-p", "device", "cuda:3"])
    assert snapshot(filled_cache) == before


def test_bad_command_lines_and_paths(capsys, filled_cache, tmp_path):
    before = snapshot(filled_cache)
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    (tmp_path / "not.ipynb").write_text("not json")
    (tmp_path / "empty.ipynb").write_text("")
    (tmp_path / "dir.ipynb").mkdir()
    nb = str(ROOT / "book" / "01_data_and_model.ipynb")
    one_line_error(capsys, ["train", "--profile", "smoke", "-p", "profile", "quick"], "-p profile", "--profile")
    for bad in ("not.ipynb", "empty.ipynb", "dir.ipynb"):
        one_line_error(capsys, ["run", str(tmp_path / bad)], bad)
    one_line_error(capsys, ["run", nb, "-o", str(blocker / "out.ipynb")], "-o", str(blocker))
    one_line_error(capsys, ["book", "--profile", "smoke", "--root", str(tmp_path / "nowhere")], "--root")
    one_line_error(capsys, ["book", "--profile", "smoke", "--root", str(tmp_path)], "--root", "_config.yml")
    one_line_error(capsys, ["data", "--profile", "smoke", "--preview", str(blocker / "p.png")], "--preview")
    one_line_error(capsys, ["data", "--profile", "smoke", "--preview", str(tmp_path / "p.xyz")], "--preview", "'png'")
    one_line_error(capsys, ["train", "--profile", "smoke", "-p", "cache_dir", str(blocker)], "'cache_dir'", "is a file")
    assert snapshot(filled_cache) == before and not (tmp_path / "p.xyz").exists()


def test_read_only_cache_is_found_before_training(capsys, filled_cache, monkeypatch):
    before = snapshot(filled_cache)
    if os.geteuid() == 0:       # root writes through chmod; make the write probe meet what a read-only folder gives
        real = machine.tempfile.mkstemp

        def refuse(*args, dir=None, **kw):
            if Path(dir) == filled_cache or filled_cache in Path(dir).parents:
                raise PermissionError(13, "Permission denied")
            return real(*args, dir=dir, **kw)
        monkeypatch.setattr(machine.tempfile, "mkstemp", refuse)
    else:
        for folder in (filled_cache, filled_cache / "results"):
            folder.chmod(0o555)
    try:
        one_line_error(capsys, ["train", "--profile", "smoke", "--dataset", "synthetic"], "$CIRCUITNB_CACHE",
                       "cannot write")
    finally:
        for folder in (filled_cache, filled_cache / "results"):
            folder.chmod(0o755)
    assert snapshot(filled_cache) == before and not (filled_cache / "models").exists()   # nothing trained


def test_sizes_beyond_the_machine(capsys, filled_cache, monkeypatch):
    before = snapshot(filled_cache)
    monkeypatch.setattr(machine, "machine_memory", lambda device="cpu": 8 * 2 ** 30)   # an 8 GiB machine
    one_line_error(capsys, ["train", "--profile", "smoke", "-p", "n_images", "250000", "-p", "image_size", "128"],
                   "'n_images'", "8.0 GiB")
    one_line_error(capsys, ["train", "--profile", "smoke", "-p", "batch_size", "4096", "-p", "image_size", "128"],
                   "'batch_size'")
    assert C.load("paper")                                      # the paper's sizes fit such a machine
    assert snapshot(filled_cache) == before


def test_celeba_env_is_checked_before_any_training(capsys, filled_cache, monkeypatch, tmp_path):
    before = snapshot(filled_cache)
    monkeypatch.setenv("CIRCUITNB_CELEBA", str(tmp_path / "no_celeba"))
    data._natural.cache_clear()
    one_line_error(capsys, ["train", "--profile", "smoke", "-p", "train_steps", "2"], "CIRCUITNB_CELEBA")
    assert snapshot(filled_cache) == before and not (filled_cache / "models").exists()   # synthetic not trained


ATTRIBUTE_DAMAGE = {
    "non-integer": (lambda text: text.replace(" 1", " x", 1), "allowed: 1 or -1"),
    "not 1 or -1": (lambda text: text.replace(" -1", " 2", 1), "allowed: 1 or -1"),
    "duplicate row": (lambda text: text + text.splitlines()[2] + "\n", "a second row"),
    "non-UTF-8": (lambda text: text.encode()[:60] + b"\xff\xfe" + text.encode()[60:], "not UTF-8"),
    "a folder": (None, "is a folder"),
}


@pytest.mark.parametrize("kind", list(ATTRIBUTE_DAMAGE))
def test_malformed_attribute_file(capsys, filled_cache, small_celeba, kind):
    before = snapshot(filled_cache)
    path = small_celeba / "list_attr_celeba.txt"
    change, message = ATTRIBUTE_DAMAGE[kind]
    if change is None:
        path.unlink()
        path.mkdir()
    else:
        new = change(path.read_text())
        path.write_bytes(new if isinstance(new, bytes) else new.encode())
    one_line_error(capsys, ["data", "--profile", "smoke", "--dataset", "celeba", "-p", "celeba_root",
                            str(small_celeba)], str(path), message)
    assert snapshot(filled_cache) == before


def test_bomb_and_tiny_images_are_skipped_and_named(small_celeba, monkeypatch):
    folder = small_celeba / "img_align_celeba"
    (folder / "999999.jpg").unlink()                               # only the planted files below are bad
    Image.new("1", (2000, 2000)).save(folder / "bomb.png")         # 4 Mpx, a few kB on disk
    Image.new("1", (1200, 1200)).save(folder / "nearbomb.png")     # between Pillow's warning and error limits
    Image.new("RGB", (1, 1)).save(folder / "dot.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1_000_000)      # CelebA photos (178x218) stay far below
    with pytest.warns(UserWarning, match="skipped 3 unreadable") as record:
        nat = load_celeba(small_celeba, n=100, image_size=16, match_attributes=False)
    message = str(record[0].message)
    for name in ("bomb.png (DecompressionBombError)", "nearbomb.png (DecompressionBombWarning)", "dot.png (1x1 pixels"):
        assert name in message
    assert len(nat) == 10 and not {"bomb.png", "nearbomb.png", "dot.png"} & set(nat.names)


# --- notebooks: the failing cell counted in the source notebook, quiet kernel, no injected cell on pages ---
def _notebook(path: Path, cells: list[str]) -> Path:
    import nbformat
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "language": "python", "display_name": "Python 3"}
    nb.cells = [nbformat.v4.new_markdown_cell("# A chapter")]
    for k, source in enumerate(cells):
        cell = nbformat.v4.new_code_cell(source)
        if k == 0:
            cell.metadata["tags"] = ["parameters"]
        nb.cells.append(cell)
    nbformat.write(nb, str(path))
    return path


def test_failing_cell_index_and_quiet_kernel(tmp_path, capfd):
    import nbformat

    from circuitnb.publish.book import NotebookError, run_notebook
    bad = _notebook(tmp_path / "bad.ipynb", ['seed = 0', 'x = 1', 'raise RuntimeError("planted")'])
    with pytest.raises(NotebookError, match=r"cell 3 \(counting from 0 in the notebook; In \[\d\]\) failed: "
                                            r"RuntimeError: planted") as err:
        run_notebook(bad, {"seed": 1}, output=tmp_path / "out" / "bad.ipynb")
    source_cells = nbformat.read(str(bad), as_version=4).cells
    assert 'planted' in source_cells[3].source and "\n" not in str(err.value)
    good = _notebook(tmp_path / "good.ipynb", ['seed = 0', 'print(seed)'])
    out = run_notebook(good, {"seed": 1}, output=tmp_path / "out" / "good.ipynb")
    cells = nbformat.read(str(out), as_version=4).cells
    injected = [c for c in cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1 and "remove-cell" in injected[0].metadata["tags"]
    assert "without encryption" not in capfd.readouterr().err      # the kernel talks over IPC, not TCP


# --- 8. the book trains or loads its models in the terminal, after reading every dataset -----------------
def test_book_prepares_models_first(tiny_cfg, celeba_root, capsys, monkeypatch, tmp_path):
    from circuitnb.publish.book import prepare_models, required_models
    cfg = C.with_overrides(tiny_cfg, celeba_root="")
    assert [(m.dataset, m.replicate) for m in required_models(cfg) if m.part == "unet"] == [
        (d, r) for d in data.DATASETS for r in range(cfg.run.replicates)]
    vae_labels = {f"vae {k} {d} r{r}" for d in cfg.vae.datasets for k in cfg.vae.kinds
                  for r in range(cfg.run.replicates)}                   # Part II's models too
    assert {m.label for m in required_models(cfg) if m.part == "vae"} == vae_labels
    # Parts III-V: every replicate the part's notebooks load, keyed as their caches key them
    everything = required_models(cfg, ("unet", "vae", "tabular", "sae", "mri"))
    assert sum(m.part == "mri" for m in everything) == len(cfg.mri.kinds) * cfg.mri.replicates
    assert sum(m.part == "tabular" for m in everything) == (
        len(cfg.tabular.kinds) * len(cfg.tabular.datasets) * cfg.tabular.replicates)
    assert len({m.key for m in everything}) == len(everything)          # no two share a cache entry
    monkeypatch.setenv("CIRCUITNB_CELEBA", str(tmp_path / "no_celeba"))
    data._natural.cache_clear()
    with pytest.raises(data.DataError, match="CIRCUITNB_CELEBA"):
        prepare_models(cfg, progress=False)
    assert not (cfg.cache_path / "models").exists()                     # no model was trained first
    monkeypatch.setenv("CIRCUITNB_CELEBA", str(celeba_root))
    models = prepare_models(cfg, progress=False)
    assert set(models) == {f"{d} r{r}" for d in data.DATASETS for r in range(cfg.run.replicates)} | vae_labels
    assert not any(m.from_cache for m in models.values())
    err = capsys.readouterr().err
    assert re.search(r"model synthetic r0: trained in [\d.]+ s", err) and "model celeba r1: trained" in err
    prepare_models(cfg, progress=False)
    assert "model celeba r1: loaded from the cache" in capsys.readouterr().err


def test_the_build_trains_the_models_of_the_parts_its_notebooks_load():
    from circuitnb.publish.book import parts_of, toc_notebooks
    assert parts_of(toc_notebooks(ROOT)) == ("unet", "vae", "tabular", "sae", "mri")
    assert parts_of([Path("book/31_tabular_interventions.ipynb")]) == ("vae", "tabular")    # it compares with II
    assert parts_of([Path("book/52_mri_circuits.ipynb"), Path("book/10_scorecard.ipynb")]) == ("unet", "mri")


def test_kernel_sockets_stay_out_of_the_notebook_folder(tmp_path):
    """The kernel's IPC sockets live in a private temporary folder: a killed build used to leave
    kernel-ipc-* sockets in book/, and the next build's copy of the sources failed on them."""
    from circuitnb.publish.book import run_notebook
    nb = _notebook(tmp_path / "nb.ipynb",
                   ['seed = 0', 'import glob\nassert not glob.glob("kernel-ipc*"), glob.glob("*")'])
    run_notebook(nb, {"seed": 1}, output=tmp_path / "out" / "nb.ipynb")
    assert not list(tmp_path.glob("kernel-ipc*"))


def test_stage_skips_a_killed_kernels_socket(tmp_path):
    import socket

    from circuitnb.publish.book import stage_sources
    root, stage = tmp_path / "root", tmp_path / "stage"
    (root / "book").mkdir(parents=True)
    for name in ("_config.yml", "_toc.yml"):
        (root / name).write_text("")
    (root / "book" / "01_x.md").write_text("# paired twin\n")
    (root / "book" / "02_y.md").write_text("# a page\n")
    (root / "book" / "01_x.ipynb").write_text("{}")
    leftover = socket.socket(socket.AF_UNIX)
    leftover.bind(str(root / "book" / "kernel-ipc-1"))      # what a killed kernel left behind
    try:
        stage_sources(root, stage, [Path("book/01_x.ipynb")])
    finally:
        leftover.close()
    assert sorted(p.name for p in (stage / "book").iterdir()) == ["02_y.md"]
    assert (stage / "_toc.yml").exists()


def test_notebooks_run_side_by_side_and_a_failure_names_its_notebook(tmp_path):
    import nbformat

    from circuitnb.publish.book import NotebookError, execute_notebooks
    from circuitnb.publish.executors import cores as _cores
    probe = 'import os\nopen("threads_" + name, "w").write(os.environ["OMP_NUM_THREADS"])'
    jobs = [(_notebook(tmp_path / f"{n}.ipynb", ['name = ""', probe]), tmp_path / "out" / f"{n}.ipynb")
            for n in ("a", "b", "c")]
    execute_notebooks(jobs, {"name": "x"})
    for _, out in jobs:
        assert out.exists() and nbformat.read(str(out), as_version=4).cells
    workers = min(_cores(), 3)
    assert (tmp_path / "threads_x").read_text() == str(max(1, _cores() // workers))
    bad = _notebook(tmp_path / "bad.ipynb", ['name = ""', 'raise RuntimeError("planted")'])
    with pytest.raises(NotebookError, match=r"bad\.ipynb: cell 2 .*RuntimeError: planted"):
        execute_notebooks([jobs[0], (bad, tmp_path / "out" / "bad.ipynb")], {"name": "y"})


def test_chapters_that_gather_start_after_what_they_gather():
    from circuitnb.publish.book import start_order, toc_notebooks
    order = [nb.stem for nb in start_order(toc_notebooks(ROOT))]
    assert sorted(order) == sorted(nb.stem for nb in toc_notebooks(ROOT))
    assert order[-1] == "10_scorecard"
    part1 = [s for s in order if s[0] in "01" and s not in ("10_scorecard", "12_readings")]
    assert max(order.index(s) for s in part1) < order.index("12_readings") < min(
        order.index(s) for s in order if s.startswith("2"))
    assert part1 == sorted(part1)                              # reading order otherwise


def test_each_part_takes_its_own_parameters_and_a_parameter_no_notebook_takes_is_one_line(tmp_path):
    from circuitnb.publish.book import build_book
    from circuitnb.publish.parameters import params_for
    book = ROOT / "book"
    assert params_for(book / "05_temporal_dynamics.ipynb", {"timesteps": [100]}) == {"timesteps": [100]}
    assert params_for(book / "20_vae_data_models.ipynb", {"timesteps": [100], "seed": 1}) == {"seed": 1}
    with pytest.raises(UserError, match=r"unknown parameter\(s\) \['no_such'\]: no notebook of the book takes them"):
        build_book("smoke", {"no_such": 1}, root=ROOT)
    # The build's own parameters (where models train) are taken by the build, not by a notebook.
    only_no_such = r"unknown parameter\(s\) \['no_such'\]: .*the build \['executor', 'ray_address'\]"
    with pytest.raises(UserError, match=only_no_such):
        build_book("smoke", {"no_such": 1, "executor": "ray", "ray_address": "auto"}, root=ROOT)


def _params_notebook(path: Path, cell: str) -> Path:
    import nbformat
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                           "language": "python"}})
    nb.cells = [nbformat.v4.new_code_cell(cell, metadata={"tags": ["parameters"]})]
    nbformat.write(nb, str(path))
    return path


def test_a_qualified_parameter_reaches_its_parts_notebooks_as_their_bare_name(tmp_path):
    from circuitnb.publish.parameters import check_parameters, notebook_params, params_for
    cell = 'profile = "smoke"\nseed = 0\nreplicates = None\nimage_size = None\nsteps = None\nimage_index = 0\n'
    one, two, three = (_params_notebook(tmp_path / name, cell) for name in ("01_a.ipynb", "20_b.ipynb", "30_c.ipynb"))
    book = {"vae.image_size": 32, "image_size": 24, "replicates": 2, "tabular.replicates": 1, "seed": 1,
            "image_index": 3, "sae.steps": 5}
    assert params_for(one, book) == {"image_size": 24, "replicates": 2, "seed": 1, "image_index": 3}
    assert params_for(two, book) == {"image_size": 32, "replicates": 2, "seed": 1, "image_index": 3}
    # Part III has replicates of its own, but no image_size: there the bare name is Part I's
    assert params_for(three, book) == {"image_size": 24, "replicates": 1, "seed": 1, "image_index": 3}
    # `circuitnb run`: bare names are the notebook's; its part's qualified names lose the qualifier
    assert notebook_params(two, {"image_size": 16, "seed": 2}) == {"image_size": 16, "seed": 2}
    assert notebook_params(two, {"vae.steps": 3}) == {"steps": 3}
    with pytest.raises(UserError, match=r"^parameter 'vae.steps' is for Part II's notebooks; 30_c.ipynb is "
                                        r"Part III's$"):
        notebook_params(three, {"vae.steps": 3})
    with pytest.raises(UserError, match=r"^parameter 'steps' is given twice for 20_b.ipynb"):
        notebook_params(two, {"steps": 3, "vae.steps": 4})
    check_parameters(two, {"image_size": 32, "steps": 3, "profile": "smoke"})
    with pytest.raises(C.ConfigError, match=r"'vae.image_size' = 24 is out of range"):
        check_parameters(two, {"image_size": 24})
    with pytest.raises(C.ConfigError, match=r"'tabular.steps' = 0 is out of range"):
        check_parameters(three, {"steps": 0})
    with pytest.raises(UserError, match=r"^20_b.ipynb: 'vae_steps' is now 'vae.steps'$"):
        check_parameters(two, {"vae_steps": 3})


def test_the_book_routes_qualified_names_and_names_retired_or_part_only_ones(tmp_path):
    from circuitnb.publish.book import build_book
    from circuitnb.publish.parameters import declared_names
    with pytest.raises(UserError, match=r"^'vae_image_size' is now 'vae.image_size'$"):
        build_book("smoke", {"vae_image_size": 32}, root=ROOT)
    with pytest.raises(UserError, match=r"^'latent_dim' belongs to a part; say which: 'vae.latent_dim'"):
        build_book("smoke", {"latent_dim": 4}, root=ROOT)
    with pytest.raises(C.ConfigError, match=r"'vae.image_size' = 24 is out of range"):   # reached Part II's
        build_book("smoke", {"vae.image_size": 24}, root=ROOT)
    with pytest.raises(UserError, match=r"unknown parameter\(s\) \['image_size'\]: no notebook of the book"):
        build_book("smoke", {"image_size": 32}, root=ROOT)        # Part I's, which no Part I notebook takes
    from circuitnb.publish.book import toc_notebooks
    names = declared_names(ROOT, toc_notebooks(ROOT))
    assert {"vae.image_size", "vae.steps", "tabular.replicates", "sae.hidden", "mri.root", "replicates",
            "seed"} <= names and "image_size" not in names and "root" not in names
