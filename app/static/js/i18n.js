// Switching between English and Simplified Chinese (kept in localStorage), and the
// names and formats that follow the language.

import { GRADES, STRINGS } from "./strings.js";

const LANG_STORAGE = "spcmon.lang";

let current = initialLang();

function initialLang() {
  let saved = null;
  try {
    saved = localStorage.getItem(LANG_STORAGE);
  } catch {
    // storage disabled
  }
  if (saved === "en" || saved === "zh") return saved;
  return (navigator.language || "en").toLowerCase().startsWith("zh") ? "zh" : "en";
}

export function lang() {
  return current;
}

export function setLang(next) {
  current = next === "zh" ? "zh" : "en";
  try {
    localStorage.setItem(LANG_STORAGE, current);
  } catch {
    // storage disabled: the choice lasts until the page is left
  }
  document.documentElement.lang = current === "zh" ? "zh-CN" : "en";
}

/** The text of `key` in the current language, with {name} placeholders filled. */
export function t(key, vars = {}) {
  let text = STRINGS[current][key];
  if (text === undefined) {
    console.warn(`i18n: no text for ${key} (${current})`);
    text = STRINGS.en[key] ?? key;
  }
  return text.replace(/\{(\w+)\}/g, (m, name) => (name in vars ? String(vars[name]) : m));
}

export function gradeName(level, language = current) {
  return GRADES[level] ? GRADES[level][language] : String(level);
}

export function metricName(metric) {
  return STRINGS[current][`metric.${metric}`] ? t(`metric.${metric}`) : metric;
}

export function stateName(state) {
  return STRINGS[current][`state.${state}`] ? t(`state.${state}`) : state;
}

export function severityName(severity) {
  return STRINGS[current][`severity.${severity}`] ? t(`severity.${severity}`) : severity;
}

export function ruleName(rule) {
  return STRINGS[current][`rule.${rule}`] ? t(`rule.${rule}`) : rule;
}

export function chartName(chart, n) {
  return STRINGS[current][`chart.${chart}`] ? t(`chart.${chart}`, { n }) : chart;
}

export function locationName(kind, n) {
  return t(kind === "xbar" ? "chart.xbar" : "chart.i", { n });
}

export function dispersionName(kind) {
  return STRINGS[current][`chart.${kind}`] ? t(`chart.${kind}`) : kind;
}

/** A time for people: time of day, with the date when asked or when it is not today. */
export function formatTime(iso, withDate = false) {
  if (!iso) return "";
  const date = new Date(iso);
  const locale = current === "zh" ? "zh-CN" : "en-GB";
  const today = new Date().toDateString() === date.toDateString();
  const options = { hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false };
  if (withDate && !today) Object.assign(options, { year: "numeric", month: "2-digit", day: "2-digit" });
  return date.toLocaleString(locale, options);
}

/** Fill the static texts of the page (elements with data-i18n). */
export function applyStatic(root = document) {
  for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
}
