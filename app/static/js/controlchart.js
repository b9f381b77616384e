// Control charts drawn with the vendored uPlot (global `uPlot`): the location chart
// (I or X-bar) with centre line, limits, the +-1 and 2 sigma zones and limit-version
// boundaries, the dispersion chart (MR, R or S), and the EWMA and CUSUM charts. Points
// are plotted by sequence (x = point index); the axis and the legend show their times.

import { limitsByVersion } from "./charts-data.js";
import { fmt } from "./dom.js";
import { formatTime } from "./i18n.js";

const C = {
  value: "#3b4a66",
  center: "#1f9d55",
  limit: "#d64545",
  signal: "#d64545",
  zoneA: "rgba(214, 69, 69, 0.08)",
  zoneB: "rgba(217, 162, 27, 0.10)",
  zoneC: "rgba(31, 157, 85, 0.07)",
  version: "#5b6475",
  ewma: "#7048e8",
  cplus: "#1c7ed6",
  cminus: "#e8590c",
};

function timeLabeler(points) {
  const first = points.length ? new Date(points[0].time) : null;
  const last = points.length ? new Date(points[points.length - 1].time) : null;
  const withDate = first && last && first.toDateString() !== last.toDateString();
  return (i) => {
    const p = points[Math.round(i)];
    return p ? formatTime(p.time, withDate) : "";
  };
}

function baseOptions({ title, width, height, points, series, hooks = {} }) {
  const label = timeLabeler(points);
  return {
    title,
    width,
    height,
    scales: { x: { time: false, range: (u, lo, hi) => [lo - 0.5, hi + 0.5] } },
    axes: [
      {
        space: 90,
        incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000],
        values: (u, splits) => splits.map((i) => (Number.isInteger(i) ? label(i) : "")),
      },
      { size: 70, values: (u, splits) => splits.map((v) => fmt(v, 5)) },
    ],
    series: [
      { label: "#", value: (u, i) => (i === null || i === undefined ? "–" : `${i + 1} · ${label(i)}`) },
      ...series,
    ],
    legend: { live: true },
    cursor: { points: { size: 7 } },
    hooks,
  };
}

const valueFmt = (u, v) => (v === null || v === undefined ? "–" : fmt(v));

function line(label, stroke, extra = {}) {
  return { label, stroke, width: 1.2, points: { show: false }, value: valueFmt, ...extra };
}

function stepped(label, stroke, dash) {
  return line(label, stroke, { dash, paths: uPlot.paths.stepped({ align: 1 }) });
}

function markers(label) {
  return {
    label,
    stroke: C.signal,
    fill: C.signal,
    width: 0,
    paths: () => null,
    points: { show: true, size: 9, stroke: C.signal, fill: C.signal },
    value: valueFmt,
  };
}

/** The points, the limits in force at each (by version) and the violated points. */
function limitData(chart, byVersion, which, valueOf, keys) {
  const at = (p, key) => (p.limit_version === null ? null : (byVersion.get(p.limit_version)?.[key] ?? null));
  const violated = (p) => p.violations.some((v) => v.chart === which);
  const pts = chart.points;
  return [
    pts.map((_, i) => i),
    pts.map(valueOf),
    ...keys.map((key) => pts.map((p) => at(p, key))),
    pts.map((p) => (violated(p) ? valueOf(p) : null)),
  ];
}

/** The value, centre line, UCL, LCL and signal series of a chart with limits. */
function limitSeries(names, pts, size) {
  return [
    line(names.value, C.value, { points: { show: pts.length <= 400, size, fill: C.value } }),
    stepped(names.center, C.center, []),
    stepped("UCL", C.limit, [6, 4]),
    stepped("LCL", C.limit, [6, 4]),
    markers(names.signals),
  ];
}

/** The location (I or X-bar) chart. `names` holds the translated labels. */
export function locationChart(el, chart, names, width) {
  const byVersion = limitsByVersion(chart);
  const pts = chart.points;
  const data = limitData(chart, byVersion, "location", (p) => p.value, ["center", "ucl", "lcl"]);
  const opts = baseOptions({
    title: names.title,
    width,
    height: 280,
    points: pts,
    series: limitSeries(names, pts, 4),
    hooks: {
      drawAxes: [(u) => drawZones(u, chart, byVersion)],
      draw: [
        (u) => drawVersionBoundaries(u, chart),
        (u) => drawRuleLabels(u, chart, "location", (p) => p.value),
      ],
    },
  });
  return new uPlot(opts, data, el);
}

/** The dispersion (MR, R or S) chart. */
export function dispersionChart(el, chart, names, width) {
  const byVersion = limitsByVersion(chart);
  const pts = chart.points;
  const data = limitData(chart, byVersion, "dispersion", (p) => p.dispersion,
    ["dispersion_center", "dispersion_ucl", "dispersion_lcl"]);
  const opts = baseOptions({
    title: names.title,
    width,
    height: 180,
    points: pts,
    series: limitSeries(names, pts, 3),
    hooks: {
      draw: [
        (u) => drawVersionBoundaries(u, chart),
        (u) => drawRuleLabels(u, chart, "dispersion", (p) => p.dispersion),
      ],
    },
  });
  return new uPlot(opts, data, el);
}

/** The EWMA chart: the statistic against its time-varying limits. */
export function ewmaChart(el, chart, names, width) {
  const n = chart.points.length;
  const z = new Array(n).fill(null);
  const ucl = new Array(n).fill(null);
  const lcl = new Array(n).fill(null);
  const hit = new Array(n).fill(null);
  for (const p of chart.ewma.points) {
    z[p.index] = p.value;
    ucl[p.index] = p.ucl;
    lcl[p.index] = p.lcl;
    if (p.signal) hit[p.index] = p.value;
  }
  const opts = baseOptions({
    title: names.title,
    width,
    height: 170,
    points: chart.points,
    series: [
      line("EWMA", C.ewma),
      line("UCL", C.limit, { dash: [6, 4] }),
      line("LCL", C.limit, { dash: [6, 4] }),
      markers(names.signals),
    ],
    hooks: { draw: [(u) => drawVersionBoundaries(u, chart)] },
  });
  return new uPlot(opts, [chart.points.map((_, i) => i), z, ucl, lcl, hit], el);
}

/** The tabular CUSUM chart: C+ upwards, C- downwards, against +-H. */
export function cusumChart(el, chart, names, width) {
  const n = chart.points.length;
  const up = new Array(n).fill(null);
  const down = new Array(n).fill(null);
  const hi = new Array(n).fill(null);
  const lo = new Array(n).fill(null);
  const hit = new Array(n).fill(null);
  for (const p of chart.cusum.points) {
    up[p.index] = p.upper;
    down[p.index] = -p.lower;
    hi[p.index] = p.limit;
    lo[p.index] = -p.limit;
    if (p.signal) hit[p.index] = p.upper > p.limit ? p.upper : -p.lower;
  }
  const opts = baseOptions({
    title: names.title,
    width,
    height: 170,
    points: chart.points,
    series: [
      line("C+", C.cplus),
      line("−C−", C.cminus),
      line("H", C.limit, { dash: [6, 4] }),
      line("−H", C.limit, { dash: [6, 4] }),
      markers(names.signals),
    ],
    hooks: { draw: [(u) => drawVersionBoundaries(u, chart)] },
  });
  return new uPlot(opts, [chart.points.map((_, i) => i), up, down, hi, lo, hit], el);
}

function clipToPlot(u, draw) {
  const { ctx, bbox } = u;
  ctx.save();
  ctx.beginPath();
  ctx.rect(bbox.left, bbox.top, bbox.width, bbox.height);
  ctx.clip();
  draw(ctx, bbox);
  ctx.restore();
}

/** Zones A (2-3 sigma), B (1-2) and C (within 1) of each limit version, under the series. */
function drawZones(u, chart, byVersion) {
  clipToPlot(u, (ctx) => {
    for (const seg of chart.segments) {
      const lim = seg.limit_version === null ? null : byVersion.get(seg.limit_version);
      if (!lim) continue;
      const x0 = u.valToPos(seg.first_index - 0.5, "x", true);
      const x1 = u.valToPos(seg.last_index + 0.5, "x", true);
      const band = (a, b, color) => {
        const y0 = u.valToPos(a, "y", true);
        const y1 = u.valToPos(b, "y", true);
        ctx.fillStyle = color;
        ctx.fillRect(x0, Math.min(y0, y1), x1 - x0, Math.abs(y1 - y0));
      };
      band(lim.plus_2_sigma, lim.ucl, C.zoneA);
      band(lim.lcl, lim.minus_2_sigma, C.zoneA);
      band(lim.plus_1_sigma, lim.plus_2_sigma, C.zoneB);
      band(lim.minus_2_sigma, lim.minus_1_sigma, C.zoneB);
      band(lim.minus_1_sigma, lim.plus_1_sigma, C.zoneC);
    }
  });
}

/** A dashed vertical line where the limit version changes (or Phase I ends), labelled. */
function drawVersionBoundaries(u, chart) {
  const ratio = window.devicePixelRatio || 1;
  clipToPlot(u, (ctx, bbox) => {
    ctx.strokeStyle = C.version;
    ctx.fillStyle = C.version;
    ctx.lineWidth = ratio;
    ctx.setLineDash([4 * ratio, 4 * ratio]);
    ctx.font = `${11 * ratio}px system-ui, sans-serif`;
    chart.segments.forEach((seg) => {
      if (seg.first_index === 0) return; // the range starts inside it: no boundary to show
      const x = Math.round(u.valToPos(seg.first_index - 0.5, "x", true));
      ctx.beginPath();
      ctx.moveTo(x, bbox.top);
      ctx.lineTo(x, bbox.top + bbox.height);
      ctx.stroke();
      const text = seg.limit_version === null ? "Phase I" : `v${seg.limit_version}`;
      ctx.fillText(text, x + 3 * ratio, bbox.top + 12 * ratio);
    });
  });
}

/** The rule numbers next to each point that violates one. */
function drawRuleLabels(u, chart, which, valueOf) {
  const ratio = window.devicePixelRatio || 1;
  clipToPlot(u, (ctx) => {
    ctx.fillStyle = C.signal;
    ctx.font = `bold ${10 * ratio}px system-ui, sans-serif`;
    ctx.textAlign = "center";
    chart.points.forEach((p, i) => {
      const rules = p.violations.filter((v) => v.chart === which).map((v) => v.rule);
      const value = valueOf(p);
      if (!rules.length || value === null) return;
      const x = u.valToPos(i, "x", true);
      const y = u.valToPos(value, "y", true);
      ctx.fillText(rules.join(","), x, y - 8 * ratio);
    });
  });
}
