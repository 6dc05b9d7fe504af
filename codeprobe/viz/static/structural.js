// codeprobe's structural-probe view (`codeprobe structural predict --html`): one snippet's gold
// and predicted token trees as arcs over its tokens, its gold and predicted distance matrices
// side by side as heat maps, and its scores. Reads the page's data (DATA.structural, the JSON of
// `predict --json`); fetches nothing.
"use strict";
(function () {
  const DATA = JSON.parse(document.getElementById("codeprobe-data").textContent);
  const S = DATA.structural;
  if (!S) return;
  const SVGNS = "http://www.w3.org/2000/svg";
  const main = document.querySelector("main");
  const nav = document.querySelector("nav");

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
  function svg(tag, attrs, text) {
    const node = document.createElementNS(SVGNS, tag);
    for (const [k, v] of Object.entries(attrs || {})) if (v !== null && v !== undefined) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    return node;
  }
  const tip = el("div", { class: "tip" });
  document.body.appendChild(tip);
  function showTip(evt, text) {
    tip.textContent = text;
    tip.style.display = "block";
    tip.style.left = Math.min(evt.clientX + 14, window.innerWidth - tip.offsetWidth - 8) + "px";
    tip.style.top = Math.min(evt.clientY + 14, window.innerHeight - tip.offsetHeight - 8) + "px";
  }
  const hideTip = () => { tip.style.display = "none"; };
  const fmt = (v, d = 3) => (v === null || v === undefined || !Number.isFinite(v) ? "n/a" : Number(v).toFixed(d));
  function section(id, title, ...kids) {
    main.append(el("section", { id }, el("h2", { text: title }), ...kids));
    nav.append(el("a", { href: "#" + id, text: title }));
  }
  // Viridis, 9 stops, linear in between (as the report's heat maps).
  const VIRIDIS = [[68, 1, 84], [71, 44, 122], [59, 81, 139], [44, 113, 142], [33, 144, 141], [39, 173, 129], [92, 200, 99], [170, 220, 50], [253, 231, 37]];
  function viridis(t) {
    t = Math.max(0, Math.min(1, t)) * (VIRIDIS.length - 1);
    const i = Math.min(Math.floor(t), VIRIDIS.length - 2), f = t - i;
    return VIRIDIS[i].map((c, k) => Math.round(c + f * (VIRIDIS[i + 1][k] - c)));
  }

  const toks = S.tokens, n = toks.length;
  const label = (i) => JSON.stringify(toks[i].text.length > 24 ? toks[i].text.slice(0, 23) + "\u2026" : toks[i].text);
  // Undirected edges {a, b} as "min-max" keys: UUAS compares the trees without direction.
  const key = (a, b) => (a < b ? `${a}-${b}` : `${b}-${a}`);
  const goldEdges = new Set(), predEdges = new Set();
  S.gold_heads.forEach((h, i) => { if (h >= 0) goldEdges.add(key(h, i)); });
  S.predicted_heads.forEach((h, i) => { if (h >= 0) predEdges.add(key(h, i)); });

  // ---------------------------------------------------------------- scores
  const lin = S.linear_baseline;
  const scoreRow = (name, value, base, note) => el("tr", {}, el("td", { class: "l", text: name }), el("td", { text: value }), el("td", { text: base }), el("td", { class: "l note", text: note }));
  const table = el("table", { "data-testid": "structural-scores" },
    el("tr", {}, ...["", "probe", "linear baseline", ""].map((t, i) => el("th", { class: i === 0 || i === 3 ? "l" : null, text: t }))),
    scoreRow("UUAS", `${fmt(S.uuas)} (${S.uuas_correct} of ${S.uuas_total})`, fmt(lin.uuas), "gold edges in the minimum spanning tree of the predicted distances"),
    scoreRow("DSpr", fmt(S.dspr), fmt(lin.dspr), "Spearman of each token's predicted and gold distances, mean over tokens"),
    scoreRow("NSpr", fmt(S.nspr), fmt(lin.nspr), "Spearman of predicted and gold depths"),
    scoreRow("root", S.root_correct ? "correct" : "wrong", lin.root_correct ? "correct" : "wrong", "the gold root is strictly the shallowest predicted token"));
  section("scores", "Scores", el("div", { class: "row" }, el("div", { class: "card" }, table),
    el("pre", { class: "code", "data-testid": "structural-code", text: S.code })),
  el("div", { class: "note", text: `Distance probe: hidden state ${S.hidden_state.distance}; depth probe: hidden state ${S.hidden_state.depth}; rank ${S.rank}; gold: the token tree (head rule ${S.head_rule}), DSpr against the ${S.target === "ast" ? "AST" : "token-tree"} distances. Linear baseline: the tree of consecutive tokens (distance |i - j|, depth i).` }));

  // ---------------------------------------------------------------- arcs
  // Tokens left to right (their widths from their text), the gold tree's arcs above, the
  // predicted tree's (the spanning tree of the predicted distances) below, depths under them.
  function arcs() {
    const CH = 7.4, PAD = 10, MIN_W = 18;
    const GUTTER = 60;  // room for the rows' names on the left
    const xs = [], ws = [];
    let x = GUTTER;
    for (const t of toks) {
      const w = Math.max(MIN_W, Math.min(t.text.length, 24) * CH + PAD);
      xs.push(x + w / 2); ws.push(w); x += w + 4;
    }
    const width = x + 12;
    const span = (a, b) => Math.abs(xs[a] - xs[b]);
    let maxSpan = 1;
    for (const heads of [S.gold_heads, S.predicted_heads]) heads.forEach((h, i) => { if (h >= 0) maxSpan = Math.max(maxSpan, span(h, i)); });
    // An arc's height grows with its span, so nested arcs never cross at the top.
    const H = Math.min(240, Math.max(60, maxSpan * 0.3));
    const height = (d) => 14 + ((H - 14) * d) / maxSpan;
    const top = H + 24, rowH = 22, depthTop = top + rowH + 8, bottom = depthTop + 40;
    const total = bottom + H + 16;
    const root = svg("svg", { width, height: total, "data-testid": "structural-arcs" });
    const arcsGroup = svg("g", {});
    const items = [];
    function arc(a, b, above, cls, color, dash) {
      const x1 = xs[a], x2 = xs[b], y = above ? top - 2 : bottom + 2;
      const hgt = height(Math.abs(x2 - x1)) * (above ? -1 : 1);
      const path = svg("path", { d: `M ${x1} ${y} C ${x1} ${y + hgt * 1.33}, ${x2} ${y + hgt * 1.33}, ${x2} ${y}`, fill: "none", stroke: color, "stroke-width": 1.6, "stroke-dasharray": dash || null, class: cls });
      items.push({ path, a, b });
      arcsGroup.append(path);
    }
    S.gold_heads.forEach((h, i) => { if (h >= 0) arc(h, i, true, "gold", "#1f77b4", predEdges.has(key(h, i)) ? null : "5 3"); });
    S.predicted_heads.forEach((h, i) => { if (h >= 0) arc(h, i, false, "pred", goldEdges.has(key(h, i)) ? "#2b8a3e" : "#d62728"); });
    root.append(svg("text", { x: 12, y: 14, "font-weight": 600 }, "gold token tree"));
    root.append(svg("text", { x: 12, y: total - 4, "font-weight": 600 }, "predicted tree (minimum spanning tree of the predicted distances)"));
    root.append(arcsGroup);
    root.append(svg("text", { x: 4, y: top + 15, fill: "#5d6677" }, "tokens"));
    root.append(svg("text", { x: 4, y: depthTop + 22, fill: "#5d6677" }, "depths"));
    const maxDepth = Math.max(1, ...S.gold_depths, ...S.predicted_depths);
    toks.forEach((t, i) => {
      const g = svg("g", { "data-token": i, style: "cursor:default" });
      g.append(svg("rect", { x: xs[i] - ws[i] / 2, y: top, width: ws[i], height: rowH, rx: 3, fill: i === 0 ? "#fff3c4" : "#f6f7f9", stroke: "#d8dce4" }));
      const text = t.text.length > 24 ? t.text.slice(0, 23) + "\u2026" : t.text;
      g.append(svg("text", { x: xs[i], y: top + 15, "text-anchor": "middle", style: "font:12px ui-monospace,'DejaVu Sans Mono',monospace" }, text.replace(/\n/g, "\u21b5")));
      // Depths: gold (blue) and predicted (grey) bars under the token, on one scale.
      const bw = Math.min(8, ws[i] / 3);
      const bar = (d, dx, color) => svg("rect", { x: xs[i] + dx, y: depthTop + 36 - (36 * d) / maxDepth, width: bw, height: (36 * d) / maxDepth, fill: color });
      g.append(bar(S.gold_depths[i], -bw - 1, "#1f77b4"), bar(Math.max(0, S.predicted_depths[i]), 1, "#9aa3b2"));
      g.addEventListener("mousemove", (evt) => {
        for (const it of items) it.path.setAttribute("stroke-width", it.a === i || it.b === i ? 3.2 : 1.6);
        showTip(evt, `#${i} ${JSON.stringify(t.text)} (${t.type})\ngold head ${S.gold_heads[i]}, tree head ${S.predicted_heads[i]}\ngold depth ${S.gold_depths[i]}, predicted depth ${fmt(S.predicted_depths[i], 2)}`);
      });
      g.addEventListener("mouseleave", () => { for (const it of items) it.path.setAttribute("stroke-width", 1.6); hideTip(); });
      root.append(g);
    });
    const legend = el("div", { class: "note" },
      el("span", { class: "swatch", style: "background:#1f77b4" }), "gold edge recovered (solid) or missed (dashed)",
      el("span", { class: "swatch", style: "background:#2b8a3e" }), "predicted edge in the gold tree",
      el("span", { class: "swatch", style: "background:#d62728" }), "predicted edge not in it",
      el("span", { class: "swatch", style: "background:#1f77b4" }), "gold depth",
      el("span", { class: "swatch", style: "background:#9aa3b2" }), `predicted depth (bars up to ${fmt(maxDepth, 1)}); hover a token for its heads and depths`);
    return el("div", {}, el("div", { class: "scroll", style: "max-height:none" }, root), legend);
  }
  section("trees", "Gold and predicted token trees", arcs());

  // ---------------------------------------------------------------- matrices
  // One colour scale for both (the probe is fitted to the gold distances' units).
  let vmax = 1;
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) vmax = Math.max(vmax, S.gold_distance[i][j], S.predicted_distance[i][j]);
  function matrix(title, values, marks, testId) {
    const showLabels = n <= 60;
    let longest = 1;
    for (let i = 0; i < n; i++) longest = Math.max(longest, label(i).length);
    const margin = showLabels ? Math.min(130, 12 + 7 * longest) : 36;
    const cell = Math.max(1, Math.min(22, Math.floor(520 / Math.max(n, 1))));
    const size = cell * n;
    const dpr = window.devicePixelRatio || 1;
    const W = margin + size + 4, Hh = margin + size + 4;
    const canvas = el("canvas", { width: Math.round(W * dpr), height: Math.round(Hh * dpr), style: `width:${W}px;height:${Hh}px;border:none`, "data-testid": testId });
    const ctx = canvas.getContext("2d");
    ctx.scale(dpr, dpr);
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) {
      const c = viridis(values[i][j] / vmax);
      ctx.fillStyle = `rgb(${c[0]},${c[1]},${c[2]})`;
      ctx.fillRect(margin + j * cell, margin + i * cell, cell, cell);
    }
    if (marks && cell >= 4) {
      ctx.fillStyle = "#fff";
      for (const e of marks) {
        const [a, b] = e.split("-").map(Number);
        for (const [i, j] of [[a, b], [b, a]]) {
          ctx.beginPath();
          ctx.arc(margin + (j + 0.5) * cell, margin + (i + 0.5) * cell, Math.max(1.2, cell / 6), 0, 2 * Math.PI);
          ctx.fill();
        }
      }
    }
    ctx.strokeStyle = "#d8dce4";
    ctx.strokeRect(margin - 0.5, margin - 0.5, size + 1, size + 1);
    ctx.fillStyle = "#1d2330";
    ctx.font = `${Math.min(12, Math.max(8, cell - 2))}px ui-monospace, monospace`;
    if (showLabels) {
      ctx.textBaseline = "middle";
      ctx.textAlign = "right";
      for (let i = 0; i < n; i++) ctx.fillText(label(i), margin - 4, margin + (i + 0.5) * cell, margin - 8);
      for (let j = 0; j < n; j++) {
        ctx.save();
        ctx.translate(margin + (j + 0.5) * cell, margin - 4);
        ctx.rotate(-Math.PI / 2);
        ctx.textAlign = "left";
        ctx.fillText(label(j), 0, 0, margin - 8);
        ctx.restore();
      }
    } else {
      ctx.textAlign = "right";
      ctx.textBaseline = "middle";
      const step = Math.ceil(n / 10);
      for (let i = 0; i < n; i += step) ctx.fillText(String(i), margin - 4, margin + (i + 0.5) * cell);
      ctx.textAlign = "center";
      ctx.textBaseline = "bottom";
      for (let j = 0; j < n; j += step) ctx.fillText(String(j), margin + (j + 0.5) * cell, margin - 4);
    }
    canvas.addEventListener("mousemove", (evt) => {
      const r = canvas.getBoundingClientRect();
      const j = Math.floor((evt.clientX - r.left - margin) / cell), i = Math.floor((evt.clientY - r.top - margin) / cell);
      if (i < 0 || j < 0 || i >= n || j >= n) return hideTip();
      showTip(evt, `#${i} ${label(i)} \u2013 #${j} ${label(j)}\ngold ${S.gold_distance[i][j]}, predicted ${fmt(S.predicted_distance[i][j], 2)}` +
        (goldEdges.has(key(i, j)) ? "\na gold edge" : "") + (predEdges.has(key(i, j)) ? "\nan edge of the predicted tree" : ""));
    });
    canvas.addEventListener("mouseleave", hideTip);
    return el("div", { class: "mat" }, el("h4", { text: title }), canvas);
  }
  const goldName = S.target === "ast" ? "Gold AST distance" : "Gold token-tree distance";
  section("matrices", "Distance matrices",
    el("div", { class: "mats" },
      matrix(goldName, S.gold_distance, null, "matrix-gold"),
      matrix(`Predicted distance ||B(h_i - h_j)||\u00b2, hidden state ${S.hidden_state.distance}`, S.predicted_distance, predEdges, "matrix-predicted")),
    el("div", { class: "note", text: `colour: viridis from 0 (dark) to ${fmt(vmax, 2)} (yellow), one scale for both; white dots: the predicted tree's edges. Hover a cell for both values.` }));
  document.body.setAttribute("data-structural-ready", "1");
})();
