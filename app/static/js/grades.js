// Quality grades (1-5, MIIT 2023 scale) as badges, and the metric that limits a grade.

import { fmt, fmtIndex, fmtPercent, h } from "./dom.js";
import { gradeName, lang, metricName, t } from "./i18n.js";

/** A metric's value in its own terms: Cpk as an index, yields and rates in %, sigma in σ. */
export function metricValue(metric, value) {
  if (value === null || value === undefined) return "–";
  if (metric === "cpk") return fmtIndex(value);
  if (metric === "sigma_level") return `${fmt(value, 3)}σ`;
  return fmtPercent(value, metric.endsWith("loss_rate") ? 2 : 1);
}

/** The badge of an entity's grade (an EntityGradePublic, or a status tile's brief grade). */
export function gradeBadge(entity, { small = false } = {}) {
  const level = entity ? entity.grade : null;
  const cls = `grade-badge${small ? " small" : ""}`;
  if (level === null || level === undefined) {
    const ceiling = entity && entity.ceiling ? ` (≤ ${entity.ceiling} ${gradeName(entity.ceiling)})` : "";
    return h("span", { class: `${cls} grade-none`, "data-grade": "", text: `${t("grade.none")}${ceiling}` });
  }
  const own = lang() === "zh" ? entity.grade_zh : entity.grade_en;
  const other = lang() === "zh" ? entity.grade_en : entity.grade_zh;
  return h(
    "span",
    {
      class: `${cls} grade-${level}`,
      "data-grade": level,
      title: other || gradeName(level, lang() === "zh" ? "en" : "zh"),
    },
    h("span", { class: "grade-level", text: level }),
    h("span", { class: "grade-name", text: own || gradeName(level) }),
  );
}

/** "limited by Cpk 1.41 (next grade: 1.67)", or what is missing, for an EntityGradePublic. */
export function limitingText(entity) {
  if (!entity) return "";
  if (entity.grade === null && entity.insufficient.length) {
    return t("grade.insufficient", { metrics: entity.insufficient.map((m) => metricName(m)).join(", ") });
  }
  const metric = entity.metrics.find((m) => m.metric === entity.limiting_metric);
  if (!metric) return "";
  const next =
    metric.next_target === null
      ? ""
      : t("grade.next", { target: metricValue(metric.metric, metric.next_target) });
  return (
    t("grade.limited", {
      metric: metricName(metric.metric),
      value: metricValue(metric.metric, metric.value),
    }) + next
  );
}
