// Health: what /healthz, /readyz, /metrics, the OpenAPI document and /v1/instances say, side by
// side. The instances are read again every 2 s while the page is shown (heartbeats, ends).
import { probe } from "./api.js";
import { h, bytes, tell } from "./ui.js";
import { instancesCard, loadInstances, paintInstances } from "./instances.js";

const LIMIT = 300;
const INSTANCES_EVERY_MS = 2000;
let status, metrics = [], timer = 0, fleetCard = null;

// Prometheus text format: "name{label="v",...} value" lines; comments skipped.
export function parseMetrics(text) {
  const out = [];
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const m = line.match(/^([a-zA-Z_:][\w:]*)(\{(.*)\})?\s+(\S+)/);
    if (m) out.push({ name: m[1], labels: m[3] || "", value: Number(m[4]) });
  }
  return out;
}

function sum(name) {
  return metrics.filter((m) => m.name === name).reduce((a, m) => a + m.value, 0);
}

function card(title, value, kind, note) {
  return h("article", { class: `card health ${kind}` },
    h("h3", {}, title), h("p", { class: "big" }, value), note ? h("p", { class: "hint" }, note) : null);
}

async function load() {
  try {
    const [live, ready, api, config, text, fleet] = await Promise.all([
      probe("/healthz"), probe("/readyz"), probe("/openapi.json"), probe("config.json"), probe("/metrics"),
      loadInstances(),
    ]);
    metrics = typeof text.body === "string" ? parseMetrics(text.body) : [];
    const checks = ready.body.checks || {};
    const yes = (v) => (v ? "reachable" : "unreachable");
    const cards = [
      card("Process", live.status === 200 ? "up" : `HTTP ${live.status}`, live.status === 200 ? "good" : "bad", "/healthz"),
      card("Ready", ready.body.ready ? "ready" : "not ready", ready.body.ready ? "good" : "bad", `/readyz answered ${ready.status}`),
      card("Database", yes(checks.database), checks.database ? "good" : "bad", "PostgreSQL"),
      "broker" in checks
        ? card("Broker", yes(checks.broker), checks.broker ? "good" : "bad", "AMQP (RabbitMQ)")
        : card("Broker", "off", "neutral", "MEDIA_MGR_AMQP_URL is not set"),
      card("Version", api.body?.info?.version || config.body?.version || "?", "neutral", `API ${api.body?.openapi ? "OpenAPI " + api.body.openapi : ""}`),
      (fleetCard = instancesCard(fleet, card)),
      card("audio_stream sessions", String(sum("media_mgr_audio_stream_sessions")), "neutral",
        `event loop lag ${sum("media_mgr_audio_stream_loop_lag_ms").toFixed(0)} ms`),
      card("SHOUT", `${sum("media_mgr_shout_sources")} sources`, "neutral", `${sum("media_mgr_shout_listeners")} listeners, ${bytes(sum("media_mgr_shout_queue_bytes"))} queued`),
      card("Uploads", bytes(sum("media_mgr_upload_bytes_total")), "neutral", `${sum("media_mgr_uploads_total")} uploads, ${bytes(sum("media_mgr_served_bytes_total"))} served`),
    ];
    document.getElementById("health-cards").replaceChildren(...cards);
    paintInstances(fleet);
    paintMetrics();
  } catch (error) {
    tell(status, String(error), "error");
  }
}

async function loadFleet() {
  const fleet = await loadInstances();
  const fresh = instancesCard(fleet, card);
  if (fleetCard?.isConnected) fleetCard.replaceWith(fresh);
  fleetCard = fresh;
  paintInstances(fleet);
}

// Histogram buckets are many and rarely what an operator looks for: shown when asked for by name.
function paintMetrics() {
  const filter = document.getElementById("metric-filter").value.trim();
  const matching = metrics.filter((m) => filter
    ? m.name.includes(filter) || m.labels.includes(filter)
    : !m.name.endsWith("_bucket") && !m.name.endsWith("_created"));
  const shown = matching.slice(0, LIMIT);
  document.getElementById("metric-count").textContent =
    `${shown.length} of ${matching.length} series${filter ? "" : " (buckets and _created hidden; filter to see them)"}`;
  document.querySelector("#metrics-table tbody").replaceChildren(...shown.map((m) =>
    h("tr", {}, h("td", {}, h("code", {}, m.name)), h("td", { class: "sub" }, m.labels), h("td", { class: "num" }, String(m.value)))));
}

export const healthView = {
  start() {
    status = document.getElementById("health-status");
    document.getElementById("health-refresh").addEventListener("click", load);
    document.getElementById("metric-filter").addEventListener("input", paintMetrics);
    this.show();
  },
  show() {
    clearInterval(timer);
    load();
    timer = setInterval(() => { if (!document.hidden) loadFleet(); }, INSTANCES_EVERY_MS);
  },
  hide() {
    clearInterval(timer);
  },
  refresh: load,
};
