"""The offline explorer of Part IV's hidden units over the sparsity schedule: pick a model, drag the slider over the
training snapshots, watch every unit's firing rate (no kernel, no network; the page fragment of
:class:`circuitnb.viz.explorer.Explorer` with its own script).

    ex = SaeExplorer(dict(kind="sae", models=["topk|dsprites"], steps=[150, 300], k={...}, firing={...},
                          best={...}, eta2={...}, end=600))
    display(ex)                       # in a notebook; ex.to_html() for a page, ex.nbytes its weight

``firing[model]`` is [snapshot][unit]: the share of held-out images on which the unit fires (replicate 0). Each
unit is a cell coloured by that share on a log scale (grey: dead, active on no held-out image; outlined: dead at
the schedule's end and alive at this snapshot). ``best[model][unit]`` and ``eta2`` name the factor that explains the
unit's activation best at the last snapshot and how much of it (eta^2); hovering a cell shows them.
"""
from __future__ import annotations

from dataclasses import dataclass

from circuitnb.viz.explorer import Explorer

SCRIPT = r"""
(function () {
  if (window.circuitnbSae) return;
  const fmt = (x, d) => (x === null || x === undefined || Number.isNaN(x)) ? "n/a" : Number(x).toFixed(d);
  window.circuitnbSae = function (root) {
    const D = JSON.parse(root.querySelector('script[type="application/json"]').textContent);
    const controls = document.createElement("div"), grid = document.createElement("div");
    const info = document.createElement("div");
    grid.style.display = "grid"; grid.style.gridTemplateColumns = "repeat(25, 0.9em)"; grid.style.gap = "1px";
    grid.style.margin = "0.5em 0";
    const wrap = document.createElement("label"), sel = document.createElement("select");
    wrap.textContent = "model "; wrap.style.marginRight = "1em";
    D.models.forEach(m => { const o = document.createElement("option"); o.value = m;
      o.textContent = m.replace("|", " on "); sel.appendChild(o); });
    sel.dataset.control = "model"; wrap.appendChild(sel);
    const lab = document.createElement("label"), slider = document.createElement("input");
    const txt = document.createElement("span");
    lab.textContent = "snapshot "; slider.type = "range"; slider.min = 0; slider.max = D.steps.length - 1;
    slider.step = 1; slider.value = D.steps.length - 1; slider.dataset.control = "step"; lab.appendChild(slider);
    const colour = f => {
      if (f <= 0) return "#bbbbbb";
      const u = Math.min(1, Math.max(0, (Math.log10(f) + 3) / 3));     // 0.001 .. 1 on a log scale
      return `hsl(${220 - 190 * u}, 80%, ${70 - 30 * u}%)`;
    };
    const redraw = () => {
      const key = sel.value, s = +slider.value, f = D.firing[key][s];
      const endIdx = D.steps.findIndex(x => x >= D.end), fe = D.firing[key][Math.max(endIdx, 0)];
      grid.innerHTML = "";
      let dead = 0, revived = 0;
      f.forEach((v, u) => {
        const c = document.createElement("div");
        c.style.width = "0.9em"; c.style.height = "0.9em"; c.style.background = colour(v);
        if (v <= 0) dead += 1;
        if (s > endIdx && fe[u] <= 0 && v > 0) { revived += 1; c.style.outline = "2px solid #d95f02"; }
        c.title = `unit ${u}: fires on ${fmt(100 * v, 1)}% of held-out images; best factor at the end: ` +
          `${D.best[key][u] === null ? "none (constant)" : D.best[key][u]} (eta^2 ${fmt(D.eta2[key][u], 2)})`;
        grid.appendChild(c);
      });
      txt.textContent = ` step ${D.steps[s]} (k = ${D.k[key][s]})`;
      info.textContent = `${key.replace("|", " on ")}, replicate 0: ${dead} of ${f.length} units dead ` +
        `(${fmt(100 * dead / f.length, 1)}%, active on no held-out image)` +
        (s > endIdx ? `; ${revived} dead at the schedule's end (step ${D.steps[endIdx]}) fire again here.` :
         `; the schedule reaches its final k at step ${D.steps[endIdx]}.`) +
        " Colour: share of images a unit fires on, log scale from 0.1% (blue) to 100% (orange); grey: dead.";
      root.dataset.state = `${key}|${s}|${dead}`;
    };
    sel.addEventListener("change", redraw); slider.addEventListener("input", redraw);
    controls.append(wrap, lab, txt);
    root.append(controls, grid, info);
    redraw();
  };
})();
"""


@dataclass
class SaeExplorer(Explorer, kind="sae", script=SCRIPT, entry="circuitnbSae"):
    """:class:`~circuitnb.viz.explorer.Explorer` whose page fragment runs :data:`SCRIPT`."""
