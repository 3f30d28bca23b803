// inboxd dashboard charts: SVG line and bar charts with readable ticks and hover values.
// Plain ES2020, no dependencies; exposes window.InboxdChart for app.js.
"use strict";

(() => {
  const SVG_NS = "http://www.w3.org/2000/svg";
  const TIME_STEPS_S = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200,
    10800, 21600, 43200, 86400, 172800];
  const MIN_TICK_GAP_PX = 90;
  // Where the pointer was in each chart (container id -> x in px): the chart is redrawn
  // every second, and the hover values are drawn again at the same place.
  const hovering = new Map();

  function svg(tag, attrs) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, String(value));
    return node;
  }

  function pad(n) {
    return String(n).padStart(2, "0");
  }

  // Value ticks: a step of 1, 2 or 5 times a power of ten, so that no two labels read
  // the same ("0.1, 0.1, 0" was 0.05 steps shown with one decimal).
  function niceTicks(peak, maxTicks) {
    const target = peak > 0 ? peak : 1;
    const raw = target / Math.max(1, maxTicks);
    const exp = Math.pow(10, Math.floor(Math.log10(raw)));
    let step = 10 * exp;
    for (const m of [1, 2, 5]) {
      if (m * exp >= raw * (1 - 1e-9)) {
        step = m * exp;
        break;
      }
    }
    const count = Math.max(1, Math.ceil(target / step - 1e-9));
    const values = [];
    for (let i = 0; i <= count; i += 1) values.push(i * step);
    return { top: count * step, step, values };
  }

  function fmtTick(v, step) {
    if (v === 0) return "0";
    const scaled = (div, suffix) => {
      const digits = Math.max(0, -Math.floor(Math.log10(step / div) + 1e-9));
      return (v / div).toFixed(digits) + suffix;
    };
    if (step >= 1e6) return scaled(1e6, "M");
    if (step >= 1e3) return scaled(1e3, "k");
    return scaled(1, "");
  }

  function fmtValue(v) {
    if (!Number.isFinite(v)) return "–";
    if (v >= 1e6) return (v / 1e6).toFixed(2) + "M";
    if (v >= 1e4) return (v / 1e3).toFixed(1) + "k";
    if (v >= 100) return v.toFixed(0);
    if (v >= 1) return v.toFixed(1);
    return v === 0 ? "0" : v.toFixed(3);
  }

  // Time ticks on round local times, as many as fit the width.
  function timeTicks(from, to, width) {
    const span = to - from;
    const fit = Math.max(2, Math.floor(width / MIN_TICK_GAP_PX));
    const step = TIME_STEPS_S.find((s) => span / s <= fit) || TIME_STEPS_S[TIME_STEPS_S.length - 1];
    const offset = new Date(from * 1000).getTimezoneOffset() * 60;
    const ticks = [];
    for (let t = Math.ceil((from - offset) / step) * step + offset; t <= to; t += step) ticks.push(t);
    return { ticks, step, span };
  }

  function timeLabel(t, step, span) {
    const d = new Date(t * 1000);
    const day = `${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
    const hm = `${pad(d.getHours())}:${pad(d.getMinutes())}`;
    if (step >= 86400) return day;
    if (span > 86400) return d.getHours() === 0 ? day : hm;
    if (step >= 60) return hm;
    return `${hm}:${pad(d.getSeconds())}`;
  }

  function hoverLabel(t, span) {
    const d = new Date(t * 1000);
    const hm = `${pad(d.getHours())}:${pad(d.getMinutes())}`;
    if (span > 86400) return `${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${hm}`;
    return span > 3600 ? hm : `${hm}:${pad(d.getSeconds())}`;
  }

  function nearest(points, t) {
    let lo = 0;
    let hi = points.length - 1;
    if (hi < 0) return null;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (points[mid][0] < t) lo = mid + 1;
      else hi = mid;
    }
    const best = lo > 0 && t - points[lo - 1][0] < points[lo][0] - t ? lo - 1 : lo;
    return points[best];
  }

  function drawAxes(root, g, ticks, opts) {
    for (const v of ticks.values) {
      root.appendChild(svg("line", { x1: g.m.l, x2: g.m.l + g.w, y1: g.y(v), y2: g.y(v), class: "grid" }));
      const label = svg("text", { x: g.m.l - 6, y: g.y(v) + 4, class: "axis end" });
      label.textContent = fmtTick(v, ticks.step);
      root.appendChild(label);
    }
    if (!opts.axis) return;
    const time = timeTicks(g.from, g.to, g.w);
    for (const t of time.ticks) {
      const x = g.x(t);
      const anchor = x < g.m.l + 30 ? "start" : x > g.m.l + g.w - 30 ? "end" : "middle";
      const label = svg("text", { x, y: g.height - 4, class: "axis time " + anchor });
      label.textContent = timeLabel(t, time.step, time.span);
      root.appendChild(label);
    }
  }

  function drawData(root, g, data, colourOf) {
    if (data.bars) {
      const bw = Math.max(1, (data.step / (g.to - g.from)) * g.w - 1);
      for (const [t, v] of data.bars) {
        if (v <= 0) continue;
        const height = Math.max(1, g.y(0) - g.y(v));
        root.appendChild(svg("rect", { x: g.x(t) - bw, y: g.y(v), width: bw, height, class: "bar" }));
      }
    }
    // A series of one point (a page's first rate) is a dot until its second point comes.
    let drawn = 0;
    for (const [name, points] of data.lines) {
      if (!points.length) continue;
      drawn += points.length;
      if (points.length === 1) {
        const [[t, v]] = points;
        root.appendChild(svg("circle", { cx: g.x(t).toFixed(1), cy: g.y(v).toFixed(1), r: 2.5, class: "dot s" + colourOf(name) }));
        continue;
      }
      const d = points.map(([t, v], i) => `${i ? "L" : "M"}${g.x(t).toFixed(1)},${g.y(v).toFixed(1)}`);
      root.appendChild(svg("path", { d: d.join(""), class: "series s" + colourOf(name) }));
    }
    return drawn;
  }

  // The values under the pointer: a guide line and a box with one row per series.
  function drawHover(layer, g, data, px, colourOf) {
    layer.replaceChildren();
    const t = g.from + ((px - g.m.l) / g.w) * (g.to - g.from);
    const rows = [];
    for (const [name, points] of data.lines) {
      const p = nearest(points, t);
      if (p) rows.push([name, p]);
    }
    if (data.bars) {
      const p = nearest(data.bars, t);
      if (p) rows.push([data.barLabel || "value", p]);
    }
    if (!rows.length) return;
    const at = rows[0][1][0];
    const x = g.x(at);
    layer.appendChild(svg("line", { x1: x, x2: x, y1: g.m.t, y2: g.m.t + g.h, class: "guide" }));
    const box = svg("g", { class: "hover-box" });
    const text = svg("text", { x: 0, y: 0, class: "hover-text" });
    const head = svg("tspan", { x: 8, dy: 14, class: "hover-time" });
    head.textContent = hoverLabel(at, g.to - g.from);
    text.appendChild(head);
    for (const [name, p] of rows) {
      const line = svg("tspan", { x: 8, dy: 14, class: data.bars ? "hover-bar" : "hover-s" + colourOf(name) });
      line.textContent = `${name}  ${fmtValue(p[1])}${data.unit || ""}`;
      text.appendChild(line);
    }
    const frame = svg("rect", { x: 0, y: 0, rx: 4, class: "hover-frame" });
    box.appendChild(frame);
    box.appendChild(text);
    layer.appendChild(box);
    const size = text.getBBox();
    const boxW = size.width + 16;
    const boxH = size.height + 10;
    frame.setAttribute("width", boxW);
    frame.setAttribute("height", boxH);
    const left = x + 10 + boxW > g.m.l + g.w ? x - 10 - boxW : x + 10;
    box.setAttribute("transform", `translate(${Math.max(0, left).toFixed(1)},${g.m.t})`);
  }

  function draw(box, data, opts) {
    const width = Math.max(box.clientWidth, 200);
    const height = opts.height;
    const m = { l: 44, r: 10, t: 8, b: opts.axis ? 20 : 6 };
    let peak = 0;
    for (const points of data.lines.values()) for (const [, v] of points) peak = Math.max(peak, v);
    for (const [, v] of data.bars || []) peak = Math.max(peak, v);
    const ticks = niceTicks(peak, opts.axis ? 4 : 2);
    const w = width - m.l - m.r;
    const h = height - m.t - m.b;
    const g = {
      m, w, h, width, height, from: data.from, to: data.to,
      x: (t) => m.l + ((t - data.from) / (data.to - data.from)) * w,
      y: (v) => m.t + h - (v / ticks.top) * h,
    };
    const root = svg("svg", { width, height, viewBox: `0 0 ${width} ${height}`, role: "img" });
    root.appendChild(svg("title")).textContent = opts.title;
    drawAxes(root, g, ticks, opts);
    // How many points the lines show, for tests and for anyone reading the page.
    box.dataset.points = String(drawData(root, g, data, opts.colourOf));
    const caption = svg("text", { x: m.l + 6, y: m.t + 12, class: "caption" });
    caption.textContent = opts.title;
    root.appendChild(caption);
    const layer = svg("g", { class: "hover" });
    root.appendChild(layer);
    const catcher = svg("rect", { x: m.l, y: 0, width: w, height, class: "catcher" });
    root.appendChild(catcher);
    const show = (px) => drawHover(layer, g, data, px, opts.colourOf);
    catcher.addEventListener("pointermove", (event) => {
      const px = event.clientX - root.getBoundingClientRect().left;
      hovering.set(box.id, px);
      show(px);
    });
    catcher.addEventListener("pointerleave", () => {
      hovering.delete(box.id);
      layer.replaceChildren();
    });
    box.replaceChildren(root);
    if (hovering.has(box.id)) show(hovering.get(box.id));
  }

  window.InboxdChart = { draw, niceTicks, fmtTick, timeTicks, timeLabel };
})();
