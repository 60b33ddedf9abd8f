"""The offline explorer of Part III's latents: pick a tabular VAE and a latent, drag the slider, read the decoded
row (no kernel, no network; the page fragment of :class:`circuitnb.viz.explorer.Explorer` with its own script).

    ex = TabularExplorer(dict(kind="tabular", models=["vae|world"], columns={...}, grid=[...], decoded={...},
                              clean={...}, effects={...}, sources={...}, weights={...}))
    display(ex)                       # in a notebook; ex.to_html() for a page, ex.nbytes its weight

``decoded[model]`` is [latent][step][column]: the decoder's mean in the table's encoding (a continuous column in
training sds, a categorical level's probability, an ordinal column's expected level index) when one latent of
the first held-out row's posterior mean is moved by ``grid[step]`` prior sds. Each bar shows the change from the
clean row (``clean[model]``), scaled per column by the largest change of that column over the model's sweeps.
"""
from __future__ import annotations

from dataclasses import dataclass

from circuitnb.viz.explorer import Explorer

SCRIPT = r"""
(function () {
  if (window.circuitnbTabular) return;
  const fmt = (x, d) => (x === null || x === undefined || Number.isNaN(x)) ? "n/a" : Number(x).toFixed(d);
  function select(label, options, onChange, control) {
    const wrap = document.createElement("label"), el = document.createElement("select");
    wrap.textContent = label + " "; wrap.style.marginRight = "1em";
    options.forEach(([v, t]) => {
      const o = document.createElement("option"); o.value = v; o.textContent = t; el.appendChild(o);
    });
    el.dataset.control = control; el.addEventListener("change", onChange); wrap.appendChild(el);
    return [wrap, el];
  }
  window.circuitnbTabular = function (root) {
    const D = JSON.parse(root.querySelector('script[type="application/json"]').textContent);
    const controls = document.createElement("div"), table = document.createElement("table");
    const info = document.createElement("div");
    table.style.fontSize = "0.85em"; table.style.borderCollapse = "collapse";
    const state = {};
    const redraw = () => {
      const key = state.model.value, s = +state.step.value;
      const k = Math.min(+state.latent.value, D.decoded[key].length - 1);
      const cols = D.columns[key], row = D.decoded[key][k][s], clean = D.clean[key], scale = D.scale[key];
      table.innerHTML = "<tr><th style='text-align:left'>column</th><th>clean</th><th>decoded</th>" +
        "<th style='width:16em'>change</th></tr>";
      cols.forEach((c, j) => {
        const tr = document.createElement("tr"), dv = row[j] - clean[j];
        const w = scale[j] > 0 ? Math.min(1, Math.abs(dv) / scale[j]) : 0;
        tr.innerHTML = `<td>${c}</td><td>${fmt(clean[j], 2)}</td><td>${fmt(row[j], 2)}</td>` +
          `<td><div style="position:relative;height:0.9em;background:#eee">` +
          `<div style="position:absolute;height:100%;` +
          `${dv >= 0 ? "left:50%" : "right:50%"};width:${50 * w}%;` +
          `background:${dv >= 0 ? "#d95f02" : "#1b9e77"}"></div></div></td>`;
        table.appendChild(tr);
      });
      const eff = D.effects[key][k], src = D.sources[key];
      const best = eff.indexOf(Math.max(...eff));
      state.label.textContent = ` z${k} = mean ${D.grid[s] >= 0 ? "+" : ""}${fmt(D.grid[s], 2)} prior sd`;
      info.textContent = `${key.replace("|", " on ")}, replicate 0, first held-out row; latent ${k} ` +
        `(posterior weight ${fmt(D.weights[key][k], 2)}: 0 collapsed, 1 fully informative). ` +
        `Level-1 effect of intervening on each source on ` +
        `this latent (calibrated, latent sd): ` + src.map((f, i) => `${f} ${fmt(eff[i], 2)}`).join(", ") +
        (src.length ? `; it follows ${src[best]} most.` : ".");
      root.dataset.state = `${key}|${k}|${s}`;
    };
    const [mw, m] = select("model", D.models.map(x => [x, x.replace("|", " on ")]), redraw, "model");
    const [lw, l] = select("latent", [...Array(D.latents).keys()].map(k => [k, `z${k}`]), redraw, "latent");
    state.model = m; state.latent = l;
    const lab = document.createElement("label"), slider = document.createElement("input");
    lab.textContent = "value ";
    slider.type = "range"; slider.min = 0; slider.max = D.grid.length - 1; slider.step = 1;
    slider.value = Math.floor(D.grid.length / 2); slider.dataset.control = "step";
    slider.addEventListener("input", redraw);
    state.step = slider; state.label = document.createElement("span");
    lab.appendChild(slider); controls.append(mw, lw, lab, state.label);
    root.append(controls, table, info);
    redraw();
  };
})();
"""


@dataclass
class TabularExplorer(Explorer, kind="tabular", script=SCRIPT, entry="circuitnbTabular"):
    """:class:`~circuitnb.viz.explorer.Explorer` whose page fragment runs :data:`SCRIPT`."""
