// A list of incidents with their details, and the operator's actions: acknowledge with
// an assignable cause and a corrective action from the catalogue (or free text), resolve.

import { api } from "./api.js";
import { characteristicHref, fill, fmt, h } from "./dom.js";
import { formError } from "./feedback.js";
import { formatTime, ruleName, severityName, stateName, t } from "./i18n.js";
import { may } from "./session.js";

const OTHER = "__other__";

/**
 * The list element for `alarms` (AlarmItemPublic[]); `onChanged` is called after an
 * acknowledgement or resolution went through (the caller reloads).
 */
export function incidentList(alarms, { onChanged = () => {}, emptyText = null } = {}) {
  if (!alarms.length) return h("p", { class: "muted empty", text: emptyText || t("incidents.none") });
  return h(
    "div",
    { class: "incident-list" },
    alarms.map((a) => incidentCard(a, onChanged)),
  );
}

function incidentCard(alarm, onChanged) {
  const panel = h("div", { class: "incident-panel", hidden: true });
  const card = h(
    "article",
    {
      class: `incident severity-${alarm.severity} state-${alarm.state}`,
      "data-alarm-id": alarm.id,
      "data-state": alarm.state,
      "data-characteristics": alarm.characteristics.join(" "),
    },
    h(
      "header",
      { class: "incident-head" },
      h("span", { class: "incident-id", text: `#${alarm.id}` }),
      h("span", { class: `pill severity-${alarm.severity}`, text: severityName(alarm.severity) }),
      h("span", { class: `pill state-${alarm.state}`, "data-role": "state", text: stateName(alarm.state) }),
      h(
        "span",
        { class: "incident-chars" },
        alarm.characteristics.map((id) => h("a", { href: characteristicHref(id), text: id })),
      ),
      h("span", { class: "muted", text: [alarm.line, alarm.process].filter(Boolean).join(" / ") }),
    ),
    h("p", { class: "incident-message", text: alarm.message }),
    h(
      "p",
      { class: "incident-facts muted" },
      t("incidents.facts", {
        rule: ruleName(alarm.rule),
        opened: formatTime(alarm.opened_at, true),
        last: formatTime(alarm.last_at, true),
        count: alarm.count,
        value: fmt(alarm.last_value),
        version: alarm.limit_version,
      }),
      alarm.escalated_at
        ? h("span", {
            class: "escalated",
            text: ` · ${t("incidents.escalated", { at: formatTime(alarm.escalated_at, true) })}`,
          })
        : null,
    ),
    acknowledgement(alarm),
    resolution(alarm),
    h("div", { class: "incident-actions" }, actionButtons(alarm, panel, onChanged)),
    panel,
  );
  return card;
}

function acknowledgement(alarm) {
  if (!alarm.acknowledged_by) return null;
  return h(
    "dl",
    { class: "ack", "data-role": "ack" },
    h("dt", { text: t("incidents.ackBy") }),
    h("dd", { text: `${alarm.acknowledged_by} · ${formatTime(alarm.acknowledged_at, true)}` }),
    alarm.ack_cause
      ? [h("dt", { text: t("incidents.cause") }), h("dd", { class: "ack-cause", text: alarm.ack_cause })]
      : null,
    alarm.ack_action
      ? [h("dt", { text: t("incidents.action") }), h("dd", { class: "ack-action", text: alarm.ack_action })]
      : null,
    alarm.ack_comment
      ? [h("dt", { text: t("incidents.comment") }), h("dd", { text: alarm.ack_comment })]
      : null,
  );
}

function resolution(alarm) {
  if (!alarm.resolved_by) return null;
  return h(
    "dl",
    { class: "resolution" },
    h("dt", { text: t("incidents.resolvedBy") }),
    h("dd", { text: `${alarm.resolved_by} · ${formatTime(alarm.resolved_at, true)}` }),
    alarm.resolution_note
      ? [h("dt", { text: t("incidents.note") }), h("dd", { text: alarm.resolution_note })]
      : null,
  );
}

function actionButtons(alarm, panel, onChanged) {
  const open = (builder) => () => {
    panel.hidden = false;
    fill(panel, h("p", { class: "muted", text: t("loading") }));
    builder(panel, alarm, onChanged);
  };
  return [
    h(
      "button",
      { type: "button", class: "secondary", "data-action": "details", on: { click: open(showDetails) } },
      t("incidents.details"),
    ),
    alarm.state === "open" && may("operator")
      ? h(
          "button",
          { type: "button", "data-action": "acknowledge", on: { click: open(ackForm) } },
          t("incidents.acknowledge"),
        )
      : null,
    alarm.state !== "resolved" && may("operator")
      ? h(
          "button",
          { type: "button", class: "secondary", "data-action": "resolve", on: { click: open(resolveForm) } },
          t("incidents.resolve"),
        )
      : null,
  ];
}

async function loadDetail(panel, alarm) {
  try {
    return await api(`api/v1/alarms/${alarm.id}`);
  } catch (err) {
    const box = h("p", { class: "form-error" });
    formError(box, err);
    fill(panel, box);
    return null;
  }
}

async function showDetails(panel, alarm) {
  const detail = await loadDetail(panel, alarm);
  if (!detail) return;
  fill(
    panel,
    h("h4", { text: t("incidents.evidence") }),
    h(
      "table",
      { class: "compact" },
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          [
            t("col.time"),
            t("col.characteristic"),
            t("col.rule"),
            t("col.value"),
            t("col.limit"),
            t("col.message"),
          ].map((x) => h("th", { text: x })),
        ),
      ),
      h(
        "tbody",
        {},
        detail.evidence.map((e) =>
          h(
            "tr",
            {},
            [
              formatTime(e.time, true),
              e.characteristic,
              ruleName(e.rule),
              fmt(e.value),
              fmt(e.limit),
              e.message,
            ].map((x) => h("td", { text: x })),
          ),
        ),
      ),
    ),
    h("h4", { text: t("incidents.history") }),
    h(
      "ul",
      { class: "history" },
      detail.events.map((e) =>
        h("li", {
          text: `${formatTime(e.recorded_at, true)} · ${stateName(e.state)}${e.actor ? ` · ${e.actor}` : ""}${e.note ? ` · ${e.note}` : ""}`,
        }),
      ),
    ),
    closeButton(panel),
  );
}

function choice(name, label, options) {
  const select = h(
    "select",
    { name, id: `${name}-${Math.random().toString(36).slice(2, 8)}` },
    h("option", { value: "", text: t("ack.none") }),
    options.map((o) => h("option", { value: o, text: o })),
    h("option", { value: OTHER, text: t("ack.other") }),
  );
  const other = h("input", {
    type: "text",
    name: `${name}-other`,
    hidden: true,
    maxlength: 2000,
    placeholder: t("ack.otherPlaceholder"),
  });
  select.addEventListener("change", () => {
    other.hidden = select.value !== OTHER;
    if (!other.hidden) other.focus();
  });
  const value = () => (select.value === OTHER ? other.value.trim() : select.value) || null;
  return { el: h("label", { class: "field" }, h("span", { text: label }), select, other), value };
}

async function ackForm(panel, alarm, onChanged) {
  const detail = await loadDetail(panel, alarm);
  if (!detail) return;
  const cause = choice("cause", t("incidents.cause"), detail.catalogue.causes);
  const action = choice("action", t("incidents.action"), detail.catalogue.actions);
  const comment = h("textarea", {
    name: "comment",
    required: true,
    rows: 2,
    maxlength: 2000,
    placeholder: t("ack.commentPlaceholder"),
  });
  const error = h("p", { class: "form-error", role: "alert", hidden: true });
  const form = h(
    "form",
    { class: "ack-form", "data-form": "acknowledge" },
    h("p", { class: "muted", text: detail.catalogue.configured ? t("ack.catalogue") : t("ack.generic") }),
    cause.el,
    action.el,
    h("label", { class: "field" }, h("span", { text: t("incidents.comment") }), comment),
    error,
    h(
      "div",
      { class: "form-buttons" },
      h("button", { type: "submit", text: t("incidents.acknowledge") }),
      closeButton(panel),
    ),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = { comment: comment.value.trim(), cause: cause.value(), action: action.value() };
    if (!body.comment) {
      formError(error, { message: t("ack.needComment") });
      return;
    }
    await submit(panel, form, error, `api/v1/alarms/${alarm.id}/acknowledge`, body, onChanged);
  });
  fill(panel, form);
}

function resolveForm(panel, alarm, onChanged) {
  const note = h("textarea", {
    name: "note",
    required: true,
    rows: 2,
    maxlength: 2000,
    placeholder: t("resolve.placeholder"),
  });
  const error = h("p", { class: "form-error", role: "alert", hidden: true });
  const form = h(
    "form",
    { class: "resolve-form", "data-form": "resolve" },
    h("label", { class: "field" }, h("span", { text: t("incidents.note") }), note),
    error,
    h(
      "div",
      { class: "form-buttons" },
      h("button", { type: "submit", text: t("incidents.resolve") }),
      closeButton(panel),
    ),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!note.value.trim()) {
      formError(error, { message: t("resolve.needNote") });
      return;
    }
    await submit(
      panel,
      form,
      error,
      `api/v1/alarms/${alarm.id}/resolve`,
      { note: note.value.trim() },
      onChanged,
    );
  });
  fill(panel, form);
}

async function submit(panel, form, error, path, body, onChanged) {
  const button = form.querySelector("button[type=submit]");
  button.disabled = true;
  error.hidden = true;
  try {
    await api(path, { method: "POST", body, role: "operator" });
  } catch (err) {
    formError(error, err);
    button.disabled = false;
    return;
  }
  panel.hidden = true; // done: the list may now be reloaded under it
  panel.replaceChildren();
  onChanged();
}

function closeButton(panel) {
  return h(
    "button",
    {
      type: "button",
      class: "secondary",
      "data-action": "close",
      on: {
        click: () => {
          panel.hidden = true;
          panel.replaceChildren();
        },
      },
    },
    t("close"),
  );
}
