"""The offline explorer of Part V: pick a model, a held-out slice and a contrast; see the slice, the model's
reconstruction, its error, its uncertainty, the lesion mask and every attention head's map (no kernel, no network;
the page fragment of :class:`circuitnb.viz.explorer.Explorer` with its own script).

    ex = MriExplorer(mri_explorer_data(...))      # built by circuitnb.chapters.mri.circuits
    display(ex)                                   # in a notebook; ex.to_html() for a page, ex.nbytes its weight

Arrays are base64 uint8 (:func:`circuitnb.viz.explorer.b64_uint8`), row-major:

* ``slices`` [n, 4, S, S] and ``recon[model]`` [n, 4, S, S]: intensities in [-1, 1] mapped to 0-255;
* ``error[model]``, ``uncertainty[model]`` [n, S, S]: squared error and predictive variance (aleatoric +
  epistemic), channel means, each scaled to 255 at ``error_max[model]`` / ``uncertainty_max[model]`` (their
  99th percentile over the explorer's slices; larger values saturate);
* ``masks`` [n, S, S]: BraTS labels 0, 1, 2, 4;
* ``heads[model][layer]`` [n, heads, R * R]: the attention each key position receives, averaged over queries,
  scaled to 255 at the map's own maximum (so each head shows where it looks; ``uniform`` is 1 / R^2).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from circuitnb.viz.explorer import Explorer, b64_uint8

SCRIPT = r"""
(function () {
  if (window.circuitnbMri) return;
  const bytes = s => Uint8Array.from(atob(s), c => c.charCodeAt(0));
  const LABEL = {0: [0, 0, 0], 1: [230, 60, 60], 2: [250, 200, 40], 4: [60, 200, 255]};
  const hot = v => [Math.min(255, 3 * v), Math.max(0, Math.min(255, 3 * v - 255)), Math.max(0, 3 * v - 510)];
  const viridis = v => { const u = v / 255; return [Math.round(68 + 185 * u * u), Math.round(1 + 230 * u),
    Math.round(84 + 80 * Math.sin(Math.PI * u))]; };
  const panel = (title, side, px) => {
    const box = document.createElement("figure"), cv = document.createElement("canvas");
    const cap = document.createElement("figcaption");
    box.style.display = "inline-block"; box.style.margin = "0 0.5em 0.5em 0"; box.style.textAlign = "center";
    cv.width = side; cv.height = side; cv.style.width = px + "px"; cv.style.height = px + "px";
    cv.style.imageRendering = "pixelated"; cap.textContent = title; cap.style.fontSize = "0.8em";
    box.append(cv, cap); return [box, cv, cap];
  };
  const draw = (cv, arr, offset, side, colour) => {
    const ctx = cv.getContext("2d"), img = ctx.createImageData(side, side);
    for (let i = 0; i < side * side; i++) {
      const c = colour(arr[offset + i]);
      img.data[4 * i] = c[0]; img.data[4 * i + 1] = c[1]; img.data[4 * i + 2] = c[2]; img.data[4 * i + 3] = 255;
    }
    ctx.putImageData(img, 0, 0);
  };
  window.circuitnbMri = function (root) {
    const D = JSON.parse(root.querySelector('script[type="application/json"]').textContent);
    const S = D.size, n = D.rows.length, grey = v => [v, v, v];
    const slices = bytes(D.slices), masks = bytes(D.masks), dec = {};
    D.models.forEach(m => { dec[m] = {recon: bytes(D.recon[m]), error: bytes(D.error[m]),
      unc: bytes(D.uncertainty[m]), heads: {}};
      Object.entries(D.heads[m] || {}).forEach(([l, s]) => { dec[m].heads[l] = bytes(s); }); });
    const controls = document.createElement("div"), top = document.createElement("div");
    const headsBox = document.createElement("div"), info = document.createElement("div");
    const sel = document.createElement("select"), mod = document.createElement("select");
    const slider = document.createElement("input"), txt = document.createElement("span");
    D.models.forEach(m => { const o = document.createElement("option"); o.value = m; o.textContent = m;
      sel.appendChild(o); });
    D.modalities.forEach((m, i) => { const o = document.createElement("option"); o.value = i; o.textContent = m;
      mod.appendChild(o); });
    slider.type = "range"; slider.min = 0; slider.max = n - 1; slider.step = 1; slider.value = 0;
    sel.dataset.control = "model"; mod.dataset.control = "modality"; slider.dataset.control = "slice";
    const lab = t => { const l = document.createElement("label"); l.textContent = t + " ";
      l.style.marginRight = "1em"; return l; };
    const l1 = lab("model"), l2 = lab("contrast"), l3 = lab("slice");
    l1.appendChild(sel); l2.appendChild(mod); l3.append(slider, txt); controls.append(l1, l2, l3);
    const P = ["slice", "reconstruction", "squared error", "uncertainty (variance)", "lesion mask"].map(
      t => panel(t, S, 128));
    P.forEach(p => top.appendChild(p[0]));
    root.append(controls, top, headsBox, info);
    const redraw = () => {
      const m = sel.value, s = +slider.value, c = +mod.value, d = dec[m];
      draw(P[0][1], slices, (s * 4 + c) * S * S, S, grey);
      draw(P[1][1], d.recon, (s * 4 + c) * S * S, S, grey);
      draw(P[2][1], d.error, s * S * S, S, hot);
      draw(P[3][1], d.unc, s * S * S, S, hot);
      draw(P[4][1], masks, s * S * S, S, v => LABEL[v] || [255, 255, 255]);
      P[2][2].textContent = `squared error (0-${D.error_max[m].toPrecision(2)})`;
      P[3][2].textContent = `uncertainty (variance, 0-${D.uncertainty_max[m].toPrecision(2)})`;
      headsBox.innerHTML = "";
      const layers = Object.keys(d.heads), R = D.res;
      layers.forEach(l => {
        const h = D.n_heads[l], row = document.createElement("div");
        const name = document.createElement("div"); name.textContent = `${l}: attention received per position`;
        name.style.fontSize = "0.85em"; row.appendChild(name);
        for (let k = 0; k < h; k++) {
          const p = panel(`h${k}`, R, 80); draw(p[1], d.heads[l], (s * h + k) * R * R, R, viridis);
          row.appendChild(p[0]);
        }
        headsBox.appendChild(row);
      });
      txt.textContent = ` ${D.rows[s]} (${D.lesion[s] ? "lesion" : "healthy"})`;
      info.textContent = `${m}, replicate 0, held-out slice ${s + 1} of ${n}. Error and uncertainty are channel ` +
        "means, black = 0, white = the scale in the caption or more. Mask: red necrotic core, yellow oedema, " +
        "blue enhancing. " + (layers.length ? `Head maps: each key position's attention averaged over queries ` +
        `(${R} x ${R} positions), scaled to the map's maximum.` : "This model has no attention layer.");
      root.dataset.state = `${m}|${s}|${c}|${layers.length}`;
    };
    [sel, mod].forEach(e => e.addEventListener("change", redraw)); slider.addEventListener("input", redraw);
    redraw();
  };
})();
"""


def _u8(x: np.ndarray, top: float) -> np.ndarray:
    return np.clip(np.round(np.asarray(x, np.float64) / top * 255), 0, 255).astype(np.uint8)


def _scale(x: np.ndarray) -> float:
    top = float(np.quantile(np.asarray(x), 0.99)) if np.size(x) else 0.0
    return top if top > 0 else 1.0


def mri_explorer_data(images: np.ndarray, masks: np.ndarray, lesion: np.ndarray, labels: list[str],
                      per_model: dict[str, dict], heads: dict[str, dict], res: int,
                      modalities=("FLAIR", "T1", "T1ce", "T2")) -> dict:
    """The explorer's JSON: ``images`` [n, 4, S, S] in [-1, 1], ``masks`` [n, S, S], ``lesion`` [n], ``labels``
    one name per slice; ``per_model[kind]`` = {"mean" [n, 4, S, S], "error", "uncertainty" [n, S, S]};
    ``heads[kind]`` = {layer: received [n, heads, res * res]} (absent or empty: no attention)."""
    data: dict = dict(kind="mri", size=int(images.shape[-1]), res=int(res), modalities=list(modalities),
                      rows=list(labels), lesion=[bool(v) for v in lesion], models=list(per_model),
                      slices=b64_uint8(np.round((np.clip(images, -1, 1) + 1) * 127.5)), masks=b64_uint8(masks),
                      recon={}, error={}, uncertainty={}, error_max={}, uncertainty_max={}, heads={}, n_heads={},
                      uniform=1.0 / res ** 2)
    for k, p in per_model.items():
        data["recon"][k] = b64_uint8(np.round((np.clip(p["mean"], -1, 1) + 1) * 127.5))
        for name in ("error", "uncertainty"):
            top = _scale(p[name])
            data[f"{name}_max"][k] = top
            data[name][k] = b64_uint8(_u8(p[name], top))
        data["heads"][k] = {}
        for layer, rec in (heads.get(k) or {}).items():
            rec = np.asarray(rec, np.float64)
            top = rec.max(-1, keepdims=True)
            data["heads"][k][layer] = b64_uint8(_u8(rec / np.where(top > 0, top, 1), 1.0))
            data["n_heads"][layer] = int(rec.shape[1])
    return data


@dataclass
class MriExplorer(Explorer, kind="mri", script=SCRIPT, entry="circuitnbMri"):
    """:class:`~circuitnb.viz.explorer.Explorer` whose page fragment runs :data:`SCRIPT` (kind "mri")."""
