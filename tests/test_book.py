"""End-to-end: every notebook executed by papermill on `smoke`, then the HTML built with -W."""
import shutil
from pathlib import Path

import pytest

from circuitnb.book import build_book, toc_notebooks

ROOT = Path(__file__).resolve().parents[1]


def test_toc_lists_every_notebook():
    listed = {str(p) for p in toc_notebooks(ROOT)}
    on_disk = {str(p.relative_to(ROOT)) for p in (ROOT / "book").glob("*.ipynb")}
    assert listed == on_disk and "book/01_data_and_model.ipynb" in listed


def test_notebooks_have_flat_parameters_cell():
    import papermill as pm
    for nb in toc_notebooks(ROOT):
        params = pm.inspect_notebook(str(ROOT / nb))
        assert {"profile", "seed", "timesteps", "n_samples", "celeba_root", "device"} <= set(params), nb


@pytest.mark.slow
def test_smoke_book_builds(tmp_path, cache, celeba_root, monkeypatch):
    monkeypatch.setenv("CIRCUITNB_CELEBA", str(celeba_root))
    monkeypatch.setenv("MPLBACKEND", "Agg")                 # as on many CI machines: figures must survive
    for name in ("_config.yml", "_toc.yml"):
        shutil.copy(ROOT / name, tmp_path / name)
    shutil.copytree(ROOT / "book", tmp_path / "book")
    index = build_book("smoke", {}, root=tmp_path)
    assert index.exists()
    page = (tmp_path / "_build" / "html" / "book" / "01_data_and_model.html").read_text()
    assert "<img" in page and "smoke" in page            # figures and the glued profile name
    assert "real CelebA images were used" in page        # which natural dataset this build used
    executed = tmp_path / "_build" / "src" / "book" / "01_data_and_model.ipynb"
    assert executed.exists() and not (ROOT / "book" / "01_data_and_model.ipynb").read_text().count('"output_type"')
