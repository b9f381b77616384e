// The tables beside a control chart: the limits in force, the violations of the points
// shown, and every limit version.

import { fill, fmt, h } from "./dom.js";
import { dispersionName, formatTime, locationName, ruleName, t } from "./i18n.js";

const MAX_VIOLATIONS = 50;

function currentLimits(chart) {
  if (!chart || !chart.limit_versions.length) return null;
  const shown = [...chart.points].reverse().find((p) => p.limit_version !== null);
  const version = shown ? shown.limit_version : chart.limit_versions[chart.limit_versions.length - 1].version;
  return chart.limit_versions.find((v) => v.version === version) || null;
}

/** The limits in force for the last point shown (CL, UCL, LCL, zones, dispersion). */
export function renderLimits(el, chart, status) {
  const current = currentLimits(chart);
  if (!current) {
    const s = status;
    fill(
      el,
      h("p", {
        class: "muted",
        text: s ? t("char.noLimits", { n: s.baseline.collected, of: s.baseline.needed }) : t("char.noPoints"),
      }),
    );
    return;
  }
  const L = current.limits;
  const cell = (id, label, value) =>
    h(
      "div",
      { class: "limit" },
      h("span", { class: "label", text: label }),
      h("span", { class: "limit-value", id, "data-value": value, text: fmt(value) }),
    );
  const disp = chart.dispersion_chart.toUpperCase();
  fill(
    el,
    h("span", { class: "limit-version", id: "lim-version", text: t("char.version", { v: current.version }) }),
    cell("lim-ucl", "UCL", L.ucl),
    cell("lim-plus2", "+2σ", L.plus_2_sigma),
    cell("lim-plus1", "+1σ", L.plus_1_sigma),
    cell("lim-center", t("chart.center"), L.center),
    cell("lim-minus1", "−1σ", L.minus_1_sigma),
    cell("lim-minus2", "−2σ", L.minus_2_sigma),
    cell("lim-lcl", "LCL", L.lcl),
    cell("lim-sigma", "σ", L.sigma),
    cell("lim-d-ucl", `${disp} UCL`, L.dispersion_ucl),
    cell("lim-d-center", `${disp} ${t("chart.center")}`, L.dispersion_center),
    cell("lim-d-lcl", `${disp} LCL`, L.dispersion_lcl),
  );
}

/** The violations of the points shown, newest first. */
export function renderViolations(el, chart) {
  const rows = [];
  (chart ? chart.points : []).forEach((p, i) => {
    for (const v of p.violations) rows.push({ p, i, v });
  });
  const shown = rows.reverse().slice(0, MAX_VIOLATIONS);
  el.dataset.count = String(rows.length);
  if (!shown.length) {
    fill(el, h("p", { class: "muted empty", text: t("char.noViolations") }));
    return;
  }
  const disp = dispersionName(chart.dispersion_chart);
  const loc = locationName(chart.location_chart, chart.subgroup_size);
  fill(
    el,
    h("p", { class: "muted", text: t("char.violationCount", { n: rows.length, shown: shown.length }) }),
    h(
      "table",
      { class: "compact" },
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          [t("col.point"), t("col.time"), t("col.chart"), t("col.rule"), t("col.value")].map((x) =>
            h("th", { text: x }),
          ),
        ),
      ),
      h(
        "tbody",
        {},
        shown.map(({ p, i, v }) =>
          h(
            "tr",
            { "data-rule": v.rule, "data-chart": v.chart },
            h("td", { text: i + 1 }),
            h("td", { text: formatTime(p.time, true) }),
            h("td", { text: v.chart === "location" ? loc : disp }),
            h("td", { class: "rule", text: ruleName(v.rule) }),
            h("td", { class: "value", text: fmt(v.chart === "location" ? p.value : p.dispersion) }),
          ),
        ),
      ),
    ),
  );
}

/** Every limit version, newest first, with who set it and why. */
export function renderVersions(el, chart) {
  const versions = chart ? chart.limit_versions : [];
  if (!versions.length) {
    fill(el, h("p", { class: "muted", text: t("char.noVersions") }));
    return;
  }
  fill(
    el,
    h(
      "table",
      { class: "compact" },
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          ["v", t("col.inForce"), "CL", "UCL", "LCL", t("col.author"), t("col.reason")].map((x) =>
            h("th", { text: x }),
          ),
        ),
      ),
      h(
        "tbody",
        {},
        [...versions].reverse().map((v) =>
          h(
            "tr",
            {},
            [
              `v${v.version}`,
              formatTime(v.in_force_after, true),
              fmt(v.limits.center),
              fmt(v.limits.ucl),
              fmt(v.limits.lcl),
              v.author,
              v.reason,
            ].map((x) => h("td", { text: x })),
          ),
        ),
      ),
    ),
  );
}
