// A small live chart: jitter and lead (ms, lines) over the last minute, underruns as red bars
// where their count went up. Plain SVG built in the page; no library.
import { svg, h } from "./ui.js";

const W = 300, H = 80, PAD = 2;

export function chart(history) {
  const n = Math.max(history.length, 2);
  const top = Math.max(20, ...history.map((p) => Math.max(p.jitter, p.lead))) * 1.15;
  const x = (i) => PAD + (i * (W - 2 * PAD)) / (n - 1);
  const y = (v) => H - PAD - (v / top) * (H - 2 * PAD);
  const line = (key, cls) => svg("polyline", {
    class: cls, fill: "none", "stroke-width": 1.5,
    points: history.map((p, i) => `${x(i).toFixed(1)},${y(p[key]).toFixed(1)}`).join(" "),
  });
  const bars = [];
  for (let i = 1; i < history.length; i++) {
    const more = history[i].underruns - history[i - 1].underruns;
    if (more > 0) bars.push(svg("rect", { class: "underrun", x: x(i) - 1.5, y: H - PAD - Math.min(H / 2, 8 * more), width: 3, height: Math.min(H / 2, 8 * more) }));
  }
  const last = history[history.length - 1] || { jitter: 0, lead: 0, underruns: 0 };
  const picture = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", class: "live-chart",
    "aria-label": `last ${history.length} s: jitter ${last.jitter.toFixed(1)} ms, lead ${last.lead} ms, ${last.underruns} underruns` },
    svg("line", { x1: 0, x2: W, y1: y(0), y2: y(0), class: "axis" }),
    ...bars, line("lead", "lead"), line("jitter", "jitter"));
  const legend = h("div", { class: "legend" },
    h("span", { class: "key jitter" }, `jitter ${last.jitter.toFixed(1)} ms`),
    h("span", { class: "key lead" }, `lead ${last.lead} ms`),
    h("span", { class: "key underrun" }, `underruns ${last.underruns}`),
    h("span", { class: "scale" }, `scale 0–${Math.round(top)} ms`));
  return h("div", {}, picture, legend);
}
