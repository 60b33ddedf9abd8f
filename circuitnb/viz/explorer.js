// circuitnb static explorers: plain JavaScript over data embedded in the page (no kernel, no network).
// One call per explorer: circuitnbExplorer(rootElement). The data sit in a JSON script tag
// inside the root; images and maps are base64 uint8 arrays.
(function () {
  if (window.circuitnbExplorer) return;

  function bytes(b64) {
    const s = atob(b64), out = new Uint8Array(s.length);
    for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
    return out;
  }
  // magma-like ramp: black -> purple -> orange -> light yellow
  function heat(v) {
    const stops = [[0, 0, 4], [81, 18, 124], [183, 55, 121], [252, 137, 97], [252, 253, 191]];
    const x = Math.max(0, Math.min(0.9999, v / 255)) * (stops.length - 1), i = Math.floor(x), f = x - i;
    return stops[i].map((c, k) => Math.round(c + f * (stops[i + 1][k] - c)));
  }
  function drawRGB(canvas, rgb, size, scale) {
    canvas.width = size * scale; canvas.height = size * scale;
    const ctx = canvas.getContext("2d"), img = ctx.createImageData(size, size);
    for (let p = 0; p < size * size; p++) {
      img.data[4 * p] = rgb[3 * p]; img.data[4 * p + 1] = rgb[3 * p + 1];
      img.data[4 * p + 2] = rgb[3 * p + 2]; img.data[4 * p + 3] = 255;
    }
    const tmp = document.createElement("canvas"); tmp.width = size; tmp.height = size;
    tmp.getContext("2d").putImageData(img, 0, 0);
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(tmp, 0, 0, size * scale, size * scale);
  }
  function drawHeat(canvas, values, grid, scale) {
    const rgb = new Uint8Array(grid * grid * 3);
    for (let p = 0; p < grid * grid; p++) { const c = heat(values[p]); rgb.set(c, 3 * p); }
    drawRGB(canvas, rgb, grid, scale);
  }
  function select(label, options, onChange) {
    const wrap = document.createElement("label"), el = document.createElement("select");
    wrap.textContent = label + " ";
    wrap.style.marginRight = "1em";
    setOptions(el, options);
    el.addEventListener("change", onChange);
    wrap.appendChild(el);
    return [wrap, el];
  }
  function setOptions(el, options) {
    const keep = el.value;
    el.innerHTML = "";
    options.forEach(([value, text]) => {
      const o = document.createElement("option"); o.value = String(value); o.textContent = text; el.appendChild(o);
    });
    if (options.some(([v]) => String(v) === keep)) el.value = keep;
  }
  function panel(root, title) {
    const fig = document.createElement("figure"), c = document.createElement("canvas"), cap = document.createElement("figcaption");
    fig.style.display = "inline-block"; fig.style.margin = "0.3em"; fig.style.textAlign = "center";
    c.style.border = "1px solid #999"; c.style.imageRendering = "pixelated";
    cap.textContent = title; cap.style.fontSize = "0.8em";
    fig.appendChild(c); fig.appendChild(cap); root.appendChild(fig);
    return c;
  }
  const fmt = (x, d) => (x === null || x === undefined || Number.isNaN(x)) ? "n/a" : Number(x).toFixed(d);

  function attention(root, D) {
    const controls = document.createElement("div"), view = document.createElement("div"), info = document.createElement("div");
    const state = {};
    const redraw = () => {
      const ds = state.ds.value, t = state.t.value, layer = state.layer.value, h = +state.head.value, qi = +state.query.value;
      const key = `${ds}|${t}|${layer}`, nq = D.queries.length, K = D.grid * D.grid;
      const maps = bytes(D.maps[key]), row = maps.subarray((h * nq + qi) * K, (h * nq + qi + 1) * K);
      const img = bytes(D.images[ds]), scale = Math.max(1, Math.round(192 / D.size));
      drawRGB(state.imgCanvas, img, D.size, scale);
      const ctx = state.imgCanvas.getContext("2d"), cell = D.size * scale / D.grid, q = D.queries[qi];
      ctx.globalAlpha = 0.55;
      for (let k = 0; k < K; k++) {
        const c = heat(row[k]); ctx.fillStyle = `rgb(${c[0]},${c[1]},${c[2]})`;
        ctx.fillRect((k % D.grid) * cell, Math.floor(k / D.grid) * cell, cell, cell);
      }
      ctx.globalAlpha = 1; ctx.strokeStyle = "cyan"; ctx.lineWidth = 2;
      ctx.strokeRect((q % D.grid) * cell + 1, Math.floor(q / D.grid) * cell + 1, cell - 2, cell - 2);
      drawHeat(state.mapCanvas, row, D.grid, Math.max(1, Math.round(192 / D.grid)));
      const e = D.entropy[key][h][qi], mean = D.head_entropy[key][h];
      info.textContent = `${ds}, t = ${t}, ${layer} head ${h}, query (row ${Math.floor(q / D.grid)}, col ${q % D.grid}): ` +
        `entropy of this row ${fmt(e, 3)} bits, specialization ${fmt((D.hmax - e) / D.hmax, 3)}; ` +
        `head mean over ${D.n_images} images: entropy ${fmt(mean, 3)} bits, specialization ${fmt((D.hmax - mean) / D.hmax, 3)} ` +
        `(Hmax = ${fmt(D.hmax, 2)} bits).`;
      root.dataset.state = key + `|${h}|${qi}`;
    };
    [["dataset", "ds", D.datasets.map(d => [d, d])], ["timestep", "t", D.timesteps.map(t => [t, `t = ${t}`])],
     ["layer", "layer", D.layers.map(l => [l, l])], ["head", "head", [...Array(D.heads).keys()].map(h => [h, `head ${h}`])],
     ["query", "query", D.queries.map((q, i) => [i, `(${Math.floor(q / D.grid)}, ${q % D.grid})`])]].forEach(([label, k, opts]) => {
      const [w, el] = select(label, opts, redraw); el.dataset.control = k; state[k] = el; controls.appendChild(w);
    });
    state.imgCanvas = panel(view, "image with the head's attention from the query (cyan)");
    state.mapCanvas = panel(view, "attention over the key grid");
    state.imgCanvas.addEventListener("click", ev => {        // pick the nearest available query
      const r = state.imgCanvas.getBoundingClientRect(), g = D.grid;
      const col = Math.floor((ev.clientX - r.left) / r.width * g), rowi = Math.floor((ev.clientY - r.top) / r.height * g);
      let best = 0, bd = 1e9;
      D.queries.forEach((q, i) => { const d = (Math.floor(q / g) - rowi) ** 2 + (q % g - col) ** 2; if (d < bd) { bd = d; best = i; } });
      state.query.value = String(best); redraw();
    });
    root.append(controls, view, info);
    redraw();
  }

  function intervention(root, D) {
    const controls = document.createElement("div"), view = document.createElement("div"), info = document.createElement("div");
    const state = {};
    const targets = [...new Set(D.entries.map(e => e.target))];
    const refresh = () => {
      const tg = state.target.value;
      setOptions(state.kind, [...new Set(D.entries.filter(e => e.target === tg).map(e => e.kind))].map(k => [k, k]));
      const ks = D.entries.filter(e => e.target === tg && e.kind === state.kind.value);
      setOptions(state.strength, ks.map(e => [e.name, e.strength === null ? "(none)" : String(e.strength)]));
      redraw();
    };
    const redraw = () => {
      const ds = state.ds.value, t = state.t.value, name = state.strength.value, key = `${ds}|${t}`;
      const scale = Math.max(1, Math.round(160 / D.size)), n = D.size * D.size * 3;
      const base = bytes(D.base[key]), pred = bytes(D.pred[`${key}|${name}`]), diff = new Uint8Array(n);
      let total = 0;
      for (let i = 0; i < n; i++) { const d = Math.abs(pred[i] - base[i]); total += d; diff[i] = Math.min(255, 4 * d); }
      drawRGB(state.xt, bytes(D.xt[key]), D.size, scale);
      drawRGB(state.base, base, D.size, scale);
      drawRGB(state.pred, pred, D.size, scale);
      drawRGB(state.diff, diff, D.size, scale);
      const [imp, impMean] = D.impact[`${key}|${name}`];
      info.textContent = `${ds}, t = ${t}, ${name}: impact score (Eq. 5) on this image ${fmt(imp, 4)}, ` +
        `over the ${D.n_images} analysed images ${fmt(impMean, 4)}; mean |difference| of the predicted clean image ` +
        `${fmt(total / n / 127.5, 4)} (images in [-1, 1]).` +
        (D.kinds && D.kinds[state.kind.value] ? ` ${state.kind.value}: ${D.kinds[state.kind.value]}.` : "");
      root.dataset.state = `${key}|${name}`;
    };
    [["dataset", "ds", D.datasets.map(d => [d, d]), redraw], ["timestep", "t", D.timesteps.map(t => [t, `t = ${t}`]), redraw],
     ["site / group", "target", targets.map(t => [t, t]), refresh], ["intervention", "kind", [], refresh],
     ["strength", "strength", [], redraw]].forEach(([label, k, opts, fn]) => {
      const [w, el] = select(label, opts, fn); el.dataset.control = k; state[k] = el; controls.appendChild(w);
    });
    state.xt = panel(view, "noisy input x_t");
    state.base = panel(view, "predicted clean image, intact");
    state.pred = panel(view, "predicted clean image, intervened");
    state.diff = panel(view, "|difference| x 4");
    root.append(controls, view, info);
    refresh();
  }

  function scrub(root, D) {
    const controls = document.createElement("div"), view = document.createElement("div"), info = document.createElement("div");
    const state = {};
    const redraw = () => {
      const ds = state.ds.value, s = +state.step.value, scale = Math.max(1, Math.round(160 / D.size));
      drawRGB(state.x, bytes(D.x[ds][s]), D.size, scale);
      drawRGB(state.x0, bytes(D.x0[ds][s]), D.size, scale);
      const att = bytes(D.attn[ds][s]), K = D.grid * D.grid;
      D.layers.forEach((l, i) => drawHeat(state.maps[i], att.subarray(i * K, (i + 1) * K), D.grid, Math.max(1, Math.round(120 / D.grid))));
      const st = D.stats[ds][s];
      state.label.textContent = `step ${s + 1} of ${D.steps.length}, t = ${D.steps[s]}`;
      info.textContent = `${ds} model, t = ${D.steps[s]}. Block output std: ` +
        D.blocks.map((b, i) => `${b} ${fmt(st[i][1], 3)}`).join(", ") + `. Attention entropy (mean over heads and queries, bits): ` +
        D.layers.map((l, i) => `${l} ${fmt(D.entropy[ds][s][i], 3)}`).join(", ") + ".";
      root.dataset.state = `${ds}|${s}`;
    };
    const [w, ds] = select("model", D.datasets.map(d => [d, d]), redraw); ds.dataset.control = "ds"; state.ds = ds;
    controls.appendChild(w);
    const lab = document.createElement("label"), slider = document.createElement("input");
    lab.textContent = "denoising step ";
    slider.type = "range"; slider.min = 0; slider.max = D.steps.length - 1; slider.value = 0; slider.step = 1;
    slider.dataset.control = "step"; slider.addEventListener("input", redraw);
    state.step = slider; state.label = document.createElement("span");
    lab.appendChild(slider); controls.append(lab, state.label);
    state.x = panel(view, "x_t");
    state.x0 = panel(view, "predicted clean image");
    state.maps = D.layers.map(l => panel(view, `${l}: attention received (head mean)`));
    root.append(controls, view, info);
    redraw();
  }

  // Part II: latent traversals of a VAE (chapter 21). D.images[model]: uint8 [latent, step, H, W], grey.
  function traversal(root, D) {
    const controls = document.createElement("div"), view = document.createElement("div"), info = document.createElement("div");
    const state = {};
    const redraw = () => {
      const key = state.model.value, k = +state.latent.value, s = +state.step.value, n = D.size * D.size;
      const grey = bytes(D.images[key]).subarray((k * D.grid.length + s) * n, (k * D.grid.length + s + 1) * n);
      const rgb = new Uint8Array(3 * n);
      for (let p = 0; p < n; p++) rgb.fill(grey[p], 3 * p, 3 * p + 3);
      drawRGB(state.canvas, rgb, D.size, Math.max(1, Math.round(192 / D.size)));
      const eff = D.effects[key][k], names = D.factors[key];
      const best = eff.indexOf(Math.max(...eff));
      state.label.textContent = ` z${k} = ${fmt(D.grid[s], 2)}`;
      info.textContent = `${key.replace("|", ", ")}, latent ${k} at ${fmt(D.grid[s], 2)} prior sd (other latents at the ` +
        `image's posterior mean). Mean |pixel change| over the sweep ${fmt(D.pixel[key][k], 4)}. Effect on this latent ` +
        `of changing each factor (level 1, latent sd): ` + names.map((f, i) => `${f} ${fmt(eff[i], 2)}`).join(", ") +
        `; it follows ${names[best]} most.`;
      root.dataset.state = `${key}|${k}|${s}`;
    };
    [["model", "model", D.models.map(m => [m, m.replace("|", ", ")])],
     ["latent", "latent", [...Array(D.latents).keys()].map(k => [k, `z${k}`])]].forEach(([label, k, opts]) => {
      const [w, el] = select(label, opts, redraw); el.dataset.control = k; state[k] = el; controls.appendChild(w);
    });
    const lab = document.createElement("label"), slider = document.createElement("input");
    lab.textContent = "value ";
    slider.type = "range"; slider.min = 0; slider.max = D.grid.length - 1; slider.step = 1;
    slider.value = Math.floor(D.grid.length / 2); slider.dataset.control = "step"; slider.addEventListener("input", redraw);
    state.step = slider; state.label = document.createElement("span");
    lab.appendChild(slider); controls.append(lab, state.label);
    state.canvas = panel(view, "decoded image");
    root.append(controls, view, info);
    redraw();
  }

  window.circuitnbExplorer = function (root) {
    const D = JSON.parse(root.querySelector('script[type="application/json"]').textContent);
    ({ attention, intervention, scrub, traversal })[D.kind](root, D);
  };
})();
