"""What a chapter's ``run(cfg)`` returns, and how its tables reach the page and ``_build/tables/``.

    res = circuitnb.chapters.diffusion.circuit_complexity.run(cfg)
    res.glue()                    # every number the prose cites, via myst_nb.glue
    res.show("table1")            # the table on the page; also _build/tables/03_circuit_complexity/table1.csv

A notebook never computes: it calls ``run``, glues, shows tables and draws
``res.data`` with :mod:`circuitnb.viz.figures`. Every table shown is written as
CSV as the notebook runs, so anyone can check a number without reading HTML
(``$CIRCUITNB_TABLES``, set by ``circuitnb book``, else ``./_build/tables``).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

MISSING = "–"        # what a missing value reads on the page (never "NaN")


def tables_dir() -> Path:
    """Where tables are written: ``$CIRCUITNB_TABLES``, else ``_build/tables`` under the working directory."""
    return Path(os.environ.get("CIRCUITNB_TABLES") or Path.cwd() / "_build" / "tables")


def export_table(chapter: str, name: str, frame: pd.DataFrame) -> Path:
    """Write ``frame`` to ``<tables_dir>/<chapter>/<name>.csv`` (atomically) and return the path."""
    path = tables_dir() / chapter / f"{name}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    frame.to_csv(tmp, index=False)
    os.replace(tmp, path)
    return path


def format_number(v: Any, digits: int = 3) -> str:
    """A number for prose: ``digits`` significant digits; large numbers in full with separators (never 1.63e+03)."""
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v))
    if isinstance(v, (int, np.integer)):
        return f"{int(v):,}"
    if isinstance(v, (float, np.floating)):
        if not np.isfinite(v):
            return MISSING
        return f"{v:.{digits}g}" if abs(v) < 10 ** digits else f"{v:,.0f}"
    return str(v)


def styled(frame: pd.DataFrame, digits: int = 4):
    """The HTML form of a table: missing values read "–", floats rounded, no index column."""
    floats = [c for c in frame.columns if pd.api.types.is_float_dtype(frame[c])]
    return (frame.style.format(na_rep=MISSING, precision=digits, subset=floats or None)
            .format(na_rep=MISSING, subset=[c for c in frame.columns if c not in floats] or None)
            .hide(axis="index")
            # Room between columns, and text that wraps inside its own column (a reason) not the id's.
            .set_table_styles([{"selector": "th, td", "props": "padding: 0.15em 0.7em; vertical-align: top"},
                               {"selector": "td", "props": "white-space: normal"}]))


@dataclass
class ChapterResult:
    """Tables, glued values and figure data of one chapter (one notebook)."""
    chapter: str                                             # notebook stem, e.g. "03_circuit_complexity"
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)     # prose numbers, glued by name
    data: dict[str, Any] = field(default_factory=dict)       # what the figures draw
    skipped: str = ""                                        # why the chapter cannot run (a model of your own)
    notes: dict[str, str] = field(default_factory=dict)      # a line per table, or per table left out and why

    def glue(self, digits: int = 3) -> None:
        """Glue every value for ``{glue:text}`name``` in the prose (formatted by :func:`format_number`)."""
        from myst_nb import glue
        for key, v in self.values.items():
            glue(key, format_number(v, digits), display=False)

    def show(self, name: str, columns: list[str] | None = None, digits: int = 4):
        """Write table ``name`` as CSV (all columns) and return its page form (``columns`` only)."""
        frame = self.tables[name]
        export_table(self.chapter, name, frame)
        return styled(frame if columns is None else frame[columns], digits)

    def show_all(self, digits: int = 4) -> None:
        """Display every table with its note (each also written as CSV), every explorer in ``data``, and the
        notes of what was left out; a skipped chapter displays its one line. Pages that show whatever the
        chapter computed (a model of your own) call this alone."""
        from IPython.display import HTML, Markdown, display

        from circuitnb.viz.explorer import Explorer
        if self.skipped:
            display(Markdown(self.skipped))
            return
        for name in self.tables:
            display(Markdown(f"**{name}**" + (f" ({self.notes[name]})" if name in self.notes else "")))
            display(self.show(name, digits=digits))
        for name, value in self.data.items():
            if isinstance(value, Explorer):
                display(Markdown(f"**{name}** explorer"), HTML(value.to_html()))
        left_out = [line for name, line in self.notes.items() if name not in self.tables]
        if left_out:
            display(Markdown("\n".join(f"* {line}" for line in left_out)))

    def export_all(self) -> list[Path]:
        """Write every table as CSV (what ``show`` does for one)."""
        return [export_table(self.chapter, n, f) for n, f in self.tables.items()]
