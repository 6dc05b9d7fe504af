// codeprobe's report: the onsets of each checkpoint series (summary.json's `onsets`), as a
// section of their own after the per-layer curves: per series and method, a row x step grid of
// the paired difference to the first checkpoint (coloured by the side its 95% interval lies on),
// the onset boxed, and the onset's step and direction. Reads the page's data; fetches nothing.
"use strict";
(function () {
  const DATA = JSON.parse(document.getElementById("codeprobe-data").textContent);
  const O = DATA.onsets;
  if (!O || !O.records || !O.records.length) return;

  function el(tag, attrs, ...kids) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined) continue;
      if (k === "text") node.textContent = v;
      else node.setAttribute(k, v);
    }
    for (const kid of kids) if (kid !== null && kid !== undefined) node.append(kid);
    return node;
  }
  const finite = (v) => v !== null && v !== undefined && Number.isFinite(v);
  const signed = (v) => (finite(v) ? (v >= 0 ? "+" : "") + v.toFixed(3) : "n/a");
  const interval = (d) => (d.ci && finite(d.ci[0]) ? `${signed(d.mean)} [${signed(d.ci[0])}, ${signed(d.ci[1])}]` : `${signed(d.mean)} (no interval)`);
  const side = (d) => (d.ci && finite(d.ci[0]) ? (d.ci[0] > 0 ? 1 : d.ci[1] < 0 ? -1 : 0) : 0);
  const ARROW = { up: "\u25b2", down: "\u25bc" };
  const COLOUR = { 1: "#cfe3f7", "-1": "#fbd9c9", 0: "#f3f4f6" };

  // One grid per (run, series, language, dataset, method), in the records' order.
  const groups = new Map();
  for (const r of O.records) {
    const key = [r.run || "", r.series, r.language, r.dataset, r.method].join("\u0000");
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key).push(r);
  }
  const sec = el("section", { id: "onsets", "data-testid": "onsets" }, el("h2", { text: "Onsets over training" }),
    el("p", { class: "note", text: `Rule \u201c${O.rule.name}\u201d: ${O.rule.text}. Cells: score at that step minus score at the first ` +
      "checkpoint, the mean per-snippet difference with its paired 95% bootstrap interval (hover); blue: the interval lies above 0, " +
      "orange: below, grey: it contains 0; boxed: the onset (\u25b2 up, \u25bc down). Intervals are not corrected for the number " +
      "of steps and rows compared; an onset at the last step is not yet confirmed by a later one." }));
  for (const records of groups.values()) {
    const first = records[0];
    const steps = first.differences.map((d) => d.step);
    const title = `${first.series}${first.run ? ` (${first.run})` : ""}, ${first.language}, ${String(first.dataset).split(/[\\/]/).pop()}: ` +
      `${(O.titles || {})[first.method] || first.method}`;
    const table = el("table", { class: "heat onsets", "data-testid": `onsets-${first.method}` });
    table.append(el("tr", {}, el("th", { class: "l", text: first.index_name }), el("th", { text: "onset" }),
      ...steps.map((s) => el("th", { text: `${s}`, title: `step ${s} minus step ${first.reference_step}` }))));
    for (const r of records) {
      const onset = r.step === null ? "none" : `${r.step} ${ARROW[r.direction]}`;
      const row = el("tr", { "data-index": String(r.index), "data-onset": r.step === null ? "none" : String(r.step) },
        el("th", { class: "l", text: String(r.index) }),
        el("td", { text: onset, title: r.step === null ? "no step departs and stays" : `${r.direction}; ${r.steps_after} later step(s) confirm it` }));
      for (const d of r.differences) {
        const td = el("td", { text: signed(d.mean), title: `step ${d.step} - step ${r.reference_step}: ${interval(d)}, ${d.n} snippets`,
          style: `background:${COLOUR[side(d)]};color:#1d2330;cursor:default` });
        if (d.step === r.step) td.classList.add("chosen");
        row.append(td);
      }
      table.append(row);
    }
    sec.append(el("h3", { text: title }), el("div", { class: "scroll" }, table));
  }
  const main = document.querySelector("main");
  const after = document.getElementById("curves");
  if (after) after.after(sec);
  else main.prepend(sec);
  const link = el("a", { href: "#onsets", text: "Onsets over training" });
  const nav = document.querySelector("nav");
  const curvesLink = nav.querySelector('a[href="#curves"]');
  if (curvesLink) curvesLink.after(link);
  else nav.prepend(link);
})();
