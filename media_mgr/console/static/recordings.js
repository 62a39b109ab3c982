// Recordings, newest first: state and why it ended, origin, size; play, listen live, issue URLs.
import { api, query, streamPath, ApiError } from "./api.js";
import { h, bytes, duration, when, count, tell, play, copyButton } from "./ui.js";
import { liveMountUrl } from "./config.js";

const PAGE = 50;
const state = { page: 0, total: 0, filter: {}, shown: "" };
const EVERY_MS = 5000; // states change (recording -> complete): read again while the list is shown
let status, tbody, pager, timer = 0;

// The API lists oldest first; the newest page is the last one, read backwards.
async function load() {
  try {
    const head = await api("GET", "/v1/recordings" + query({ ...state.filter, limit: 1, offset: 0 }));
    state.total = head.total;
    const end = Math.max(0, state.total - state.page * PAGE);
    const start = Math.max(0, end - PAGE);
    const items = end === 0 ? [] :
      (await api("GET", "/v1/recordings" + query({ ...state.filter, limit: end - start, offset: start }))).items;
    render(items.reverse(), start, end);
  } catch (error) {
    tell(status, error instanceof ApiError ? error.describe() : String(error), "error");
  }
}

function badge(rec) {
  const reason = rec.end_reason ? ` · ${rec.end_reason}` : "";
  return h("span", { class: `badge ${rec.state}`, title: rec.end_reason || rec.state }, rec.state + (rec.state === "interrupted" ? reason : ""));
}

function render(items, start, end) {
  const fingerprint = JSON.stringify([items, start, end, state.total]);
  if (fingerprint === state.shown) return; // unchanged: keep the rows (and the focus in them)
  state.shown = fingerprint;
  tbody.replaceChildren(...items.map(row));
  if (!items.length) tbody.append(h("tr", {}, h("td", { colspan: 7, class: "empty" }, "No recordings.")));
  pager.querySelector(".range").textContent = items.length ? `${count(state.total - end + 1)}–${count(state.total - start)} of ${count(state.total)} (newest first)` : "";
  pager.querySelector("[data-page=prev]").disabled = state.page === 0;
  pager.querySelector("[data-page=next]").disabled = start === 0;
}

function row(rec) {
  const label = rec.name || rec.id;
  const actions = [];
  if (rec.media_id && (rec.state === "complete" || rec.state === "interrupted")) {
    actions.push(h("button", { type: "button", class: "small", "aria-label": `Play ${label}`,
      onclick: async () => {
        try { play(await streamPath(rec.media_name, rec.format), label); }
        catch (error) { tell(status, `Cannot play ${label}: ${error.describe?.() ?? error}`, "error"); }
      } }, "▶ Play"));
    actions.push(h("button", { type: "button", class: "small", "aria-label": `Download ${label}`,
      onclick: async () => {
        try {
          const link = h("a", { href: await streamPath(rec.media_name, rec.format), download: `${rec.id}.${rec.format}`, hidden: true });
          document.body.append(link);
          link.click();
          link.remove();
        } catch (error) { tell(status, `Cannot download ${label}: ${error.describe?.() ?? error}`, "error"); }
      } }, "Download"));
  }
  if (rec.state === "recording" && rec.origin === "shout") {
    actions.push(h("button", { type: "button", class: "small", "aria-label": `Listen live to ${label}`,
      onclick: async () => play(await liveMountUrl(`/${rec.id}.mp3`), `${label} (live)`) }, "◉ Listen live"));
  }
  return h("tr", { dataset: { id: rec.id, state: rec.state } },
    h("td", {}, when(rec.started_at || rec.created_at)),
    h("td", {}, h("div", { class: "name" }, label), h("div", { class: "sub" }, h("code", {}, rec.media_name || rec.id))),
    h("td", {}, badge(rec)),
    h("td", {}, rec.origin || "–", rec.peer ? h("div", { class: "sub" }, rec.peer) : null),
    h("td", { class: "num" }, duration(rec.duration_ms)),
    h("td", { class: "num" }, rec.state === "pending" ? "–" : bytes(rec.size)),
    h("td", { class: "actions" }, actions));
}

function dialplan(result) {
  const file = `/tmp/${result.id}.${result.format}`;
  const shout = [
    `<action application="set" data="enable_file_write_buffering=false"/>`,
    `<action application="record_session" data="${result.shout_url}"/>`,
  ].join("\n");
  const put = [
    `<action application="set" data="api_hangup_hook=http_put ${result.store_url} ${file}"/>`,
    `<action application="record_session" data="${file}"/>`,
  ].join("\n");
  const block = (title, text) => h("div", { class: "snippet" },
    h("div", { class: "snippet-head" }, h("strong", {}, title), copyButton(text)), h("pre", {}, text));
  return [
    block("mod_shout: stream while recording (each byte stored as it arrives)", shout),
    block("Kazoo's way: record a file, PUT it to /store/ after hangup", put),
  ];
}

function setupNewRecording() {
  const dialog = document.getElementById("url-dialog");
  const result = document.getElementById("url-result");
  const fields = document.getElementById("url-fields");
  document.getElementById("new-recording").addEventListener("click", () => {
    result.replaceChildren();
    dialog.showModal();
    fields.querySelector("input").focus();
  });
  dialog.querySelector("form").addEventListener("submit", async (e) => {
    if (e.submitter && e.submitter.value !== "issue") return; // Close
    e.preventDefault(); // Issue, or Enter in a field: stay open and show the URLs
    const body = {};
    for (const el of fields.querySelectorAll("input, select")) if (el.value.trim()) body[el.name] = el.value.trim();
    try {
      const rec = await api("POST", "/v1/recordings", { json: body });
      result.replaceChildren(h("p", {}, "Recording ", h("code", {}, rec.id), " is pending. Paste into the dialplan:"), ...dialplan(rec));
      load();
    } catch (error) {
      result.replaceChildren(h("p", { class: "notice error", role: "alert" }, error.describe?.() ?? String(error)));
    }
  });
}

export const recordingsView = {
  start() {
    status = document.getElementById("recordings-status");
    tbody = document.querySelector("#recordings-table tbody");
    pager = document.getElementById("recordings-pager");
    const form = document.getElementById("recordings-filter");
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      const data = Object.fromEntries(new FormData(form));
      state.filter = { state: data.state, account_id: data.account_id.trim().toLowerCase() };
      state.page = 0;
      load();
    });
    pager.addEventListener("click", (e) => {
      const dir = e.target.dataset.page;
      if (!dir) return;
      state.page = Math.max(0, state.page + (dir === "next" ? 1 : -1));
      load();
    });
    setupNewRecording();
    this.show();
  },
  show() {
    load();
    clearInterval(timer);
    timer = setInterval(() => { if (!document.hidden && !document.querySelector("dialog[open]")) load(); }, EVERY_MS);
  },
  hide() {
    clearInterval(timer);
  },
  refresh: load,
};
