// Telling the user what went wrong: refused calls (401, 403 with the role needed),
// an unreachable service, or the service's own problem detail.

import { h } from "./dom.js";
import { t } from "./i18n.js";

/** A sentence for an ApiError (or any error). */
export function describeError(err) {
  if (!err) return "";
  if (err.status === 401) return t("error.401");
  if (err.status === 403)
    return t("error.403", { role: err.neededRole || "viewer", detail: err.detail || "" });
  if (err.status === 0) return t("error.unreachable", { detail: err.detail || "" });
  if (err.status) return t("error.other", { status: err.status, detail: err.detail || err.message || "" });
  return String(err.message || err);
}

/** One short line, for a tile or a table cell. */
export function errorLine(err) {
  return err ? t("error.short", { status: err.status || "—", detail: err.detail || err.message || "" }) : "";
}

/** The box a view shows instead of its content when it cannot load. */
export function failureBox(err) {
  return h(
    "div",
    { class: "view-error", role: "alert", "data-status": err && err.status !== undefined ? err.status : "" },
    h("h2", { text: t("error.load") }),
    h("p", { text: describeError(err) }),
  );
}

/** An inline error under a form: the refusal and, for 403, the role needed. */
export function formError(el, err) {
  el.hidden = false;
  el.dataset.status = err && err.status !== undefined ? String(err.status) : "";
  el.textContent = describeError(err);
}
