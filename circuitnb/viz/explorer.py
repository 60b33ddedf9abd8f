"""The offline explorers' page fragment: data in a JSON script tag, driven by ``explorer.js`` (no kernel).

    display(Explorer(dict(kind="attention", images={"synthetic": b64_uint8(x)}, ...)))

Data are base64 uint8 arrays (:func:`b64_uint8`); ``explorer.nbytes`` is the page weight. The explorers
themselves are built by :mod:`circuitnb.chapters.diffusion.explorers` and :mod:`circuitnb.chapters.vae.interventions`.
"""
from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass
from importlib import resources
from typing import ClassVar

import numpy as np


def b64_uint8(a: np.ndarray) -> str:
    """``b64_uint8(to_uint8(x0))``: the array's bytes as uint8, base64 text (what ``explorer.js`` decodes)."""
    return base64.b64encode(np.ascontiguousarray(a, dtype=np.uint8).tobytes()).decode()


@dataclass
class Explorer:
    """The page fragment of ``data``, whose ``kind`` picks the view of ``explorer.js``. A part with a view of its
    own subclasses it with the page's kind, the script and its entry function (``class SaeExplorer(Explorer,
    kind="sae", script=SCRIPT, entry="circuitnbSae")``), so every explorer's page is assembled here."""
    data: dict
    kind: ClassVar[str] = ""                        # the page's kind; "" takes the one named in ``data``
    entry: ClassVar[str] = "circuitnbExplorer"      # the script's function that builds the view in its div
    js: ClassVar[str | None] = None                 # the script; None: explorer.js, read when a page is built

    def __init_subclass__(cls, kind: str = "", script: str | None = None, entry: str = "", **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        cls.kind, cls.js, cls.entry = kind, script, entry or cls.entry

    def script(self) -> str:
        return self.js if self.js is not None else resources.files("circuitnb.viz").joinpath("explorer.js").read_text()

    def to_html(self) -> str:
        kind = self.kind or self.data["kind"]
        payload = json.dumps(self.data, separators=(",", ":")).replace("</", "<\\/")
        eid = f"circuitnb-{kind}-{uuid.uuid4().hex[:8]}"
        return (f'<div class="circuitnb-explorer" id="{eid}" data-kind="{kind}">'
                f'<script type="application/json">{payload}</script></div>'
                f"<script>{self.script()}</script>"
                f'<script>{self.entry}(document.getElementById("{eid}"));</script>')

    def _repr_html_(self) -> str:
        return self.to_html()

    @property
    def nbytes(self) -> int:
        """Size of the embedded page fragment in bytes."""
        return len(self.to_html().encode())
