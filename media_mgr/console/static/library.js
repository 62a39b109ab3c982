// Media library: filter, page through, upload by drag and drop, play, download, replace, delete.
import { api, query, streamPath, upload as send, ApiError } from "./api.js";
import { h, bytes, duration, rate, count, tell, confirmAction, debounce, play } from "./ui.js";
import { waveformImage, forgetWaveforms } from "./waveforms.js";

const PAGE = 50;
const state = { offset: 0, total: 0, filter: {}, items: new Map(), loading: null };
let status, tbody, caption, pager;

function filterParams() {
  const form = document.getElementById("library-filter");
  const data = Object.fromEntries(new FormData(form));
  const params = {
    name: data.name.trim(), prompt_id: data.prompt_id.trim(), language: data.language.trim().toLowerCase(),
    account_id: data.account_id.trim().toLowerCase(),
  };
  if (data.scope === "system") params.system = "true";
  if (data.scope === "account") params.system = "false";
  return params;
}

async function load() {
  state.loading?.abort();
  const controller = (state.loading = new AbortController());
  try {
    const page = await api("GET", "/v1/media" + query({ ...state.filter, limit: PAGE, offset: state.offset }),
      { signal: controller.signal });
    if (page.items.length === 0 && state.offset > 0 && page.total > 0) {
      state.offset = Math.max(0, Math.floor((page.total - 1) / PAGE) * PAGE);
      return load();
    }
    state.total = page.total;
    render(page.items);
  } catch (error) {
    if (error.name === "AbortError") return;
    tell(status, error instanceof ApiError ? error.describe() : String(error), "error");
  }
}

function render(items) {
  state.items = new Map(items.map((item) => [item.id, item]));
  tbody.replaceChildren(...items.map(row));
  if (items.length === 0) {
    tbody.append(h("tr", {}, h("td", { colspan: 9, class: "empty" }, "No media matches.")));
  }
  const first = items.length ? state.offset + 1 : 0;
  caption.textContent = `Media: ${count(state.total)} item${state.total === 1 ? "" : "s"}`;
  pager.querySelector(".range").textContent = `${count(first)}–${count(state.offset + items.length)} of ${count(state.total)}`;
  pager.querySelector("[data-page=prev]").disabled = state.offset === 0;
  pager.querySelector("[data-page=next]").disabled = state.offset + items.length >= state.total;
  if (!performance.getEntriesByName("media-listed").length) performance.mark("media-listed"); // first page shown
}

function owner(item) {
  const who = item.account_id ? h("code", { title: item.account_id }, item.account_id.slice(0, 8) + "…") : h("span", { class: "tag" }, "system");
  const prompt = item.prompt_id ? [" ", h("span", { class: "tag prompt" }, `${item.prompt_id}${item.language ? " · " + item.language : ""}`)] : [];
  return [who, ...prompt];
}

function row(item) {
  const label = item.name || item.id;
  return h("tr", { dataset: { id: item.id, revision: item.revision } },
    h("td", { class: "wave-col" }, waveformImage(item)),
    h("td", {}, h("div", { class: "name" }, label), h("div", { class: "sub" }, h("code", {}, item.media_name))),
    h("td", {}, owner(item)),
    h("td", {}, `${item.format} `, h("span", { class: "sub" }, item.codec), item.channels > 1 ? h("span", { class: "sub" }, ` · ${item.channels} ch`) : null),
    h("td", { class: "num" }, rate(item.sample_rate)),
    h("td", { class: "num" }, duration(item.duration_ms)),
    h("td", { class: "num revision" }, item.revision),
    h("td", { class: "num" }, bytes(item.size)),
    h("td", { class: "actions" },
      h("button", { type: "button", class: "small", "aria-label": `Play ${label}`, onclick: () => playItem(item) }, "▶ Play"),
      h("button", { type: "button", class: "small", "aria-label": `Download ${label}`, onclick: () => download(item) }, "Download"),
      h("button", { type: "button", class: "small", "aria-label": `Replace ${label}`, onclick: () => replace(item) }, "Replace"),
      h("button", { type: "button", class: "small danger", "aria-label": `Delete ${label}`, onclick: () => remove(item) }, "Delete")));
}

async function playItem(item) {
  try {
    play(await streamPath(item.media_name, item.format), `${item.name} (rev ${item.revision})`);
  } catch (error) {
    tell(status, `Cannot play ${item.name}: ${error.describe?.() ?? error}`, "error");
  }
}

async function download(item) {
  try {
    // A stream URL streams the stored bytes without holding the whole file in the page.
    const path = await streamPath(item.media_name, item.format);
    const link = h("a", { href: path, download: `${item.name || item.id}`.replace(/\.(wav|mp3)$/i, "") + `.${item.format}`, hidden: true });
    document.body.append(link);
    link.click();
    link.remove();
  } catch (error) {
    tell(status, `Cannot download ${item.name}: ${error.describe?.() ?? error}`, "error");
  }
}

function uploadBody(file, fields) {
  const form = new FormData();
  for (const [key, value] of Object.entries(fields || {})) if (value) form.set(key, value);
  form.set("file", file, file.name);
  return form;
}

function replace(item) {
  const dialog = document.getElementById("replace-dialog");
  const input = document.getElementById("replace-input");
  const error = dialog.querySelector(".replace-error");
  dialog.querySelector("h2").textContent = `Replace ${item.name}`;
  input.value = "";
  error.hidden = true;
  dialog.showModal();
  input.focus();
  const submit = async (e) => {
    if (e.submitter?.value !== "ok") return;
    e.preventDefault();
    const file = input.files[0];
    if (!file) return;
    try {
      const updated = await send("PUT", `/v1/media/${item.id}/content`, uploadBody(file));
      dialog.close();
      forgetWaveforms(item.id);
      tell(status, `${updated.name}: now revision ${updated.revision} (${bytes(updated.size)}, ${duration(updated.duration_ms)}).`);
      await load();
    } catch (err) {
      error.textContent = err.describe?.() ?? String(err);
      error.hidden = false;
    }
  };
  const form = dialog.querySelector("form");
  form.addEventListener("submit", submit);
  dialog.addEventListener("close", () => form.removeEventListener("submit", submit), { once: true });
}

async function remove(item) {
  const ok = await confirmAction(`Delete ${item.name}?`,
    `${item.media_name} (revision ${item.revision}, ${bytes(item.size)}) will be deleted; stream URLs already issued for it stop working.`);
  if (!ok) return;
  try {
    await api("DELETE", `/v1/media/${item.id}`);
    forgetWaveforms(item.id);
    tell(status, `Deleted ${item.name}.`);
    await load();
  } catch (error) {
    tell(status, `Cannot delete ${item.name}: ${error.describe?.() ?? error}`, "error");
  }
}

async function upload(files) {
  const log = document.getElementById("upload-log");
  const fields = Object.fromEntries(new FormData(document.getElementById("upload-options")));
  for (const key of Object.keys(fields)) fields[key] = fields[key].trim();
  let stored = 0;
  for (const file of files) {
    const line = h("li", { class: "pending" }, `${file.name}: uploading ${bytes(file.size)}…`);
    log.prepend(line);
    const progress = (done) => {
      line.textContent = done < 1 ? `${file.name}: uploading ${bytes(file.size)}, ${Math.floor(done * 100)}%…`
        : `${file.name}: uploaded, the server checks it…`;
    };
    try {
      const item = await send("POST", "/v1/media", uploadBody(file, fields), progress);
      line.className = "ok";
      line.textContent = `${file.name}: stored as ${item.media_name} (${item.format}, ${rate(item.sample_rate)}, ${duration(item.duration_ms)}).`;
      stored++;
    } catch (error) {
      line.className = "error";
      line.setAttribute("role", "alert");
      line.textContent = `${file.name}: refused, ${error.describe?.() ?? error}`;
    }
  }
  while (log.children.length > 8) log.lastChild.remove();
  if (stored) {
    state.offset = Math.max(0, Math.floor((state.total + stored - 1) / PAGE) * PAGE); // the newest are last
    await load();
  }
}

function setupUpload() {
  const zone = document.getElementById("drop-zone");
  const input = document.getElementById("upload-input");
  document.getElementById("choose-files").addEventListener("click", () => input.click());
  input.addEventListener("change", () => { upload([...input.files]); input.value = ""; });
  for (const type of ["dragenter", "dragover"]) {
    zone.addEventListener(type, (e) => { e.preventDefault(); zone.classList.add("over"); });
  }
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    upload([...e.dataTransfer.files]);
  });
}

export const libraryView = {
  start() {
    status = document.getElementById("library-status");
    tbody = document.querySelector("#media-table tbody");
    caption = document.getElementById("media-caption");
    pager = document.getElementById("media-pager");
    const form = document.getElementById("library-filter");
    const apply = () => { state.filter = filterParams(); state.offset = 0; load(); };
    form.addEventListener("submit", (e) => { e.preventDefault(); apply(); });
    form.addEventListener("input", debounce(apply, 300));
    form.addEventListener("reset", () => setTimeout(apply, 0));
    pager.addEventListener("click", (e) => {
      const dir = e.target.dataset.page;
      if (!dir) return;
      state.offset = Math.max(0, state.offset + (dir === "next" ? PAGE : -PAGE));
      load();
    });
    setupUpload();
    load();
  },
  refresh: load,
};
