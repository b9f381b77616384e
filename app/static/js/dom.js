// Building the page from data: elements are created and filled with textContent, never
// with HTML parsed from strings, so a name or message from the API cannot inject markup.

/**
 * Create an element. `attrs`: `class`, `text`, `dataset` (object), `on` (event -> handler),
 * anything else as an attribute (skipped when null, undefined or false). Children may be
 * nodes, strings (text), or nested arrays; null and false are skipped.
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") el.className = value;
    else if (name === "text") el.textContent = String(value);
    else if (name === "dataset") Object.assign(el.dataset, value);
    else if (name === "on") {
      for (const [event, handler] of Object.entries(value)) el.addEventListener(event, handler);
    } else el.setAttribute(name, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replace an element's children. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** A number with up to `digits` significant digits, trailing zeros dropped; "–" for none. */
export function fmt(value, digits = 6) {
  if (value === null || value === undefined || Number.isNaN(value)) return "–";
  return String(Number(Number(value).toPrecision(digits)));
}

/** A capability index: two decimals. */
export function fmtIndex(value) {
  return value === null || value === undefined ? "–" : Number(value).toFixed(2);
}

/** A 95 % interval as "[lo, hi]". */
export function fmtInterval(interval, format = fmtIndex) {
  return interval ? `[${format(interval[0])}, ${format(interval[1])}]` : "";
}

/** A fraction as a percentage. */
export function fmtPercent(value, decimals = 2) {
  return value === null || value === undefined ? "–" : `${(value * 100).toFixed(decimals)} %`;
}

/** Query string from an object, skipping empty values; repeated keys from arrays. */
export function query(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value === null || value === undefined || value === "") continue;
    for (const item of Array.isArray(value) ? value : [value]) search.append(key, item);
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

/** The characteristic view's address. */
export function characteristicHref(id) {
  return `#/c/${encodeURIComponent(id)}`;
}

/**
 * A formatter for a characteristic's measured values: decimals enough to show a
 * hundredth of its tolerance (or of target-to-limit when one-sided), else 6 digits.
 */
export function valueFormat(record) {
  const { lsl, usl, target } = record;
  let width = null;
  if (lsl !== null && usl !== null) width = usl - lsl;
  else if (target !== null && (lsl ?? usl) !== null) width = Math.abs(target - (lsl ?? usl));
  if (!width || !Number.isFinite(width) || width <= 0) return (v) => fmt(v);
  const decimals = Math.min(8, Math.max(0, Math.ceil(-Math.log10(width / 100))));
  return (v) => (v === null || v === undefined ? "–" : Number(v).toFixed(decimals));
}
