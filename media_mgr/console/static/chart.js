// A small live chart of the last minute, newest at the right: jitter and lead (ms, lines), and
// underruns as red bars where their count went up. Plain SVG built in the page; no library.
import { svg, h } from "./ui.js";

export const SLOTS = 60; // one point a second
const W = 600, H = 110, PAD = 3;

export function chart(history) {
  const top = Math.max(20, ...history.map((p) => Math.max(p.jitter, p.lead))) * 1.15;
  const x = (i) => W - PAD - ((history.length - 1 - i) * (W - 2 * PAD)) / (SLOTS - 1);
  const y = (v) => H - PAD - (v / top) * (H - 2 * PAD);
  const line = (key, cls) => svg("polyline", {
    class: cls, fill: "none", "stroke-width": 2, "stroke-linejoin": "round",
    points: history.map((p, i) => `${x(i).toFixed(1)},${y(p[key]).toFixed(1)}`).join(" "),
  });
  const bars = [];
  for (let i = 1; i < history.length; i++) {
    const more = history[i].underruns - history[i - 1].underruns;
    const tall = Math.min(H / 2, 10 * more);
    if (more > 0) bars.push(svg("rect", { class: "underrun", x: x(i) - 2, y: H - PAD - tall, width: 4, height: tall }));
  }
  const last = history[history.length - 1] || { jitter: 0, lead: 0, underruns: 0 };
  const grid = [0.25, 0.5, 0.75].map((f) => svg("line", { class: "grid", x1: 0, x2: W, y1: y(top * f), y2: y(top * f) }));
  const picture = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", class: "live-chart",
    "aria-label": `last ${history.length} s: jitter ${last.jitter.toFixed(1)} ms, lead ${last.lead} ms, ${last.underruns} underruns` },
    ...grid, svg("line", { x1: 0, x2: W, y1: y(0), y2: y(0), class: "axis" }),
    ...bars, line("lead", "lead"), line("jitter", "jitter"));
  const legend = h("div", { class: "legend" },
    h("span", { class: "key jitter" }, `jitter ${last.jitter.toFixed(1)} ms`),
    h("span", { class: "key lead" }, `lead ${last.lead} ms`),
    h("span", { class: "key underrun" }, `underruns ${last.underruns}`),
    h("span", { class: "scale" }, `last ${SLOTS} s, 0–${Math.round(top)} ms`));
  return h("div", {}, picture, legend);
}
