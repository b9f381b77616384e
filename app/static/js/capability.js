// The capability panel of a characteristic: histogram with the specification limits and
// the fitted normal, the indices with their 95 % intervals, and the normality test.

import { fill, fmt, fmtIndex, fmtInterval, h } from "./dom.js";
import { capabilityHistogram } from "./histogram.js";
import { formatTime, t } from "./i18n.js";

const NORMAL_P = 0.05;

/**
 * The panel for a /capability answer. `plot.finish()` draws the histogram once the element
 * is in the page (it takes the width it is given); `plot.destroy()` frees it.
 */
export function capabilityPanel(report, unit) {
  const box = h("div", {
    class: "chart-box",
    id: "chart-histogram",
    "data-bins": report.histogram.counts.length,
  });
  const element = h(
    "div",
    { class: "cap-grid" },
    h("div", { class: "cap-chart" }, box, h("p", { class: "muted", text: basis(report) })),
    h(
      "div",
      { class: "cap-numbers" },
      indicesTable(report.indices),
      normality(report.indices),
      percentile(report.indices),
      notes(report),
    ),
  );
  let plot = null;
  const width = () => Math.max(300, box.clientWidth || 480);
  const names = {
    title: t("cap.histogram"),
    curve: t("cap.normal"),
    target: t("char.target"),
    mean: t("cap.mean"),
  };
  return {
    element,
    plot: {
      finish() {
        fill(box);
        plot = capabilityHistogram(box, { ...report, unit }, names, width());
      },
      resize() {
        if (plot) plot.setSize({ width: width(), height: 240 });
      },
      destroy() {
        if (plot) plot.destroy();
        plot = null;
      },
    },
  };
}

function basis(report) {
  return t("cap.basis", {
    n: report.n,
    from: formatTime(report.first_time, true),
    to: formatTime(report.last_time, true),
    period: report.period.label,
  });
}

function indicesTable(ix) {
  const row = (name, value, interval, id) =>
    h(
      "tr",
      { "data-index": id },
      h("th", { text: name }),
      h("td", { class: "index-value", id: `cap-${id}`, text: fmtIndex(value) }),
      h("td", { class: "ci", text: interval ? fmtInterval(interval) : "" }),
    );
  return h(
    "table",
    { class: "indices compact" },
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        h("th", { text: t("cap.index") }),
        h("th", { text: t("cap.value") }),
        h("th", { text: t("cap.interval") }),
      ),
    ),
    h(
      "tbody",
      {},
      row("Cp", ix.cp, ix.cp_ci, "cp"),
      row("Cpk", ix.cpk, ix.cpk_ci, "cpk"),
      h(
        "tr",
        { "data-index": "cpu-cpl" },
        h("th", { text: "Cpu / Cpl" }),
        h("td", { colspan: 2, text: `${fmtIndex(ix.cpu)} / ${fmtIndex(ix.cpl)}` }),
      ),
      row("Pp", ix.pp, null, "pp"),
      row("Ppk", ix.ppk, null, "ppk"),
      row("Cpm", ix.cpm, null, "cpm"),
    ),
    h(
      "tfoot",
      {},
      h("tr", {}, h("th", { text: "n" }), h("td", { colspan: 2, text: ix.n })),
      h("tr", {}, h("th", { text: t("cap.mean") }), h("td", { colspan: 2, text: fmt(ix.mean) })),
      h(
        "tr",
        {},
        h("th", { text: t("cap.sigmaWithin", { method: ix.sigma_within_method }) }),
        h("td", { colspan: 2, text: fmt(ix.sigma_within, 4) }),
      ),
      h(
        "tr",
        {},
        h("th", { text: t("cap.sigmaOverall") }),
        h("td", { colspan: 2, text: fmt(ix.sigma_overall, 4) }),
      ),
      h("tr", {}, h("th", { text: t("cap.ppm") }), h("td", { colspan: 2, text: fmt(ix.ppm_expected, 4) })),
    ),
  );
}

function normality(ix) {
  if (ix.normality_p === null)
    return h("p", { class: "muted", id: "cap-normality", text: t("cap.normalityNone") });
  const normal = ix.normality_p >= NORMAL_P;
  return h(
    "p",
    {
      class: normal ? "normality ok" : "normality not-normal",
      id: "cap-normality",
      "data-normal": String(normal),
    },
    t(normal ? "cap.normal.yes" : "cap.normal.no", {
      p: fmt(ix.normality_p, 3),
      a2: fmt(ix.ad_statistic, 4),
    }),
  );
}

function percentile(ix) {
  const p = ix.percentile;
  if (!p) return null;
  return h(
    "p",
    { class: "percentile" },
    t("cap.percentile", {
      method: p.method.replace("percentile:", ""),
      cp: fmtIndex(p.cp),
      cpk: fmtIndex(p.cpk),
      ppm: fmt(p.ppm_expected, 4),
    }),
  );
}

function notes(report) {
  if (!report.notes.length) return null;
  return h(
    "ul",
    { class: "notes" },
    report.notes.map((n) => h("li", { text: n })),
  );
}
