// SPDX-License-Identifier: BSD-3-Clause
// The hpfriends console: a single page over the JSON API under /api/.
// Plain DOM building (no innerHTML with data), hash routes, one CSRF token
// per session sent on every state-changing request.
"use strict";

// view counts page renders: a render that finishes after a newer one began
// (a click during a slow load) is dropped, never shown over the newer page.
const state = { user: null, admin: false, csrf: null, timer: null, view: 0, actAs: null };

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

// #status is the one live region (role=status): every message is announced
// from it.  A message about an action in a form or a table row is also
// shown right there, where the eye is, and #status is then only heard
// (visually hidden, as the copy is hidden from screen readers, so nothing
// is read twice); anything else shows at the top of the page.  spot: where
// a row was that the action removed (from route()); else where focus is.
function say(text, kind, spot) {
  text = text || "";
  if (text.length > SAY_MAX) text = text.slice(0, SAY_MAX) + "\u2026";
  for (const old of document.querySelectorAll(".said-row, p.said")) old.remove();
  const near = text ? (spot && spot.tbody.isConnected ? spot : spotOf(document.activeElement)) : null;
  if (near) showNear(near, text, kind);
  const s = document.getElementById("status");
  s.textContent = text;
  s.className = (kind || "") + (near ? " heard" : "");
}

// Where a message about the element el goes: after its form, under its
// table row, or after its block of the page; null for the top.
function spotOf(el) {
  const scope = el && el.closest ? el.closest("#page, #login-page") : null;
  if (!scope || el === scope) return null;
  const form = el.closest("form");
  if (form) {
    let after = form; // below the form's hint, if it has one
    while (after.nextElementSibling && after.nextElementSibling.matches("small.hint")) after = after.nextElementSibling;
    return { after };
  }
  const row = el.closest("tbody tr");
  if (row) return { row };
  let n = el;
  while (n.parentElement !== scope) n = n.parentElement;
  return { after: n };
}

function showNear(spot, text, kind) {
  const p = h("p", { class: "said " + (kind || ""), "aria-hidden": "true" }, text);
  if (spot.after) { spot.after.after(p); return; }
  const tbody = spot.tbody || spot.row.parentElement;
  const head = tbody.parentElement.querySelector("thead tr");
  const tr = h("tr", { class: "said-row", "aria-hidden": "true" },
    h("td", { colspan: head ? head.cells.length : 1 }, p));
  if (spot.row) spot.row.after(tr);
  else if (spot.before) spot.before.before(tr);
  else tbody.append(tr);
}

// Headers name each cell too (data-label): on a phone a row is stacked,
// one labelled line per cell, instead of a table wider than the screen.
function table(headers, rows) {
  for (const tr of [].concat(rows)) {
    let col = 0;
    for (const td of tr.children) {
      const head = headers[col];
      if (td.tagName === "TD" && td.colSpan === 1 && head && !td.hasAttribute("data-label")) {
        td.setAttribute("data-label", head instanceof Node ? head.textContent : String(head));
      }
      col += td.colSpan || 1;
    }
  }
  return h("table", {},
    h("thead", {}, h("tr", {}, headers.map((x) => h("th", {}, x)))),
    h("tbody", {}, rows.length ? rows : h("tr", {}, h("td", { colspan: headers.length, class: "muted" }, "none"))));
}

// Every action that removes, ends or takes something back asks first, the
// same way: what is about to happen, and what follows from it.  Nothing is
// done unless the answer is yes.
function confirmDanger(what, then) {
  return confirm(what + "?" + (then ? "\n" + then : ""));
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

// An administrator acting as another user (page-admin.js) names them on
// every call about objects; the session and admin routes stay their own.
function actingPath(path) {
  if (!state.actAs || /^\/api\/(login|logout|session|password|admin\/)/.test(path)) return path;
  return path + (path.includes("?") ? "&" : "?") + "user=" + encodeURIComponent(state.actAs);
}

async function api(method, path, body) {
  path = actingPath(path);
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

// Run an action, redraw the page (focus stays where it was), then report
// the outcome next to where the action was.
// fn may return a string: a more precise outcome than what.
async function act(what, fn) {
  let res;
  try {
    res = await fn();
  } catch (e) {
    say(e.message, "error");
    return;
  }
  const spot = await route();
  say(typeof res === "string" ? res : what, "ok", spot);
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

// Each page-*.js file adds its render function here.
const pages = {};

// Each recipient of a share with its consent: pending, accepted or declined
// (the tag's class is the state, so each looks different).
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
