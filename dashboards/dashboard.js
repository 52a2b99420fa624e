// Renders the tsattn dashboard from the JSON payload embedded in the page. No libraries, no network:
// every chart is SVG drawn here. Any error is shown on the page (and marks it failed for tests).
"use strict";

const SVG_NS = "http://www.w3.org/2000/svg";
const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22"];

function showError(message) {
  const box = document.getElementById("errors");
  box.hidden = false;
  box.textContent += message + "\n";
  document.body.dataset.rendered = "error";
}
window.addEventListener("error", (event) => showError(String(event.message)));

function el(tag, attrs = {}, text) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

function svgEl(tag, attrs = {}) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  return node;
}

function formatNumber(value) {
  if (value === null || value === undefined || Number.isNaN(value)) return "-";
  if (Number.isInteger(value) && Math.abs(value) < 1e6) return String(value);
  const magnitude = Math.abs(value);
  if (magnitude !== 0 && (magnitude < 1e-3 || magnitude >= 1e5)) return value.toExponential(2);
  return value.toPrecision(4);
}

// A line chart: series = [{name, points: [[x, y], ...], color, dash, width}]; a series with
// band: true has points [[x, lower, upper], ...] and is drawn as a shaded area under the lines.
function lineChart(series, { width = 440, height = 220, xLabel = "", yLabel = "", xIsTime = false } = {}) {
  const margin = { left: 52, right: 10, top: 8, bottom: 30 };
  const xs = series.flatMap((s) => s.points.map((p) => p[0]));
  const ys = series.flatMap((s) => s.points.flatMap((p) => p.slice(1))).filter((y) => Number.isFinite(y));
  const svg = svgEl("svg", { width, height, viewBox: `0 0 ${width} ${height}`, class: "chart" });
  if (!xs.length || !ys.length) return svg;
  let [x0, x1] = [Math.min(...xs), Math.max(...xs)];
  let [y0, y1] = [Math.min(...ys), Math.max(...ys)];
  if (x0 === x1) x1 = x0 + 1;
  if (y0 === y1) { y0 -= 1; y1 += 1; }
  const pad = (y1 - y0) * 0.05;
  y0 -= pad; y1 += pad;
  const sx = (x) => margin.left + ((x - x0) / (x1 - x0)) * (width - margin.left - margin.right);
  const sy = (y) => height - margin.bottom - ((y - y0) / (y1 - y0)) * (height - margin.top - margin.bottom);
  svg.appendChild(svgEl("rect", { x: margin.left, y: margin.top, width: width - margin.left - margin.right, height: height - margin.top - margin.bottom, fill: "none", stroke: "#d5dae0" }));
  for (let i = 0; i <= 4; i++) {
    const y = y0 + ((y1 - y0) * i) / 4;
    const tick = svgEl("text", { x: margin.left - 4, y: sy(y) + 3, "text-anchor": "end" });
    tick.textContent = formatNumber(y);
    svg.appendChild(tick);
    const x = x0 + ((x1 - x0) * i) / 4;
    const xt = svgEl("text", { x: sx(x), y: height - margin.bottom + 12, "text-anchor": "middle" });
    xt.textContent = xIsTime ? new Date(x).toISOString().slice(5, 16).replace("T", " ") : formatNumber(Math.round(x * 100) / 100);
    svg.appendChild(xt);
  }
  const label = svgEl("text", { x: (margin.left + width - margin.right) / 2, y: height - 2, "text-anchor": "middle" });
  label.textContent = xLabel;
  svg.appendChild(label);
  const ylabel = svgEl("text", { x: 10, y: margin.top + 8 });
  ylabel.textContent = yLabel;
  svg.appendChild(ylabel);
  for (const s of series.filter((b) => b.band)) {
    const points = s.points.filter((p) => Number.isFinite(p[1]) && Number.isFinite(p[2]));
    if (!points.length) continue;
    const upper = points.map((p, i) => `${i ? "L" : "M"}${sx(p[0]).toFixed(1)},${sy(p[2]).toFixed(1)}`).join("");
    const lower = points.slice().reverse().map((p) => `L${sx(p[0]).toFixed(1)},${sy(p[1]).toFixed(1)}`).join("");
    const area = svgEl("path", { d: upper + lower + "Z", fill: s.color, "fill-opacity": 0.18, stroke: "none", class: "band" });
    const title = svgEl("title");
    title.textContent = s.name;
    area.appendChild(title);
    svg.appendChild(area);
  }
  for (const s of series.filter((line) => !line.band)) {
    const points = s.points.filter((p) => Number.isFinite(p[1]));
    if (!points.length) continue;
    const d = points.map((p, i) => `${i ? "L" : "M"}${sx(p[0]).toFixed(1)},${sy(p[1]).toFixed(1)}`).join("");
    const path = svgEl("path", { d, fill: "none", stroke: s.color, "stroke-width": s.width || 1.4, class: "series" });
    if (s.dash) path.setAttribute("stroke-dasharray", s.dash);
    const title = svgEl("title");
    title.textContent = s.name;
    path.appendChild(title);
    svg.appendChild(path);
  }
  return svg;
}

function legend(items) {
  const box = el("div", { class: "legend" });
  for (const item of items) {
    const span = el("span");
    const swatch = el("i");
    swatch.style.background = item.color;
    span.appendChild(swatch);
    span.appendChild(document.createTextNode(item.name));
    box.appendChild(span);
  }
  return box;
}

function panel(title, ...children) {
  const box = el("div", { class: "panel" });
  box.appendChild(el("h3", {}, title));
  for (const child of children) box.appendChild(child);
  return box;
}

function renderLeaderboard(data) {
  const body = document.querySelector("#leaderboard .body");
  const table = el("table", { id: "leaderboard-table" });
  const head = el("tr");
  data.columns.forEach((column, index) => {
    const th = el("th", { class: data.text_columns.includes(column) ? "text" : "" }, column);
    th.addEventListener("click", () => sortTable(table, index, th));
    head.appendChild(th);
  });
  table.appendChild(el("thead")).appendChild(head);
  const tbody = table.appendChild(el("tbody"));
  for (const row of data.rows) {
    const tr = el("tr");
    row.forEach((cell, index) => {
      const numeric = typeof cell === "number";
      const percent = numeric && data.percent_columns.includes(data.columns[index]);
      const shown = percent ? (cell * 100).toFixed(1) + "%" : numeric ? formatNumber(cell) : cell === null ? "-" : cell;
      const td = el("td", { class: data.text_columns.includes(data.columns[index]) ? "text" : "" }, shown);
      td.dataset.value = numeric ? String(cell) : "";
      tr.appendChild(td);
    });
    tbody.appendChild(tr);
  }
  body.appendChild(table);
  if (data.apart.length) {
    const note = el("div", { class: "apart" }, `Not averaged (${data.apart.length}): ` + data.apart.map((a) => `${a.run} ${a.status}${a.why ? " (" + a.why + ")" : ""}`).join("; "));
    body.appendChild(note);
  }
}

function sortTable(table, index, th) {
  const ascending = !(th.classList.contains("sorted") && th.classList.contains("asc"));
  table.querySelectorAll("th").forEach((h) => h.classList.remove("sorted", "asc"));
  th.classList.add("sorted");
  if (ascending) th.classList.add("asc");
  const rows = Array.from(table.tBodies[0].rows);
  const key = (row) => {
    const cell = row.cells[index];
    return cell.dataset.value !== "" ? Number(cell.dataset.value) : cell.textContent;
  };
  rows.sort((a, b) => {
    const [x, y] = [key(a), key(b)];
    const order = typeof x === "number" && typeof y === "number" ? x - y : String(x).localeCompare(String(y));
    return ascending ? order : -order;
  });
  rows.forEach((row) => table.tBodies[0].appendChild(row));
}

function renderCurves(curves) {
  const body = document.querySelector("#curves .body");
  const styles = { "train/loss": { dash: "", width: 1.2 }, "val/loss": { dash: "", width: 2 }, "val/loss_tf": { dash: "4 3", width: 1.2 } };
  for (const [model, runs] of Object.entries(curves)) {
    const series = [];
    runs.forEach((run, i) => {
      const color = COLORS[i % COLORS.length];
      for (const [metric, points] of Object.entries(run.series)) {
        series.push({ name: `${run.run} ${metric}`, points, color, dash: styles[metric].dash, width: styles[metric].width });
      }
    });
    const keys = legend(runs.map((run, i) => ({ name: run.run, color: COLORS[i % COLORS.length] })));
    const note = el("div", { class: "legend" }, "thick: val/loss, thin: train/loss, dashed: val/loss_tf");
    body.appendChild(panel(model, keys, note, lineChart(series, { xLabel: "epoch", yLabel: "loss" })));
  }
}

function renderHorizon(horizon) {
  const body = document.querySelector("#horizon .body");
  const series = [];
  const items = [];
  Object.entries(horizon.models).forEach(([model, values], i) => {
    const color = COLORS[i % COLORS.length];
    series.push({ name: model, points: values.map((v, h) => [h + 1, v]), color, width: 2 });
    items.push({ name: model, color });
  });
  const baselineStyles = [{ color: "#6b7280", dash: "5 4" }, { color: "#b45309", dash: "2 3" }];
  Object.entries(horizon.baselines).forEach(([name, values], i) => {
    const style = baselineStyles[i % baselineStyles.length];
    series.push({ name, points: values.map((v, h) => [h + 1, v]), color: style.color, dash: style.dash, width: 1.5 });
    items.push({ name: name + " (dashed)", color: style.color });
  });
  body.appendChild(panel(`test ${horizon.metric} by horizon step`, legend(items), lineChart(series, { width: 900, height: 280, xLabel: "horizon step", yLabel: horizon.metric })));
}

function renderForecasts(forecasts) {
  const body = document.querySelector("#forecasts .body");
  for (const [model, entry] of Object.entries(forecasts)) {
    for (const window of entry.windows) {
      const times = window.time.map((t) => Date.parse(t.replace(" ", "T") + "Z"));
      const series = [
        { name: "actual", points: times.map((t, i) => [t, window.actual[i]]), color: "#111827", width: 1.4 },
        { name: "forecast", points: times.map((t, i) => [t, window.forecast[i]]), color: "#1f77b4", width: 2 },
      ];
      const items = [{ name: "actual", color: "#111827" }, { name: "forecast", color: "#1f77b4" }];
      if (window.band) {  // a quantile model: its widest central interval
        const { label, lower, upper } = window.band;
        series.push({ name: label, band: true, points: times.map((t, i) => [t, lower[i], upper[i]]), color: "#1f77b4" });
        items.push({ name: label, color: "rgba(31, 119, 180, 0.3)" });
      }
      const keys = legend(items);
      body.appendChild(panel(`${model}: ${entry.run}, ${window.title}`, keys, lineChart(series, { xIsTime: true, yLabel: window.target })));
    }
  }
}

function renderAttention(attention) {
  const body = document.querySelector("#attention .body");
  const models = Object.entries(attention);
  if (!models.length) {
    body.appendChild(el("p", { class: "hint" }, "No attention model in this experiment."));
    return;
  }
  for (const [model, entry] of models) {
    const weights = entry.weights;
    const rows = weights.length;
    const cols = weights[0].length;
    const cell = Math.max(2, Math.min(8, Math.floor(420 / cols)));
    const svg = svgEl("svg", { width: cols * cell + 40, height: rows * cell + 24, class: "heatmap" });
    const max = Math.max(...weights.flat());
    weights.forEach((row, r) => {
      row.forEach((w, c) => {
        const shade = Math.round(255 * (1 - w / (max || 1)));
        svg.appendChild(svgEl("rect", { x: 30 + c * cell, y: r * cell, width: cell, height: cell, fill: `rgb(${shade},${shade},255)`, class: "cell" }));
      });
    });
    const xl = svgEl("text", { x: 30, y: rows * cell + 14 });
    xl.textContent = `encoder step 1..${cols} (oldest to newest)`;
    svg.appendChild(xl);
    const yl = svgEl("text", { x: 0, y: 10 });
    yl.textContent = "h=1";
    svg.appendChild(yl);
    body.appendChild(panel(`${model}: ${entry.run}, ${entry.title}`, svg));
  }
}

function renderConfigs(configs) {
  const body = document.querySelector("#configs .body");
  if (!configs.rows.length) {
    body.appendChild(el("p", { class: "hint" }, "The best runs share every setting."));
    return;
  }
  const table = el("table", { class: "configs" });
  const head = el("tr");
  ["setting", ...configs.columns].forEach((c, i) => head.appendChild(el("th", { class: "text" }, c)));
  table.appendChild(el("thead")).appendChild(head);
  const tbody = table.appendChild(el("tbody"));
  for (const row of configs.rows) {
    const tr = el("tr");
    row.forEach((cell, i) => tr.appendChild(el("td", { class: i ? "text diff" : "text" }, cell === null ? "-" : String(cell))));
    tbody.appendChild(tr);
  }
  body.appendChild(table);
}

function render() {
  const data = JSON.parse(document.getElementById("payload").textContent);
  document.getElementById("experiment").textContent = data.experiment;
  document.getElementById("summary").textContent = data.summary;
  renderLeaderboard(data.leaderboard);
  renderCurves(data.curves);
  renderHorizon(data.horizon);
  renderForecasts(data.forecasts);
  renderAttention(data.attention);
  renderConfigs(data.configs);
  if (document.body.dataset.rendered !== "error") document.body.dataset.rendered = "ok";
}

try {
  render();
} catch (error) {
  showError(error && error.stack ? error.stack : String(error));
}
