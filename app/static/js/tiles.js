// The tiles of the overview: one per characteristic, with its last value, state, Cpk with
// its 95 % interval, warnings and a sparkline of the recent points.

import { api } from "./api.js";
import { fetchChart, fetchRecentChart, lastPoints, pointStart } from "./charts-data.js";
import { characteristicHref, fill, fmtIndex, fmtInterval, h, valueFormat } from "./dom.js";
import { errorLine } from "./feedback.js";
import { gradeBadge } from "./grades.js";
import { chartName, formatTime, stateName, t } from "./i18n.js";
import { drawSparkline } from "./sparkline.js";

const SPARK_POINTS = 60;
// live points are drawn at once; the sparkline is re-read at most this often per tile
// (X-bar tiles: their points are subgroup means, which only the chart route computes)
const SPARK_REREAD_MS = { individuals: 15000, subgroups: 5000 };
/** A characteristic's tile (filled in by updateTile once its status is read). */
export function renderTile(state, c) {
  const parts = {
    name: h("span", { class: "tile-name", text: c.name }),
    pill: h("span", { class: "state-pill", text: "…" }),
    value: h("span", { class: "value", text: "–" }),
    time: h("span", { class: "time" }),
    spark: h("canvas", { class: "spark", width: 240, height: 44 }),
    facts: h("div", { class: "tile-facts" }),
    alerts: h("div", { class: "tile-alerts" }),
  };
  parts.el = h(
    "a",
    { class: "tile", href: characteristicHref(c.id), "data-characteristic": c.id, "data-state": "unknown" },
    h("div", { class: "tile-top" }, parts.name, parts.pill),
    h("div", { class: "tile-id" }, c.id, " · ", chartName(c.chart, c.subgroup_size)),
    h(
      "div",
      { class: "tile-value" },
      parts.value,
      " ",
      h("span", { class: "unit", text: c.unit }),
      " ",
      parts.time,
    ),
    parts.spark,
    parts.facts,
    parts.alerts,
  );
  parts.record = c;
  parts.format = valueFormat(c);
  state.tiles.set(c.id, parts);
  return parts.el;
}

/** The state a tile shows: no data, baseline (Phase I), alarm or in control. */
export function tileState(status) {
  if (!status) return "unknown";
  if (!status.last) return "nodata";
  if (!status.limits) return "baseline";
  return status.open_alarms.length ? "alarm" : "ok";
}

/** Show the status (and warnings) held in `state` for one tile. */
export function updateTile(state, id) {
  const parts = state.tiles.get(id);
  const status = state.statuses.get(id);
  if (!parts || !status) return;
  const kind = tileState(status);
  parts.el.dataset.state = kind;
  const acknowledged =
    status.open_alarms.length && status.open_alarms.every((a) => a.state === "acknowledged");
  parts.pill.textContent = kind === "alarm" && acknowledged ? t("state.acknowledged") : stateName(kind);
  parts.value.textContent = status.last ? parts.format(status.last.value) : "–";
  parts.time.textContent = status.last ? formatTime(status.last.time) : "";
  const cap = status.capability;
  const facts = [
    h(
      "span",
      { class: "cpk" },
      "Cpk ",
      h("b", { class: "cpk-value", text: fmtIndex(cap ? cap.cpk : null) }),
      " ",
      h("span", { class: "ci", text: cap ? fmtInterval(cap.cpk_ci) : "" }),
    ),
    kind === "baseline"
      ? h(
          "span",
          { class: "baseline" },
          t("tile.baseline", { n: status.baseline.collected, of: status.baseline.needed }),
        )
      : null,
    status.limits
      ? h("span", { class: "muted", text: t("tile.limits", { v: status.limits.version }) })
      : null,
    status.grade && status.grade.grade ? gradeBadge(status.grade, { small: true }) : null,
  ];
  fill(parts.facts, facts);
  const warnings = state.warnings.filter((w) => w.characteristic === id);
  fill(
    parts.alerts,
    status.open_alarms.length
      ? h("div", {
          class: "alarm-line",
          text: t("tile.alarms", { n: status.open_alarms.length, message: status.open_alarms[0].message }),
        })
      : null,
    warnings.length
      ? h("div", { class: `warning-line severity-${warnings[0].severity}`, text: warnings[0].message })
      : null,
  );
  drawSpark(state, id);
}

function drawSpark(state, id) {
  const parts = state.tiles.get(id);
  const spark = state.sparks.get(id);
  const status = state.statuses.get(id);
  if (!parts) return;
  const points = spark
    ? spark.chart.points.map((p) => ({ value: p.value, violated: p.violations.length > 0 }))
    : [];
  if (spark && spark.live) points.push(...spark.live);
  drawSparkline(parts.spark, points.slice(-SPARK_POINTS), status && status.limits ? status.limits : null);
}

/** Re-read a tile's status, and its sparkline when due (or `force`). */
export async function refreshTile(state, id, force = true) {
  if (!state.alive) return;
  const parts = state.tiles.get(id);
  let status;
  try {
    status = await api(`api/v1/characteristics/${encodeURIComponent(id)}/status`, { revalidate: true });
  } catch (err) {
    if (parts) fill(parts.alerts, h("div", { class: "error-text", text: errorLine(err) }));
    return;
  }
  await showStatus(state, id, status, force);
}

/** Show a status already read (e.g. from the bulk GET /api/v1/status) on its tile. */
export async function showStatus(state, id, status, force = true) {
  if (!state.alive) return;
  state.statuses.set(id, status);
  if (force || sparkDue(state, id)) {
    try {
      await refreshSpark(state, id, status);
    } catch (err) {
      console.warn(`sparkline of ${id}: ${err.message}`); // the tile still shows its status
    }
  }
  if (state.alive) updateTile(state, id);
}

function sparkDue(state, id) {
  const spark = state.sparks.get(id);
  const record = state.tiles.get(id)?.record;
  if (!spark || !record) return true;
  const every = record.subgroup_size === 1 ? SPARK_REREAD_MS.individuals : SPARK_REREAD_MS.subgroups;
  return Date.now() - spark.fetchedAt >= every;
}

async function refreshSpark(state, id, status) {
  const record = state.characteristics.find((c) => c.id === id);
  if (!record || !status.last) return;
  const known = state.sparks.get(id);
  let chart;
  if (known && known.chart.points.length) {
    const from = known.chart.points[Math.max(0, known.chart.points.length - SPARK_POINTS)];
    chart = lastPoints(await fetchChart(id, { start: pointStart(from) }), SPARK_POINTS);
  } else {
    chart = await fetchRecentChart(id, SPARK_POINTS, record.subgroup_size, new Date(status.last.time));
  }
  if (chart) state.sparks.set(id, { chart, live: [], fetchedAt: Date.now() });
}

/** A live point: the value at once, and on the sparkline of individuals. */
export function livePoint(state, data) {
  const parts = state.tiles.get(data.characteristic);
  if (!parts) return;
  parts.value.textContent = parts.format(data.value);
  parts.time.textContent = formatTime(data.time);
  const spark = state.sparks.get(data.characteristic);
  if (spark && parts.record.subgroup_size === 1) {
    spark.live.push({ value: data.value, violated: false, time: data.time });
    drawSpark(state, data.characteristic);
  }
}

/** A live violation: its point turns red on the sparkline. */
export function liveViolation(state, data) {
  const spark = state.sparks.get(data.characteristic);
  if (!spark) return;
  const hit = spark.live.find((p) => p.time === data.time);
  if (hit) {
    hit.violated = true;
    drawSpark(state, data.characteristic);
  }
}
