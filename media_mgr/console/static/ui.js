// Small DOM helpers shared by the views: build elements, format figures, ask and tell.

export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "class") el.className = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (value === true) el.setAttribute(key, "");
    else el.setAttribute(key, String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

const SVG_NS = "http://www.w3.org/2000/svg";
export function svg(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs || {})) el.setAttribute(key, String(value));
  for (const child of children.flat()) if (child) el.append(child);
  return el;
}

export function bytes(n) {
  if (n === null || n === undefined) return "–";
  if (n < 1024) return `${n} B`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let value = n / 1024, i = 0;
  while (value >= 1024 && i < units.length - 1) { value /= 1024; i++; }
  return `${value.toFixed(value < 10 ? 1 : 0)} ${units[i]}`;
}

export function duration(ms) {
  if (ms === null || ms === undefined) return "–";
  const total = Math.round(ms / 100) / 10;
  const m = Math.floor(total / 60), s = total - m * 60;
  const sec = s.toFixed(1).padStart(4, "0");
  if (m < 60) return `${m}:${sec}`;
  return `${Math.floor(m / 60)}:${String(m % 60).padStart(2, "0")}:${sec}`;
}

export function rate(hz) {
  if (!hz) return "–";
  return hz % 1000 === 0 ? `${hz / 1000} kHz` : `${(hz / 1000).toFixed(2)} kHz`;
}

// Local time as an operator reads logs: 2026-11-30 01:29:21.
export function when(iso) {
  if (!iso) return "–";
  const d = new Date(iso), p = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

export function count(n) {
  return Number(n).toLocaleString("en-US");
}

// A line in the status area at the top of a view; errors stay until replaced.
export function tell(area, message, kind = "info") {
  area.replaceChildren(h("p", { class: `notice ${kind}`, role: kind === "error" ? "alert" : "status" }, message));
  if (kind !== "error") setTimeout(() => area.firstChild && area.firstChild.textContent === message && area.replaceChildren(), 6000);
}

// Ask a yes/no question in a modal dialog; resolves true when confirmed.
export function confirmAction(title, text, action = "Delete") {
  const dialog = document.getElementById("confirm-dialog");
  dialog.querySelector("h2").textContent = title;
  dialog.querySelector("p").textContent = text;
  dialog.querySelector("button[value=yes]").textContent = action;
  dialog.returnValue = "";
  dialog.showModal();
  dialog.querySelector("button[value=no]").focus();
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "yes"), { once: true });
  });
}

export function debounce(fn, ms) {
  let timer = 0;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}

// The one audio player of the page (bottom bar).
export function play(src, label) {
  const audio = document.getElementById("player");
  document.getElementById("now-playing").textContent = label;
  document.getElementById("player-bar").hidden = false;
  audio.src = src;
  return audio.play().catch(() => {}); // autoplay refusals leave the controls to the user
}

export function copyButton(text) {
  return h("button", {
    type: "button", class: "small",
    onclick: async (e) => {
      try {
        await navigator.clipboard.writeText(text);
        e.target.textContent = "Copied";
      } catch {
        e.target.textContent = "Select and copy";
      }
    },
  }, "Copy");
}
