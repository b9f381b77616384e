// One characteristic: its control chart (the chart type's location and dispersion charts,
// EWMA and CUSUM), the limits in force, the violations, the capability report, and its
// incidents. Reloaded on live events of this characteristic, without a page reload.

import { api, apiAll } from "./api.js";
import { fetchChart, fetchRecentChart, lastPoints, pointStart } from "./charts-data.js";
import { capabilityPanel } from "./capability.js";
import { renderLimits, renderVersions, renderViolations } from "./chart-tables.js";
import { cusumChart, dispersionChart, ewmaChart, locationChart } from "./controlchart.js";
import { characteristicHref, fill, fmt, h, query, valueFormat } from "./dom.js";
import { describeError, failureBox } from "./feedback.js";
import { incidentList } from "./incident-list.js";
import { chartName, dispersionName, formatTime, locationName, stateName, t } from "./i18n.js";
import { tileState } from "./tiles.js";
import { coalesce, every } from "./timing.js";

const RANGES = ["n100", "n300", "n1000", "1h", "8h", "24h", "7d"];
const DEFAULT_RANGE = "n300";

export function mountCharacteristic(container, ctx, id, params) {
  const range = RANGES.includes(params.get("range")) ? params.get("range") : DEFAULT_RANGE;
  const period = params.get("period") || "30d";
  const view = { alive: true, id, range, period, plots: [], record: null, chart: null, status: null };
  // a live point re-reads the chart; long ranges (up to 5,000 points) less often
  const reloadChart = coalesce(() => loadChart(view), range === "n100" || range === "n300" ? 1000 : 4000);
  const reloadIncidents = coalesce(() => loadIncidents(view), 500);
  const reloadCapability = coalesce(() => loadCapability(view), 500);
  const onResize = coalesce(() => {
    drawCharts(view);
    if (view.capabilityPlot) view.capabilityPlot.resize();
  }, 200);
  const stopTimer = every(() => reloadCapability(), 60000);
  window.addEventListener("resize", onResize);

  fill(container, h("p", { class: "loading", text: t("loading") }));
  build(container, view, ctx).catch((err) => fill(container, failureBox(err)));

  return {
    onLive(kind, data) {
      if (!view.alive || !view.record) return;
      const mine = data && (data.characteristic === id || (data.characteristics || []).includes(id));
      if (kind === "refresh") {
        reloadChart();
        reloadIncidents();
        reloadCapability();
      } else if (mine && (kind === "point" || kind === "violation")) {
        reloadChart();
      } else if (mine && kind === "alarm") {
        reloadChart();
        reloadIncidents();
      }
    },
    unmount() {
      view.alive = false;
      for (const job of [reloadChart, reloadIncidents, reloadCapability, onResize]) job.cancel();
      stopTimer();
      window.removeEventListener("resize", onResize);
      destroyPlots(view);
      if (view.capabilityPlot) view.capabilityPlot.destroy();
    },
  };
}

async function build(container, view, ctx) {
  const [record, status] = await apiAll([
    `api/v1/characteristics/${encodeURIComponent(view.id)}`,
    statusPath(view.id),
  ]);
  if (!record.ok) throw record.error;
  if (!view.alive) return;
  view.record = record.value;
  view.status = status.ok ? status.value : null;
  view.ctx = ctx;
  view.el = skeleton(view);
  fill(container, view.el.root);
  renderHeader(view);
  await Promise.all([loadChart(view), loadIncidents(view), loadCapability(view)]);
}

function statusPath(id) {
  return `api/v1/characteristics/${encodeURIComponent(id)}/status`;
}

function skeleton(view) {
  const r = view.record;
  const el = {
    head: h("header", { class: "char-head" }),
    facts: h("div", { class: "char-facts" }),
    limits: h("div", { class: "limits-panel", id: "limits" }),
    charts: h("div", { class: "charts", id: "charts" }),
    chartNotes: h("ul", { class: "notes", id: "chart-notes" }),
    violations: h("div", { class: "violations", id: "violations" }),
    versions: h("div", { class: "versions", id: "limit-versions" }),
    capability: h("div", { class: "capability", id: "capability" }),
    incidents: h("div", { class: "char-incidents", id: "char-incidents" }),
  };
  const rangeSelect = h(
    "select",
    { id: "range", "aria-label": t("char.range") },
    RANGES.map((key) => h("option", { value: key, selected: key === view.range, text: t(`range.${key}`) })),
  );
  rangeSelect.addEventListener("change", () => {
    location.hash = `#/c/${encodeURIComponent(r.id)}${query({ range: rangeSelect.value, period: view.period })}`;
  });
  el.root = h(
    "div",
    { class: "characteristic", "data-characteristic": r.id },
    el.head,
    el.facts,
    h(
      "section",
      { class: "panel" },
      h(
        "div",
        { class: "panel-head" },
        h("h2", { text: t("char.controlChart") }),
        h("label", { class: "inline" }, t("char.range"), " ", rangeSelect),
      ),
      el.limits,
      el.charts,
      el.chartNotes,
    ),
    h(
      "div",
      { class: "two-col" },
      h("section", { class: "panel" }, h("h2", { text: t("char.violations") }), el.violations),
      h("section", { class: "panel" }, h("h2", { text: t("char.versions") }), el.versions),
    ),
    h("section", { class: "panel" }, h("h2", { text: t("char.capability") }), el.capability),
    h("section", { class: "panel" }, h("h2", { text: t("char.incidents") }), el.incidents),
  );
  return el;
}

function renderHeader(view) {
  const r = view.record;
  const s = view.status;
  const kind = tileState(s);
  fill(
    view.el.head,
    h(
      "p",
      { class: "crumbs" },
      h("a", { href: "#/", text: t("nav.overview") }),
      " › ",
      r.line,
      " › ",
      r.process,
    ),
    h("h1", {}, r.name, " ", h("span", { class: "muted", text: r.id })),
    h("span", { class: "state-pill", "data-state": kind, id: "char-state", text: stateName(kind) }),
  );
  const spec = [
    ["LSL", r.lsl],
    [t("char.target"), r.target],
    ["USL", r.usl],
  ].filter(([, v]) => v !== null);
  fill(
    view.el.facts,
    fact(t("char.chart"), chartName(r.chart, r.subgroup_size)),
    fact(
      t("char.spec"),
      spec.length ? spec.map(([k, v]) => `${k} ${fmt(v)}`).join(" · ") + ` ${r.unit}` : t("char.noSpec"),
    ),
    fact(t("char.rules"), r.rules.join(", ")),
    fact(
      t("char.last"),
      s && s.last ? `${valueFormat(r)(s.last.value)} ${r.unit} · ${formatTime(s.last.time, true)}` : "–",
    ),
    s && !s.limits ? fact(t("char.baseline"), `${s.baseline.collected} / ${s.baseline.needed}`) : null,
    fact(t("char.source"), r.source_kind ? `${r.source_kind}: ${r.source_address}` : t("char.push")),
  );
}

function fact(label, value) {
  return h(
    "div",
    { class: "fact" },
    h("span", { class: "label", text: label }),
    h("span", { class: "fact-value", text: value }),
  );
}

async function loadChart(view) {
  const r = view.record;
  let status;
  try {
    status = await api(statusPath(r.id), { revalidate: true });
  } catch (err) {
    status = view.status;
  }
  if (!view.alive) return;
  view.status = status;
  renderHeader(view);
  let chart;
  try {
    chart = await readChart(view, status);
  } catch (err) {
    fill(view.el.charts, h("p", { class: "form-error", text: describeError(err) }));
    return;
  }
  if (!view.alive) return;
  view.chart = chart;
  renderLimits(view.el.limits, chart, view.status);
  drawCharts(view);
  renderViolations(view.el.violations, chart);
  renderVersions(view.el.versions, chart);
}

async function readChart(view, status) {
  const r = view.record;
  const count = view.range.startsWith("n") ? Number(view.range.slice(1)) : null;
  if (count === null) return fetchChart(r.id, { period: view.range });
  if (!status || !status.last) return null;
  const known = view.chart && view.chart.points.length >= count ? view.chart : null;
  if (known) {
    const from = known.points[known.points.length - count];
    return lastPoints(await fetchChart(r.id, { start: pointStart(from) }), count);
  }
  return fetchRecentChart(r.id, count, r.subgroup_size, new Date(status.last.time));
}

function destroyPlots(view) {
  for (const plot of view.plots) plot.destroy();
  view.plots = [];
}

function drawCharts(view) {
  if (!view.alive || !view.el) return;
  destroyPlots(view);
  const chart = view.chart;
  const el = view.el.charts;
  if (!chart || !chart.points.length) {
    fill(el, h("p", { class: "muted empty", id: "no-points", text: t("char.noPoints") }));
    fill(view.el.chartNotes);
    return;
  }
  const width = Math.max(320, el.clientWidth || view.el.root.clientWidth || 800);
  const box = (name) =>
    h("div", { class: "chart-box", id: `chart-${name}`, "data-points": chart.points.length });
  const names = (title) => ({
    title,
    value: t("chart.value"),
    center: t("chart.center"),
    signals: t("chart.signals"),
  });
  const boxes = { location: box("location"), dispersion: box("dispersion") };
  if (chart.ewma && chart.ewma.points.length) boxes.ewma = box("ewma");
  if (chart.cusum && chart.cusum.points.length) boxes.cusum = box("cusum");
  fill(el, Object.values(boxes));
  const violations = chart.points.filter((p) => p.violations.length).length;
  boxes.location.dataset.violations = String(violations);
  view.plots.push(
    locationChart(
      boxes.location,
      chart,
      names(locationName(chart.location_chart, chart.subgroup_size)),
      width,
    ),
  );
  view.plots.push(
    dispersionChart(boxes.dispersion, chart, names(dispersionName(chart.dispersion_chart)), width),
  );
  if (boxes.ewma)
    view.plots.push(
      ewmaChart(boxes.ewma, chart, names(`EWMA (λ ${chart.ewma.lam}, L ${chart.ewma.L})`), width),
    );
  if (boxes.cusum)
    view.plots.push(
      cusumChart(boxes.cusum, chart, names(`CUSUM (k ${chart.cusum.k}, h ${chart.cusum.h})`), width),
    );
  const notes = [...chart.notes];
  if (chart.pagesSkipped) notes.unshift(t("char.latestPage", { pages: chart.pagesSkipped }));
  fill(
    view.el.chartNotes,
    notes.map((n) => h("li", { text: n })),
  );
}

async function loadIncidents(view) {
  const el = view.el.incidents;
  if (el.querySelector(".incident-panel:not([hidden]) form")) return; // someone is typing
  let alarms;
  try {
    alarms = await api(`api/v1/alarms${query({ characteristic: view.id, state: "all", limit: 20 })}`);
  } catch (err) {
    fill(el, h("p", { class: "form-error", text: describeError(err) }));
    return;
  }
  if (!view.alive) return;
  fill(
    el,
    h("p", {}, h("a", { href: `#/incidents${query({ state: "all" })}`, text: t("char.allIncidents") })),
    incidentList(alarms, { onChanged: () => loadIncidents(view) }),
  );
}

async function loadCapability(view) {
  const el = view.el.capability;
  const r = view.record;
  const periodSelect = h(
    "select",
    { id: "cap-period", "aria-label": t("char.period") },
    ["24h", "7d", "30d", "90d"].map((p) =>
      h("option", { value: p, selected: p === view.period, text: t(`period.${p}`) }),
    ),
  );
  periodSelect.addEventListener("change", () => {
    location.hash = `${characteristicHref(r.id)}${query({ range: view.range, period: periodSelect.value })}`;
  });
  const head = h("label", { class: "inline" }, t("char.period"), " ", periodSelect);
  let report;
  try {
    report = await api(
      `api/v1/characteristics/${encodeURIComponent(r.id)}/capability${query({ period: view.period })}`,
    );
  } catch (err) {
    if (view.alive)
      fill(el, head, h("p", { class: "muted", id: "cap-unavailable", text: describeError(err) }));
    return;
  }
  if (!view.alive) return;
  if (view.capabilityPlot) view.capabilityPlot.destroy();
  const { element, plot } = capabilityPanel(report, r.unit);
  view.capabilityPlot = plot;
  fill(el, head, element);
  plot.finish();
}
