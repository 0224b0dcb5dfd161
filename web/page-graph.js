// SPDX-License-Identifier: BSD-3-Clause
// The console's "Graph" page: the sharing graph around the user, drawn on a
// canvas by the vendored cytoscape (web/VENDORED) with a force or layered
// layout, zoom and pan, filters by channel and by distance from the user,
// a legend, a details panel, and the same edges as a table for those who
// do not read pictures.
"use strict";

// Labels on the canvas keep this many characters; the details panel, the
// table and the hover title give names in full.
const GRAPH_LABEL_MAX = 24;

// Largest zoom a layout's fit may choose (the user may zoom in further).
const GRAPH_FIT_ZOOM_MAX = 1.5;

// One set of colours for the canvas and the legend (app.css .swatch.* has
// the same values: the CSP allows no style attributes set from here).
const GRAPH_COLOURS = {
  user: "#ddf4ff", userLine: "#0969da", me: "#0969da", group: "#fff8c5", groupLine: "#9a6700",
  shares: "#57606a", shares_all: "#cf222e", member: "#9a6700", pending: "#bc4c00",
};

// The page's live view, replaced on each render (tests read cy through it).
let graphView = null;

function shortLabel(s) {
  const chars = Array.from(s || "");
  return chars.length > GRAPH_LABEL_MAX ? chars.slice(0, GRAPH_LABEL_MAX).join("") + "\u2026" : s;
}

// The edges and nodes a choice of channel and hops leaves: share edges on
// the channel ("" for all), memberships of the groups those reach, then
// what lies within `hops` edges of me, either direction (0: no limit).
function graphSubset(g, me, channel, hops) {
  let edges = g.edges.map((e, i) => Object.assign({ id: "e" + i }, e));
  if (channel) {
    const shared = new Set(edges.filter((e) => e.kind !== "member" && e.channel === channel).map((e) => e.to));
    edges = edges.filter((e) => e.kind === "member" ? shared.has(e.from) : e.channel === channel);
  }
  if (hops > 0) {
    const adj = new Map();
    const link = (a, b) => { if (!adj.has(a)) adj.set(a, []); adj.get(a).push(b); };
    for (const e of edges) { link(e.from, e.to); link(e.to, e.from); }
    const near = new Set([me]);
    let ring = [me];
    for (let d = 0; d < hops && ring.length; d++) {
      const next = [];
      for (const n of ring) for (const m of adj.get(n) || []) if (!near.has(m)) { near.add(m); next.push(m); }
      ring = next;
    }
    edges = edges.filter((e) => near.has(e.from) && near.has(e.to));
  }
  const ids = new Set([me]);
  for (const e of edges) { ids.add(e.from); ids.add(e.to); }
  const kinds = new Map(g.nodes.map((n) => [n.id, n.kind]));
  const nodes = [...ids].map((id) => ({ id, kind: kinds.get(id) || (id.startsWith("@") ? "group" : "user") }));
  return { nodes, edges };
}

function stateText(e) {
  if (e.kind === "member") return "";
  if (e.state === "pending" && e.recipients > 1)
    return "pending (" + e.accepted + " of " + e.recipients + " accepted" + (e.declined ? ", " + e.declined + " declined" : "") + ")";
  return e.state || "";
}

function kindText(e) { return e.kind === "member" ? "member" : e.kind; }

function cyStyle() {
  const c = GRAPH_COLOURS;
  return [
    { selector: "node", style: { label: "data(short)", "font-size": 10, "text-valign": "bottom", "text-margin-y": 3,
      "background-color": c.user, "border-width": 1.5, "border-color": c.userLine, width: 18, height: 18,
      color: "#1d232a", "text-background-color": "#fff", "text-background-opacity": 0.75, "min-zoomed-font-size": 8 } },
    { selector: "node.group", style: { shape: "round-rectangle", width: 26, height: 16,
      "background-color": c.group, "border-color": c.groupLine } },
    { selector: "node.me", style: { "background-color": c.me, "border-color": "#033d8b", width: 28, height: 28,
      "font-weight": "bold", "font-size": 12, "z-index": 10, "min-zoomed-font-size": 0 } },
    { selector: "edge", style: { "curve-style": "bezier", width: 1.5, "line-color": c.shares,
      "target-arrow-shape": "triangle", "target-arrow-color": c.shares, "arrow-scale": 0.8,
      label: "data(short)", "font-size": 8, color: "#57606a", "text-rotation": "autorotate",
      "min-zoomed-font-size": 9, "text-background-color": "#fff", "text-background-opacity": 0.8 } },
    { selector: "edge.shares_all", style: { width: 2.5, "line-color": c.shares_all, "target-arrow-color": c.shares_all } },
    { selector: "edge.member", style: { "line-style": "dashed", "line-color": c.member, "target-arrow-shape": "none" } },
    { selector: "edge.pending", style: { "line-style": "dotted", "line-color": c.pending, "target-arrow-color": c.pending } },
    { selector: ":selected", style: { "overlay-color": "#1f6feb", "overlay-opacity": 0.25, "overlay-padding": 4 } },
  ];
}

function cyElements(sub, me) {
  const nodes = sub.nodes.map((n) => ({ group: "nodes", data: { id: n.id, short: shortLabel(n.id), full: n.id, kind: n.kind },
    classes: n.kind + (n.id === me ? " me" : "") }));
  const edges = sub.edges.map((e) => ({ group: "edges",
    data: { id: e.id, source: e.from, target: e.to, short: e.channel ? shortLabel(e.channel) : "", full: e.channel || "", edge: e },
    classes: e.kind + (e.state === "pending" || e.state === "declined" ? " pending" : "") }));
  return nodes.concat(edges);
}

// Force-directed (cose) or layered from me (breadthfirst); no animation, so
// the picture is final when the call returns.
function cyLayout(name, me) {
  if (name === "layers") return { name: "breadthfirst", roots: [me], directed: false, spacingFactor: 1.1, animate: false, fit: true, padding: 20 };
  return { name: "cose", animate: false, fit: true, padding: 20, randomize: true, nodeRepulsion: () => 12000,
    idealEdgeLength: () => 70, numIter: 800, componentSpacing: 60 };
}

// The details panel: the chosen node or edge with every name in full.
function showDetails(panel, sub, me, what) {
  const rows = [];
  if (!what) {
    panel.replaceChildren(h("h2", {}, "Details"), h("p", { class: "muted" }, "Tap or hover a node or an edge, or focus a row of the table."));
    return;
  }
  if (what.node) {
    const id = what.node;
    const out = sub.edges.filter((e) => e.from === id), inc = sub.edges.filter((e) => e.to === id);
    rows.push(["name", id], ["kind", id === me ? "you (" + (what.kind || "user") + ")" : what.kind || "user"],
      ["edges out", String(out.length)], ["edges in", String(inc.length)]);
  } else {
    const e = what.edge;
    rows.push(["from", e.from], ["type", kindText(e)], ["to", e.to]);
    if (e.channel) rows.push(["channel", e.channel]);
    if (e.kind !== "member") rows.push(["state", stateText(e)]);
  }
  panel.replaceChildren(h("h2", {}, what.node ? "Node" : "Edge"),
    h("dl", { id: "graph-detail-list" }, rows.flatMap(([k, v]) => [h("dt", {}, k), h("dd", { "data-field": k }, v)])));
}

function legend() {
  const items = [["user", "user"], ["me", "you"], ["group", "group"], ["shares", "shares"],
    ["shares_all", "shares_all"], ["member", "membership"], ["pending", "pending or declined (not delivering)"]];
  return h("ul", { class: "graph-legend", id: "graph-legend", "aria-label": "legend" },
    items.map(([k, text]) => h("li", { "data-kind": k }, h("span", { class: "swatch " + k, "aria-hidden": "true" }), text)));
}

function edgeTable(sub, onFocus) {
  const rows = sub.edges.map((e) => h("tr", { "data-edge": e.id, tabindex: "0",
    onfocus: () => onFocus(e), onclick: () => onFocus(e) },
  h("td", {}, e.from), h("td", {}, kindText(e)), h("td", {}, e.to), h("td", { class: "chan" }, e.channel || ""),
  h("td", {}, stateText(e))));
  const t = table(["from", "type", "to", "channel", "state"], rows);
  t.id = "graph-edges";
  return t;
}

// Creates cytoscape once the container is in the page and has a size (the
// page is built detached), and follows later size changes.
function whenSized(el, fn) {
  const ro = new ResizeObserver(() => {
    if (!el.isConnected || el.clientWidth === 0) return;
    fn();
  });
  ro.observe(el);
  return ro;
}

// cytoscape puts a <style> element in the page unless one with this id is
// there; the CSP would refuse it, and app.css already gives the container
// the position it sets.
function cyStyleMarker() {
  const id = "__________cytoscape_stylesheet";
  if (!document.getElementById(id)) document.head.append(h("meta", { id, name: "cytoscape-stylesheet" }));
}

function graphControls(g, view) {
  const chans = [...new Set(g.edges.filter((e) => e.channel).map((e) => e.channel))].sort();
  const channel = h("select", { id: "graph-channel", onchange: () => view.update() },
    h("option", { value: "" }, "all channels (" + chans.length + ")"),
    chans.map((c) => h("option", { value: c, title: c }, shortLabel(c))));
  const hops = h("select", { id: "graph-hops", onchange: () => view.update() },
    [1, 2, 3, 4].map((n) => h("option", { value: String(n), selected: n === 2 }, String(n))),
    h("option", { value: "0" }, "all"));
  const layout = h("select", { id: "graph-layout", onchange: () => view.update() },
    h("option", { value: "force" }, "force"), h("option", { value: "layers" }, "layers from me"));
  const zoom = (f) => () => view.cy && view.cy.zoom({ level: view.cy.zoom() * f,
    renderedPosition: { x: view.canvas.clientWidth / 2, y: view.canvas.clientHeight / 2 } });
  view.channel = channel; view.hops = hops; view.layout = layout;
  return h("form", { id: "graph-filters", onsubmit: (ev) => ev.preventDefault() },
    h("label", {}, "Channel", channel), h("label", {}, "Hops from me", hops), h("label", {}, "Layout", layout),
    h("span", { class: "graph-zoom" },
      h("button", { type: "button", class: "secondary", id: "graph-zoom-in", "aria-label": "zoom in", onclick: zoom(1.25) }, "+"),
      h("button", { type: "button", class: "secondary", id: "graph-zoom-out", "aria-label": "zoom out", onclick: zoom(0.8) }, "\u2212"),
      h("button", { type: "button", class: "secondary", id: "graph-fit", onclick: () => view.cy && graphFit(view.cy) }, "Fit")));
}

function graphFit(cy) {
  cy.fit(undefined, 20);
  if (cy.zoom() > GRAPH_FIT_ZOOM_MAX) { cy.zoom(GRAPH_FIT_ZOOM_MAX); cy.center(); }
}

// Draws the current subset: the canvas, the counts and the table.
function graphUpdate(view) {
  const { g, me } = view;
  const sub = graphSubset(g, me, view.channel.value, Number(view.hops.value));
  view.sub = sub;
  delete view.canvas.dataset.drawn;
  view.canvas.dataset.nodes = String(sub.nodes.length);
  view.canvas.dataset.edges = String(sub.edges.length);
  view.count.textContent = sub.nodes.length + " nodes, " + sub.edges.length + " edges shown of " +
    g.nodes.length + " nodes, " + g.edges.length + " edges";
  view.tableBox.replaceChildren(edgeTable(sub, (e) => {
    showDetails(view.panel, sub, me, { edge: e });
    if (view.cy) { view.cy.elements().unselect(); view.cy.$id(e.id).select(); }
  }));
  showDetails(view.panel, sub, me, null);
  if (!view.cy) return;
  view.cy.batch(() => {
    view.cy.elements().remove();
    view.cy.add(cyElements(sub, me));
  });
  const layout = view.cy.layout(cyLayout(view.layout.value, me));
  // Fitting a few nodes would blow them up to the largest zoom.
  layout.one("layoutstop", () => {
    graphFit(view.cy);
    view.canvas.dataset.drawn = String(view.cy.nodes().length);
  });
  layout.run();
}

function graphStart(view) {
  if (view.cy) { view.cy.resize(); return; }
  cyStyleMarker();
  view.cy = cytoscape({ container: view.canvas, style: cyStyle(), minZoom: 0.05, maxZoom: 4,
    boxSelectionEnabled: false });
  const detail = (ev) => {
    const t = ev.target;
    return t.isNode() ? { node: t.id(), kind: t.data("kind") } : { edge: t.data("edge") };
  };
  view.cy.on("tap", "node, edge", (ev) => showDetails(view.panel, view.sub, view.me, detail(ev)));
  view.cy.on("mouseover", "node, edge", (ev) => {
    view.canvas.title = ev.target.data("full");
    showDetails(view.panel, view.sub, view.me, detail(ev));
  });
  view.cy.on("mouseout", "node, edge", () => { view.canvas.title = ""; });
  graphUpdate(view);
}

function readersForm() {
  const chan = h("input", { id: "readers-channel", placeholder: "channel", required: true });
  const out = h("div", { id: "readers-out" });
  return [h("h2", {}, "Who receives my messages on a channel"),
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
    out];
}

pages.graph = async (root) => {
  const g = await api("GET", "/api/graph");
  if (graphView) { if (graphView.ro) graphView.ro.disconnect(); if (graphView.cy) graphView.cy.destroy(); }
  const me = g.center || state.user;
  const view = { g, me, cy: null };
  graphView = view;
  view.canvas = h("div", { id: "graph-canvas", class: "graph-canvas", role: "img",
    "aria-label": "sharing graph; the table below lists the same edges" });
  view.panel = h("aside", { id: "graph-details", class: "graph-details", "aria-live": "polite" });
  view.count = h("p", { id: "graph-count", class: "muted" });
  view.tableBox = h("div", { class: "graph-table", id: "graph-table", tabindex: "0", role: "region",
    "aria-label": "edges as a table" });
  view.update = () => graphUpdate(view);
  const controls = graphControls(g, view);
  graphUpdate(view);
  view.ro = whenSized(view.canvas, () => graphStart(view));
  root.append(
    h("h1", {}, "Who shares what with whom"),
    ...(g.truncated ? [h("p", { class: "tag pending", id: "graph-truncated" },
      "graph truncated: showing " + g.edges.length + " edges (at most " + g.max_edges + "), those around you first")] : []),
    controls, legend(), view.count,
    h("div", { class: "graph-view" }, view.canvas, view.panel),
    h("h2", {}, "The same edges as a table"),
    view.tableBox,
    ...readersForm());
};
