"""End-to-end: every notebook executed by papermill on `smoke`, the HTML built with -W, then loaded
offline in headless Chromium."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from circuitnb.publish import browser
from circuitnb.publish.book import toc_notebooks

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = ["00_overview", "01_data_and_model", "02_performance", "03_circuit_complexity",
            "04_attention_specialization", "05_temporal_dynamics", "06_interventions", "07_cross_dataset",
            "08_attention_evolution", "09_robustness", "10_scorecard", "11_explorers"]


def test_toc_lists_every_notebook():
    listed = [str(p) for p in toc_notebooks(ROOT)]
    on_disk = {str(p.relative_to(ROOT)) for p in (ROOT / "book").glob("*.ipynb")}
    assert set(listed) == on_disk
    assert [Path(p).stem for p in listed][: len(CHAPTERS)] == CHAPTERS       # reading order = paper order


def test_notebooks_have_flat_parameters_cell():
    # Every notebook takes the book-wide parameters; Part I's diffusion parameters only Part I's notebooks
    # (each part's notebooks take their own; the book passes each notebook the ones it declares).
    import papermill as pm
    for nb in toc_notebooks(ROOT):
        params = set(pm.inspect_notebook(str(ROOT / nb)))
        assert {"profile", "seed", "device"} <= params, nb
        part_one = int(Path(nb).stem[:2]) < 20
        assert ({"timesteps", "celeba_root"} <= params) == part_one, (nb, sorted(params))


def test_papermill_sees_every_parameter():
    # papermill skips (with only a log line) any parameter line holding a second '=', e.g. in its comment;
    # `-p` would then refuse that parameter as unknown. Every name the cell assigns must be seen.
    import ast
    import json

    import papermill as pm
    for nb in toc_notebooks(ROOT):
        cells = json.loads((ROOT / nb).read_text())["cells"]
        cell = next(c for c in cells if "parameters" in c.get("metadata", {}).get("tags", []))
        assigned = {node.target.id if isinstance(node, ast.AnnAssign) else node.targets[0].id
                    for node in ast.parse("".join(cell["source"])).body
                    if isinstance(node, (ast.Assign, ast.AnnAssign))}
        assert assigned and set(pm.inspect_notebook(str(ROOT / nb))) == assigned, nb


def test_notebook_sources_carry_no_outputs():
    for nb in toc_notebooks(ROOT):
        assert '"output_type"' not in (ROOT / nb).read_text(), nb


@pytest.fixture(scope="module")
def smoke_book(tmp_path_factory, celeba_root):
    """The whole book built once on `smoke` in a private copy with a private cache, by the command line of a
    NON-editable install (pip --target): package data must come through importlib.resources, not the repo."""
    root = tmp_path_factory.mktemp("book")
    site, src = root / "site", root / "src"
    # Install from a clean copy of the sources: a build/ folder left in the checkout could carry stale modules.
    shutil.copytree(ROOT / "circuitnb", src / "circuitnb", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                    "--target", str(site), str(src)], check=True, capture_output=True)
    for name in ("_config.yml", "_toc.yml"):
        shutil.copy(ROOT / name, root / name)
    shutil.copytree(ROOT / "book", root / "book")
    env = {**os.environ, "CIRCUITNB_CELEBA": str(celeba_root), "CIRCUITNB_CACHE": str(root / "cache"),
           "MPLBACKEND": "Agg",                     # as on many CI machines: figures must survive
           "PYTHONPATH": str(site)}                 # the installed copy, never the checkout
    done = subprocess.run([sys.executable, "-m", "circuitnb.cli", "book", "--profile", "smoke", "--root", str(root)],
                          cwd=root, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-4000:]
    assert str(site) in subprocess.run([sys.executable, "-c", "import circuitnb; print(circuitnb.__file__)"],
                                       cwd=root, env=env, capture_output=True, text=True).stdout
    return root, root / "_build" / "html" / "index.html"


@pytest.mark.slow
def test_smoke_book_builds(smoke_book):
    root, index = smoke_book
    assert index.exists()
    html = root / "_build" / "html" / "book"
    for chapter in CHAPTERS:
        assert (html / f"{chapter}.html").exists(), chapter
    page = (html / "01_data_and_model.html").read_text()
    assert "<img" in page and "smoke" in page            # figures and the glued profile name
    assert "real CelebA images were used" in page        # which natural dataset this build used
    card = (html / "10_scorecard.html").read_text()
    assert "inconclusive" in card and "Audit of the paper" in card
    assert (root / "_build" / "html" / "_static" / "mathjax" / "tex-chtml.js").exists()
    for chapter in CHAPTERS[2:11]:                       # every analysis chapter's tables are CSV files too
        assert list((root / "_build" / "tables" / chapter).glob("*.csv")), chapter
    card = pd.read_csv(root / "_build" / "tables" / "10_scorecard" / "scorecard.csv")
    assert len(card) == 75 and {"id", "paper", "ours", "ci_low", "ci_high", "unit", "verdict", "reason",
                                "verdict_r0", "verdict_r1"} <= set(card.columns)
    assert "NaN" not in (html / "10_scorecard.html").read_text()        # missing values read "–"


@pytest.mark.slow
def test_built_book_works_offline(smoke_book):
    """No request leaves the build directory and no console error occurs, on every page."""
    if browser.find_chromium() is None and os.environ.get("CIRCUITNB_SKIP_BROWSER") == "1":
        pytest.skip("no Chromium and CIRCUITNB_SKIP_BROWSER=1")
    root, _ = smoke_book
    html_root = root / "_build" / "html"
    reports = browser.check_site(html_root)
    assert len(reports) >= len(CHAPTERS)
    for rep in reports:
        assert rep.requests, rep.url                     # the page did load its own assets
        assert rep.external == [], (rep.url, rep.external)
        assert rep.errors == [], (rep.url, rep.errors)
    with browser.Browser(root=html_root) as b:           # MathJax (vendored) typeset the formulas
        b.load(html_root / "book" / "02_performance.html", settle=3.0)
        assert b.evaluate("document.querySelectorAll('mjx-container').length") > 0


# Which control to move in each explorer, and how: (kind, control, JavaScript that picks a new value).
MOVES = [("attention", "head", "el.value = el.options[el.options.length - 1].value"),
         ("attention", "query", "el.value = el.options[1].value"),
         ("attention", "ds", "el.value = el.options[1].value"),
         ("intervention", "target", "el.value = el.options[3].value"),
         ("intervention", "t", "el.value = el.options[el.options.length - 1].value"),
         ("scrub", "step", "el.value = String(Number(el.max))"),
         ("scrub", "ds", "el.value = el.options[1].value")]


@pytest.mark.slow
def test_explorers_respond_offline(smoke_book):
    """Moving a control of each static explorer redraws it, with no network and no console error."""
    root, _ = smoke_book
    html_root = root / "_build" / "html"
    with browser.Browser(root=html_root) as b:
        rep = b.load(html_root / "book" / "11_explorers.html", settle=2.0)
        assert rep.external == [] and rep.errors == [], (rep.external, rep.errors)
        assert b.evaluate("document.querySelectorAll('.circuitnb-explorer canvas').length") >= 8
        for kind, control, pick in MOVES:
            sel = f"document.querySelector('.circuitnb-explorer[data-kind=\"{kind}\"]')"
            snapshot = (f"(() => {{ const r = {sel}; return [r.dataset.state, r.lastChild.textContent, "
                        f"[...r.querySelectorAll('canvas')].map(c => c.toDataURL())]; }})()")
            before = b.evaluate(snapshot)
            b.evaluate(f"(() => {{ const el = {sel}.querySelector('[data-control=\"{control}\"]'); {pick}; "
                       f"el.dispatchEvent(new Event(el.tagName === 'INPUT' ? 'input' : 'change')); }})()")
            after = b.evaluate(snapshot)
            assert after[0] != before[0], (kind, control, "state unchanged")
            assert after[1] != before[1] or after[2] != before[2], (kind, control, "nothing redrawn")
            assert any(a != c for a, c in zip(after[2], before[2])), (kind, control, "no canvas changed")
        b.drain(0.5)
        late = b.report(rep.url, html_root)
        assert late.external == [] and late.errors == [], (late.external, late.errors)


def test_myst_twins_are_in_sync_with_the_notebooks():
    # book/NN.md (MyST, what people read and review) and book/NN.ipynb (what papermill runs) are a
    # jupytext pair: the same cells, sources and tags. After editing the .md: `jupytext --sync book/NN.md`.
    import jupytext
    import nbformat
    pairs = [(md, md.with_suffix(".ipynb")) for md in sorted((ROOT / "book").glob("*.md"))]
    assert pairs, "no MyST notebooks in book/"
    for md, ipynb in pairs:
        assert ipynb.exists(), f"{md.name} has no paired {ipynb.name}; run jupytext --sync {md}"
        text, nb = jupytext.read(md), nbformat.read(ipynb, as_version=4)
        cells = lambda n: [(c.cell_type, c.source.strip(), sorted(c.metadata.get("tags", []))) for c in n.cells]  # noqa: E731
        assert cells(text) == cells(nb), f"{md.name} and {ipynb.name} differ; run jupytext --sync {md}"


def test_notebooks_are_thin():
    # Chapters compute in circuitnb.chapters.<module>.run(cfg); a notebook only calls it, shows and draws.
    import nbformat
    for nb in toc_notebooks(ROOT):
        cells = [c for c in nbformat.read(ROOT / nb, as_version=4).cells if c.cell_type == "code"]
        assert any(".run(cfg" in c.source for c in cells), f"{nb}: no call to a chapter's run(cfg)"
        for c in cells:
            assert len(c.source.strip().splitlines()) <= 15, f"{nb}: a code cell of over 15 lines"
            assert "def " not in c.source, f"{nb}: a function defined in a notebook"
