// SPDX-License-Identifier: BSD-3-Clause
// The console's "Graph" page: the sharing graph around the user.
"use strict";

// Nodes on a circle, you at the top (no three on a line, so no edge runs
// through a node), shares as arrows, memberships dashed.
function drawGraph(g) {
  const W = 760, H = 520, cx = W / 2, cy = H / 2, R = Math.min(W, H) / 2 - 50;
  const me = g.center || state.user;
  const order = g.nodes.filter((n) => n.id === me).concat(g.nodes.filter((n) => n.id !== me));
  const pos = new Map();
  order.forEach((n, i) => {
    const a = (2 * Math.PI * i) / Math.max(order.length, 1) - Math.PI / 2;
    pos.set(n.id, { x: cx + R * Math.cos(a), y: cy + R * Math.sin(a) });
  });
  const root = svg("svg", { class: "graph", viewBox: "0 0 " + W + " " + H, role: "img", "aria-label": "sharing graph" },
    svg("defs", {}, svg("marker", { id: "arrow", viewBox: "0 0 10 10", refX: "10", refY: "5", markerWidth: "7", markerHeight: "7", orient: "auto-start-reverse" },
      svg("path", { d: "M 0 0 L 10 5 L 0 10 z", fill: "#57606a" }))));
  const seenPair = new Map();
  for (const e of g.edges) {
    const a = pos.get(e.from), b = pos.get(e.to);
    if (!a || !b) continue;
    const dx = b.x - a.x, dy = b.y - a.y, len = Math.hypot(dx, dy) || 1;
    const pad = 26, ux = dx / len, uy = dy / len;
    // Parallel edges between one pair fan out sideways.
    const key = [e.from, e.to].sort().join("\u0000");
    const k = seenPair.get(key) || 0;
    seenPair.set(key, k + 1);
    const off = k * 12, ox = -uy * off, oy = ux * off;
    const x1 = a.x + ux * pad + ox, y1 = a.y + uy * pad + oy, x2 = b.x - ux * pad + ox, y2 = b.y - uy * pad + oy;
    const line = svg("line", { x1, y1, x2, y2, class: e.kind });
    if (e.kind !== "member") line.setAttribute("marker-end", "url(#arrow)");
    root.append(line);
    if (e.channel) {
      root.append(svg("text", { x: (x1 + x2) / 2 + ox, y: (y1 + y2) / 2 + oy - 6, class: "edge" }, e.channel));
    }
  }
  for (const n of g.nodes) {
    const p = pos.get(n.id);
    if (!p) continue;
    const isMe = n.id === me;
    const shape = n.kind === "group"
      ? svg("rect", { x: p.x - 42, y: p.y - 14, width: 84, height: 28, rx: 8 })
      : svg("circle", { cx: p.x, cy: p.y, r: 24 });
    root.append(svg("g", { class: n.kind + (isMe ? " me" : "") }, shape,
      svg("text", { x: p.x, y: p.y }, n.label.length > 14 ? n.label.slice(0, 13) + "\u2026" : n.label)));
  }
  return root;
}

pages.graph = async (root) => {
  const g = await api("GET", "/api/graph");
  g.center = state.user;
  const chan = h("input", { id: "readers-channel", placeholder: "channel", required: true });
  const out = h("div", { id: "readers-out" });
  root.append(
    h("h1", {}, "Who shares what with whom"),
    h("p", { class: "legend muted" }, h("span", {}, "\u2192 shares"), h("span", {}, "bold red: shares_all"), h("span", {}, "dashed: group member")),
    drawGraph(g),
    h("h2", {}, "Who receives my messages on a channel"),
    h("form", { id: "readers-form", onsubmit: async (ev) => {
      ev.preventDefault();
      try {
        const r = await api("GET", "/api/readers?channel=" + encodeURIComponent(chan.value.trim()));
        out.replaceChildren(h("ul", { class: "paths" }, r.readers.map((x) =>
          h("li", { class: x.pending ? "pending" : "reader" }, h("strong", {}, x.user),
            x.declined ? [" ", h("span", { class: "tag declined" }, "declined: does not receive")]
              : x.pending ? [" ", h("span", { class: "tag pending" }, "pending: has not accepted")] : [],
            " \u2014 ", h("code", {}, x.path)))));
        say("", "");
      } catch (e) {
        out.replaceChildren(); // no answer to an earlier question under this error
        say(e.message, "error");
      }
    } }, h("label", {}, "Channel", chan), h("button", { type: "submit", id: "readers-go" }, "Show readers")),
    out);
};
