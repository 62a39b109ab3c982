// Live: audio_stream sessions (with a chart of jitter, lead and underruns), play into a call and
// barge in; SHOUT sources and their listeners; relays; playback downloads in flight.
// Polled every second while shown; elements are updated in place so focus and typing survive.
import { api, query, ApiError } from "./api.js";
import { h, bytes, duration, rate, when, tell, play } from "./ui.js";
import { liveMountUrl } from "./config.js";
import { chart, SLOTS } from "./chart.js";

const sessions = new Map(); // session_id -> {card, history, fields}
let status, timer = 0, busy = false;

async function tick() {
  if (busy) return;
  busy = true;
  try {
    const { streams } = await api("GET", "/v1/streams");
    const live = streams.filter((s) => s.kind === "audio_stream").map((s) => ({ ...s, session_id: s.session_id ?? s.id }));
    await updateSessions(live);
    updateTable("sources", streams.filter((s) => s.kind === "recording"), sourceColumns, "No source is connected.");
    updateTable("downloads", streams.filter((s) => s.kind === "playback"), downloadColumns, "Nothing is being downloaded.");
    await updateRelays();
    if (status.querySelector(".error")) status.replaceChildren();
  } catch (error) {
    tell(status, error instanceof ApiError ? error.describe() : String(error), "error");
  } finally {
    busy = false;
  }
}

async function updateSessions(list) {
  const box = document.getElementById("sessions");
  const seen = new Set();
  for (const entry of list) {
    seen.add(entry.session_id);
    let detail = entry;
    try {
      detail = await api("GET", `/v1/streams/${encodeURIComponent(entry.session_id)}`);
    } catch (error) {
      if (error.status !== 404) throw error; // ended between the two calls
      continue;
    }
    let s = sessions.get(entry.session_id);
    if (!s) {
      s = sessionCard(detail);
      sessions.set(entry.session_id, s);
      box.append(s.card);
    }
    s.history.push({ jitter: detail.jitter_ms ?? 0, lead: detail.lead_ms ?? 0, underruns: detail.underruns ?? 0 });
    if (s.history.length > SLOTS) s.history.shift();
    paintSession(s, detail);
  }
  for (const [id, s] of sessions) {
    if (!seen.has(id)) { s.card.remove(); sessions.delete(id); }
  }
  box.querySelector(".empty")?.remove();
  if (!sessions.size) box.append(h("p", { class: "empty" }, "No mod_audio_stream session is connected."));
}

function sessionCard(detail) {
  const fields = {};
  const field = (name, label, wide) => h("div", { class: wide ? "figure wide" : "figure" }, h("span", { class: "label" }, label), (fields[name] = h("span", { class: "value" }, "–")));
  const target = h("input", { name: "media", list: "media-suggestions", placeholder: "media id or Media-Name", autocomplete: "off", "aria-label": "Media to play into the call", required: true });
  const playForm = h("form", { class: "inline", onsubmit: (e) => { e.preventDefault(); playInto(detail.session_id, target.value.trim(), s); } },
    target,
    h("button", { type: "submit", class: "small primary" }, "Play into call"),
    h("button", { type: "button", class: "small danger", onclick: () => clearSession(detail.session_id, s) }, "Clear (barge-in)"));
  target.addEventListener("input", () => suggest(target.value));
  const card = h("article", { class: "card session", dataset: { sessionId: detail.session_id }, "aria-label": `audio_stream session ${detail.session_id}` },
    h("header", {}, h("strong", {}, "Session "), h("code", {}, detail.session_id), (fields.state = h("span", { class: "badge" }, ""))),
    h("div", { class: "figures" },
      field("dialect", "Dialect"), field("rate", "Rate"), field("tracks", "Tracks"), field("recorded", "Recorded"),
      field("jitter", "Jitter"), field("lead", "Lead"), field("preset", "Preset"), field("underruns", "Underruns"),
      field("buffered", "Buffered"), field("playout", "Playout", true), field("ids", "Stream / call", true)),
    (fields.chart = h("div", { class: "chart" })),
    playForm,
    (fields.message = h("p", { class: "hint", "aria-live": "polite" })));
  const s = { card, fields, history: [] };
  return s;
}

function paintSession(s, d) {
  const f = s.fields, fmt = d.format || {};
  f.state.textContent = d.state;
  f.state.className = `badge ${d.state}`;
  f.dialect.textContent = fmt.dialect ? `${fmt.dialect} (${fmt.encoding})` : "–";
  f.rate.textContent = rate(fmt.rate);
  f.tracks.textContent = (fmt.tracks || []).join(", ") || "–";
  f.recorded.textContent = duration(d.recorded_ms);
  f.jitter.textContent = `${(d.jitter_ms ?? 0).toFixed(1)} ms`;
  f.lead.textContent = `${d.lead_ms ?? 0} ms`;
  f.preset.textContent = d.preset || "–";
  f.underruns.textContent = String(d.underruns ?? 0);
  f.buffered.textContent = `${d.buffered_ms ?? 0} ms`;
  const p = d.playout;
  f.playout.textContent = p ? `${p.state}${p.playing_media_id ? " · " + p.playing_media_id.slice(0, 8) + "…" : ""}${p.queued ? ` · ${p.queued} queued` : ""}` : "–";
  f.ids.textContent = [d.stream_id, d.call_id].filter(Boolean).join(" / ") || "–";
  f.chart.replaceChildren(chart(s.history));
}

async function playInto(sessionId, what, s) {
  if (!what) return;
  const body = /^[0-9a-f]{32}$/.test(what) ? { media_id: what } : { media_name: what };
  try {
    const answer = await api("POST", `/v1/streams/${encodeURIComponent(sessionId)}/play`, { json: body });
    s.fields.message.textContent = `Queued ${what}${answer?.queued ? ` (${answer.queued} in queue)` : ""}.`;
  } catch (error) {
    s.fields.message.textContent = `Cannot play: ${error.describe?.() ?? error}`;
  }
}

async function clearSession(sessionId, s) {
  try {
    await api("POST", `/v1/streams/${encodeURIComponent(sessionId)}/clear`);
    s.fields.message.textContent = "Cleared: playback stopped.";
  } catch (error) {
    s.fields.message.textContent = `Cannot clear: ${error.describe?.() ?? error}`;
  }
}

let suggestTimer = 0;
function suggest(text) {
  clearTimeout(suggestTimer);
  if (/^[0-9a-f]{32}$/.test(text) || text.length < 2) return;
  suggestTimer = setTimeout(async () => {
    try {
      const page = await api("GET", "/v1/media" + query({ name: text, limit: 20 }));
      document.getElementById("media-suggestions").replaceChildren(
        ...page.items.map((item) => h("option", { value: item.id }, `${item.name} · ${item.media_name}`)));
    } catch { /* suggestions are a convenience */ }
  }, 250);
}

const sourceColumns = [
  ["Mount", (s) => h("code", {}, s.mount)], ["Recording", (s) => h("code", {}, s.media_id)],
  ["Source", (s) => s.client], ["Listeners", (s) => String(s.listeners ?? 0)],
  ["Received", (s) => bytes(s.bytes)], ["Duration", (s) => duration(s.duration_ms)],
  ["", (s) => h("button", { type: "button", class: "small", "aria-label": `Listen to ${s.mount}`,
    onclick: async () => play(await liveMountUrl(s.mount), `${s.mount} (live)`) }, "◉ Listen")],
];
const downloadColumns = [
  ["Media", (s) => h("code", {}, s.media_id)], ["Format", (s) => s.format || "–"], ["Client", (s) => s.client],
  ["Sent", (s) => bytes(s.bytes)], ["Since", (s) => when(s.started_at)],
];

// A table keyed by entry id: rows added and removed as entries come and go, cells refreshed in place
// (action cells are kept, so a focused button stays focused).
function updateTable(id, entries, columns, empty) {
  const box = document.getElementById(id);
  let table = box.querySelector("table");
  if (!table) {
    table = h("table", {}, h("thead", {}, h("tr", {}, columns.map(([title]) => h("th", { scope: "col" }, title)))), h("tbody"));
    box.replaceChildren(h("div", { class: "table-wrap" }, table), h("p", { class: "empty" }, empty));
  }
  const tbody = table.tBodies[0];
  const rows = new Map([...tbody.rows].map((tr) => [tr.dataset.key, tr]));
  for (const entry of entries) {
    const key = String(entry.id);
    let tr = rows.get(key);
    if (!tr) {
      tr = h("tr", { dataset: { key } }, columns.map(([, cell]) => h("td", {}, cell(entry))));
      tbody.append(tr);
    } else {
      columns.forEach(([title, cell], i) => { if (title) tr.cells[i].replaceChildren(cell(entry)); });
    }
    rows.delete(key);
  }
  for (const tr of rows.values()) tr.remove();
  table.parentElement.hidden = entries.length === 0;
  box.querySelector(".empty").hidden = entries.length !== 0;
}

const relayColumns = [
  ["Source", (r) => r.source.mount || `${r.source.media_id} (loop)`],
  ["Target", (r) => `${r.target.host}:${r.target.port}${r.target.mount}`],
  ["State", (r) => h("span", { class: `badge ${r.state}` }, r.state)], ["Sent", (r) => bytes(r.bytes_sent)],
  ["Connects", (r) => String(r.connects)], ["Last error", (r) => r.last_error || "–"],
];

async function updateRelays() {
  try {
    const { items } = await api("GET", "/v1/relays");
    updateTable("relays", items, relayColumns, "No relay is running.");
  } catch (error) {
    if (error.status !== 503) throw error;
    document.getElementById("relays").replaceChildren(h("p", { class: "empty" }, `Relays: ${error.detail}`));
  }
}

function setupStreamUrl() {
  document.getElementById("new-ws-url").addEventListener("click", async () => {
    try {
      const issued = await api("POST", "/v1/audio-stream-urls", { json: {} });
      const line = `uuid_audio_stream <uuid> <stream_id> start ${issued.url} inbound l16 16k 86400 1`;
      tell(status, h("span", {}, "For the call: ", h("code", {}, line), ` (recording ${issued.recording_id})`));
    } catch (error) {
      tell(status, error.describe?.() ?? String(error), "error");
    }
  });
}

export const liveView = {
  start() {
    status = document.getElementById("live-status");
    document.body.append(h("datalist", { id: "media-suggestions" }));
    setupStreamUrl();
    this.show();
  },
  show() {
    clearInterval(timer);
    tick();
    timer = setInterval(() => { if (!document.hidden) tick(); }, 1000);
  },
  hide() {
    clearInterval(timer);
  },
  refresh: tick,
};
