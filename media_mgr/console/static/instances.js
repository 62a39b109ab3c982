// Instances: the fleet as GET /v1/instances lists it (live ones and those ended in the last hour),
// which of them answered this page's request, and how each ended one ended (stopped, or declared
// gone by a survivor). A server from before the fleet registry answers 404: said so, not an error.
import { api } from "./api.js";
import { h, when } from "./ui.js";

const short = (id) => (id ? id.slice(0, 8) : "–");

export async function loadInstances() {
  try {
    const body = await api("GET", "/v1/instances");
    return { instances: body.instances || [], self: body.self || null };
  } catch (error) {
    if (error.status === 404) return { missing: true };
    return { error };
  }
}

function serving(result) {
  return result.instances?.find((i) => i.self) || null;
}

function where(i) {
  return `pid ${i.pid}${i.worker === null || i.worker === undefined ? "" : `, worker ${i.worker}`} on ${i.host}`;
}

// The Health page's card: how many run, and which one answered.
export function instancesCard(result, card) {
  if (result.missing) return card("Instances", "not available", "neutral", "this server has no /v1/instances");
  if (result.error) return card("Instances", "unknown", "bad", result.error.describe?.() ?? String(result.error));
  const live = result.instances.filter((i) => i.state === "live").length;
  const me = serving(result);
  return card("Instances", `${live} live`, live > 0 ? "good" : "bad",
    me ? `this page: ${short(me.id)} (${where(me)})` : "");
}

function ended(i) {
  if (i.state === "live") return "–";
  if (i.state === "gone") return `${when(i.ended_at)}, declared gone by ${short(i.ended_by)}`;
  return when(i.ended_at);
}

function row(i) {
  return h("tr", { dataset: { id: i.id, state: i.state, self: String(Boolean(i.self)) } },
    h("td", {}, h("code", { title: i.id }, short(i.id)), i.self ? h("span", { class: "tag self" }, "this page") : null),
    h("td", {}, h("span", { class: `badge ${i.state}` }, i.state)),
    h("td", {}, i.host), h("td", { class: "num" }, String(i.pid)),
    h("td", { class: "num" }, i.worker === null || i.worker === undefined ? "–" : String(i.worker)),
    h("td", {}, when(i.started_at)), h("td", {}, when(i.heartbeat_at)), h("td", {}, ended(i)));
}

// The Instances section: one row per instance, live ones first, then by start.
export function paintInstances(result) {
  const area = document.getElementById("instances");
  if (result.missing) {
    area.replaceChildren(h("p", { class: "empty" },
      "Not available: this server has no instance registry (GET /v1/instances answered 404)."));
    return;
  }
  if (result.error) {
    area.replaceChildren(h("p", { class: "notice error", role: "alert" },
      `Instances: ${result.error.describe?.() ?? String(result.error)}`));
    return;
  }
  const rows = [...result.instances].sort((a, b) =>
    (a.state === "live" ? 0 : 1) - (b.state === "live" ? 0 : 1) || String(a.started_at).localeCompare(String(b.started_at)));
  const live = rows.filter((i) => i.state === "live").length;
  const me = serving(result);
  const caption = `Instances: ${live} live${rows.length > live ? `, ${rows.length - live} ended in the last hour` : ""}`
    + (me ? ` · this page answered by ${short(me.id)} (${where(me)})` : "");
  const head = ["Instance", "State", "Host", "PID", "Worker", "Started", "Last heartbeat", "Ended"];
  area.replaceChildren(h("div", { class: "table-wrap" }, h("table", { id: "instances-table" },
    h("caption", {}, caption),
    h("thead", {}, h("tr", {}, head.map((t) => h("th", { scope: "col", class: ["PID", "Worker"].includes(t) ? "num" : null }, t)))),
    h("tbody", {}, rows.length ? rows.map(row) : h("tr", {}, h("td", { colspan: head.length, class: "empty" }, "No instance is registered."))))));
}
