// The dashboard's entry point: header (key, language, live indicator), the notice for
// refused calls, the client-side routes (#/, #/c/<id>, #/incidents) and the live feed.

import { api, getKey, onRefused, setKey } from "./api.js";
import { h } from "./dom.js";
import { describeError } from "./feedback.js";
import { applyStatic, lang, setLang, t } from "./i18n.js";
import { mountCharacteristic } from "./characteristic.js";
import { mountIncidents } from "./incidents.js";
import { LiveFeed } from "./live.js";
import { mountOverview } from "./overview.js";
import { loadSession } from "./session.js";
import { coalesce } from "./timing.js";

const els = {
  view: document.getElementById("view"),
  notice: document.getElementById("notice"),
  live: document.getElementById("live"),
  keyForm: document.getElementById("key-form"),
  keyInput: document.getElementById("api-key"),
  keyClear: document.getElementById("key-clear"),
  lang: document.getElementById("lang-switch"),
  plantName: document.getElementById("plant-name"),
  incidentCount: document.getElementById("incident-count"),
};

let mounted = null;
let liveMode = { mode: "connecting", detail: null };

const ctx = {
  setPlant(name) {
    els.plantName.textContent = name;
  },
  setIncidentCount(n) {
    els.incidentCount.hidden = !n;
    els.incidentCount.textContent = String(n);
    els.incidentCount.dataset.count = String(n);
  },
  refreshIncidentCount: coalesce(async () => {
    try {
      ctx.setIncidentCount((await api("api/v1/alarms?state=open")).length);
    } catch {
      ctx.setIncidentCount(0); // refused: the notice says why
    }
  }, 300),
};

const feed = new LiveFeed({
  onMode(mode, detail) {
    liveMode = { mode, detail };
    showLive();
  },
});
feed.subscribe((kind, data) => {
  if (kind === "alarm" || kind === "refresh") ctx.refreshIncidentCount();
  if (mounted) mounted.onLive(kind, data);
});

function showLive() {
  const { mode } = liveMode;
  els.live.dataset.mode = mode;
  els.live.textContent = t(`live.${mode}`);
  els.live.title = t(`live.title.${mode === "connecting" ? "polling" : mode}`);
}

const INFO_MS = 6000; // information fades; refusals stay until closed or replaced
let noticeTimer = null;

/** The notice under the header: refused calls say which role they need. */
function showNotice(text, kind = "error", status = "") {
  clearTimeout(noticeTimer);
  if (text && kind === "info") noticeTimer = setTimeout(() => showNotice(""), INFO_MS);
  els.notice.hidden = !text;
  els.notice.className = `notice ${kind}`;
  els.notice.dataset.status = String(status);
  els.notice.replaceChildren(
    h("span", { class: "notice-text", text }),
    h(
      "button",
      {
        type: "button",
        class: "notice-close",
        "aria-label": t("close"),
        on: { click: () => showNotice("") },
      },
      "×",
    ),
  );
}

onRefused((err) => showNotice(describeError(err), "error", err.status));

async function loadPlantName() {
  try {
    ctx.setPlant((await api("api/v1/plant")).name);
  } catch {
    ctx.setPlant(""); // refused or unreachable: the view says why
  }
}

function route() {
  const raw = location.hash.replace(/^#/, "") || "/";
  const [path, search = ""] = raw.split("?");
  const params = new URLSearchParams(search);
  if (mounted) mounted.unmount();
  mounted = null;
  window.scrollTo(0, 0);
  for (const a of document.querySelectorAll(".nav a")) a.classList.remove("active");
  const match = /^\/c\/(.+)$/.exec(path);
  if (match) {
    mounted = mountCharacteristic(els.view, ctx, decodeURIComponent(match[1]), params);
  } else if (path === "/incidents") {
    document.getElementById("nav-incidents").classList.add("active");
    mounted = mountIncidents(els.view, ctx, params);
  } else {
    document.getElementById("nav-overview").classList.add("active");
    mounted = mountOverview(els.view, ctx);
  }
  els.view.dataset.route = match ? "characteristic" : path === "/incidents" ? "incidents" : "overview";
}

function renderChrome() {
  applyStatic();
  els.lang.textContent = t("lang.switch");
  els.lang.lang = lang() === "zh" ? "en" : "zh";
  els.keyInput.placeholder = getKey() ? t("key.placeholderSet") : "spc_…";
  showLive();
}

/** A new key (or none): everything is re-read with it, the stream included. */
async function useKey(key, message) {
  setKey(key);
  els.keyInput.value = "";
  showNotice(t(message), "info");
  renderChrome();
  feed.start();
  await loadSession(); // before the views draw their actions
  route();
  loadPlantName();
}

els.keyForm.addEventListener("submit", (event) => {
  event.preventDefault();
  useKey(els.keyInput.value, "key.saved");
});
els.keyClear.addEventListener("click", () => useKey("", "key.cleared"));

els.lang.addEventListener("click", () => {
  setLang(lang() === "zh" ? "en" : "zh");
  renderChrome();
  route();
});

window.addEventListener("hashchange", route);
setLang(lang());
renderChrome();
await loadSession();
route();
feed.start();
ctx.refreshIncidentCount();
loadPlantName();
