// The incidents view: filtered by state, line and severity (kept in the address, so a
// filtered list can be bookmarked), with the operator's actions and the cause Pareto.

import { api, apiAll } from "./api.js";
import { fill, h, query } from "./dom.js";
import { describeError, failureBox } from "./feedback.js";
import { incidentList } from "./incident-list.js";
import { severityName, t } from "./i18n.js";
import { coalesce } from "./timing.js";

const STATES = ["open", "acknowledged", "unresolved", "resolved", "all"];
const SEVERITIES = ["", "warning", "critical"];
const BUSY_RETRY_MS = 2000;

export function mountIncidents(container, ctx, params) {
  const filters = {
    state: STATES.includes(params.get("state")) ? params.get("state") : "open",
    line: params.get("line") || "",
    severity: SEVERITIES.includes(params.get("severity")) ? params.get("severity") : "",
  };
  const view = { alive: true, filters, ctx };
  const reload = coalesce(() => loadList(view), 500);
  view.reload = reload;
  fill(container, h("p", { class: "loading", text: t("loading") }));
  build(container, view).catch((err) => fill(container, failureBox(err)));
  return {
    onLive(kind) {
      if (kind === "alarm" || kind === "refresh") reload();
    },
    unmount() {
      view.alive = false;
      reload.cancel();
      clearTimeout(view.busyTimer);
    },
  };
}

async function build(container, view) {
  const [lines] = await apiAll(["api/v1/lines"]);
  if (!lines.ok) throw lines.error;
  if (!view.alive) return;
  view.list = h("div", { id: "incident-list", "data-loaded": "false" });
  view.pareto = h("div", { class: "pareto", id: "pareto" });
  fill(
    container,
    h("h1", { text: t("incidents.title") }),
    filterForm(view, lines.value),
    h(
      "div",
      { class: "two-col wide-left" },
      h("section", { class: "panel" }, view.list),
      h("section", { class: "panel" }, h("h2", { text: t("pareto.title") }), view.pareto),
    ),
  );
  await Promise.all([loadList(view), loadPareto(view)]);
}

function filterForm(view, lines) {
  const { filters } = view;
  const select = (name, options, label) =>
    h(
      "label",
      { class: "field inline" },
      h("span", { text: label }),
      h(
        "select",
        { name, id: `filter-${name}` },
        options.map(([value, text]) => h("option", { value, selected: value === filters[name], text })),
      ),
    );
  const form = h(
    "form",
    { class: "filters", id: "incident-filters" },
    select(
      "state",
      STATES.map((s) => [s, t(`filter.state.${s}`)]),
      t("filter.state"),
    ),
    select(
      "line",
      [["", t("filter.any")], ...lines.map((l) => [l.id, `${l.name} (${l.id})`])],
      t("filter.line"),
    ),
    select(
      "severity",
      SEVERITIES.map((s) => [s, s ? severityName(s) : t("filter.any")]),
      t("filter.severity"),
    ),
  );
  form.addEventListener("change", () => {
    const data = new FormData(form);
    location.hash = `#/incidents${query({ state: data.get("state"), line: data.get("line"), severity: data.get("severity") })}`;
  });
  form.addEventListener("submit", (event) => event.preventDefault());
  return form;
}

async function loadList(view) {
  if (!view.alive) return;
  if (view.list.querySelector(".incident-panel:not([hidden]) form")) {
    // someone is filling in a form: reload once they are done
    clearTimeout(view.busyTimer);
    view.busyTimer = setTimeout(() => view.reload(), BUSY_RETRY_MS);
    return;
  }
  const { state, line, severity } = view.filters;
  let alarms;
  try {
    alarms = await api(`api/v1/alarms${query({ state, line, severity, limit: 500 })}`);
  } catch (err) {
    fill(view.list, h("p", { class: "form-error", text: describeError(err) }));
    return;
  }
  if (!view.alive) return;
  view.list.dataset.loaded = "true";
  view.list.dataset.count = String(alarms.length);
  fill(
    view.list,
    h("p", { class: "muted", text: t("incidents.count", { n: alarms.length }) }),
    incidentList(alarms, {
      onChanged: () => {
        loadList(view);
        loadPareto(view);
        view.ctx.refreshIncidentCount();
      },
    }),
  );
}

async function loadPareto(view) {
  let pareto;
  try {
    pareto = await api(`api/v1/alarms/causes${query({ line: view.filters.line })}`);
  } catch (err) {
    fill(view.pareto, h("p", { class: "form-error", text: describeError(err) }));
    return;
  }
  if (!view.alive) return;
  const bars = (entries) =>
    entries.length
      ? h(
          "ol",
          { class: "pareto-list" },
          entries.slice(0, 10).map((e) =>
            h(
              "li",
              {},
              h("span", { class: "pareto-text", text: e.text }),
              h("span", { class: "pareto-bar" }, h("meter", { min: 0, max: 1, value: e.share })),
              h("span", {
                class: "pareto-count",
                text: `${e.count} (${Math.round(e.cumulative_share * 100)} %)`,
              }),
            ),
          ),
        )
      : h("p", { class: "muted", text: t("pareto.none") });
  fill(
    view.pareto,
    h("p", {
      class: "muted",
      text: t("pareto.summary", {
        incidents: pareto.incidents,
        acknowledged: pareto.acknowledged,
        without: pareto.without_cause,
      }),
    }),
    h("h3", { text: t("incidents.cause") }),
    bars(pareto.causes),
    h("h3", { text: t("incidents.action") }),
    bars(pareto.actions),
  );
}
