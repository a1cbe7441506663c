// The dashboard page: polls a stream's overview, keeps the series, draws them.
//
// The API key comes from ?key= (then kept in localStorage and removed from the address bar) or
// from the form shown after a 401/403; without one, requests go out bare, which a service that
// allows anonymous reads accepts. window.meanderDashboard tells tests what was received.

import { LineChart, clock } from "./chart.js";
import { renderAlerts, renderLineage } from "./panels.js";

const WINDOW_MS = 10 * 60 * 1000; // how much history the charts keep
const PALETTE = ["#1565c0", "#ef6c00", "#00897b", "#8e24aa", "#d81b60", "#6d4c41", "#0097a7", "#5c6bc0"];
const MARKER_LABELS = { promoted: (v) => `v${v}`, rolled_back: (v) => `↩ v${v}` };
const KEY_ITEM = "meander.apiKey";
const $ = (id) => document.getElementById(id);

class AuthError extends Error {}

const state = {
  key: takeKey(),
  streams: [],
  stream: new URLSearchParams(location.search).get("stream"),
  refreshMs: 2000,
  polls: 0,
  errors: 0,
  lastError: null,
  timer: null,
};
let kept = emptyHistory();

const charts = {
  throughput: new LineChart($("throughput-chart"), {
    label: "Throughput, per second",
    fromZero: true,
    yFormat: compact,
  }),
  metric: new LineChart($("metric-chart"), { label: "Rolling metric per model version" }),
};

// What the page received, for tests and for a curious person with the browser's console open.
window.meanderDashboard = { state, kept, charts: { throughput: 0, metric: 0 }, overview: null };

function takeKey() {
  const params = new URLSearchParams(location.search);
  const given = params.get("key");
  if (given) {
    localStorage.setItem(KEY_ITEM, given);
    params.delete("key");
    replaceQuery(params.toString());
  }
  return localStorage.getItem(KEY_ITEM);
}

function replaceQuery(query) {
  window.history.replaceState(null, "", location.pathname + (query ? `?${query}` : ""));
}

function emptyHistory() {
  return { last: null, events: [], labels: [], versions: new Map() };
}

// A refusal's detail is a list of problems ({loc, msg, type}); a 503's is a sentence.
function said(body) {
  const detail = body.detail;
  return Array.isArray(detail) ? detail.map((problem) => problem.msg).join("; ") : detail;
}

async function api(path) {
  const headers = state.key ? { "X-API-Key": state.key } : {};
  const response = await fetch(path, { headers, cache: "no-store" });
  if (response.status === 401 || response.status === 403) {
    const body = await response.json().catch(() => ({}));
    throw new AuthError(said(body) ?? `HTTP ${response.status}`);
  }
  if (!response.ok) {
    const body = await response.json().catch(() => ({}));
    throw new Error(`${response.status}: ${said(body) ?? response.statusText}`);
  }
  return response.json();
}

async function start() {
  try {
    const index = await api("/v1/streams");
    state.streams = index.streams.map((s) => s.name);
    if (!state.streams.length) return setStatus("no stream is configured", "error");
    if (!state.streams.includes(state.stream)) state.stream = state.streams[0];
    showPicker();
    poll();
  } catch (error) {
    failed(error, start);
  }
}

async function poll() {
  clearTimeout(state.timer);
  const stream = state.stream;
  try {
    const view = await api(`/v1/streams/${encodeURIComponent(stream)}/overview`);
    if (stream !== state.stream) return; // the picker moved on while this was in flight
    state.polls += 1;
    state.lastError = null;
    record(view);
    render(view);
    setStatus(`live · updated ${clock(view.at_ms)}`, "ok");
  } catch (error) {
    if (error instanceof AuthError) return failed(error, poll);
    failed(error, null);
  }
  state.timer = setTimeout(poll, state.refreshMs);
}

function failed(error, retry) {
  state.errors += 1;
  state.lastError = String(error.message ?? error);
  if (error instanceof AuthError) {
    $("key-reason").textContent = `${state.lastError}. Enter an API key with the read scope.`;
    $("key-form").hidden = false;
    $("key-form").onsubmit = (event) => {
      event.preventDefault();
      state.key = $("key").value.trim();
      localStorage.setItem(KEY_ITEM, state.key);
      $("key-form").hidden = true;
      retry();
    };
    return setStatus("an API key is needed", "error");
  }
  setStatus(`no fresh data: ${state.lastError}`, "error");
  if (retry) state.timer = setTimeout(retry, state.refreshMs);
}

// Turn one snapshot into points: rates from the change since the last one, metrics as they are.
function record(view) {
  const last = kept.last;
  if (last && view.at_ms <= last.at_ms) return; // a shared snapshot seen already
  if (last && view.throughput.events >= last.throughput.events) {
    const seconds = (view.at_ms - last.at_ms) / 1000;
    kept.events.push([view.at_ms, (view.throughput.events - last.throughput.events) / seconds]);
    kept.labels.push([view.at_ms, (view.throughput.labels - last.throughput.labels) / seconds]);
  }
  for (const version of view.versions) {
    if (version.rolling === null) continue;
    if (!kept.versions.has(version.version)) kept.versions.set(version.version, []);
    kept.versions.get(version.version).push([view.at_ms, version.rolling]);
  }
  const since = view.at_ms - WINDOW_MS;
  for (const points of [kept.events, kept.labels, ...kept.versions.values()]) {
    while (points.length && points[0][0] < since) points.shift();
  }
  kept.last = view;
}

function render(view) {
  const domain = [Math.max(firstPoint(view.at_ms), view.at_ms - WINDOW_MS), view.at_ms];
  const statuses = new Map(view.lineage.map((v) => [v.version, v.status]));
  const metricName = view.metric === "mae" ? "MAE" : "accuracy";
  const format = view.metric === "mae" ? (v) => v.toPrecision(3) : (v) => `${(v * 100).toFixed(1)}%`;
  charts.metric.yFormat = format;
  charts.metric.yBounds = view.metric === "mae" ? [0, null] : [0, 1];
  charts.throughput.update({
    domain,
    markers: [],
    series: [
      { name: "events / s", color: PALETTE[0], points: kept.events },
      { name: "labels / s", color: "#90a4ae", points: kept.labels, dash: "4 3" },
    ],
  });
  charts.metric.update({
    domain,
    markers: view.markers.map((m) => ({
      x: m.at_ms,
      kind: m.kind,
      text: m.text,
      label: MARKER_LABELS[m.kind]?.(m.version),
    })),
    // The champion solid and bold; challengers and former champions thin and dashed.
    series: [...kept.versions.entries()].map(([version, points]) => {
      const champion = version === view.champion;
      return {
        name: `v${version} · ${statuses.get(version) ?? "retired"}`,
        color: PALETTE[version % PALETTE.length],
        points,
        width: champion ? 3 : 1.5,
        dash: champion ? "" : "5 3",
      };
    }),
  });
  $("metric-title").textContent = `Rolling ${metricName} per model version`;
  renderFigures(view, format);
  renderAlerts($("alerts"), view.alerts);
  renderLineage($("lineage"), view.lineage, view.champion);
  window.meanderDashboard.overview = view;
  const points = { throughput: charts.throughput.points, metric: charts.metric.points };
  window.meanderDashboard.charts = points;
}

function firstPoint(now) {
  const firsts = [kept.events, ...kept.versions.values()].filter((p) => p.length).map((p) => p[0][0]);
  return firsts.length ? Math.min(...firsts) : now - 1000;
}

function renderFigures(view, format) {
  const rate = kept.events[kept.events.length - 1];
  $("kpi-rate").textContent = rate ? compact(rate[1]) : "–";
  $("kpi-events").textContent = view.throughput.events.toLocaleString();
  $("kpi-learned").textContent = view.throughput.learned.toLocaleString();
  $("kpi-champion").textContent = view.champion === null ? "none yet" : `v${view.champion}`;
  $("kpi-metric-label").textContent = `Rolling ${view.metric === "mae" ? "MAE" : "accuracy"} (served)`;
  $("kpi-metric").textContent = view.served?.rolling == null ? "–" : format(view.served.rolling);
  const drifts = view.markers.filter((m) => m.kind === "concept_drift");
  $("kpi-drift").textContent = drifts.length ? clock(drifts[drifts.length - 1].at_ms) : "none";
}

function showPicker() {
  const select = $("stream");
  const options = state.streams.map((name) => new Option(name, name, false, name === state.stream));
  select.replaceChildren(...options);
  $("picker").hidden = state.streams.length < 2;
  $("stream-name").textContent = state.streams.length < 2 ? `stream ${state.stream}` : "";
  select.onchange = () => {
    state.stream = select.value;
    kept = emptyHistory();
    window.meanderDashboard.kept = kept;
    replaceQuery(new URLSearchParams({ stream: state.stream }).toString());
    poll();
  };
}

function setStatus(text, kind) {
  $("status").textContent = text;
  $("status").className = `live ${kind}`;
}

function compact(value) {
  return value.toLocaleString(undefined, { maximumFractionDigits: value < 10 ? 1 : 0 });
}

start();
