// The plant overview: each line with its live grade, limiting metric and open incidents,
// and a tile per characteristic (last value, state, Cpk with its interval, sparkline).

import { api, apiAll } from "./api.js";
import { characteristicHref, fill, h } from "./dom.js";
import { errorLine, failureBox } from "./feedback.js";
import { gradeBadge, limitingText } from "./grades.js";
import { formatTime, t } from "./i18n.js";
import { livePoint, liveViolation, refreshTile, renderTile, showStatus, updateTile } from "./tiles.js";
import { coalesce, every } from "./timing.js";

const PARALLEL = 4; // browsers open ~6 connections per host; the stream holds one

export function mountOverview(container, ctx) {
  const state = {
    alive: true,
    plant: null,
    processes: [],
    characteristics: [],
    grades: null,
    alarms: [],
    warnings: [],
    statuses: new Map(),
    sparks: new Map(), // id -> {chart, start}
    tiles: new Map(), // id -> tile parts
    lineHeads: new Map(), // line id -> header element
  };
  const dirty = new Set();
  const flushDirty = coalesce(async () => {
    const ids = [...dirty];
    dirty.clear();
    await pool(ids, (id) => refreshTile(state, id, false));
  }, 1500);
  const reloadAlarms = coalesce(() => loadAlarms(state, ctx), 500);
  const reloadWarnings = coalesce(() => loadWarnings(state), 500);
  const reloadAll = coalesce(() => refreshAll(state, ctx), 300);
  const stopGrades = every(() => loadGrades(state), 60000);

  fill(container, h("p", { class: "loading", text: t("loading") }));
  build(container, state, ctx).catch((err) => fill(container, failureBox(err)));

  return {
    onLive(kind, data) {
      if (!state.alive || !state.plant) return;
      if (kind === "point") {
        livePoint(state, data);
        dirty.add(data.characteristic);
        flushDirty();
      } else if (kind === "violation") {
        // a process's p chart ("line2.vision#p") has no tile: its events are not a characteristic's
        if (String(data.characteristic).includes("#")) return;
        liveViolation(state, data);
        dirty.add(data.characteristic);
        flushDirty();
      } else if (kind === "alarm") {
        for (const id of data.characteristics || [data.characteristic]) dirty.add(id);
        flushDirty();
        reloadAlarms();
      } else if (kind === "warning") {
        reloadWarnings();
      } else if (kind === "refresh") {
        reloadAll();
      }
    },
    unmount() {
      state.alive = false;
      for (const job of [flushDirty, reloadAlarms, reloadWarnings, reloadAll]) job.cancel();
      stopGrades();
    },
  };
}

async function build(container, state, ctx) {
  const [plant, processes, characteristics, grades, alarms, warnings] = await apiAll([
    "api/v1/plant",
    "api/v1/processes",
    "api/v1/characteristics",
    "api/v1/grades",
    "api/v1/alarms?state=unresolved",
    "api/v1/warnings",
  ]);
  if (!state.alive) return;
  if (!plant.ok) throw plant.error;
  if (!characteristics.ok) throw characteristics.error;
  state.plant = plant.value;
  state.processes = processes.ok ? processes.value : [];
  state.characteristics = characteristics.value;
  state.grades = grades.ok ? grades.value : null;
  state.gradesError = grades.ok ? null : grades.error;
  state.alarms = alarms.ok ? alarms.value : [];
  state.warnings = warnings.ok ? warnings.value : [];
  ctx.setPlant(state.plant.name);
  ctx.setIncidentCount(state.alarms.filter((a) => a.state === "open").length);
  render(container, state);
  await loadStatuses(state);
}

function render(container, state) {
  state.tiles.clear();
  state.lineHeads.clear();
  const summary = h("section", { class: "plant-summary", id: "plant-summary" });
  renderPlantSummary(summary, state);
  const lines = state.plant.lines.map((line) => renderLine(state, line));
  fill(container, summary, h("div", { class: "lines" }, lines));
  state.summaryEl = summary;
}

function renderPlantSummary(el, state) {
  const s = state.plant.summary;
  const plantGrade = state.grades ? state.grades.plant : null;
  fill(
    el,
    h(
      "h1",
      { class: "plant-title" },
      state.plant.name,
      " ",
      h("span", { class: "muted", text: state.plant.id }),
    ),
    h(
      "div",
      { class: "grade-row" },
      h("span", { class: "label", text: t("overview.plantGrade") }),
      state.grades
        ? gradeBadge(plantGrade)
        : h("span", { class: "error-text", text: errorLine(state.gradesError) }),
      h("span", { class: "limiting", text: limitingText(plantGrade) }),
    ),
    h(
      "div",
      { class: "counts" },
      count("ok", s.in_control, t("state.ok")),
      count("alarm", s.out_of_control, t("state.alarm")),
      count("baseline", s.baseline, t("state.baseline")),
      h(
        "a",
        { class: "count incidents", href: "#/incidents", id: "plant-open-incidents" },
        String(openCount(state.alarms)),
        " ",
        t("overview.openIncidents"),
      ),
      h(
        "span",
        { class: "count warnings", id: "plant-warnings" },
        String(state.warnings.length),
        " ",
        t("overview.warnings"),
      ),
    ),
    state.grades
      ? h("p", {
          class: "period muted",
          text: t("overview.gradePeriod", {
            period: state.grades.period.label,
            at: formatTime(state.grades.computed_at, true),
          }),
        })
      : null,
    renderWarnings(state.warnings),
  );
}

function count(kind, n, label) {
  return h("span", { class: `count state-${kind}` }, h("b", { text: n }), " ", label);
}

function openCount(alarms, line = null) {
  return alarms.filter((a) => a.state === "open" && (line === null || a.line === line)).length;
}

function renderWarnings(warnings) {
  if (!warnings.length) return null;
  return h(
    "ul",
    { class: "warnings-list", id: "warnings-list" },
    warnings
      .slice(0, 8)
      .map((w) =>
        h(
          "li",
          { class: `severity-${w.severity}` },
          h("a", { href: characteristicHref(w.characteristic), text: w.characteristic }),
          ": ",
          w.message,
        ),
      ),
    warnings.length > 8
      ? h("li", { class: "muted", text: t("overview.moreWarnings", { n: warnings.length - 8 }) })
      : null,
  );
}

function renderLine(state, line) {
  const head = h("header", { class: "line-head" });
  state.lineHeads.set(line.id, head);
  renderLineHead(head, state, line);
  const chars = state.characteristics.filter((c) => c.line === line.id);
  const processIds = [...new Set(chars.map((c) => c.process))];
  const groups = processIds.map((pid) => {
    const info = state.processes.find((p) => p.line === line.id && p.process === pid);
    return h(
      "div",
      { class: "process" },
      h("h3", {}, info ? info.name : pid, " ", h("span", { class: "muted", text: `${line.id}.${pid}` })),
      h(
        "div",
        { class: "tiles" },
        chars.filter((c) => c.process === pid).map((c) => renderTile(state, c)),
      ),
    );
  });
  return h(
    "section",
    { class: "line", "data-line": line.id },
    head,
    groups.length ? groups : h("p", { class: "muted", text: t("overview.noCharacteristics") }),
  );
}

function renderLineHead(head, state, line) {
  const grade = state.grades ? state.grades.lines.find((g) => g.id === line.id) : null;
  const open = openCount(state.alarms, line.id);
  const unresolved = state.alarms.filter((a) => a.line === line.id).length;
  fill(
    head,
    h("h2", {}, line.name, " ", h("span", { class: "muted", text: line.id })),
    state.grades ? gradeBadge(grade) : null,
    h("span", { class: "limiting", text: limitingText(grade) }),
    h(
      "a",
      {
        class: `line-incidents${open ? " has-open" : ""}`,
        href: `#/incidents?line=${encodeURIComponent(line.id)}&state=unresolved`,
        "data-open": open,
      },
      t("overview.lineIncidents", { open, acknowledged: unresolved - open }),
    ),
  );
}

async function loadAlarms(state, ctx) {
  const [alarms, plant] = await apiAll(["api/v1/alarms?state=unresolved", "api/v1/plant"]);
  if (!state.alive) return;
  if (alarms.ok) state.alarms = alarms.value;
  if (plant.ok) state.plant = { ...state.plant, summary: plant.value.summary };
  ctx.setIncidentCount(openCount(state.alarms));
  renderPlantSummary(state.summaryEl, state);
  for (const line of state.plant.lines) {
    const head = state.lineHeads.get(line.id);
    if (head) renderLineHead(head, state, line);
  }
}

async function loadWarnings(state) {
  const warnings = await api("api/v1/warnings");
  if (!state.alive) return;
  state.warnings = warnings;
  renderPlantSummary(state.summaryEl, state);
  for (const id of state.tiles.keys()) updateTile(state, id);
}

async function loadGrades(state) {
  if (!state.alive || !state.plant) return;
  try {
    state.grades = await api("api/v1/grades");
    state.gradesError = null;
  } catch (err) {
    state.gradesError = err;
  }
  if (!state.alive) return;
  renderPlantSummary(state.summaryEl, state);
  for (const line of state.plant.lines) {
    const head = state.lineHeads.get(line.id);
    if (head) renderLineHead(head, state, line);
  }
}

async function refreshAll(state, ctx) {
  await Promise.all([loadAlarms(state, ctx), loadWarnings(state).catch(() => {}), loadGrades(state)]);
  await loadStatuses(state);
}

/** Every tile's status in one call; a tile the answer lacks (or every tile, if the call
 * fails) asks for its own and shows its own error. */
async function loadStatuses(state) {
  let statuses = [];
  try {
    statuses = await api("api/v1/status", { revalidate: true });
  } catch {
    statuses = [];
  }
  if (!state.alive) return;
  const byId = new Map(statuses.map((s) => [s.characteristic.id, s]));
  await pool(state.characteristics, (c) =>
    byId.has(c.id) ? showStatus(state, c.id, byId.get(c.id)) : refreshTile(state, c.id),
  );
}

/** Run `task` over `items`, at most PARALLEL at a time (browsers allow ~6 per host). */
async function pool(items, task) {
  const queue = [...items];
  const workers = Array.from({ length: Math.min(PARALLEL, queue.length) }, async () => {
    while (queue.length) await task(queue.shift());
  });
  await Promise.all(workers);
}
