"""The reader's pages: wide tables scroll inside their box, code lines wrap, and the
book's CSS that does it is registered in _config.yml and loads from the build directory only."""
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from circuitnb.publish import browser

ROOT = Path(__file__).resolve().parents[1]
CSS = ROOT / "book" / "_static" / "circuitnb.css"


def rules(css: str) -> dict[str, str]:
    """``{selector: declarations}`` of a flat stylesheet (comments removed; no nesting, no at-rules)."""
    css = re.sub(r"/\*.*?\*/", "", css, flags=re.S)
    out = {}
    for selectors, body in re.findall(r"([^{}]+)\{([^{}]*)\}", css):
        for sel in selectors.split(","):
            out[" ".join(sel.split())] = out.get(" ".join(sel.split()), "") + body
    return out


def declares(body: str, prop: str, value: str) -> bool:
    return any(p.strip() == prop and v.strip() == value for p, _, v in
               (d.partition(":") for d in body.split(";")))


def test_css_file_is_registered_in_config():
    assert CSS.is_file()
    config = yaml.safe_load((ROOT / "_config.yml").read_text())["sphinx"]["config"]
    # Sphinx copies each html_static_path folder into _static/ and links each html_css_files entry.
    assert "book/_static" in config["html_static_path"]
    assert CSS.name in config["html_css_files"]
    # Not the book root's _static, which Jupyter Book would add (with every file in it) by itself.
    assert not (ROOT / "_static").exists()


def test_css_scrolls_wide_tables_and_wraps_code():
    found = rules(CSS.read_text())
    for table in ("div.cell_output table", "table.dataframe"):       # Styler tables and DataFrame HTML
        assert declares(found[table], "overflow-x", "auto"), table
        assert declares(found[table], "max-width", "100%"), table
    assert declares(found["div.cell_output .output.text_html"], "overflow-x", "auto")
    assert declares(found["div.cell_input pre"], "white-space", "pre-wrap")   # parameters cells' comments


def test_css_loads_nothing():
    # Offline pages: no @import, no url(...) (fonts, images), no http address.
    text = CSS.read_text()
    assert "@import" not in text and "url(" not in text and "http" not in text


# --- one page built with the book's own _config.yml, looked at in Chromium ------------------------------
COMMENT = "# " + " ".join(["a long comment that a reader must be able to read to its end"] * 4) + " END"
COLUMNS = ["id", "verdict", "paper", "ours", "ci_low", "ci_high", "unit", "reason", "verdict_r0", "verdict_r1",
           "verdict_r2", "replicates_disagree"]


def _wide_html() -> str:
    import pandas as pd
    frame = pd.DataFrame([{c: f"{c}_value_{i}_without_spaces_to_wrap_at" for c in COLUMNS} for i in range(3)])
    styler = frame.style.hide(axis="index")                             # what ChapterResult.show returns
    return styler.to_html() + frame.to_html(index=False)                # and a DataFrame's own HTML


def _page(path: Path) -> None:
    import nbformat
    nb = nbformat.v4.new_notebook(metadata={
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"}})
    params = nbformat.v4.new_code_cell(f'profile = "quick"   {COMMENT}', metadata={"tags": ["parameters"]})
    table = nbformat.v4.new_code_cell("res.show('scorecard')", execution_count=1, outputs=[
        nbformat.v4.new_output("execute_result", data={"text/html": _wide_html(), "text/plain": "table"},
                               execution_count=1)])
    nb.cells = [nbformat.v4.new_markdown_cell("# A page\n\nA wide table and a long parameters line."),
                params, table]
    nbformat.write(nb, str(path))


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    """One notebook page built by Jupyter Book (-W) with the repository's _config.yml and book/_static."""
    root = tmp_path_factory.mktemp("pages")
    shutil.copy(ROOT / "_config.yml", root / "_config.yml")
    (root / "_toc.yml").write_text("format: jb-book\nroot: book/page\n")
    for folder in ("_static", "vendor"):
        shutil.copytree(ROOT / "book" / folder, root / "book" / folder)
    _page(root / "book" / "page.ipynb")
    jupyter_book = Path(sys.executable).parent / "jupyter-book"
    done = subprocess.run([str(jupyter_book), "build", str(root), "--path-output", str(root), "-W", "-n",
                           "--keep-going", "--all"], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return root / "_build" / "html"


@pytest.mark.slow
def test_built_page_links_the_css(page):
    assert (page / "_static" / CSS.name).read_text() == CSS.read_text()
    assert f'href="../_static/{CSS.name}' in (page / "book" / "page.html").read_text()


# Every measurement in CSS pixels, in the page as laid out (a desktop window and a narrow one).
LAYOUT = """(() => {
  const art = document.querySelector('.bd-article-container');
  const tables = [...document.querySelectorAll('div.cell_output table')].map(t => {
    t.scrollLeft = t.scrollWidth;                           // scroll to the last column
    const last = [...t.querySelectorAll('th')].pop().getBoundingClientRect();
    const box = t.getBoundingClientRect();
    return {scrolls: t.scrollWidth > t.clientWidth, lastRight: last.right, right: box.right,
            lastText: [...t.querySelectorAll('th')].pop().textContent.trim()};
  });
  const pre = document.querySelector('div.cell_input pre');
  return {articleOverflow: art.scrollWidth - art.clientWidth, tables, viewport: window.innerWidth,
          pre: {whiteSpace: getComputedStyle(pre).whiteSpace, overflow: pre.scrollWidth - pre.clientWidth,
                text: pre.textContent}};
})()"""


@pytest.mark.slow
@pytest.mark.parametrize("width", [1280, 700])
def test_wide_table_and_long_code_line_stay_on_the_page(page, width):
    if browser.find_chromium() is None and os.environ.get("CIRCUITNB_SKIP_BROWSER") == "1":
        pytest.skip("no Chromium and CIRCUITNB_SKIP_BROWSER=1")
    with browser.Browser(root=page) as b:
        b.call("Emulation.setDeviceMetricsOverride", width=width, height=900, deviceScaleFactor=1, mobile=False)
        rep = b.load(page / "book" / "page.html")
        assert rep.external == [] and rep.errors == [], (rep.external, rep.errors)
        got = b.evaluate(LAYOUT)
    assert got["articleOverflow"] <= 1, got                    # nothing pushes the article past its edge
    assert len(got["tables"]) == 2
    for t in got["tables"]:
        assert t["scrolls"], t                                 # too wide for the page: it scrolls in its box
        assert t["right"] <= got["viewport"], t                # and the box ends inside the window
        assert t["lastText"] == "replicates_disagree"
        assert t["lastRight"] <= t["right"] + 1, t             # ... and its last column can be scrolled to
    assert got["pre"]["whiteSpace"] == "pre-wrap" and got["pre"]["overflow"] <= 1, got["pre"]
    assert COMMENT in got["pre"]["text"]
