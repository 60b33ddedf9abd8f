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

import numpy as np


def b64_uint8(a: np.ndarray) -> str:
    """``b64_uint8(to_uint8(x0))``: the array's bytes as uint8, base64 text (what ``explorer.js`` decodes)."""
    return base64.b64encode(np.ascontiguousarray(a, dtype=np.uint8).tobytes()).decode()


@dataclass
class Explorer:
    data: dict

    def to_html(self) -> str:
        js = resources.files("circuitnb.viz").joinpath("explorer.js").read_text()
        payload = json.dumps(self.data, separators=(",", ":")).replace("</", "<\\/")
        eid = f"circuitnb-{self.data['kind']}-{uuid.uuid4().hex[:8]}"
        return (f'<div class="circuitnb-explorer" id="{eid}" data-kind="{self.data["kind"]}">'
                f'<script type="application/json">{payload}</script></div>'
                f"<script>{js}</script>"
                f'<script>circuitnbExplorer(document.getElementById("{eid}"));</script>')

    def _repr_html_(self) -> str:
        return self.to_html()

    @property
    def nbytes(self) -> int:
        """Size of the embedded page fragment in bytes."""
        return len(self.to_html().encode())
