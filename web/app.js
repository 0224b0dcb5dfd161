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

// Each page-*.js file adds its render function here.
const pages = {};

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
