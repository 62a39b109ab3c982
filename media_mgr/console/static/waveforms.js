// Waveform thumbnails: fetched (with the token) only when their row scrolls into view, a few at a
// time, shown from blob URLs, and remembered per (id, revision) so paging back costs nothing.
import { api } from "./api.js";
import { h } from "./ui.js";

const AT_ONCE = 3;
const cache = new Map(); // "id:revision" -> object URL
const waiting = [];
let running = 0;

const observer = new IntersectionObserver((entries) => {
  for (const entry of entries) {
    if (!entry.isIntersecting) continue;
    observer.unobserve(entry.target);
    waiting.push(entry.target);
  }
  pump();
}, { rootMargin: "200px" });

function pump() {
  while (running < AT_ONCE && waiting.length) {
    const img = waiting.shift();
    if (!img.isConnected) continue;
    running++;
    fetchInto(img).finally(() => { running--; pump(); });
  }
}

async function fetchInto(img) {
  const { id, revision } = img.dataset;
  const key = `${id}:${revision}`;
  try {
    if (!cache.has(key)) {
      const blob = await api("GET", `/v1/media/${id}/waveform.svg`, { blob: true });
      const label = (await blob.text()).match(/aria-label="([^"]*)"/);
      cache.set(key, { url: URL.createObjectURL(blob), alt: label ? decode(label[1]) : "waveform" });
    }
    const { url, alt } = cache.get(key);
    img.alt = `waveform, ${alt}`; // says the level and any clipping
    img.title = alt;
    img.src = url;
    img.classList.remove("loading");
  } catch (error) {
    img.alt = `no waveform: ${error.describe?.() ?? error}`;
    img.classList.add("failed");
  }
}

const ENTITIES = { "&amp;": "&", "&lt;": "<", "&gt;": ">", "&quot;": '"' };
function decode(text) { // the four the server escapes
  return text.replace(/&(amp|lt|gt|quot);/g, (e) => ENTITIES[e]);
}

// Empty alt until loaded: no broken-image sign while the row waits for its turn.
export function waveformImage(item) {
  const img = h("img", {
    class: "wave loading", alt: "", width: 240, height: 40,
    dataset: { id: item.id, revision: item.revision },
  });
  observer.observe(img);
  return img;
}

export function forgetWaveforms(id) {
  for (const [key, { url }] of cache) {
    if (key.startsWith(`${id}:`)) { URL.revokeObjectURL(url); cache.delete(key); }
  }
}
