// codeprobe's report and snippet explorer: hand-written SVG and canvas drawing, no library.
// The data sits in the JSON script element "codeprobe-data"; nothing is fetched.
"use strict";
(function () {
  const DATA = JSON.parse(document.getElementById("codeprobe-data").textContent);
  const SVGNS = "http://www.w3.org/2000/svg";
  const PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22"];
  const tip = el("div", { class: "tip" });
  document.body.appendChild(tip);

  // ------------------------------------------------------------------ helpers
  function el(tag, attrs, ...kids) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined) continue;
      if (k === "text") node.textContent = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v);
    }
    for (const kid of kids) if (kid !== null && kid !== undefined) node.append(kid);
    return node;
  }
  function svg(tag, attrs) {
    const node = document.createElementNS(SVGNS, tag);
    for (const [k, v] of Object.entries(attrs || {})) if (v !== null && v !== undefined) node.setAttribute(k, v);
    return node;
  }
  const fmt = (v, d = 3) => (v === null || v === undefined || Number.isNaN(v) ? "n/a" : Number(v).toFixed(d));
  const finite = (v) => v !== null && v !== undefined && Number.isFinite(v);
  function showTip(evt, text) {
    tip.textContent = text;
    tip.style.display = "block";
    const x = Math.min(evt.clientX + 14, window.innerWidth - tip.offsetWidth - 8);
    const y = Math.min(evt.clientY + 14, window.innerHeight - tip.offsetHeight - 8);
    tip.style.left = x + "px";
    tip.style.top = y + "px";
  }
  const hideTip = () => { tip.style.display = "none"; };
  function select(label, options, value, onChange, testId) {
    const s = el("select", { "data-testid": testId, onchange: () => onChange(s.value) });
    for (const [v, text] of options) s.append(el("option", { value: String(v), text }));
    s.value = String(value);
    return [el("label", { text: label }), s];
  }
  // Viridis, 9 stops, linear in between.
  const VIRIDIS = [[68, 1, 84], [71, 44, 122], [59, 81, 139], [44, 113, 142], [33, 144, 141], [39, 173, 129], [92, 200, 99], [170, 220, 50], [253, 231, 37]];
  function viridis(t) {
    t = Math.max(0, Math.min(1, t)) * (VIRIDIS.length - 1);
    const i = Math.min(Math.floor(t), VIRIDIS.length - 2), f = t - i;
    return VIRIDIS[i].map((c, k) => Math.round(c + f * (VIRIDIS[i + 1][k] - c)));
  }
  const rgb = (c) => `rgb(${c[0]},${c[1]},${c[2]})`;
  const inkOn = (c) => (0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2] > 150 ? "#000" : "#fff");
  // A shown heads score {direction, dependent} in words.
  const scoreName = (sc) => (sc.direction === "head->dep" ? `head\u2192dependent (${sc.dependent} token)` : "dependent\u2192head");
  // A value with its interval, "0.423 [0.401, 0.447]"; a paired difference "+0.120 [+0.100, +0.140]",
  // marked n.d. (not distinguishable) when its interval reaches 0 (as the Markdown report writes them).
  const hasCi = (c) => Array.isArray(c) && finite(c[0]) && finite(c[1]);
  const withCi = (v, c) => (finite(v) && hasCi(c) ? `${fmt(v)} [${fmt(c[0])}, ${fmt(c[1])}]` : fmt(v));
  // The same in a table cell, the interval muted.
  const ciCell = (v, c) => (finite(v) && hasCi(c) ? el("span", {}, fmt(v), el("span", { class: "ci", text: ` [${fmt(c[0])}, ${fmt(c[1])}]` })) : fmt(v));
  function diffCell(d) {
    const text = diffText(d);
    if (!d || excludesZero(d.ci) === null) return text;
    return el("span", {}, signed(d.mean), el("span", { class: "ci", text: ` [${signed(d.ci[0])}, ${signed(d.ci[1])}]` + (text.endsWith(" n.d.") ? " n.d." : "") }));
  }
  const signed = (v) => (v >= 0 ? "+" : "") + fmt(v);
  const excludesZero = (c) => (Array.isArray(c) && finite(c[0]) && finite(c[1]) ? c[0] > 0 || c[1] < 0 : null);
  function diffText(d) {
    if (!d || !finite(d.mean)) return "n/a";
    const c = d.ci;
    if (excludesZero(c) === null) return `${signed(d.mean)} (no interval)`;
    const sure = d.distinguishable === undefined || d.distinguishable === null ? excludesZero(c) : d.distinguishable;
    return `${signed(d.mean)} [${signed(c[0])}, ${signed(c[1])}]` + (sure ? "" : " n.d.");
  }
  async function inflate(b64) {
    const bin = atob(b64);
    const bytes = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("deflate"));
    return new Uint8Array(await new Response(stream).arrayBuffer());
  }

  // ------------------------------------------------------------------ line chart
  // series: [{label, color, dash, points: [{x, y, lo, hi}], band, marker, group}]; vlines: [{x,
  // text, color, group}] (a dotted vertical line with its text at the top, e.g. an onset).
  function lineChart({ title, xLabel, yLabel, series, hlines = [], logX = false, width = 480, height = 320, yZero = true, stars = [], vlines = [] }) {
    const m = { l: 52, r: 14, t: 26, b: 42 };
    const all = series.flatMap((s) => s.points);
    const xsAll = [...new Set(all.map((p) => p.x))].sort((a, b) => a - b);
    if (!xsAll.length) return el("div", { class: "note", text: `${title}: no data` });
    const ys = all.flatMap((p) => [p.y, p.lo, p.hi]).concat(hlines.map((h) => h.y)).filter(finite);
    let y0 = yZero ? 0 : Math.min(...ys), y1 = Math.max(...ys, y0 + 1e-6);
    if (yZero && y1 <= 1e-6) y1 = 1;  // all zero: show a readable 0..1 axis
    const pad = (y1 - y0) * 0.08;
    y1 = Math.min(yZero ? 1 : Infinity, y1 + pad) || y1 + pad;
    if (!yZero) y0 -= pad;
    // A log axis that starts at 0 (training step 0) is log2(1 + x), as matplotlib's symlog.
    const tx = !logX ? (v) => v : xsAll[0] > 0 ? Math.log2 : (v) => Math.log2(1 + v);
    const xmin = tx(xsAll[0]), xmax = tx(xsAll[xsAll.length - 1]);
    const X = (v) => m.l + (xmax === xmin ? 0.5 : (tx(v) - xmin) / (xmax - xmin)) * (width - m.l - m.r);
    const Y = (v) => height - m.b - ((v - y0) / (y1 - y0)) * (height - m.t - m.b);
    const root = svg("svg", { width, height, viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": title });
    root.append(Object.assign(svg("text", { x: m.l, y: 16, "font-weight": "600" }), { textContent: title }));
    const grid = svg("g", { class: "grid" }), axis = svg("g", { class: "axis" });
    // "Nice" ticks: steps of 1, 2 or 5 times a power of ten, about five of them.
    const raw = (y1 - y0) / 5, mag = Math.pow(10, Math.floor(Math.log10(raw)));
    const step = [1, 2, 5, 10].map((f) => f * mag).find((st) => st >= raw);
    const digits = Math.max(0, -Math.floor(Math.log10(step)));
    for (let v = Math.ceil(y0 / step - 1e-9) * step; v <= y1 + 1e-9; v += step) {
      grid.append(svg("line", { x1: m.l, x2: width - m.r, y1: Y(v), y2: Y(v) }));
      const t = svg("text", { x: m.l - 6, y: Y(v) + 4, "text-anchor": "end" });
      t.textContent = v.toFixed(digits);
      axis.append(t);
    }
    const xticks = xsAll.length > 16 ? xsAll.filter((_, i) => i % Math.ceil(xsAll.length / 16) === 0) : xsAll;
    for (const v of xticks) {
      const t = svg("text", { x: X(v), y: height - m.b + 16, "text-anchor": "middle" });
      t.textContent = String(v);
      axis.append(t);
    }
    axis.append(svg("line", { x1: m.l, x2: width - m.r, y1: height - m.b, y2: height - m.b }));
    axis.append(svg("line", { x1: m.l, x2: m.l, y1: m.t, y2: height - m.b }));
    const xl = svg("text", { x: (m.l + width - m.r) / 2, y: height - 6, "text-anchor": "middle" });
    xl.textContent = xLabel;
    const yl = svg("text", { x: 12, y: (m.t + height - m.b) / 2, "text-anchor": "middle", transform: `rotate(-90 12 ${(m.t + height - m.b) / 2})` });
    yl.textContent = yLabel;
    root.append(grid, axis, xl, yl);
    const groups = new Map();
    const groupOf = (name) => {
      if (!groups.has(name)) { const g = svg("g", { "data-series": name }); groups.set(name, g); root.append(g); }
      return groups.get(name);
    };
    for (const h of hlines) {
      const g = groupOf(h.group || h.label);
      g.append(svg("line", { x1: m.l, x2: width - m.r, y1: Y(h.y), y2: Y(h.y), stroke: h.color, "stroke-dasharray": h.dash || "6 4", "stroke-width": 1.5, opacity: 0.8 }));
    }
    for (const s of series) {
      const g = groupOf(s.group || s.label);
      const pts = s.points.filter((p) => finite(p.y)).sort((a, b) => a.x - b.x);
      const band = pts.filter((p) => finite(p.lo) && finite(p.hi));
      if (s.band !== false && band.length > 1) {
        const d = band.map((p, i) => `${i ? "L" : "M"}${X(p.x)},${Y(p.hi)}`).join("") +
          band.slice().reverse().map((p) => `L${X(p.x)},${Y(p.lo)}`).join("") + "Z";
        g.append(svg("path", { d, fill: s.color, opacity: 0.16, stroke: "none" }));
      } else if (s.band !== false) {
        for (const p of band) g.append(svg("line", { x1: X(p.x), x2: X(p.x), y1: Y(p.lo), y2: Y(p.hi), stroke: s.color, "stroke-width": 2, opacity: 0.5 }));
      }
      if (pts.length) {
        g.append(svg("path", { d: pts.map((p, i) => `${i ? "L" : "M"}${X(p.x)},${Y(p.y)}`).join(""), fill: "none", stroke: s.color, "stroke-width": s.width || 2, "stroke-dasharray": s.dash || null }));
        if (s.marker !== false) for (const p of pts) g.append(svg("circle", { cx: X(p.x), cy: Y(p.y), r: 3.2, fill: s.color }));
      }
    }
    vlines.forEach((v, k) => {
      const g = groupOf(v.group);
      g.append(svg("line", { x1: X(v.x), x2: X(v.x), y1: m.t, y2: height - m.b, stroke: v.color, "stroke-dasharray": "2 3", "stroke-width": 1.5, "data-onset": v.x }));
      // The text on the side with room, one line per vertical line.
      const right = X(v.x) > (m.l + width - m.r) / 2;
      const t = svg("text", { x: X(v.x) + (right ? -4 : 4), y: m.t + 10 + 13 * k, fill: v.color, "font-size": 11, "text-anchor": right ? "end" : "start" });
      t.textContent = v.text;
      g.append(t);
    });
    for (const st of stars) {
      const g = groupOf(st.group);
      const t = svg("text", { x: X(st.x), y: Y(st.y) - 8, "text-anchor": "middle", fill: st.color, "font-size": 16 });
      t.textContent = "\u2605";
      g.append(t);
    }
    // Hover: every visible series' value at the nearest x.
    const cursor = svg("line", { y1: m.t, y2: height - m.b, stroke: "#999", "stroke-dasharray": "2 3", visibility: "hidden" });
    root.append(cursor);
    root.addEventListener("mousemove", (evt) => {
      const r = root.getBoundingClientRect();
      const px = ((evt.clientX - r.left) * width) / r.width;
      let best = xsAll[0];
      for (const v of xsAll) if (Math.abs(X(v) - px) < Math.abs(X(best) - px)) best = v;
      cursor.setAttribute("x1", X(best)); cursor.setAttribute("x2", X(best)); cursor.setAttribute("visibility", "visible");
      const lines = [`${xLabel}: ${best}`];
      for (const s of series) {
        if (groups.get(s.group || s.label).style.display === "none") continue;
        const p = s.points.find((q) => q.x === best);
        if (p && finite(p.y)) lines.push(`${s.label}: ${fmt(p.y)}` + (finite(p.lo) ? ` [${fmt(p.lo)}, ${fmt(p.hi)}]` : ""));
      }
      for (const h of hlines) if (groups.get(h.group || h.label).style.display !== "none") lines.push(`${h.label}: ${fmt(h.y)}`);
      showTip(evt, lines.join("\n"));
    });
    root.addEventListener("mouseleave", () => { hideTip(); cursor.setAttribute("visibility", "hidden"); });
    const legend = el("div", { class: "legend" });
    const seen = new Set();
    for (const item of [...series, ...hlines]) {
      const name = item.group || item.label;
      if (seen.has(name)) continue;
      seen.add(name);
      const sw = svg("svg", { width: 26, height: 10, style: "vertical-align:middle;margin-right:5px" });
      sw.append(svg("line", { x1: 1, x2: 25, y1: 5, y2: 5, stroke: item.color, "stroke-width": 2, "stroke-dasharray": item.dash || null }));
      const span = el("span", { title: "click to hide or show", onclick: () => {
        const g = groups.get(name);
        const off = g.style.display !== "none";
        g.style.display = off ? "none" : "";
        span.classList.toggle("off", off);
      } }, sw, item.legend || name);
      legend.append(span);
    }
    return el("div", { class: "card chart", "data-chart": title }, root, legend);
  }

  // ------------------------------------------------------------------ report sections
  const series = DATA.series || [];
  series.forEach((s, i) => { s.color = PALETTE[i % PALETTE.length]; });
  const main = document.querySelector("main");
  const nav = document.querySelector("nav");
  function section(id, title, ...kids) {
    const sec = el("section", { id }, el("h2", { text: title }), ...kids);
    main.append(sec);
    nav.append(el("a", { href: "#" + id, text: title }));
    return sec;
  }
  const ci = (row, key) => (Array.isArray(row[key]) ? row[key] : [null, null]);
  const pt = (x, y, c) => ({ x, y, lo: c ? c[0] : null, hi: c ? c[1] : null });

  function curvesSection() {
    const catSeries = [], catLines = [], astSeries = [], astLines = [], stars = [], rankSeries = [];
    const many = series.length > 1;
    for (const s of series) {
      const name = s.label;
      if (s.cat) {
        const L = s.cat.layers;
        catSeries.push({ label: many ? name : "model", group: name, legend: many ? name : "model (head mean)", color: s.color, points: L.map((r) => pt(r.layer, r.score, r.score_ci)) });
        catSeries.push({ label: `${many ? name + ": " : ""}random attention`, group: many ? name : "random attention", color: s.color, dash: "2 3", width: 1.5, marker: false, points: L.map((r) => pt(r.layer, r.random_baseline, ci(r, "random_baseline_ci"))) });
        catSeries.push({ label: `${many ? name + ": " : ""}positional attention`, group: many ? name : "positional attention", color: s.color, dash: "8 4", width: 1.5, marker: false, points: L.map((r) => pt(r.layer, r.positional_baseline, ci(r, "positional_baseline_ci"))) });
      }
      const a = s.astprobe;
      if (a) {
        astSeries.push({ label: many ? name : "test F1", group: name, legend: many ? name : "model, test F1", color: s.color, points: a.hidden_states.map((r) => pt(r.hidden_state, r.f1, r.f1_ci)) });
        if (a.hidden_states.some((r) => finite(r.valid_f1)))
          astSeries.push({ label: `${many ? name + ": " : ""}validation F1`, group: many ? name : "validation F1", color: s.color, dash: "1 3", width: 1.2, band: false, points: a.hidden_states.map((r) => pt(r.hidden_state, r.valid_f1)) });
        const rnd = (a.baselines && a.baselines.random) || [];
        if (rnd.length) astSeries.push({ label: `${many ? name + ": " : ""}random weights`, group: many ? name : "random weights", color: s.color, dash: "2 3", width: 1.5, marker: false, points: rnd.map((r) => pt(r.hidden_state, r.f1, r.f1_ci)) });
        const emb = a.baselines && a.baselines.embedding;
        if (emb && finite(emb.f1)) astLines.push({ label: `${many ? name + ": " : ""}embedding layer`, group: many ? name : "embedding layer", y: emb.f1, color: s.color, dash: "8 4" });
        const best = a.hidden_states.find((r) => r.hidden_state === a.best_hidden_state);
        if (best && finite(best.f1)) stars.push({ x: best.hidden_state, y: best.f1, color: s.color, group: name });
        if (a.ranks && a.ranks.points && a.ranks.points.length > 1)
          rankSeries.push({ label: `${name}, hidden state ${a.ranks.hidden_state}`, group: name, color: s.color, points: a.ranks.points.map((r) => pt(r.rank, r.f1, r.f1_ci)) });
      }
    }
    const row = el("div", { class: "row" });
    if (catSeries.length) row.append(lineChart({ title: "CAT-score by layer", xLabel: "transformer layer (0-based)", yLabel: "CAT-score", series: catSeries, hlines: catLines }));
    if (astSeries.length) row.append(lineChart({ title: "AST-Probe F1 by hidden state", xLabel: "hidden state (0 = embeddings)", yLabel: "F1", series: astSeries, hlines: astLines, stars }));
    if (rankSeries.length) row.append(lineChart({ title: "AST-Probe F1 by rank (selected hidden state)", xLabel: "probe rank", yLabel: "F1", series: rankSeries, logX: true, width: 380 }));
    const steps = series.filter((s) => Number.isInteger(s.step));
    if (steps.length > 1) row.append(stepChart(steps));
    const sel = series.find((s) => s.astprobe && s.astprobe.selection);
    const notes = [
      "Solid lines: the model; shaded bands: confidence intervals where the run computed them. CAT: dotted = random attention, dashed = positional attention exp(-|i-j|), on the same tokens. AST-Probe: dotted = the same architecture with random weights, dashed = the embedding layer (hidden state 0), \u2605 = the selected hidden state" +
        (sel ? ` (chosen on ${sel.astprobe.selection})` : "") + ". Click a legend entry to hide or show it; hover for values.",
    ];
    if (many) notes.push("One colour per result; clicking its legend entry hides or shows all its lines.");
    const causal = series.filter((s) => s.cat && s.cat.mask === "causal").map((s) => s.label);
    if (causal.length) notes.push(`CAT-scores of ${causal.join(", ")} (decoders) use the causal convention: only pairs with the key at or before the query are scored, the baselines under the same mask; they are not on the full-matrix scale of the paper's encoders.`);
    if (row.childNodes.length) section("curves", "Per-layer curves", row, ...notes.map((t) => el("p", { class: "note", text: t })));
  }

  // Results with an integer step grouped into checkpoint series (one model, language and
  // dataset each): [[key, results, colour]].
  function checkpointGroups(steps) {
    const byKey = new Map();
    for (const s of steps) {
      const key = `${s.model_base || s.model} ${s.language} ${String(s.dataset).split(/[\\/]/).pop()}`;
      if (!byKey.has(key)) byKey.set(key, []);
      byKey.get(key).push(s);
    }
    return [...byKey].map(([key, list], i) => [key, list, PALETTE[i % PALETTE.length]]);
  }

  // The onset (summary.json's `onsets`) of a method's row in a checkpoint group, or null.
  function onsetOf(s, method, index) {
    const run = String(s.run || "").split(/[\\/]/).pop();
    return ((DATA.onsets || {}).records || []).find((r) => r.method === method && r.index === index && r.series === s.series &&
      r.language === s.language && r.dataset === s.dataset && (!r.run || r.run === run) && r.step !== null) || null;
  }
  const ARROWS = { up: "\u25b2", down: "\u25bc" };

  function stepChart(steps) {
    const out = [], vlines = [];
    for (const [key, list, color] of checkpointGroups(steps)) {
      const bestLayer = (s) => s.cat.layers.reduce((b, r) => (finite(r.score) && (!b || r.score > b.score) ? r : b), null);
      const bestCat = list.filter((s) => s.cat).map((s) => pt(s.step, (bestLayer(s) || {}).score));
      const bestAst = list.filter((s) => s.astprobe).map((s) => {
        const r = s.astprobe.hidden_states.find((q) => q.hidden_state === s.astprobe.best_hidden_state) || {};
        return pt(s.step, r.f1, r.f1_ci);
      });
      if (bestCat.length) out.push({ label: `${key}: best CAT-score`, color, points: bestCat });
      if (bestAst.length) out.push({ label: `${key}: AST-Probe F1 (selected hidden state)`, color, dash: "6 3", points: bestAst });
      // The onsets of the rows followed at the last step (the section "Onsets over training" has every row's).
      const last = list[list.length - 1];
      const layer = last.cat && bestLayer(last);
      const cat = layer && onsetOf(last, "cat", layer.layer);
      if (cat) vlines.push({ x: cat.step, text: `onset: CAT layer ${cat.index} ${ARROWS[cat.direction]}`, color, group: `${key}: best CAT-score` });
      const ast = last.astprobe && onsetOf(last, "astprobe", last.astprobe.best_hidden_state);
      if (ast) vlines.push({ x: ast.step, text: `onset: AST-Probe hidden state ${ast.index} ${ARROWS[ast.direction]}`, color, group: `${key}: AST-Probe F1 (selected hidden state)` });
    }
    const xs = out.flatMap((s) => s.points.map((p) => p.x));
    // Checkpoints are saved at log-spaced steps: a log axis keeps the early ones apart.
    const logX = Math.max(...xs) > 10 * Math.max(1, Math.min(...xs.filter((x) => x > 0)));
    return lineChart({ title: "By checkpoint step", xLabel: "training step", yLabel: "score", series: out, width: 460, vlines, logX });
  }

  // A table sorted by a click on a column's header (again: the other way). columns: [{text,
  // title, cls, key: row -> sort value (none: not sortable), cell: row -> text or node, attrs}];
  // sort: [column index, descending]. Missing values sort last either way.
  function sortableTable({ columns, rows, sort, testId, rowAttrs, cls }) {
    const table = el("table", { "data-testid": testId, class: cls });
    let [by, desc] = sort;
    const draw = () => {
      const key = columns[by].key;
      const order = rows.slice().sort((a, b) => {
        const x = key(a), y = key(b);
        if (x === null || x === undefined) return y === null || y === undefined ? 0 : 1;
        if (y === null || y === undefined) return -1;
        return (x < y ? -1 : x > y ? 1 : 0) * (desc ? -1 : 1);
      });
      const head = el("tr", {}, ...columns.map((c, i) => el("th", { class: c.cls, title: c.title ? c.title + (c.key ? " (click to sort)" : "") : c.key ? "click to sort" : null,
        style: c.key ? "cursor:pointer" : null, "data-sorted": i === by ? (desc ? "desc" : "asc") : null,
        onclick: c.key ? () => { desc = i === by ? !desc : !!c.descending; by = i; draw(); } : null }, c.text + (i === by ? (desc ? " \u25bc" : " \u25b2") : ""))));
      table.replaceChildren(head, ...order.map((r) => el("tr", rowAttrs ? rowAttrs(r) : {}, ...columns.map((c) => {
        const v = c.cell(r);
        return el("td", { class: c.cls, ...(c.attrs ? c.attrs(r) : {}) }, v);
      }))));
    };
    draw();
    return table;
  }

  function seriesPicker(list, render, testId) {
    const box = el("div");
    const body = el("div");
    let current = 0;
    const draw = () => { body.replaceChildren(render(list[current])); };
    if (list.length > 1) box.append(el("div", { class: "controls" }, ...select("Result", list.map((s, i) => [i, s.label]), 0, (v) => { current = +v; draw(); }, testId)));
    box.append(body);
    draw();
    return box;
  }

  // A heat map as a table: rows [{label, title, cells: [{value, title, attrs, selected, onClick}]}],
  // coloured by viridis from lo (dark) to hi (yellow); hover a cell for its title.
  function heatTable({ corner, columns, rows, lo, hi, digits = 2, testId, left = false }) {
    const table = el("table", { class: "heat", "data-testid": testId });
    const lc = left ? "l" : null;  // row labels left-aligned (names rather than numbers)
    table.append(el("tr", {}, el("th", { class: lc, text: corner }), ...columns.map((c) => el("th", { text: c.text, title: c.title }))));
    for (const r of rows) {
      const tr = el("tr", {}, el("th", { class: lc, text: r.label, title: r.title }));
      for (const cell of r.cells) {
        const v = cell.value;
        const c = finite(v) ? viridis(hi > lo ? (v - lo) / (hi - lo) : 0.5) : [240, 240, 240];
        const td = el("td", { style: `background:${rgb(c)};color:${inkOn(c)}`, text: finite(v) ? v.toFixed(digits) : "\u2013", title: cell.title, ...(cell.attrs || {}) });
        if (cell.selected) td.classList.add("sel");
        if (cell.onClick) td.addEventListener("click", cell.onClick);
        else td.style.cursor = "default";
        tr.append(td);
      }
      table.append(tr);
    }
    return table;
  }
  const scaleNote = (lo, hi, caption) => el("div", { class: "note" }, `colour: viridis from ${fmt(lo)} (dark) to ${fmt(hi)} (yellow)` + (caption ? ". " + caption : ""));

  function headHeatmap(rows, nHeads, { onPick, selected, caption } = {}) {
    // rows: [{layer, mean, heads: [..]}]
    const vals = rows.flatMap((r) => [r.mean, ...r.heads]).filter(finite);
    const lo = Math.min(...vals), hi = Math.max(...vals);
    const columns = [{ text: "mean", title: "head-mean attention (the paper's CAT-score)" }, ...[...Array(nHeads).keys()].map((h) => ({ text: "h" + h }))];
    const table = heatTable({ corner: "layer", columns, lo, hi, rows: rows.map((r) => ({
      label: String(r.layer),
      cells: [r.mean, ...r.heads].map((v, k) => {
        const headIdx = k - 1; // -1 = mean
        return { value: v, attrs: { "data-layer": r.layer, "data-head": headIdx }, title: `layer ${r.layer}, ${headIdx < 0 ? "head mean" : "head " + headIdx}: ${fmt(v, 4)}`,
          selected: selected && selected.layer === r.layer && selected.head === headIdx, onClick: onPick ? () => onPick(r.layer, headIdx) : null };
      }),
    })) });
    return el("div", {}, table, scaleNote(lo, hi, caption));
  }

  function headsSection() {
    const list = series.filter((s) => s.cat && s.cat.heads);
    if (!list.length) return;
    const render = (s) => {
      const H = s.cat.heads.n_heads;
      const rows = s.cat.layers.map((r, i) => ({ layer: r.layer, mean: r.score, heads: s.cat.heads.scores[i] || [] }));
      const hasExplorer = s.explorer && s.explorer.snippets && s.explorer.snippets.some((x) => x.cat);
      return headHeatmap(rows, H, {
        caption: "Dataset CAT-score of each head's own attention." + (hasExplorer ? " Click a cell to open that layer and head in the snippet explorer." : ""),
        onPick: hasExplorer ? (layer, head) => explorer && explorer.show(series.indexOf(s), layer, head, true) : null,
      });
    };
    section("heads", "CAT-score per layer and head", seriesPicker(list, render, "heads-result"));
  }

  function ratesSection() {
    const list = series.filter((s) => s.cat && s.cat.rates);
    if (!list.length) return;
    const render = (s) => {
      const R = s.cat.rates, L = R.rate.length;
      const kept = (s.cat.kept_types || []).map((k) => (k ? new Set(k) : null));
      const order = R.types.map((t, i) => i).sort((a, b) => R.num[b] - R.num[a]);
      const table = el("table", { "data-testid": "rates-table" });
      const head = el("tr", {}, el("th", { class: "l", text: "type" }), el("th", { text: "cells num(t)" }), el("th", { text: "eligible" }));
      for (let l = 0; l < L; l++) head.append(el("th", { text: "layer " + l }));
      table.append(head);
      const vals = R.rate.flat().filter(finite);
      const hi = Math.max(...vals, 1e-9);
      for (const t of order) {
        const tr = el("tr", {}, el("td", { class: "l", text: R.types[t] }), el("td", { text: String(R.num[t]) }), el("td", { text: R.eligible[t] ? "yes" : "no" }));
        for (let l = 0; l < L; l++) {
          const v = R.rate[l][t];
          const isKept = kept[l] ? kept[l].has(R.types[t]) : true;
          const c = finite(v) ? viridis(v / hi) : [240, 240, 240];
          tr.append(el("td", { style: `background:${rgb(c)};color:${inkOn(c)};${isKept ? "font-weight:700" : ""}`,
            text: (finite(v) ? v.toFixed(3) : "\u2013") + (isKept && kept[l] ? " \u2713" : ""),
            title: `${R.types[t]}, layer ${l}: rate ${fmt(v, 4)}` + (R.rank[l][t] ? `, rank ${R.rank[l][t]}` : "") + (isKept ? ", kept" : "") }));
        }
        table.append(tr);
      }
      return el("div", {}, el("div", { class: "scroll" }, table),
        el("p", { class: "note", text: `rate(t) = share of the cells of tokens of type t that pass the attention threshold, from head-mean attention over ${R.n_samples} samples; eligible: num(t) > ${s.cat.mask === "causal" ? "(total tokens + samples) / 2 (causal cells: key at or before the query)" : "total tokens"}; \u2713 = kept by the strategy "${s.cat.types}" (bold).` }));
    };
    section("rates", "Frequent-type rates by layer", seriesPicker(list, render, "rates-result"));
  }

  function astSection() {
    const list = series.filter((s) => s.astprobe);
    if (!list.length) return;
    const render = (s) => {
      const a = s.astprobe;
      const box = el("div");
      const rnd = new Map(((a.baselines && a.baselines.random) || []).map((r) => [r.hidden_state, r]));
      const t1 = el("table", { "data-testid": "ast-layers" });
      const hasValid = a.hidden_states.some((r) => finite(r.valid_f1)), hasCi = a.hidden_states.some((r) => r.f1_ci);
      t1.append(el("tr", {}, ...["hidden state", "precision", "recall", "test F1", hasCi ? "F1 95% CI" : null, hasValid ? "valid F1" : null, "random-weights F1", "best epoch", "note"].filter((x) => x !== null).map((t) => el("th", { text: t }))));
      for (const r of a.hidden_states) {
        const notes = [];
        if (r.hidden_state === a.best_hidden_state) notes.push("selected" + (a.selection ? ` (${a.selection})` : ""));
        if (r.hit_max_epochs) notes.push("hit max epochs");
        if (r.diverged) notes.push("diverged");
        const cells = [String(r.hidden_state), fmt(r.precision), fmt(r.recall), fmt(r.f1)];
        if (hasCi) cells.push(r.f1_ci ? `${fmt(r.f1_ci[0])} \u2013 ${fmt(r.f1_ci[1])}` : "");
        if (hasValid) cells.push(fmt(r.valid_f1));
        cells.push(rnd.has(r.hidden_state) ? fmt(rnd.get(r.hidden_state).f1) : "", r.best_epoch === undefined ? "" : String(r.best_epoch), notes.join(", "));
        const tr = el("tr", r.hidden_state === a.best_hidden_state ? { style: "font-weight:700" } : {}, ...cells.map((c) => el("td", { text: c })));
        t1.append(tr);
      }
      box.append(el("h3", { text: `Per hidden state (rank ${a.rank})` }), t1);
      if (a.ranks && a.ranks.points && a.ranks.points.length) {
        const t2 = el("table", { "data-testid": "ast-ranks" });
        t2.append(el("tr", {}, ...["rank", "precision", "recall", "F1", "best epoch"].map((t) => el("th", { text: t }))));
        for (const r of a.ranks.points.slice().sort((x, y) => x.rank - y.rank))
          t2.append(el("tr", {}, ...[r.rank, fmt(r.precision), fmt(r.recall), fmt(r.f1) + (r.f1_ci ? ` [${fmt(r.f1_ci[0])}, ${fmt(r.f1_ci[1])}]` : ""), r.best_epoch ?? ""].map((c) => el("td", { text: String(c) }))));
        box.append(el("h3", { text: `Per rank (hidden state ${a.ranks.hidden_state})` }), t2);
      }
      if (a.labels && a.labels.length) {
        const t3 = el("table", { "data-testid": "ast-labels" });
        t3.append(el("tr", {}, ...["non-terminal", "gold", "recovered", "precision", "recall", "F1"].map((t, i) => el("th", { class: i ? null : "l", text: t }))));
        for (const r of a.labels) {
          const c = viridis(r.f1);
          t3.append(el("tr", {}, el("td", { class: "l", text: r.label }), el("td", { text: String(r.gold) }), el("td", { text: String(r.predicted) }),
            el("td", { text: fmt(r.precision) }), el("td", { text: fmt(r.recall) }), el("td", { style: `background:${rgb(c)};color:${inkOn(c)}`, text: fmt(r.f1) })));
        }
        box.append(el("h3", { text: `Per non-terminal (hidden state ${a.labels_hidden_state}, ${a.labels_snippets} test snippets)` }), el("div", { class: "scroll" }, t3),
          el("p", { class: "note", text: "precision: recovered constituents of this label that are in the gold tree; recall: gold constituents of this label that were recovered (same label and token span)." }));
      }
      return box;
    };
    section("astprobe", "AST-Probe", seriesPicker(list, render, "ast-result"));
  }

  // ------------------------------------------------------------------ structural probes (a run's structural method)
  function structuralSection() {
    const list = series.filter((s) => s.structural && s.structural.probes);
    if (!list.length) return;
    const NAMES = { uuas: "UUAS", dspr: "DSpr", nspr: "NSpr", root_accuracy: "root accuracy" };
    const KINDS = { distance: "distance probe", depth: "depth probe" };
    const many = list.length > 1;
    const row = el("div", { class: "row" });
    for (const kind of Object.keys(KINDS)) {
      const lines = [], hlines = [], stars = [];
      let metric = null;
      for (const s of list) {
        const p = s.structural.probes[kind];
        if (!p) continue;
        metric = p.metrics[0];
        const pre = many ? s.label + ": " : "";
        lines.push({ label: many ? s.label : `test ${NAMES[metric]}`, group: s.label, legend: many ? s.label : `model, test ${NAMES[metric]}`, color: s.color, points: p.hidden_states.map((r) => pt(r.hidden_state, r[metric], r[metric + "_ci"])) });
        lines.push({ label: `${pre}validation ${NAMES[metric]}`, group: many ? s.label : "validation", color: s.color, dash: "1 3", width: 1.2, band: false, points: p.hidden_states.map((r) => pt(r.hidden_state, r["valid_" + metric])) });
        const b = p.baselines;
        if (b.random.length) lines.push({ label: `${pre}random weights`, group: many ? s.label : "random weights", color: s.color, dash: "2 3", width: 1.5, points: b.random.map((r) => pt(r.hidden_state, r[metric], r[metric + "_ci"])) });
        if (b.control.length) lines.push({ label: `${pre}control tree`, group: many ? s.label : "control tree", color: s.color, dash: "6 2 1 2", width: 1.5, points: b.control.map((r) => pt(r.hidden_state, r[metric], r[metric + "_ci"])) });
        if (b.linear && finite(b.linear[metric])) hlines.push({ label: `${pre}linear baseline`, group: many ? s.label : "linear baseline", y: b.linear[metric], color: s.color, dash: "8 4" });
        const best = p.hidden_states.find((r) => r.hidden_state === p.best_hidden_state);
        if (best && finite(best[metric])) stars.push({ x: best.hidden_state, y: best[metric], color: s.color, group: s.label });
      }
      if (metric) row.append(lineChart({ title: `Structural ${KINDS[kind]}: ${NAMES[metric]} by hidden state`, xLabel: "hidden state (0 = embeddings)", yLabel: NAMES[metric], series: lines, hlines, stars, yZero: kind === "distance" }));
    }
    const diff = (r, key, m) => (r[key] && r[key][m]) || null;
    const render = (s) => {
      const a = s.structural, box = el("div");
      for (const [kind, p] of Object.entries(a.probes)) {
        const [m1, m2] = p.metrics;
        const rnd = new Map(p.baselines.random.map((r) => [r.hidden_state, r])), ctl = new Map(p.baselines.control.map((r) => [r.hidden_state, r]));
        const ciText = (r, m) => (r && r[m + "_ci"] && r[m + "_ci"][0] !== null ? ` [${fmt(r[m + "_ci"][0])}, ${fmt(r[m + "_ci"][1])}]` : "");
        const columns = [
          { text: "hidden state", key: (r) => r.hidden_state, cell: (r) => String(r.hidden_state) + (r.hidden_state === p.best_hidden_state ? " \u2605" : "") },
          { text: `valid ${NAMES[m1]}`, key: (r) => r["valid_" + m1], cell: (r) => fmt(r["valid_" + m1]), descending: true },
          { text: `test ${NAMES[m1]}`, key: (r) => r[m1], cell: (r) => fmt(r[m1]) + ciText(r, m1), descending: true },
          { text: `test ${NAMES[m2]}`, key: (r) => r[m2], cell: (r) => fmt(r[m2]) + ciText(r, m2), descending: true },
          { text: `${NAMES[m1]} \u2212 linear`, key: (r) => (diff(r, "minus_linear", m1) || {}).mean, cell: (r) => diffCell(diff(r, "minus_linear", m1)) },
          { text: `${NAMES[m1]} \u2212 embedding`, key: (r) => (diff(r, "minus_embedding", m1) || {}).mean, cell: (r) => diffCell(diff(r, "minus_embedding", m1)) },
          { text: `random weights ${NAMES[m1]}`, key: (r) => (rnd.get(r.hidden_state) || {})[m1], cell: (r) => (rnd.has(r.hidden_state) ? fmt(rnd.get(r.hidden_state)[m1]) : "") },
          { text: `${NAMES[m1]} \u2212 random weights`, key: (r) => (diff(r, "minus_random_weights", m1) || {}).mean, cell: (r) => diffCell(diff(r, "minus_random_weights", m1)) },
          { text: `control ${NAMES[m1]}`, key: (r) => (ctl.get(r.hidden_state) || {})[m1], cell: (r) => (ctl.has(r.hidden_state) ? fmt(ctl.get(r.hidden_state)[m1]) : "") },
          { text: "selectivity", key: (r) => (diff(r, "selectivity", m1) || {}).mean, cell: (r) => diffCell(diff(r, "selectivity", m1)), title: "task minus control tree, paired over test snippets" },
          { text: "best epoch", key: (r) => r.best_epoch, cell: (r) => String(r.best_epoch ?? "") + (r.hit_max_epochs ? " (max)" : "") },
        ];
        const lin = p.baselines.linear;
        box.append(el("h3", { text: `${KINDS[kind]} (rank ${a.rank}); linear baseline ${NAMES[m1]} ${fmt(lin[m1])}${ciText(lin, m1)}, ${NAMES[m2]} ${fmt(lin[m2])}${ciText(lin, m2)}` }),
          el("div", { class: "scroll" }, sortableTable({ columns, rows: p.hidden_states, sort: [0, false], testId: `structural-${kind}` })));
      }
      if (a.seconds && finite(a.seconds.total)) box.append(el("p", { class: "note", text: `Time: ${fmt(a.seconds.total, 0)} s (probes trained on AST-Probe's cached hidden states).` }));
      return box;
    };
    section("structural", "Structural probes", row, seriesPicker(list, render, "structural-result"),
      el("p", { class: "note", text: "Hewitt & Manning's distance and depth probes on the token tree, every hidden state trained at once; \u2605 = the hidden state chosen on validation. Scores are means over test snippets with 95% bootstrap intervals; differences are paired over the same snippets (n.d.: the interval crosses zero). Dashed: the linear baseline (|i \u2212 j|, depth i); dotted: random weights; dash-dot: the control tree (each token type attaches to the first token, the last token or its left neighbour; selectivity = task \u2212 control)." }));
  }

  // ------------------------------------------------------------------ diagnostic classifiers (a run's diagnostic method)
  function diagnosticSection() {
    const list = series.filter((s) => s.diagnostic && s.diagnostic.tasks);
    if (!list.length) return;
    const TASKS = { parent_type: "parent node type", depth_bucket: "depth bucket" };
    const many = list.length > 1;
    const row = el("div", { class: "row" });
    const tasks = [...new Set(list.flatMap((s) => Object.keys(s.diagnostic.tasks)))];
    for (const task of tasks) {
      const lines = [], hlines = [], stars = [];
      for (const s of list) {
        const t = s.diagnostic.tasks[task];
        if (!t) continue;
        const pre = many ? s.label + ": " : "", rows = t.hidden_states;
        lines.push({ label: many ? s.label : "task", group: s.label, legend: many ? s.label : "task, test accuracy", color: s.color, points: rows.map((r) => pt(r.hidden_state, r.accuracy, r.accuracy_ci)) });
        if (rows.some((r) => finite(r.control_accuracy))) lines.push({ label: `${pre}control task`, group: many ? s.label : "control task", color: s.color, dash: "6 2 1 2", width: 1.5, points: rows.map((r) => pt(r.hidden_state, r.control_accuracy, r.control_accuracy_ci)) });
        if (rows.some((r) => finite(r.random_weights_accuracy))) lines.push({ label: `${pre}random weights`, group: many ? s.label : "random weights", color: s.color, dash: "2 3", width: 1.5, points: rows.map((r) => pt(r.hidden_state, r.random_weights_accuracy, r.random_weights_accuracy_ci)) });
        hlines.push({ label: `${pre}majority class`, group: many ? s.label : "majority class", y: t.baselines.majority.accuracy, color: s.color, dash: "8 4" });
        const best = rows.find((r) => r.hidden_state === t.best_hidden_state);
        if (best) stars.push({ x: best.hidden_state, y: best.accuracy, color: s.color, group: s.label });
      }
      row.append(lineChart({ title: `Diagnostic classifier: ${TASKS[task] || task}`, xLabel: "hidden state (0 = embeddings)", yLabel: "test accuracy", series: lines, hlines, stars }));
    }
    const ciText = (r, k) => (r[k + "_ci"] && r[k + "_ci"][0] !== null ? ` [${fmt(r[k + "_ci"][0])}, ${fmt(r[k + "_ci"][1])}]` : "");
    const bits = (m, pre) => (m && finite(m[pre + "online_bits"]) ? `${fmt(m[pre + "online_bits"], 0)} (${fmt(m[pre + "compression"], 2)}x)` : "");
    const render = (s) => {
      const a = s.diagnostic, box = el("div");
      for (const [task, t] of Object.entries(a.tasks)) {
        const columns = [
          { text: "hidden state", key: (r) => r.hidden_state, cell: (r) => String(r.hidden_state) + (r.hidden_state === t.best_hidden_state ? " \u2605" : "") },
          { text: "valid acc", key: (r) => r.valid_accuracy, cell: (r) => fmt(r.valid_accuracy), descending: true },
          { text: "test acc", key: (r) => r.accuracy, cell: (r) => fmt(r.accuracy) + ciText(r, "accuracy"), descending: true },
          { text: "control acc", key: (r) => r.control_accuracy, cell: (r) => (finite(r.control_accuracy) ? fmt(r.control_accuracy) + ciText(r, "control_accuracy") : "") },
          { text: "selectivity", key: (r) => (r.selectivity || {}).mean, cell: (r) => diffCell(r.selectivity), title: "task minus control accuracy, paired over test snippets" },
          { text: "acc \u2212 embedding", key: (r) => (r.minus_embedding || {}).mean, cell: (r) => diffCell(r.minus_embedding) },
          { text: "acc \u2212 majority", key: (r) => (r.minus_majority || {}).mean, cell: (r) => diffCell(r.minus_majority) },
          { text: "acc \u2212 random weights", key: (r) => (r.minus_random_weights || {}).mean, cell: (r) => diffCell(r.minus_random_weights) },
          { text: "MDL bits (compression)", key: (r) => (r.mdl || {}).online_bits, cell: (r) => bits(r.mdl, "") },
          { text: "control MDL bits", key: (r) => (r.mdl || {}).control_online_bits, cell: (r) => bits(r.mdl, "control_") },
        ];
        const m = t.baselines.majority;
        box.append(el("h3", { text: `${TASKS[task] || task} (${t.n_classes} classes; majority class ${m.class}: ${fmt(m.accuracy)}${ciText(m, "accuracy")})` }),
          el("div", { class: "scroll" }, sortableTable({ columns, rows: t.hidden_states, sort: [0, false], testId: `diagnostic-${task}` })));
      }
      if (a.seconds && finite(a.seconds.total)) box.append(el("p", { class: "note", text: `Time: ${fmt(a.seconds.total, 0)} s (classifiers trained on AST-Probe's cached hidden states).` }));
      return box;
    };
    section("diagnostic", "Diagnostic classifiers", row, seriesPicker(list, render, "diagnostic-result"),
      el("p", { class: "note", text: "A softmax classifier per hidden state for each token's parent node type and depth bucket, every hidden state trained at once; \u2605 = the hidden state chosen on validation. Accuracy is the mean over test snippets of their share of tokens labelled right, with 95% bootstrap intervals; differences are paired over the same snippets (n.d.: the interval crosses zero). Dash-dot: the control task (a random label per token type, Hewitt & Liang; selectivity = task \u2212 control); dotted: random weights; dashed: the majority class. MDL: the online codelength of the training labels in bits and its compression (Voita & Titov)." }));
  }

  // ------------------------------------------------------------------ attention-head relations (a run's heads method)
  function headRelationsSection() {
    const list = series.filter((s) => s.heads && Array.isArray(s.heads.scores));
    if (!list.length) return;
    let kSel = null;  // the tables' k, kept across results
    const pct = (v) => (finite(v) ? `${Math.round(v * 100)}%` : "n/a");
    const render = (s) => {
      const c = s.heads, h = c.headline || {}, ks = c.settings.ks.map(String), k0 = ks[0];
      const conf = fmt((c.settings.confidence || 0.95) * 100, 0);
      const box = el("div");
      const n = h.n_relations || 0;
      const beating = Math.round((h.share_beating_all || 0) * n);
      const headline = el("div", { class: "card", "data-testid": "headrel-headline", "data-mean": h.mean, "data-relations": n });
      if (n) {
        headline.append(
          el("div", { class: "big", text: `Best head per relation, mean over ${n} relations: ${withCi(h.mean, h.mean_ci)}` }),
          el("div", { text: `${scoreName(h)}, top-${h.k}; mean best baseline ${withCi(h.mean_best_baseline, h.mean_best_baseline_ci)}; model \u2212 best baseline ${diffText({ mean: h.mean_difference, ci: h.mean_difference_ci })}` }),
          el("div", { text: `The model beats every baseline (paired interval above 0) on ${pct(h.share_beating_all)} of the relations (${beating} of ${n}).` }));
      } else {
        headline.append(el("div", { class: "big", text: `No relation had ${c.settings.min_count} edges or more to score.` }));
      }
      box.append(headline);
      for (const note of c.notes || []) box.append(el("div", { class: "warn", text: `Note: ${note}.` }));
      const inp = c.inputs || {}, rare = Object.entries(c.rare_relations || {}).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
      const skipped = Object.entries(inp.dropped || {}).map(([why, m]) => `${m} ${why}`);
      box.append(el("p", { class: "note", "data-testid": "headrel-inputs", text: `${inp.used} of ${inp.snippets} snippets scored (${inp.validation} validation, ${inp.test} test)` +
        (skipped.length ? `; skipped: ${skipped.join(", ")}` : "") + (inp.truncated ? `; ${inp.truncated} cut at ${inp.max_subwords} subwords` : "") +
        `; ${inp.dropped_edges} edges dropped (a token past the input limit); ${rare.length} relations with fewer than ${c.settings.min_count} edges left out.` }));
      if (rare.length) box.append(el("details", { class: "note" }, el("summary", { text: `The ${rare.length} relations left out as rare, with their edges` }), rare.map(([name, m]) => `${name} (${m})`).join(", ")));
      if (!n) return box;

      // The relation x layer map of the headline direction at the first k.
      const block = c.scores.find((b) => b.direction === h.direction && b.dependent === h.dependent);
      const mapRows = block ? block.relations.filter((r) => Array.isArray(r.by_layer)) : [];
      const row = el("div", { class: "row" });
      if (mapRows.length) {
        const L = Math.max(...mapRows.map((r) => r.by_layer.length));
        const table = heatTable({ corner: "relation \\ layer", columns: [...Array(L).keys()].map((l) => ({ text: String(l) })), lo: 0, hi: 1, left: true, testId: "headrel-map",
          rows: mapRows.map((r) => ({ label: r.relation, title: `${r.test_edges} test edges`,
            cells: r.by_layer.map((v, l) => ({ value: v, attrs: { "data-relation": r.relation, "data-layer": l, class: r.k[k0] && r.k[k0].layer === l ? "chosen" : null },
              title: `${r.relation}, layer ${l}: ${fmt(v)}\ntop-${k0} test accuracy of layer ${l}'s best head (chosen on validation)` + (r.k[k0] && r.k[k0].layer === l ? `\nthe relation's chosen head: ${l}.${r.k[k0].head}` : "") })) })) });
        row.append(el("div", {}, el("h3", { text: `Relation \u00d7 layer: each layer's best head, ${scoreName(h)}, top-${k0} (test)` }), el("div", { class: "scroll", style: "max-height:none" }, table),
          scaleNote(0, 1, "Each cell: the test accuracy of the layer's head chosen on validation; outlined in red: the layer of the relation's chosen head. Hover a cell for its value.")));
      }
      box.append(row);

      // A table per direction at the chosen k.
      if (!ks.includes(kSel)) kSel = k0;
      const tables = el("div");
      const drawTables = () => {
        const parts = [];
        for (const b of c.scores) {
          if (!b.relations.length) continue;
          const sm = (b.summary || {})[kSel];
          const at = (r) => r.k[kSel] || null;
          const base = (r) => { const x = at(r); return x && x.best_baseline ? x.baselines[x.best_baseline] : null; };
          const everyBaseline = (x) => (x ? Object.entries(x.baselines).map(([name, v]) => `${name}${(x.rules || {})[name] ? ` (${x.rules[name].join(", ")})` : ""}: ${withCi(v.mean, v.ci)}; model \u2212 it ${diffText((x.differences || {})[name])}`).join("\n") : null);
          const baseName = (x) => { const rules = (x.rules || {})[x.best_baseline]; return rules && rules.length ? `${x.best_baseline} (${rules.join(", ")})` : x.best_baseline; };
          const columns = [
            { text: "relation", cls: "l", key: (r) => r.relation, cell: (r) => r.relation },
            { text: "test edges", title: "edges in the test split (hover a cell: validation and all edges)", key: (r) => r.test_edges, descending: true, cell: (r) => String(r.test_edges),
              attrs: (r) => ({ title: `${r.test_edges} test, ${r.validation_edges} validation, ${r.edges} in all` }) },
            { text: "head (layer.head)", title: `the winning head at top-${kSel}, chosen on validation`, key: (r) => (at(r) ? at(r).layer * 1000 + at(r).head : null), cell: (r) => (at(r) ? `${at(r).layer}.${at(r).head}` : "n/a") },
            ...ks.map((k) => ({ text: `top-${k}`, cls: k === kSel ? "cur" : null, title: `test top-${k} accuracy of the head chosen at top-${k}, ${conf}% interval`, descending: true,
              key: (r) => (r.k[k] ? r.k[k].test.mean : null), cell: (r) => (r.k[k] ? ciCell(r.k[k].test.mean, r.k[k].test.ci) : "n/a") })),
            { text: `best baseline (top\u2011${kSel})`, cls: "l wrap", title: "the baseline best on validation, with its offsets and keywords (hover a cell: every baseline)", key: (r) => (at(r) ? baseName(at(r)) : null),
              cell: (r) => (at(r) ? baseName(at(r)) : "n/a"), attrs: (r) => ({ title: everyBaseline(at(r)) }) },
            { text: "its score", title: "the best baseline's test score", descending: true, key: (r) => (base(r) ? base(r).mean : null),
              cell: (r) => (base(r) ? ciCell(base(r).mean, base(r).ci) : "n/a"),
              attrs: (r) => ({ title: everyBaseline(at(r)) }) },
            { text: "model \u2212 best baseline", title: "paired difference on the test snippets; n.d.: its interval reaches 0", descending: true, key: (r) => (at(r) && at(r).difference ? at(r).difference.mean : null),
              cell: (r) => diffCell(at(r) && at(r).difference),
              attrs: (r) => { const d = at(r) && at(r).difference; const sure = d && diffText(d).indexOf("n.d.") < 0 && excludesZero(d.ci); return { style: sure ? `color:${d.mean > 0 ? "var(--match)" : "var(--miss)"}` : "color:var(--muted)" }; } },
            { text: "beats every baseline", title: "the paired interval against every baseline lies above 0", descending: true, key: (r) => (at(r) ? (at(r).beats_all ? 1 : 0) : null),
              cell: (r) => (at(r) ? (at(r).beats_all ? "yes" : "no") : "n/a"), attrs: (r) => ({ style: at(r) && at(r).beats_all ? "font-weight:700" : null }) },
          ];
          const table = sortableTable({ columns, rows: b.relations, sort: [3 + ks.indexOf(kSel), true], testId: `headrel-table-${b.direction}`, cls: "nowrap", rowAttrs: (r) => ({ "data-relation": r.relation }) });
          const line = sm && sm.n_relations ? `mean over ${sm.n_relations} relations ${withCi(sm.mean, sm.mean_ci)}; mean best baseline ${withCi(sm.mean_best_baseline, sm.mean_best_baseline_ci)}; model \u2212 best baseline ${diffText({ mean: sm.mean_difference, ci: sm.mean_difference_ci })}; beats every baseline on ${pct(sm.share_beating_all)}` : "";
          parts.push(el("h3", { text: `${scoreName(b)}` + (b.direction === h.direction && b.dependent === h.dependent ? " (the headline)" : "") }),
            el("p", { class: "note", "data-testid": `headrel-summary-${b.direction}`, text: `top-${kSel}: ${line}` }), el("div", { class: "scroll", style: "max-height:640px" }, table));
        }
        tables.replaceChildren(...parts);
      };
      drawTables();
      box.append(el("div", { class: "controls" }, ...select("k", ks.map((k) => [k, "top-" + k]), kSel, (v) => { kSel = v; drawTables(); }, "headrel-k"),
        el("span", { class: "muted", text: "the head, best baseline, difference and verdict at this k; each k chooses its own head. Click a column header to sort." })), tables);
      return box;
    };
    const parts = [];
    const steps = list.filter((s) => Number.isInteger(s.step));
    if (steps.length > 1) parts.push(headsStepChart(steps));
    parts.push(seriesPicker(list, render, "headrel-result"));
    const st = list[0].heads.settings;
    parts.push(el("p", { class: "note", text: "Per relation (from the grammar's fields) and direction, the attention head whose top-k attended tokens most often hold the edge's target, chosen on the validation split and scored on test; " +
      "against the best fixed offsets, offsets + keywords (CodeSyntax's baseline), random attention and the random-weights model, each chosen on validation too. " +
      `Brackets: ${fmt((st.confidence || 0.95) * 100, 0)}% bootstrap intervals over snippets (${st.n_resamples} resamples); differences are paired (the same snippets scored both ways), and a claim that the model beats a baseline is made only where that interval excludes 0.` }));
    section("head-relations", "Attention-head relations", ...parts);
  }

  // The mean over relations (the headline) and the mean best baseline by checkpoint step.
  function headsStepChart(steps) {
    const out = [];
    for (const [key, list, color] of checkpointGroups(steps)) {
      const shown = list.filter((s) => s.heads.headline && s.heads.headline.n_relations);
      out.push({ label: `${key}: mean over relations (best heads)`, color, points: shown.map((s) => pt(s.step, s.heads.headline.mean, s.heads.headline.mean_ci)) });
      out.push({ label: `${key}: mean best baseline`, color, dash: "6 3", points: shown.map((s) => pt(s.step, s.heads.headline.mean_best_baseline, s.heads.headline.mean_best_baseline_ci)) });
    }
    const h = steps[0].heads.headline;
    return lineChart({ title: "Attention-head relations by checkpoint step", xLabel: "training step", yLabel: `top-${h.k} accuracy (test)`, series: out, width: 480 });
  }

  // ------------------------------------------------------------------ snippet explorer
  let explorer = null;
  function explorerSection() {
    const sources = [];
    series.forEach((s, i) => { if (s.explorer) sources.push({ index: i, label: s.label, payload: s.explorer }); });
    if (DATA.explorer) sources.push({ index: -1, label: DATA.title, payload: DATA.explorer });
    if (!sources.length) return;
    const state = { source: 0, snippet: 0, layer: 0, head: -1, relation: null, dir: null, edge: 0 };
    const controls = el("div", { class: "controls" });
    const body = el("div");
    const cache = new Map();
    const title = DATA.kind === "trees" ? "Gold and recovered trees" : "Snippet explorer";
    section("explorer", title, controls, body);

    async function decoded(sn) {
      if (cache.has(sn)) return cache.get(sn);
      const c = sn.cat;
      const out = { att: await inflate(c.attention), masks: await inflate(c.masks) };
      const d = await inflate(c.distance);
      out.dist = c.distance_dtype === "uint16" ? new Uint16Array(d.buffer) : d;
      cache.set(sn, out);
      return out;
    }
    function drawControls() {
      const src = sources[state.source].payload;
      const sn = src.snippets[state.snippet];
      const items = [];
      if (sources.length > 1) items.push(...select("Result", sources.map((s, i) => [i, s.label]), state.source, (v) => { state.source = +v; state.snippet = 0; state.relation = state.dir = null; render(); }, "explorer-source"));
      items.push(...select("Snippet", src.snippets.map((x, i) => [i, snippetLabel(x)]), state.snippet, (v) => { state.snippet = +v; state.edge = 0; render(); }, "snippet-select"));
      if (sn.cat) {
        const L = sn.cat.n_layers, H = sn.cat.n_heads;
        items.push(...select("Layer", [...Array(L).keys()].map((l) => [l, String(l)]), state.layer, (v) => { state.layer = +v; render(); }, "layer-select"));
        items.push(...select("Head", [[-1, "mean of heads"], ...[...Array(H).keys()].map((h) => [h, "head " + h])], state.head, (v) => { state.head = +v; render(); }, "head-select"));
      }
      controls.replaceChildren(...items);
    }
    function snippetLabel(x) {
      const name = x.id.length > 40 ? x.id.slice(0, 37) + "..." : x.id;
      const bits = [];
      if (x.cat) bits.push(`${x.cat.tokens.text.length} tokens`, `CAT ${fmt(x.cat.scores[x.cat.n_layers - 1][0], 2)} (last layer)`);
      if (x.astprobe) bits.push(`tree F1 ${fmt(x.astprobe.f1, 2)}`);
      if (x.heads) bits.push(`${x.heads.edges.length} relation edges`);
      return `${name}  \u2014  ${bits.join(", ")}`;
    }
    async function render() {
      const src = sources[state.source].payload;
      const sn = src.snippets[state.snippet];
      if (sn.cat) {
        state.layer = Math.min(state.layer, sn.cat.n_layers - 1);
        state.head = Math.min(state.head, sn.cat.n_heads - 1);
      }
      drawControls();
      const parts = [];
      const top = el("div", { class: "row" });
      const codeView = codePane(sn, src);
      top.append(el("div", {}, el("h3", { text: "Code" }), codeView.node));
      if (sn.cat) {
        const c = sn.cat;
        const rows = c.scores.map((r, l) => ({ layer: l, mean: r[0], heads: r.slice(1) }));
        top.append(el("div", {}, el("h3", { text: "This snippet's CAT-score per layer and head" }),
          headHeatmap(rows, c.n_heads, { selected: { layer: state.layer, head: state.head }, onPick: (l, h) => { state.layer = l; state.head = h; render(); }, caption: "Click a cell to show that layer and head." }),
          lineChart({ title: "This snippet by layer (head mean)", xLabel: "layer", yLabel: "CAT-score", width: 380, height: 250,
          series: [{ label: "model", color: PALETTE[0], points: c.scores.map((r, l) => pt(l, r[0])) },
            { label: "random attention", color: "#888", dash: "2 3", marker: false, points: c.random_baseline.map((v, l) => pt(l, v)) },
            { label: "positional attention", color: "#555", dash: "8 4", marker: false, points: c.positional_baseline.map((v, l) => pt(l, v)) }] })));
      } else if (sn.cat_skipped) {
        top.append(el("p", { class: "note", text: `CAT-probing skipped this snippet: ${sn.cat_skipped}` }));
      }
      parts.push(top);
      if (sn.cat) {
        const holder = el("div", { "data-testid": "matrices" }, el("p", { class: "note", text: "decoding\u2026" }));
        parts.push(holder);
        decoded(sn).then((dec) => holder.replaceChildren(matrices(sn, src, dec, codeView)));
      }
      if (sn.heads && src.heads) parts.push(relationsPane(sn, src));
      else if (sn.heads_skipped) parts.push(el("p", { class: "note", text: `Relation edges: the model read nothing of this snippet (${sn.heads_skipped})` }));
      if (sn.astprobe) parts.push(treesPane(sn, src, codeView));
      else if (sn.astprobe_skipped) parts.push(el("p", { class: "note", text: `AST-Probe: ${sn.astprobe_skipped}` }));
      body.replaceChildren(...parts);
    }

    function codePane(sn, src) {
      const pre = el("pre", { class: "code", "data-testid": "code" });
      const code = sn.code;
      // Spans of the CAT tokens (else AST-Probe's), so hovering a matrix cell lights them up.
      const cat = sn.cat && sn.cat.tokens, ast = sn.astprobe && sn.astprobe.tokens;
      const toks = cat || ast || (sn.heads && sn.heads.tokens);
      const keptSet = sn.cat ? new Set(sn.cat.kept_index[sn.cat.layer_group[state.layer]]) : null;
      const spans = [];
      let at = 0;
      if (toks) {
        toks.start.forEach((s, i) => {
          if (s > at) pre.append(code.slice(at, s));
          const kept = keptSet ? keptSet.has(i) : true;
          const span = el("span", { class: "t " + (kept ? "k" : "u"), "data-i": i, title: `#${i} ${cat ? cat.type[i] : ""}${kept ? "" : " (not kept at this layer)"}` }, code.slice(s, toks.end[i]));
          pre.append(span);
          spans.push(span);
          at = toks.end[i];
        });
      }
      pre.append(code.slice(at));
      const astSpans = [];
      if (ast && cat) {
        // AST-Probe tokens differ (strings collapsed): map them onto character ranges.
        for (let i = 0; i < ast.start.length; i++) astSpans.push([ast.start[i], ast.end[i]]);
      }
      function light(cls, idx) {
        pre.querySelectorAll("." + cls).forEach((s) => s.classList.remove(cls));
        for (const i of idx) if (spans[i]) spans[i].classList.add(cls);
      }
      function lightChars(lo, hi) {  // AST-Probe tokens lo..hi
        const a = (ast || cat).start[lo], b = (ast || cat).end[hi];
        const idx = [];
        toks.start.forEach((s, i) => { if (s >= a && toks.end[i] <= b) idx.push(i); });
        light("hl", idx);
      }
      return { node: pre, light, lightChars, count: spans.length };
    }

    function matrices(sn, src, dec, codeView) {
      const c = sn.cat, L = state.layer, hcol = state.head + 1, H1 = c.n_heads + 1;
      const n = c.tokens.text.length;
      const kept = c.kept_index[c.layer_group[L]];
      const k = kept.length;
      // Mask bits: layers in order, each (1 + H) x k_l x k_l.
      let offset = 0;
      for (let l = 0; l < L; l++) { const kl = c.kept_index[c.layer_group[l]].length; offset += H1 * kl * kl; }
      offset += hcol * k * k;
      const bit = (b) => (dec.masks[b >> 3] >> (7 - (b & 7))) & 1;
      const attScale = c.attention_max[L][hcol];
      const attAt = (i, j) => dec.att[((L * H1 + hcol) * n + kept[i]) * n + kept[j]];
      const distAt = (i, j) => dec.dist[kept[i] * n + kept[j]];
      const thetaD = c.theta_d[c.layer_group[L]];
      // The causal convention (a decoder's) scores only the pairs key <= query.
      const causal = !!(src.settings && src.settings.mask === "causal");
      let inter = 0, nA = 0, nD = 0;
      const strong = new Uint8Array(k * k), near = new Uint8Array(k * k);
      let dmax = 0;
      for (let i = 0; i < k; i++) for (let j = 0; j < k; j++) {
        const cell = i * k + j;
        strong[cell] = bit(offset + cell);
        near[cell] = distAt(i, j) < thetaD && (!causal || j <= i) ? 1 : 0;
        nA += strong[cell]; nD += near[cell]; inter += strong[cell] & near[cell];
        dmax = Math.max(dmax, distAt(i, j));
      }
      const union = nA + nD - inter;
      const score = union ? inter / union : NaN;
      const labels = kept.map((i) => c.tokens.text[i]);
      const headName = state.head < 0 ? "mean of heads" : "head " + state.head;
      const info = (i, j) => `query #${kept[i]} ${JSON.stringify(labels[i])} \u2192 key #${kept[j]} ${JSON.stringify(labels[j])}\n` +
        `attention ${fmt((attAt(i, j) / 255) * attScale, 4)}${strong[i * k + j] ? " (> \u03b8_A: in M_A)" : ""}\n` +
        `tree distance ${distAt(i, j)}${near[i * k + j] ? " (< \u03b8_D: in M_D)" : ""}`;
      const hover = (i, j) => codeView.light("hl", i === null ? [] : [kept[i], kept[j]]);
      const dName = src.settings && src.settings.distance === "ast" ? "AST distance" : "U-AST distance";
      const m1 = matrixCanvas(`Token attention, layer ${L}, ${headName}`, k, labels, (i, j) => viridis(Math.sqrt(attAt(i, j) / 255)), info, hover, "attention");
      const m2 = matrixCanvas(dName, k, labels, (i, j) => viridis(1 - distAt(i, j) / Math.max(dmax, 1)), info, hover, "distance");
      const colA = [31, 119, 180], colD = [255, 160, 60], colB = [30, 30, 30], colN = [246, 247, 249];
      const m3 = matrixCanvas("Pairs counted by the CAT-score", k, labels, (i, j) => {
        const a = strong[i * k + j], d = near[i * k + j];
        return a && d ? colB : a ? colA : d ? colD : colN;
      }, info, hover, "pairs");
      const summary = el("div", { class: "card", "data-testid": "cat-summary", "data-score": String(score), "data-inter": inter, "data-union": union },
        el("div", { class: "big", text: `CAT-score = |M_A \u2229 M_D| / |M_A \u222a M_D| = ${inter} / ${union} = ${fmt(score, 4)}` }),
        el("div", {}, el("span", { class: "swatch", style: `background:${rgb(colA)}` }), `attention only: ${nA - inter}`,
          el("span", { class: "swatch", style: `background:${rgb(colD)}` }), `tree only: ${nD - inter}`,
          el("span", { class: "swatch", style: `background:${rgb(colB)}` }), `both: ${inter}`),
        el("div", { class: "note", text: `M_A: attention > \u03b8_A = ${fmt(c.theta_a[L][hcol], 5)} (the ${fmt(src.settings ? src.settings.quantile : 0.75, 2)}-quantile of this matrix${causal ? ", over the pairs with the key at or before the query, the only cells a causal score counts" : ""}); ` +
          `M_D: distance < \u03b8_D = ${fmt(thetaD, 2)} (the ${fmt(1 - (src.settings ? src.settings.quantile : 0.75), 2)}-quantile). ${k} of ${n} aligned tokens kept by the type filter at layer ${L}; ` +
          `baselines at this layer: random ${fmt(c.random_baseline[L])}, positional ${fmt(c.positional_baseline[L])}. Attention colour: square root of value / max of this matrix (max ${fmt(attScale, 4)}); distance colour: near = yellow.` }));
      return el("div", {}, el("div", { class: "mats" }, m1, m2, m3), summary);
    }

    function matrixCanvas(title, k, labels, colorAt, info, hover, id) {
      const cell = Math.max(3, Math.min(16, Math.floor(350 / Math.max(k, 1))));
      const showLabels = cell >= 8;
      const margin = showLabels ? 74 : 4;
      const size = margin + cell * k + 2;
      const dpr = window.devicePixelRatio || 1;
      const canvas = el("canvas", { width: size * dpr, height: size * dpr, style: `width:${size}px;height:${size}px`, "data-testid": "matrix-" + id });
      const ctx = canvas.getContext("2d");
      ctx.scale(dpr, dpr);
      const img = ctx.createImageData(cell * k * dpr, cell * k * dpr);
      const W = cell * k * dpr;
      for (let i = 0; i < k; i++) for (let j = 0; j < k; j++) {
        const c = colorAt(i, j);
        for (let y = i * cell * dpr; y < (i + 1) * cell * dpr; y++) for (let x = j * cell * dpr; x < (j + 1) * cell * dpr; x++) {
          const o = (y * W + x) * 4;
          img.data[o] = c[0]; img.data[o + 1] = c[1]; img.data[o + 2] = c[2]; img.data[o + 3] = 255;
        }
      }
      ctx.putImageData(img, margin * dpr, margin * dpr);
      if (showLabels) {
        ctx.fillStyle = "#333";
        ctx.font = `${Math.min(11, cell)}px ui-monospace, monospace`;
        const short = (t) => { t = t.replace(/\s+/g, " "); return t.length > 10 ? t.slice(0, 9) + "\u2026" : t; };
        ctx.textAlign = "right"; ctx.textBaseline = "middle";
        labels.forEach((t, i) => ctx.fillText(short(t), margin - 4, margin + i * cell + cell / 2));
        labels.forEach((t, j) => {
          ctx.save(); ctx.translate(margin + j * cell + cell / 2, margin - 4); ctx.rotate(-Math.PI / 2);
          ctx.textAlign = "left"; ctx.fillText(short(t), 0, 0); ctx.restore();
        });
      }
      canvas.addEventListener("mousemove", (evt) => {
        const r = canvas.getBoundingClientRect();
        const j = Math.floor((evt.clientX - r.left - margin) / cell), i = Math.floor((evt.clientY - r.top - margin) / cell);
        if (i < 0 || j < 0 || i >= k || j >= k) { hideTip(); hover(null); return; }
        showTip(evt, info(i, j));
        hover(i, j);
      });
      canvas.addEventListener("mouseleave", () => { hideTip(); hover(null); });
      return el("div", { class: "mat" }, el("h4", { text: title }), canvas, el("div", { class: "note", text: "row = query, column = key" }));
    }

    // The run's attention-head relations on this snippet: a relation's edges on the code and
    // the attention row of the head the run chose for it (on validation, at the headline's k).
    function relationsPane(sn, src) {
      const R = src.heads, h = sn.heads;
      const cols = h.tokens || sn.cat.tokens;
      const toks = cols.text.map((text, i) => ({ text, type: cols.type ? cols.type[i] : null, start: cols.start[i], end: cols.end[i] }));
      const edges = h.edges.map(([r, head, s, e, hits]) => ({ relation: r, head, dependent: [s, e], hits }));
      const rows = new Map(h.rows.map(([l, hd, t, w, top]) => [`${l}.${hd}.${t}`, { weights: w, top }]));
      const box = el("div", { "data-testid": "explorer-relations" }, el("h3", { text: "Relation edges and the heads the run chose" }));
      if (!edges.length) {
        box.append(el("p", { class: "note", text: `No edge of the ${R.relations.length} relations the run scored lies within the tokens the model read of this snippet` + (h.dropped_edges ? ` (${h.dropped_edges} cut off by the input limit).` : ".") }));
        return box;
      }
      const present = [...new Set(edges.map((e) => e.relation))].sort((a, b) => R.relations[a].name.localeCompare(R.relations[b].name));
      if (state.dir === null) state.dir = R.headline;
      if (!present.includes(state.relation)) { state.relation = present[0]; state.edge = 0; }
      const mine = edges.filter((e) => e.relation === state.relation);
      state.edge = Math.min(state.edge, mine.length - 1);
      const score = R.scores[state.dir], direction = score.direction;
      const chosen = R.relations[state.relation].heads[state.dir];
      const e = mine[state.edge];
      const from = direction === "head->dep" ? e.head : e.dependent[0];
      const row = chosen ? rows.get(`${chosen.layer}.${chosen.head}.${from}`) : null;
      const targets = edgeTargets(e, direction, score.dependent);
      const count = (r) => edges.filter((x) => x.relation === r).length;
      const controls = el("div", { class: "controls" },
        ...select("Relation", present.map((r) => [r, `${R.relations[r].name} (${count(r)})`]), state.relation, (v) => { state.relation = +v; state.edge = 0; render(); }, "explorer-relation-select"),
        ...select("Direction", R.scores.map((sc, i) => [i, scoreName(sc)]), state.dir, (v) => { state.dir = +v; render(); }, "explorer-direction-select"),
        ...select("Edge", mine.map((x, i) => [i, `${toks[x.head].text} \u2192 ${toks.slice(x.dependent[0], x.dependent[1]).map((t) => t.text).join(" ").slice(0, 40)}`]), state.edge, (v) => { state.edge = +v; render(); }, "explorer-edge-select"));
      const mark = (hit) => (hit === null || hit === undefined ? "n/s" : hit ? "\u2713" : "\u2717");
      let about;
      if (chosen) {
        const ci = chosen.test_ci && finite(chosen.test_ci[0]) ? ` [${fmt(chosen.test_ci[0])}, ${fmt(chosen.test_ci[1])}]` : "";
        const hits = mine.filter((x) => x.hits[state.dir] === true).length, scorable = mine.filter((x) => x.hits[state.dir] !== null).length;
        const pick = el("a", { href: "#explorer", "data-testid": "explorer-show-head", onclick: (evt) => { evt.preventDefault(); state.layer = chosen.layer; state.head = chosen.head; render().then(() => { const m = body.querySelector("[data-testid=matrices]"); if (m) m.scrollIntoView(); }); } }, "show its attention matrix");
        about = el("div", { class: "card", "data-testid": "explorer-relation-summary", "data-layer": chosen.layer, "data-head": chosen.head },
          el("div", { class: "big", text: `${R.relations[state.relation].name}, ${scoreName(score)}: head ${chosen.layer}.${chosen.head}` }),
          el("div", { text: `chosen on validation at top-${R.k}; test top-${R.k} accuracy ${fmt(chosen.test)}${ci} over ${chosen.test_edges} test edges` }),
          el("div", {}, `on this snippet: hits ${hits} of ${scorable} scorable edges of this relation; this edge: ${mark(e.hits[state.dir])}. `, sn.cat ? pick : null));
      } else {
        about = el("div", { class: "card", "data-testid": "explorer-relation-summary" }, el("div", { text: `The run's summary has no head for ${R.relations[state.relation].name} in this direction.` }));
      }
      const code = relationCode({ code: sn.code, toks, edges: mine, edge: e, from, row: row ? row.weights : null, k: R.k, causal: R.causal, topk: row ? row.top : null, testId: "explorer-relation-code" });
      const left = el("div", { style: "max-width:720px" }, code, relationLegend(chosen ? `head ${chosen.layer}.${chosen.head}` : "no head", R.k));
      const right = el("div", { style: "max-width:640px" }, about, row ? attentionBars(toks, row.weights, from, targets, row.top, `head ${chosen.layer}.${chosen.head}'s attention from #${from} ${JSON.stringify(toks[from].text)}`) : null);
      const table = el("table", { "data-testid": "explorer-relation-edges" },
        el("tr", {}, ...["", "head", "dependent", ...R.scores.map((sc, i) => { const c = R.relations[state.relation].heads[i]; return `${scoreName(sc)}` + (c ? ` (${c.layer}.${c.head})` : ""); })].map((t, i) => el("th", { class: i < 3 ? "l" : null, text: t }))));
      mine.forEach((x, i) => table.append(el("tr", { style: i === state.edge ? "font-weight:700;cursor:pointer" : "cursor:pointer", onclick: () => { state.edge = i; render(); } },
        el("td", { class: "l", text: i === state.edge ? "\u25b6" : "" }), el("td", { class: "l", text: `#${x.head} ${toks[x.head].text}` }),
        el("td", { class: "l", text: `[${x.dependent[0]}, ${x.dependent[1]}) ` + toks.slice(x.dependent[0], x.dependent[1]).map((t) => t.text).join(" ").slice(0, 60) }),
        ...x.hits.map((hit) => el("td", { text: mark(hit) })))));
      box.append(controls, el("div", { class: "row" }, left, right), el("p", { class: "note", text: `\u2713 / \u2717: the relation's chosen head has the edge's target among its top ${R.k} from the attending token (the library's count on the unrounded attention); n/s: not scorable. Edges with a token the model did not read are left out` + (h.dropped_edges ? ` (${h.dropped_edges} here).` : ".") }), table);
      return box;
    }

    function treesPane(sn, src, codeView) {
      const a = sn.astprobe;
      const key = (c) => `${c[0]}|${c[1]}|${c[2]}`;
      const gold = new Set(a.gold.map(key)), pred = new Set(a.predicted.map(key));
      const draw = (nodes, other, kindMissing, testId) => {
        const box = el("div", { class: "tree", "data-testid": testId });
        const order = nodes.map((_, i) => i).sort((x, y) => nodes[x][1] - nodes[y][1] || nodes[y][2] - nodes[x][2] || x - y);
        const open = [];
        let k = 0;
        a.tokens.text.forEach((text, t) => {
          while (open.length && open[open.length - 1] < t) open.pop();
          while (k < order.length && nodes[order[k]][1] === t) {
            const [label, lo, hi] = nodes[order[k]];
            const ok = other.has(key(nodes[order[k]]));
            const line = el("div", { "data-lo": lo, "data-hi": hi, title: `${label} over tokens ${lo}\u2013${hi}: ${ok ? "in both trees" : kindMissing}`,
              onmouseenter: () => codeView.lightChars(lo, hi), onmouseleave: () => codeView.light("hl", []) },
            "  ".repeat(open.length), el("span", { class: "nt " + (ok ? "match" : kindMissing === "missed by the probe" ? "miss" : "extra") }, label));
            box.append(line);
            open.push(hi);
            k++;
          }
          const shown = text.length > 40 ? text.slice(0, 37) + "..." : text;
          box.append(el("div", { class: "tok", onmouseenter: () => codeView.lightChars(t, t), onmouseleave: () => codeView.light("hl", []) }, "  ".repeat(open.length) + JSON.stringify(shown)));
        });
        return box;
      };
      const nMiss = a.gold.filter((c) => !pred.has(key(c))).length, nExtra = a.predicted.filter((c) => !gold.has(key(c))).length;
      const where = src.astprobe ? ` (hidden state ${src.astprobe.hidden_state}, rank ${src.astprobe.rank})` : "";
      return el("div", {}, el("h3", { text: "Gold tree and the tree the probe recovers" + where }),
        el("p", { class: "note" }, `precision ${fmt(a.precision)}, recall ${fmt(a.recall)}, F1 ${fmt(a.f1)}. `,
          el("span", { class: "nt miss", text: "gold only" }), ` ${nMiss} constituents the probe missed; `,
          el("span", { class: "nt extra", text: "recovered only" }), ` ${nExtra} it made up; `,
          el("span", { class: "nt match", text: "green" }), " in both. Hover a line to see its tokens in the code."),
        el("div", { class: "trees" }, el("div", {}, el("h4", { text: "gold" }), draw(a.gold, pred, "missed by the probe", "tree-gold")),
          el("div", {}, el("h4", { text: "recovered" }), draw(a.predicted, gold, "not in the gold tree", "tree-recovered"))));
    }

    explorer = {
      show(seriesIndex, layer, head, scroll) {
        const s = sources.findIndex((x) => x.index === seriesIndex);
        if (s >= 0) state.source = s;
        state.layer = layer; state.head = head;
        render();
        if (scroll) document.getElementById("explorer").scrollIntoView();
      },
      state,
    };
    render();
  }

  // ------------------------------------------------------------------ relation edges on the code (the heads page and the snippet explorer)
  // code: the snippet; toks: [{text, type, start, end}]; edges: the chosen relation's edges
  // [{head, dependent: [start, end)}] over toks; edge: the chosen one; from: its attending token;
  // row: that token's attention over toks (null: none shown); k: the top k (bold); topk: the
  // row's top k tokens when known exactly (else ranked here: descending weight, ties to the
  // lower index, the attending token and, when causal, tokens right of it left out).
  // The candidates of an attention row from token `from`, best first: descending weight, ties to
  // the lower index; `from` itself and, when causal, tokens right of it are no candidates.
  function ranking(row, from, causal) {
    return row.map((_, j) => j).filter((j) => j !== from && (!causal || j <= from)).sort((a, b) => row[b] - row[a] || a - b);
  }
  function relationCode({ code, toks, edges, edge, from, row, k, causal, topk, testId }) {
    const pre = el("pre", { class: "code rel", "data-testid": testId });
    const order = row ? ranking(row, from, causal) : [];
    const rank = new Map(order.map((j, i) => [j, i + 1]));
    const top = new Set(topk || order.slice(0, k));
    const heads = new Set(edges.map((x) => x.head));
    const deps = new Set(edges.flatMap((x) => [...Array(x.dependent[1] - x.dependent[0]).keys()].map((i) => i + x.dependent[0])));
    const mx = row ? Math.max(...row, 1e-12) : 1;
    let at = 0;
    toks.forEach((t, i) => {
      if (t.start > at) pre.append(code.slice(at, t.start));
      const cls = ["t"];
      if (heads.has(i)) cls.push("rh");
      if (deps.has(i)) cls.push("rd");
      if (edge && i === edge.head) cls.push("sh");
      if (edge && i >= edge.dependent[0] && i < edge.dependent[1]) cls.push("sd");
      if (i === from) cls.push("from");
      if (top.has(i)) cls.push("tk");
      const w = row ? row[i] : 0, r = rank.get(i);
      pre.append(el("span", { class: cls.join(" "), "data-i": i, "data-weight": row ? w.toFixed(5) : null,
        style: row ? `background: rgba(255,140,0,${(w / mx).toFixed(3)})` : null,
        title: `#${i}` + (t.type ? ` ${t.type}` : "") + (row ? `\nattention from #${from} ${JSON.stringify(toks[from].text)}: ${fmt(w, 4)}` + (r ? `, rank ${r}` : " (not a candidate)") : "") },
      code.slice(t.start, t.end)));
      at = t.end;
    });
    pre.append(code.slice(at));
    return pre;
  }
  function relationLegend(headName, k) {
    return el("p", { class: "note rel" }, "In the code: ", el("span", { class: "t rh", text: "head tokens" }), " and ", el("span", { class: "t rd", text: "dependents" }),
      " of this relation's edges; the chosen edge's ", el("span", { class: "t sh", text: "head" }), " and ", el("span", { class: "t sd", text: "dependent" }),
      `; shading: ${headName}'s attention from the attending token (`, el("span", { class: "t from", text: "boxed" }),
      "), weight / row maximum; ", el("span", { class: "t tk", text: "bold" }), ` = its top ${k}. Hover a token for its weight and rank.`);
  }

  // One attention row as bars over the tokens: the target(s) green, the top k dark, the
  // attending token (never a candidate) hatched grey.
  function attentionBars(toks, row, from, targets, top, title) {
    const n = toks.length, bw = Math.max(6, Math.min(18, Math.floor(560 / Math.max(n, 1))));
    const m = { l: 40, r: 8, t: 22, b: 70 }, hgt = 150;
    const width = m.l + bw * n + m.r, height = m.t + hgt + m.b;
    const root = svg("svg", { width, height, viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": title, "data-testid": "attention-bars" });
    root.append(Object.assign(svg("text", { x: m.l, y: 14, "font-weight": "600" }), { textContent: title }));
    const mx = Math.max(...row, 1e-12), tgt = new Set(targets), tk = new Set(top);
    const step = Math.ceil(12 / bw);  // a label every step tokens, so that they do not overlap
    const axis = svg("g", { class: "axis" });
    axis.append(svg("line", { x1: m.l, x2: m.l + bw * n, y1: m.t + hgt, y2: m.t + hgt }), svg("line", { x1: m.l, x2: m.l, y1: m.t, y2: m.t + hgt }));
    const digits = Math.max(2, 1 - Math.floor(Math.log10(mx)));
    for (const v of [0, mx / 2, mx]) {
      const t = svg("text", { x: m.l - 4, y: m.t + hgt - (v / mx) * hgt + 4, "text-anchor": "end" });
      t.textContent = v.toFixed(digits);
      axis.append(t);
    }
    root.append(axis);
    toks.forEach((t, j) => {
      const x = m.l + j * bw, hh = (row[j] / mx) * hgt;
      const fill = j === from ? "#bbb" : tgt.has(j) ? (tk.has(j) ? "#2b8a3e" : "#8fd19e") : tk.has(j) ? "#d35400" : "#f5b971";
      const bar = svg("rect", { x: x + 1, y: m.t + hgt - hh, width: bw - 2, height: Math.max(hh, 0.5), fill, "data-i": j, "data-weight": row[j] });
      bar.addEventListener("mousemove", (evt) => showTip(evt, `#${j} ${JSON.stringify(t.text)}: ${fmt(row[j], 4)}` + (j === from ? " (attending token)" : "") + (tgt.has(j) ? " (target)" : "") + (tk.has(j) ? " (top k)" : "")));
      bar.addEventListener("mouseleave", hideTip);
      root.append(bar);
      if (j % step === 0 || tgt.has(j) || tk.has(j) || j === from) {  // the marked tokens always
        const short = t.text.replace(/\s+/g, " ");
        const label = svg("text", { x: x + bw / 2, y: m.t + hgt + 8, transform: `rotate(-60 ${x + bw / 2} ${m.t + hgt + 8})`, "text-anchor": "end", "font-size": 10, fill: tgt.has(j) ? "#2b8a3e" : j === from ? "#000" : null });
        label.textContent = short.length > 10 ? short.slice(0, 9) + "\u2026" : short;
        root.append(label);
      }
    });
    const legend = el("div", { class: "note" }, el("span", { class: "swatch", style: "background:#2b8a3e" }), "target in the top k",
      el("span", { class: "swatch", style: "background:#8fd19e" }), "target outside it", el("span", { class: "swatch", style: "background:#d35400" }), "other top-k token",
      el("span", { class: "swatch", style: "background:#bbb" }), "attending token (not a candidate)");
    return el("div", { class: "card chart" }, root, legend);
  }
  // The targets of an edge {head, dependent} under a score: dep->head the head token,
  // head->dep the dependent's first, last or every token.
  function edgeTargets(edge, direction, dependent) {
    const [a, b] = edge.dependent;
    if (direction === "dep->head") return [edge.head];
    if (dependent === "first") return [a];
    if (dependent === "last") return [b - 1];
    return [...Array(b - a).keys()].map((i) => i + a);
  }

  // ------------------------------------------------------------------ one snippet's relations and heads (codeprobe heads --html)
  function relationsSection() {
    const R = DATA.heads;
    if (!R) return;
    const L = R.n_layers, H = R.n_heads, G = L * H, toks = R.tokens, n = toks.length;
    const ks = R.settings.ks.map(String);
    const dirs = R.settings.shown_scores;  // [head->dep/<dependent>, dep->head/first]
    const att = R.rows.attending, rowOf = new Map(att.map((t, r) => [t, r]));
    const state = { rel: 0, dir: 0, k: ks[0], edge: 0, layer: 0, head: 0 };
    let weights = null;
    const controls = el("div", { class: "controls" });
    const body = el("div");
    section("relations", "Relation edges and the heads that get them right", controls, body);
    const rel = () => R.relations[state.rel];
    const edge = () => R.edges[rel().edges[state.edge]];
    const score = () => rel().scores[dirs[state.dir]];
    function pickBest() {
      const best = score().k[state.k].best_heads;
      if (best && best.length) { state.layer = best[0][0]; state.head = best[0][1]; }
    }
    function drawControls() {
      const items = [];
      items.push(...select("Relation", R.relations.map((r, i) => [i, `${r.name} (${r.n_edges})`]), state.rel, (v) => { state.rel = +v; state.edge = 0; pickBest(); render(); }, "relation-select"));
      items.push(...select("Direction", dirs.map((d, i) => [i, d.replace("/", ", dependent: ")]), state.dir, (v) => { state.dir = +v; pickBest(); render(); }, "direction-select"));
      items.push(...select("k", ks.map((k) => [k, "top-" + k]), state.k, (v) => { state.k = v; pickBest(); render(); }, "k-select"));
      items.push(...select("Edge", rel().edges.map((e, i) => [i, `${R.edges[e].head_text} \u2192 ${R.edges[e].dependent_text.slice(0, 40)}`]), state.edge, (v) => { state.edge = +v; render(); }, "edge-select"));
      items.push(...select("Layer", [...Array(L).keys()].map((l) => [l, String(l)]), state.layer, (v) => { state.layer = +v; render(); }, "layer-select"));
      items.push(...select("Head", [...Array(H).keys()].map((h) => [h, "head " + h]), state.head, (v) => { state.head = +v; render(); }, "head-select"));
      controls.replaceChildren(...items);
    }
    const hitBy = (e, layer, head) => {
      const sc = R.edges[e].scores[dirs[state.dir]];
      if (!sc.scorable) return null;
      return sc.hits[state.k].some((p) => p[0] === layer && p[1] === head);
    };
    function grid() {
      const total = score().scorable;
      const table = el("table", { class: "heat", "data-testid": "relation-heads" });
      const top = el("tr", {}, el("th", { text: "layer" }));
      for (let h = 0; h < H; h++) top.append(el("th", { text: "h" + h }));
      table.append(top);
      for (let l = 0; l < L; l++) {
        const tr = el("tr", {}, el("th", { text: String(l) }));
        for (let h = 0; h < H; h++) {
          const c = rel().edges.reduce((s, e) => s + (hitBy(e, l, h) ? 1 : 0), 0);
          const col = total ? viridis(c / total) : [240, 240, 240];
          const td = el("td", { style: `background:${rgb(col)};color:${inkOn(col)}`, text: total ? `${c}/${total}` : "\u2013",
            title: `head ${l}.${h}: ${c} of ${total} scorable edges hit at top-${state.k}` });
          if (l === state.layer && h === state.head) td.classList.add("sel");
          td.addEventListener("click", () => { state.layer = l; state.head = h; render(); });
          tr.append(td);
        }
        table.append(tr);
      }
      return table;
    }
    function shown() {  // the chosen edge's attending token and the chosen head's row from it
      const e = edge(), [direction, dependent] = dirs[state.dir].split("/");
      const from = direction === "head->dep" ? e.head : e.dependent[0];
      const r = rowOf.get(from), g = state.layer * H + state.head;
      let row = null;
      if (weights && r !== undefined) {
        row = [];
        for (let j = 0; j < n; j++) row.push((weights[(g * att.length + r) * n + j] / 255) * R.rows.scale[g * att.length + r]);
      }
      return { e, from, row, targets: edgeTargets(e, direction, dependent) };
    }
    function codeView({ e, from, row }) {
      return relationCode({ code: R.code, toks, edges: rel().edges.map((i) => R.edges[i]), edge: e, from, row, k: +state.k, causal: R.settings.causal, testId: "heads-code" });
    }
    function edgeTable() {
      const table = el("table", { "data-testid": "relation-edges" });
      table.append(el("tr", {}, ...["", "head", "dependent", `head ${state.layer}.${state.head} top-${state.k}`, `heads hitting (of ${G})`, "offsets hitting"].map((t, i) => el("th", { class: i < 3 ? "l" : null, text: t }))));
      rel().edges.forEach((e, i) => {
        const x = R.edges[e], sc = x.scores[dirs[state.dir]], hit = hitBy(e, state.layer, state.head);
        const tr = el("tr", { style: i === state.edge ? "font-weight:700;cursor:pointer" : "cursor:pointer", onclick: () => { state.edge = i; render(); } },
          el("td", { class: "l", text: i === state.edge ? "\u25b6" : "" }), el("td", { class: "l", text: `#${x.head} ${x.head_text}` }),
          el("td", { class: "l", text: `[${x.dependent[0]}, ${x.dependent[1]}) ${x.dependent_text.slice(0, 60)}` }),
          el("td", { text: hit === null ? "n/s" : hit ? "\u2713" : "\u2717" }), el("td", { text: sc.scorable ? String(sc.hits[state.k].length) : "n/s" }),
          el("td", { text: sc.offsets.join(" ") || "\u2013" }));
        table.append(tr);
      });
      return table;
    }
    function render() {
      state.edge = Math.min(state.edge, rel().edges.length - 1);
      drawControls();
      const sc = score(), c = sc.k[state.k], base = c.offset_baseline;
      const best = c.best_heads.slice(0, 12).map((p) => `${p[0]}.${p[1]}`).join(" ") + (c.best_heads.length > 12 ? ` (+${c.best_heads.length - 12})` : "");
      const summary = el("div", { class: "card", "data-testid": "relation-summary" },
        el("div", { class: "big", text: `${rel().name}: best heads hit ${c.best_hits} of ${sc.scorable} scorable edges at top-${state.k}` + (best ? ` (${best})` : "") }),
        el("div", { text: `best fixed offsets (greedy set of ${state.k}, chosen on this snippet): ${base.hits} of ${sc.scorable} (${base.offsets.join(", ") || "none"})` }),
        el("div", { class: "note", text: "Chosen on this snippet's own edges; one snippet has no intervals (codeprobe run gives them, choosing on validation and reporting on test)." }));
      const legend = relationLegend(`head ${state.layer}.${state.head}`, state.k);
      const now = shown();
      const bars = now.row ? attentionBars(toks, now.row, now.from, now.targets, ranking(now.row, now.from, R.settings.causal).slice(0, +state.k),
        `head ${state.layer}.${state.head}'s attention from #${now.from} ${JSON.stringify(toks[now.from].text)}`) : null;
      const top = el("div", { class: "row" }, el("div", { style: "max-width:720px" }, el("h3", { text: "Code" }), codeView(now), legend, bars),
        el("div", {}, el("h3", { text: `Edges of this relation hit per head (${dirs[state.dir]}, top-${state.k}); click a cell` }), grid(), summary));
      body.replaceChildren(top, el("h3", { text: "Edges" }), edgeTable());
    }
    pickBest();
    render();
    inflate(R.rows.weights).then((w) => { weights = w; render(); document.body.setAttribute("data-heads-ready", "1"); });
  }

  // ------------------------------------------------------------------ page
  function header() {
    const h = document.querySelector("header");
    h.append(el("h1", { text: DATA.title }));
    for (const line of DATA.lines || []) h.append(el("div", { class: "note", text: line }));
    for (const w of DATA.warnings || []) h.append(el("div", { class: "warn", text: w }));
  }
  function footer() {
    const f = document.querySelector("footer");
    for (const line of DATA.footer || []) f.append(el("div", { text: line }));
  }
  header();
  curvesSection();
  headsSection();
  ratesSection();
  astSection();
  structuralSection();
  diagnosticSection();
  headRelationsSection();
  explorerSection();
  relationsSection();
  footer();
  document.body.setAttribute("data-ready", "1");
})();
