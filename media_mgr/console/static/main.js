// The console's shell: tabs (keyboard: arrows, Home, End), the token dialog, and view switching.
import { auth } from "./api.js";
import { libraryView } from "./library.js";
import { recordingsView } from "./recordings.js";
import { liveView } from "./live.js";
import { healthView } from "./health.js";

const views = { library: libraryView, recordings: recordingsView, live: liveView, health: healthView };
const started = new Set();
let current = null;

function show(name) {
  if (!views[name]) name = "library";
  for (const tab of document.querySelectorAll("[role=tab]")) {
    const selected = tab.dataset.view === name;
    tab.setAttribute("aria-selected", String(selected));
    tab.tabIndex = selected ? 0 : -1;
  }
  for (const key of Object.keys(views)) {
    document.getElementById(`view-${key}`).hidden = key !== name;
  }
  if (current && current !== name) views[current].hide?.();
  current = name;
  if (!started.has(name)) {
    started.add(name);
    views[name].start();
  } else {
    views[name].show?.();
  }
  if (location.hash !== `#${name}`) history.replaceState(null, "", `#${name}`);
}

function setupTabs() {
  const tabs = [...document.querySelectorAll("[role=tab]")];
  for (const tab of tabs) {
    tab.addEventListener("click", () => show(tab.dataset.view));
    tab.addEventListener("keydown", (e) => {
      const i = tabs.indexOf(tab);
      const next = { ArrowRight: i + 1, ArrowLeft: i - 1, Home: 0, End: tabs.length - 1 }[e.key];
      if (next === undefined) return;
      e.preventDefault();
      const target = tabs[(next + tabs.length) % tabs.length];
      target.focus();
      show(target.dataset.view);
    });
  }
  window.addEventListener("hashchange", () => show(location.hash.slice(1)));
}

function setupAuth() {
  const dialog = document.getElementById("token-dialog");
  const input = document.getElementById("token-input");
  const reason = document.getElementById("token-reason");
  const state = document.getElementById("auth-state");
  const signIn = document.getElementById("sign-in");
  const signOut = document.getElementById("sign-out");
  const paint = () => {
    const has = Boolean(auth.token);
    state.textContent = has ? "token set" : "no token";
    signOut.hidden = !has;
    signIn.textContent = has ? "Change token" : "Enter token";
  };
  let declined = false; // once cancelled, refusals are shown in the views, not asked again
  const ask = (why) => {
    if (dialog.open) return;
    reason.textContent = why || "";
    input.value = "";
    dialog.showModal();
    input.focus();
  };
  signIn.addEventListener("click", () => { declined = false; ask(""); });
  signOut.addEventListener("click", () => auth.set(null));
  dialog.addEventListener("close", () => {
    if (dialog.returnValue === "ok" && input.value.trim()) auth.set(input.value.trim());
    else declined = true;
    input.value = "";
  });
  document.addEventListener("auth-needed", (e) => {
    if (declined) return;
    const error = e.detail;
    ask(error.status === 401
      ? "The server asks for the admin token."
      : `The server refused: ${error.detail} A token helps only when the server has one configured.`);
  });
  document.addEventListener("auth-changed", () => {
    declined = false;
    paint();
    if (current) views[current].refresh?.();
  });
  paint();
}

document.addEventListener("keydown", (e) => {
  const typing = e.target.closest("input, select, textarea, [contenteditable]");
  if (e.key === "/" && !typing && current === "library") {
    e.preventDefault();
    document.querySelector("#library-filter [name=name]").focus();
  }
});

setupTabs();
setupAuth();
show(location.hash.slice(1) || "library");
