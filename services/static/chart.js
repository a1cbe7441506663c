// A small SVG line chart over time: series, vertical event markers, axes and a legend.
//
// chart.update({series, markers, domain}) redraws everything; the element's data-points
// attribute says how many points the chart was given, so tests and people can tell an empty
// chart from a flat one. The drawing is an <svg role="img"> whose label sums up the latest
// values; each marker is focusable and carries its own tooltip.

const SVG = "http://www.w3.org/2000/svg";
const MARGIN = { top: 14, right: 16, bottom: 26, left: 52 };
const TIME_STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600].map((s) => s * 1000);

export const MARKER_STYLES = {
  concept_drift: { color: "#c62828", dash: "5 3", label: "Drift" },
  concept_drift_warning: { color: "#ef8f00", dash: "2 3", label: "Drift warning" },
  promoted: { color: "#2e7d32", dash: "", label: "Promotion" },
  rolled_back: { color: "#6a1b9a", dash: "", label: "Rollback" },
};

export function clock(ms) {
  return new Date(ms).toLocaleTimeString([], { hour12: false });
}

function svg(name, attributes = {}, text = null) {
  const node = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, String(value));
  if (text !== null) node.textContent = text;
  return node;
}

function segment(x1, y1, x2, y2, attributes) {
  return svg("line", { x1, y1, x2, y2, ...attributes });
}

// Round numbers covering [low, high]: about `count` ticks at 1, 2 or 5 times a power of ten.
function niceTicks(low, high, count = 5) {
  const span = high - low || Math.abs(high) || 1;
  const raw = span / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw);
  const ticks = [];
  for (let t = Math.floor(low / step) * step; t <= high + step * 1e-9; t += step) ticks.push(t);
  return ticks;
}

export class LineChart {
  constructor(element, options) {
    const { label, yFormat = (v) => v.toLocaleString(), yBounds = [null, null] } = options;
    Object.assign(this, { element, label, yFormat, yBounds, fromZero: !!options.fromZero });
    this.data = { series: [], markers: [], domain: [0, 1] };
    this.plot = document.createElement("div");
    this.plot.className = "plot";
    this.legend = document.createElement("figcaption");
    this.legend.className = "legend";
    element.replaceChildren(this.plot, this.legend);
    new ResizeObserver(() => this.draw()).observe(this.plot);
  }

  get points() {
    return this.data.series.reduce((total, s) => total + s.points.length, 0);
  }

  update(data) {
    this.data = data;
    this.element.dataset.points = String(this.points);
    this.draw();
    this.drawLegend();
  }

  visibleMarkers() {
    const [x0, x1] = this.data.domain;
    return this.data.markers.filter((m) => m.x >= x0 && m.x <= x1);
  }

  draw() {
    const width = this.plot.clientWidth;
    const height = this.plot.clientHeight;
    if (!width || !height) return;
    const root = svg("svg", { width, height, role: "img", "aria-label": this.summary() });
    root.append(svg("title", {}, this.summary()));
    if (this.points === 0) {
      root.append(svg("text", { x: width / 2, y: height / 2, class: "waiting" }, "waiting for data…"));
      this.plot.replaceChildren(root);
      return;
    }
    const frame = {
      left: MARGIN.left,
      right: width - MARGIN.right,
      top: MARGIN.top,
      bottom: height - MARGIN.bottom,
    };
    const [x0, x1] = this.data.domain;
    const [yLow, yHigh] = this.yRange();
    const x = (t) => frame.left + ((t - x0) / (x1 - x0 || 1)) * (frame.right - frame.left);
    const y = (v) => frame.bottom - ((v - yLow) / (yHigh - yLow || 1)) * (frame.bottom - frame.top);
    root.append(this.axes(frame, x, y, [yLow, yHigh]));
    for (const series of this.data.series) root.append(this.line(series, x, y));
    for (const marker of this.visibleMarkers()) root.append(this.marker(marker, x(marker.x), frame));
    this.plot.replaceChildren(root);
  }

  yRange() {
    const values = this.data.series.flatMap((s) => s.points.map((p) => p[1]));
    let low = Math.min(...values);
    let high = Math.max(...values);
    const pad = (high - low) * 0.1 || Math.abs(high) * 0.05 || 1;
    low = this.fromZero ? Math.min(0, low) : low - pad;
    high += pad;
    const [floor, ceiling] = this.yBounds;
    if (floor !== null) low = Math.max(low, floor);
    if (ceiling !== null) high = Math.min(high, ceiling);
    const ticks = niceTicks(low, high);
    return [Math.min(ticks[0], low), Math.max(ticks[ticks.length - 1], high)];
  }

  axes(frame, x, y, [yLow, yHigh]) {
    const group = svg("g", { class: "axes", "aria-hidden": "true" });
    for (const tick of niceTicks(yLow, yHigh)) {
      if (tick < yLow || tick > yHigh) continue;
      group.append(segment(frame.left, y(tick), frame.right, y(tick), { class: "grid" }));
      const text = this.yFormat(tick);
      group.append(svg("text", { x: frame.left - 6, y: y(tick) + 4, class: "tick y" }, text));
    }
    const [x0, x1] = this.data.domain;
    const step = TIME_STEPS.find((s) => (x1 - x0) / s <= 6) ?? TIME_STEPS[TIME_STEPS.length - 1];
    for (let t = Math.ceil(x0 / step) * step; t <= x1; t += step) {
      group.append(segment(x(t), frame.bottom, x(t), frame.bottom + 4, { class: "axis" }));
      group.append(svg("text", { x: x(t), y: frame.bottom + 17, class: "tick x" }, clock(t)));
    }
    group.append(segment(frame.left, frame.bottom, frame.right, frame.bottom, { class: "axis" }));
    return group;
  }

  line(series, x, y) {
    const [x0] = this.data.domain;
    const shown = series.points.filter((p) => p[0] >= x0);
    const path = shown.map((p, i) => `${i ? "L" : "M"}${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`);
    const group = svg("g", { class: "series" });
    group.append(svg("path", {
      d: path.join(""),
      fill: "none",
      stroke: series.color,
      "stroke-width": series.width ?? 2,
      "stroke-dasharray": series.dash ?? "",
      "stroke-linejoin": "round",
    }));
    const last = shown[shown.length - 1]; // a dot on the latest value, so one point shows too
    if (last) group.append(svg("circle", { cx: x(last[0]), cy: y(last[1]), r: 3, fill: series.color }));
    return group;
  }

  marker(marker, at, frame) {
    const style = MARKER_STYLES[marker.kind] ?? { color: "#555", dash: "" };
    const group = svg("g", { class: "marker", tabindex: 0, "data-kind": marker.kind });
    group.append(svg("title", {}, `${clock(marker.x)} · ${marker.text}`));
    group.append(segment(at, frame.top, at, frame.bottom, {
      stroke: style.color,
      "stroke-width": 1.5,
      "stroke-dasharray": style.dash,
    }));
    group.append(svg("path", { d: `M${at - 5},${frame.top - 8}h10l-5,7z`, fill: style.color }));
    if (marker.label) {
      const attributes = { x: at + 4, y: frame.top + 10, fill: style.color, class: "marker-label" };
      group.append(svg("text", attributes, marker.label));
    }
    return group;
  }

  drawLegend() {
    const items = this.data.series.map((s) => ({ text: s.name, color: s.color, dash: s.dash }));
    const kinds = new Set(this.visibleMarkers().map((m) => m.kind));
    for (const [kind, style] of Object.entries(MARKER_STYLES)) {
      if (kinds.has(kind)) items.push({ text: style.label, ...style, marker: true });
    }
    this.legend.replaceChildren(...items.map((item) => {
      const entry = document.createElement("span");
      entry.className = "key";
      const swatch = svg("svg", { width: 22, height: 14, "aria-hidden": "true" });
      const stroke = { stroke: item.color, "stroke-dasharray": item.dash ?? "" };
      if (item.marker) {
        swatch.append(svg("path", { d: "M6,0h10l-5,6z", fill: item.color }));
        swatch.append(segment(11, 5, 11, 14, { ...stroke, "stroke-width": 2 }));
      } else {
        swatch.append(segment(0, 7, 22, 7, { ...stroke, "stroke-width": 3 }));
      }
      entry.append(swatch, document.createTextNode(item.text));
      return entry;
    }));
  }

  summary() {
    const latest = this.data.series
      .filter((s) => s.points.length)
      .map((s) => `${s.name} ${this.yFormat(s.points[s.points.length - 1][1])}`);
    const state = latest.length ? `latest: ${latest.join(", ")}` : "no data yet";
    return `${this.label}; ${state}; ${this.visibleMarkers().length} markers`;
  }
}
