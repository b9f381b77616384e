// Live updates: the service's Server-Sent Events stream read with fetch() (EventSource
// cannot send the API key header), falling back to polling while the stream is down.
//
// Listeners get (kind, data): "point", "violation", "alarm", "warning" as the service
// sends them; "refresh" when everything should be re-read (the stream (re)connected
// without a complete replay, or sent resync/overflow, or a polling tick).

import { authHeaders, problem } from "./api.js";

const STREAM_PATH = "api/v1/stream";
const POLL_MS = 5000;
const SILENCE_MS = 45000; // three missed keep-alives (sent every 15 s): reconnect
const MAX_RETRY_MS = 30000;

export class LiveFeed {
  constructor({ onMode = () => {} } = {}) {
    this.listeners = new Set();
    this.onMode = onMode;
    this.mode = "connecting";
    this.lastId = null;
    this.retryMs = 3000;
    this.controller = null;
    this.pollTimer = null;
    this.retryTimer = null;
    this.watchdog = null;
    this.stopped = true;
  }

  subscribe(listener) {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  start() {
    this.stop();
    this.stopped = false;
    this.lastId = null;
    this.connect();
  }

  stop() {
    this.stopped = true;
    if (this.controller) this.controller.abort();
    this.controller = null;
    clearTimeout(this.retryTimer);
    clearTimeout(this.watchdog);
    this.stopPolling();
  }

  emit(kind, data) {
    for (const listener of [...this.listeners]) {
      try {
        listener(kind, data);
      } catch (err) {
        console.error(err);
      }
    }
  }

  setMode(mode, detail = null) {
    this.mode = mode;
    this.onMode(mode, detail);
  }

  async connect() {
    const controller = new AbortController();
    this.controller = controller;
    const headers = { Accept: "text/event-stream", ...authHeaders() };
    if (this.lastId) headers["Last-Event-ID"] = this.lastId;
    let failure = null;
    try {
      const response = await fetch(STREAM_PATH, { headers, cache: "no-store", signal: controller.signal });
      if (!response.ok) {
        failure = await problem(response);
      } else {
        const replayed = this.lastId !== null;
        this.setMode("stream");
        this.stopPolling();
        this.retryMs = 3000;
        if (!replayed) this.emit("refresh", { reason: "connected" });
        await this.read(response.body, controller);
      }
    } catch (err) {
      failure = err;
    }
    if (this.stopped || this.controller !== controller) return;
    this.fallBack(failure);
  }

  fallBack(failure) {
    const refused = failure && (failure.status === 401 || failure.status === 403);
    this.setMode(refused ? "refused" : "polling", failure);
    if (!refused) this.startPolling();
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.connect(), this.retryMs);
    this.retryMs = Math.min(this.retryMs * 2, MAX_RETRY_MS);
  }

  async read(body, controller) {
    const reader = body.pipeThrough(new TextDecoderStream()).getReader();
    const parser = new SseParser((frame) => this.dispatch(frame));
    this.armWatchdog(controller);
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      this.armWatchdog(controller);
      parser.push(value);
    }
  }

  armWatchdog(controller) {
    clearTimeout(this.watchdog);
    this.watchdog = setTimeout(() => controller.abort(), SILENCE_MS);
  }

  dispatch({ event, data, id, retry }) {
    if (retry !== null) this.retryMs = retry;
    if (id !== null) this.lastId = id;
    if (data === null) return;
    if (event === "resync" || event === "overflow") {
      this.emit("refresh", { reason: event });
      return;
    }
    let payload;
    try {
      payload = JSON.parse(data);
    } catch {
      console.warn("stream: an event that is not JSON", event);
      return;
    }
    this.emit(event, payload);
  }

  startPolling() {
    if (this.pollTimer !== null) return;
    this.pollTimer = setInterval(() => this.emit("refresh", { reason: "poll" }), POLL_MS);
  }

  stopPolling() {
    clearInterval(this.pollTimer);
    this.pollTimer = null;
  }
}

/**
 * The text/event-stream format (HTML Living Standard, "Server-sent events"): lines end
 * in CR LF, LF or CR; a blank line ends an event; lines starting with ":" are comments.
 */
export class SseParser {
  constructor(onFrame) {
    this.onFrame = onFrame;
    this.buffer = "";
    this.reset();
  }

  reset() {
    this.event = "";
    this.data = [];
    this.id = null;
    this.retry = null;
  }

  push(text) {
    this.buffer += text;
    for (;;) {
      const end = this.buffer.search(/[\r\n]/);
      if (end < 0) return;
      // a CR at the very end may be the first half of CR LF: wait for the next chunk
      if (this.buffer[end] === "\r" && end === this.buffer.length - 1) return;
      const line = this.buffer.slice(0, end);
      const width = this.buffer.startsWith("\r\n", end) ? 2 : 1;
      this.buffer = this.buffer.slice(end + width);
      this.line(line);
    }
  }

  line(line) {
    if (line === "") {
      this.onFrame({
        event: this.event || "message",
        data: this.data.length ? this.data.join("\n") : null,
        id: this.id,
        retry: this.retry,
      });
      this.reset();
      return;
    }
    if (line.startsWith(":")) return; // keep-alive comment
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "event") this.event = value;
    else if (field === "data") this.data.push(value);
    else if (field === "id" && !value.includes("\0")) this.id = value;
    else if (field === "retry" && /^\d+$/.test(value)) this.retry = Number(value);
  }
}
