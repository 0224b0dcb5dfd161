// SPDX-License-Identifier: BSD-3-Clause
// The hpfriends console: a single page over the JSON API under /api/.
// Plain DOM building (no innerHTML with data), hash routes, one CSRF token
// per session sent on every state-changing request.
"use strict";

// view counts page renders: a render that finishes after a newer one began
// (a click during a slow load) is dropped, never shown over the newer page.
const state = { user: null, admin: false, csrf: null, timer: null, view: 0 };

// ---- DOM helpers ----

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "text") el.textContent = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

function svg(tag, attrs, ...children) {
  const el = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, v);
  for (const c of children.flat()) {
    if (c === null || c === undefined) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

// Longest status line: the server cuts echoed input already; this keeps
// any other long message (from a proxy, say) to a few lines.
const SAY_MAX = 400;

function say(text, kind) {
  const s = document.getElementById("status");
  text = text || "";
  s.textContent = text.length > SAY_MAX ? text.slice(0, SAY_MAX) + "\u2026" : text;
  s.className = kind || "";
}

function table(headers, rows) {
  return h("table", {},
    h("thead", {}, h("tr", {}, headers.map((x) => h("th", {}, x)))),
    h("tbody", {}, rows.length ? rows : h("tr", {}, h("td", { colspan: headers.length, class: "muted" }, "none"))));
}

// Channel list fields go to the API as typed: the server reads them by the
// same rule as hpfriendsctl (and says which), so the two cannot differ.
function ruleHint(id, text) {
  return h("small", { id, class: "hint muted" }, text);
}

// Edits not saved yet: leaving the page asks first.
function markDirty() { state.dirty = true; }

// ---- the API ----

class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

// The server takes request bodies up to 64 KiB (and answers a bigger one
// with a bare HTTP 413): say so in words, before sending if we can.
const MAX_BODY = 65536;
const TOO_LARGE = "too much text at once: the console sends at most 64 KiB per request; shorten the fields";

async function api(method, path, body) {
  const opts = { method, headers: {}, credentials: "same-origin" };
  if (method !== "GET") {
    opts.headers["Content-Type"] = "application/json";
    if (state.csrf) opts.headers["X-CSRF-Token"] = state.csrf;
    opts.body = JSON.stringify(body || {});
    if (new TextEncoder().encode(opts.body).length > MAX_BODY) throw new ApiError(413, TOO_LARGE);
  }
  const r = await fetch(path, opts);
  if (r.status === 413) throw new ApiError(413, TOO_LARGE);
  let doc = null;
  try { doc = await r.json(); } catch (e) { doc = null; }
  if (!r.ok) {
    if (r.status === 401 && path !== "/api/login") showLogin();
    throw new ApiError(r.status, (doc && doc.error) || r.statusText);
  }
  return doc;
}

// Run an action, redraw the page, then report the outcome.
// fn may return a string: a more precise outcome than what.
async function act(what, fn) {
  let res;
  try {
    res = await fn();
  } catch (e) {
    say(e.message, "error");
    return;
  }
  await route();
  say(typeof res === "string" ? res : what, "ok");
}

// Sharing a channel again with another type changes the share; a widening
// (shares to shares_all) needs new consent, so the API asks for a confirmation.
async function addShare(to, channel, type) {
  const body = { to, channel, type };
  let doc;
  try {
    doc = await api("POST", "/api/shares", body);
  } catch (e) {
    if (e.status !== 409 || !e.message.startsWith("changed from")) throw e;
    if (!confirm(e.message.replace(/; confirm to widen$/, "") + ".\nWiden the share?"))
      return "not changed: " + channel + " with " + to;
    doc = await api("POST", "/api/shares", Object.assign(body, { confirm: true }));
  }
  return doc.changed ? doc.changed + ": " + channel + " with " + to : "shared " + channel + " with " + to;
}

// ---- pages ----

const pages = {};

pages.shares = async (root) => {
  const [shares, users, groups] = await Promise.all([
    api("GET", "/api/shares"), api("GET", "/api/users"), api("GET", "/api/groups")]);
  const targets = users.users.map((u) => u.name).filter((n) => n !== state.user)
    .concat(groups.groups.map((g) => "@" + g.name));
  const to = h("input", { id: "share-to", list: "share-targets", placeholder: "user or @group", required: true });
  const chan = h("input", { id: "share-channel", placeholder: "channel", required: true, "aria-describedby": "share-channel-rule" });
  const type = h("select", { id: "share-type" },
    h("option", { value: "shares" }, "shares (my messages)"),
    h("option", { value: "shares_all" }, "shares_all (also what I receive)"));
  root.append(
    h("h1", {}, "My shares"),
    h("p", { class: "muted" }, "Channels you share, and with whom. A share to a group reaches all its members."),
    h("form", { id: "share-form", onsubmit: (ev) => { ev.preventDefault();
      act("shared " + chan.value + " with " + to.value,
        () => addShare(to.value.trim(), chan.value.trim(), type.value)); } },
      h("label", {}, "To", to), h("datalist", { id: "share-targets" }, targets.map((t) => h("option", { value: t }))),
      h("label", {}, "Channel", chan), h("label", {}, "Type", type),
      h("button", { type: "submit", id: "share-add" }, "Share")),
    ruleHint("share-channel-rule", "One channel name per share: no spaces or commas (the rule of every channel name)."),
    table(["To", "Channel", "Type", "Recipients", ""], shares.shares.map((s) => h("tr", { "data-to": s.to, "data-channel": s.channel },
      h("td", {}, s.to), h("td", { class: "mono" }, s.channel), h("td", {}, h("span", { class: "tag" }, s.type)),
      h("td", { class: "recipients" }, recipientStates(s.recipients)),
      h("td", {}, h("button", { class: "danger", type: "button", onclick: () =>
        act("removed the share of " + s.channel + " with " + s.to,
          () => api("DELETE", "/api/shares", { to: s.to, channel: s.channel })) }, "Remove"))))));
};

// Each recipient of a share with its consent: accepted or pending.
function recipientStates(list) {
  if (!list || !list.length) return h("span", { class: "muted" }, "nobody yet");
  return list.map((r) => h("span", { class: "recipient", "data-user": r.user, "data-state": r.state },
    r.user, " ", h("span", { class: "tag " + r.state }, r.state)));
}

// The count of offers waiting for my answer, in the menu.
async function updatePending() {
  const badge = document.getElementById("pending-count");
  try {
    const doc = await api("GET", "/api/offers");
    badge.textContent = doc.pending ? String(doc.pending) : "";
    badge.hidden = !doc.pending;
    badge.title = doc.pending + " offer" + (doc.pending === 1 ? "" : "s") + " waiting for your answer";
  } catch (e) { /* the next page view tries again */ }
}

pages.offers = async (root) => {
  const doc = await api("GET", "/api/offers");
  root.append(
    h("h1", {}, "Shared with me"),
    h("p", { class: "muted" }, doc.require_accept
      ? "This broker delivers a share only once you accept it."
      : "This broker delivers shares without acceptance; accepting records your consent."),
    table(["From", "Channel", "Type", "Via", "State", ""], doc.offers.map((o) => h("tr", { "data-from": o.from, "data-channel": o.channel },
      h("td", {}, o.from), h("td", { class: "mono" }, o.channel), h("td", {}, o.type), h("td", {}, o.via || "directly"),
      h("td", {}, h("span", { class: "tag " + o.state }, o.state)),
      h("td", {}, o.accepted
        ? h("button", { class: "danger", type: "button", onclick: () => act("rejected " + o.channel + " from " + o.from,
            () => api("POST", "/api/offers/reject", { from: o.from, channel: o.channel })) }, "Reject")
        : h("button", { type: "button", class: "accept", onclick: () => act("accepted " + o.channel + " from " + o.from,
            () => api("POST", "/api/offers/accept", { from: o.from, channel: o.channel })) }, "Accept"))))));
};

function fmtBytes(n) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(1) : String(n)) + " " + units[i];
}

function keyRows(keys) {
  return keys.map((k) => {
    const ro = state.listsEditable ? {} : { readonly: true };
    const pub = h("input", { value: k.publish.join(", "), "aria-label": "publish channels of " + k.ident, size: 22,
      "aria-describedby": "channel-rule", oninput: markDirty, ...ro });
    const sub = h("input", { value: k.subscribe.join(", "), "aria-label": "subscribe channels of " + k.ident, size: 22,
      "aria-describedby": "channel-rule", oninput: markDirty, ...ro });
    const save = state.listsEditable ? [h("button", { class: "secondary", type: "button", onclick: () => act("saved " + k.ident,
      () => api("PUT", "/api/authkeys", { ident: k.ident, publish: pub.value, subscribe: sub.value })) }, "Save"), " "] : [];
    return h("tr", { "data-ident": k.ident },
      h("td", { class: "mono" }, k.ident), h("td", {}, pub), h("td", {}, sub),
      h("td", { class: "num counters" }, String(k.published_msgs), " / ", fmtBytes(k.published_bytes)),
      h("td", { class: "num" }, String(k.received_msgs), " / ", fmtBytes(k.received_bytes)),
      h("td", { class: "num" }, String(k.connections)),
      h("td", {}, ...save,
        h("button", { class: "danger", type: "button", onclick: () => {
          if (confirm("Delete authkey " + k.ident + "? Its connections are closed.")) {
            act("deleted " + k.ident, () => api("DELETE", "/api/authkeys", { ident: k.ident }));
          } } }, "Delete")));
  });
}

pages.authkeys = async (root) => {
  const doc = await api("GET", "/api/authkeys");
  const ident = h("input", { id: "key-ident", placeholder: state.user + "-sensor", required: true });
  const pub = h("input", { id: "key-publish", placeholder: "chan1, chan2", "aria-describedby": "channel-rule" });
  const sub = h("input", { id: "key-subscribe", placeholder: "chan1, chan2", "aria-describedby": "channel-rule" });
  const shown = h("div", { id: "new-secret" });
  const headers = ["Ident", "Publish", "Subscribe", "Published (msgs / bytes)", "Received", "Online", ""];
  // By ident, so a saved key keeps its row (storage moves a replaced key to the end).
  const keys = doc.authkeys.slice().sort((a, b) => (a.ident < b.ident ? -1 : a.ident > b.ident ? 1 : 0));
  const tbl = table(headers, keyRows(keys));
  root.append(
    h("h1", {}, "Authkeys"),
    h("p", { class: "muted" }, "Credentials for your sensors and subscribers. Counters update live."),
    h("form", { id: "key-form", onsubmit: async (ev) => {
      ev.preventDefault();
      try {
        const lists = state.listsEditable ? { publish: pub.value, subscribe: sub.value } : {};
        const r = await api("POST", "/api/authkeys", { ident: ident.value.trim(), ...lists });
        await route();
        say("created " + r.ident, "ok");
        // The secret is shown once: on the status line if the user has
        // moved on to another page meanwhile.
        (document.getElementById("new-secret") || document.getElementById("status")).replaceChildren(h("div", { class: "secret" },
          "Secret of ", h("code", {}, r.ident), " (shown once, copy it now): ",
          h("code", { id: "secret-value" }, r.secret)));
      } catch (e) { say(e.message, "error"); }
    } },
      h("label", {}, "Ident", ident),
      ...(state.listsEditable ? [h("label", {}, "May publish on", pub), h("label", {}, "May subscribe to", sub)]
        : [h("span", { class: "muted" }, "Channel lists are set by an administrator.")]),
      h("button", { type: "submit", id: "key-add" }, "Create")),
    ...(state.listsEditable ? [ruleHint("channel-rule", "Channel lists: " + doc.channel_list_rule + ".")] : []),
    shown, tbl);
  // Live counters: refresh the numbers only, so edits in progress survive.
  // route() owns the timer: it starts to count only if this page is shown.
  root.timer = setInterval(async () => {
    try {
      const d = await api("GET", "/api/authkeys");
      for (const k of d.authkeys) {
        const row = tbl.querySelector('tr[data-ident="' + CSS.escape(k.ident) + '"]');
        if (!row) continue;
        const cells = row.querySelectorAll("td");
        cells[3].textContent = k.published_msgs + " / " + fmtBytes(k.published_bytes);
        cells[4].textContent = k.received_msgs + " / " + fmtBytes(k.received_bytes);
        cells[5].textContent = String(k.connections);
      }
    } catch (e) { /* the next tick tries again */ }
  }, 2000);
};

pages.groups = async (root) => {
  const [doc, users] = await Promise.all([api("GET", "/api/groups"), api("GET", "/api/users")]);
  const name = h("input", { id: "group-name", placeholder: "group name", required: true });
  root.append(
    h("h1", {}, "Groups"),
    h("form", { id: "group-form", onsubmit: (ev) => { ev.preventDefault();
      act("created group " + name.value, () => api("POST", "/api/groups", { name: name.value.trim() })); } },
      h("label", {}, "New group", name), h("button", { type: "submit", id: "group-add" }, "Create")),
    h("datalist", { id: "all-users" }, users.users.map((u) => h("option", { value: u.name }))));
  if (!doc.groups.length) root.append(h("p", { class: "muted" }, "You own no group and are in none."));
  for (const g of doc.groups) {
    const member = h("input", { list: "all-users", placeholder: "user", "aria-label": "new member of " + g.name, required: true });
    root.append(h("h2", {}, "@" + g.name, " ", h("span", { class: "muted" }, g.mine ? "(yours)" : "(owned by " + g.owner + ")")));
    const rows = g.members.map((m) => h("tr", {}, h("td", {}, m), h("td", {},
      g.mine ? h("button", { class: "danger", type: "button", onclick: () => act("removed " + m + " from @" + g.name,
        () => api("DELETE", "/api/groups/members", { group: g.name, member: m })) }, "Remove") : null)));
    root.append(table(["Member", ""], rows));
    if (g.mine) {
      root.append(h("form", { class: "member-form", "data-group": g.name, onsubmit: (ev) => { ev.preventDefault();
        act("added " + member.value + " to @" + g.name, () => api("POST", "/api/groups/members", { group: g.name, member: member.value.trim() })); } },
        h("label", {}, "Add member", member), h("button", { type: "submit" }, "Add"),
        h("button", { class: "danger", type: "button", onclick: () => {
          if (confirm("Delete group @" + g.name + " and the shares to it?")) {
            act("deleted @" + g.name, () => api("DELETE", "/api/groups", { name: g.name }));
          } } }, "Delete group")));
    }
    if (g.member) {
      root.append(h("p", {}, h("button", { class: "danger", type: "button", onclick: () => act("left @" + g.name,
        () => api("POST", "/api/groups/leave", { group: g.name })) }, "Leave @" + g.name)));
    }
  }
};

pages.logs = async (root) => {
  const doc = await api("GET", "/api/logs");
  root.append(
    h("h1", {}, "Logs"),
    h("p", { class: "muted" }, "Recent failed logins, denied publishes and subscribes, drops and disconnects of your authkeys (newest first; kept in memory by the broker)."),
    table(["Time (UTC)", "Event", "Ident", "Address", "Channel", "Reason"], doc.events.map((e) => h("tr", {},
      h("td", { class: "mono" }, e.time), h("td", {}, h("span", { class: "tag" }, e.type)), h("td", { class: "mono" }, e.ident),
      h("td", { class: "mono" }, e.peer || ""), h("td", { class: "mono" }, e.channel || ""),
      h("td", {}, e.reason || (e.count ? e.count + " dropped" : ""))))));
};

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
            x.pending ? [" ", h("span", { class: "tag pending" }, "pending: has not accepted")] : [],
            " \u2014 ", h("code", {}, x.path)))));
        say("", "");
      } catch (e) {
        out.replaceChildren(); // no answer to an earlier question under this error
        say(e.message, "error");
      }
    } }, h("label", {}, "Channel", chan), h("button", { type: "submit", id: "readers-go" }, "Show readers")),
    out);
};

pages.account = async (root) => {
  const old = h("input", { type: "password", id: "pw-old", autocomplete: "current-password", required: true });
  const nw = h("input", { type: "password", id: "pw-new", autocomplete: "new-password", minlength: 8, required: true });
  root.append(h("h1", {}, "Account"),
    h("p", {}, "Logged in as ", h("strong", {}, state.user), state.admin ? " (administrator: add ?user=NAME to API calls to act for others)" : ""),
    h("form", { id: "pw-form", onsubmit: (ev) => { ev.preventDefault();
      act("password changed", () => api("POST", "/api/password", { old: old.value, new: nw.value })); } },
      h("label", {}, "Current password", old), h("label", {}, "New password", nw),
      h("button", { type: "submit" }, "Change password")));
};

// ---- navigation ----

function stopTimer() {
  if (state.timer) { clearInterval(state.timer); state.timer = null; }
}

function showLogin() {
  state.view++;
  stopTimer();
  state.user = null;
  state.csrf = null;
  state.dirty = false;
  document.getElementById("nav").hidden = true;
  document.getElementById("logout").hidden = true;
  document.getElementById("whoami").textContent = "";
  document.getElementById("page").hidden = true;
  document.getElementById("login-page").hidden = false;
}

async function route() {
  const view = ++state.view;
  stopTimer();
  if (!state.user) { showLogin(); return; }
  const name = (location.hash.match(/^#\/(\w+)/) || [])[1] || "shares";
  const render = pages[name] || pages.shares;
  for (const a of document.querySelectorAll("#nav a")) a.classList.toggle("active", a.dataset.page === name);
  const fresh = h("section", { id: "page", "data-page": name });
  try {
    await render(fresh);
  } catch (e) {
    if (view === state.view) say(e.message, "error");
  }
  if (view !== state.view) {
    if (fresh.timer) clearInterval(fresh.timer);
    return;
  }
  state.timer = fresh.timer || null;
  state.page = name;
  state.dirty = false;
  document.getElementById("page").replaceWith(fresh);
  updatePending();
}

function loggedIn(doc) {
  state.user = doc.user;
  state.admin = doc.admin;
  // With access = channels only an administrator sets channel lists.
  state.listsEditable = doc.lists_editable !== false;
  state.csrf = doc.csrf;
  document.getElementById("login-page").hidden = true;
  document.getElementById("nav").hidden = false;
  document.getElementById("logout").hidden = false;
  document.getElementById("whoami").textContent = doc.user + (doc.admin ? " (admin)" : "");
}

document.getElementById("login-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const user = document.getElementById("login-user").value.trim();
  const pw = document.getElementById("login-password");
  try {
    loggedIn(await api("POST", "/api/login", { user, password: pw.value }));
    pw.value = "";
    say("", "");
    await route();
  } catch (e) {
    say(e.message, "error");
  }
});

document.getElementById("logout").addEventListener("click", async () => {
  try { await api("POST", "/api/logout"); } catch (e) { /* gone anyway */ }
  showLogin();
  say("logged out", "ok");
});

window.addEventListener("hashchange", () => {
  if (state.dirty && state.page && !confirm("This page has changes that are not saved. Leave it?")) {
    // Back to the page being left; replaceState fires no second hashchange.
    history.replaceState(null, "", "#/" + state.page);
    return;
  }
  say("", "");
  route();
});
window.addEventListener("beforeunload", (ev) => {
  if (state.dirty) { ev.preventDefault(); ev.returnValue = ""; }
});

(async () => {
  try {
    loggedIn(await api("GET", "/api/session"));
  } catch (e) {
    showLogin();
    return;
  }
  await route();
})();
