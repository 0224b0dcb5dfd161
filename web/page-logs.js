// SPDX-License-Identifier: BSD-3-Clause
// The console's "Logs" page: the broker's recent events for the user's keys
// (for an administrator everyone's, with each key's owner).  The server
// filters and pages (by event id, so rows never repeat or go missing between
// pages); the newest page refreshes itself every few seconds, putting new
// rows on top without moving what the reader is looking at.
"use strict";

const LOG_TYPES = ["auth_failed", "denied", "slow_drop", "disconnect", "refused"];
const LOG_POLL_MS = 3000;

function logRow(e, owners) {
  return h("tr", { "data-id": e.id, "data-type": e.type },
    h("td", { class: "mono" }, e.time), h("td", {}, h("span", { class: "tag ev ev-" + e.type }, e.type)),
    h("td", { class: "mono" }, e.ident || ""), ...(owners ? [h("td", {}, e.owner || "")] : []),
    h("td", { class: "mono" }, e.peer || ""), h("td", { class: "mono" }, e.channel || ""),
    h("td", {}, e.reason || (e.count ? e.count + " dropped" : "")));
}

// A datetime-local value is read as UTC, like the times shown.
function utcParam(v) {
  return v ? v + (v.length === 16 ? ":00Z" : "Z") : null;
}

function logFilters() {
  const ident = h("input", { id: "logs-ident", placeholder: "any key", size: 16 });
  const type = h("select", { id: "logs-type" }, h("option", { value: "" }, "all events"),
    LOG_TYPES.filter((t) => t !== "refused" || (state.admin && !state.actAs)).map((t) => h("option", { value: t }, t)));
  const since = h("input", { id: "logs-since", type: "datetime-local" });
  const until = h("input", { id: "logs-until", type: "datetime-local" });
  const limit = h("select", { id: "logs-limit" }, [25, 50, 100, 200].map((n) => h("option", { value: n }, String(n))));
  return { ident, type, since, until, limit };
}

pages.logs = async (root) => {
  const f = logFilters();
  const v = { before: null, stack: [], more: false, nextBefore: null, newest: 0, live: true, owners: false };
  const holder = h("div", { id: "logs-table" });
  const pageInfo = h("span", { id: "logs-page", class: "muted" });
  const newer = h("button", { type: "button", class: "secondary", id: "logs-newer", onclick: () => {
    v.before = v.stack.pop() || null; load(); } }, "\u2190 Newer");
  const older = h("button", { type: "button", class: "secondary", id: "logs-older", onclick: () => {
    v.stack.push(v.before); v.before = v.nextBefore; load(); } }, "Older \u2192");
  const liveState = h("span", { id: "logs-live-state", class: "muted", "aria-live": "polite" });
  const live = h("button", { type: "button", class: "secondary", id: "logs-live", "aria-pressed": "true", onclick: () => {
    v.live = !v.live; showLive(); } });
  let lv = null;

  function query(extra) {
    const p = new URLSearchParams();
    if (f.ident.value.trim()) p.set("ident", f.ident.value.trim());
    if (f.type.value) p.set("type", f.type.value);
    if (f.since.value) p.set("since", utcParam(f.since.value));
    if (f.until.value) p.set("until", utcParam(f.until.value));
    p.set("limit", f.limit.value);
    for (const [k, val] of Object.entries(extra || {})) if (val !== null) p.set(k, val);
    return "/api/logs?" + p.toString();
  }

  function showLive() {
    live.textContent = v.live ? "Pause live updates" : "Resume live updates";
    live.setAttribute("aria-pressed", v.live ? "true" : "false");
    liveState.textContent = v.before !== null ? "live updates show on the newest page"
      : v.live ? "live: new events appear on top" : "paused";
  }

  function showPager() {
    newer.disabled = v.before === null;
    older.disabled = !v.more;
    pageInfo.textContent = "page " + (v.stack.length + 1) + (v.before === null ? " (newest)" : "");
  }

  async function load() {
    let doc;
    try {
      doc = await api("GET", query({ before: v.before }));
    } catch (e) {
      say(e.message, "error");
      return;
    }
    v.owners = doc.owners;
    v.more = doc.more;
    v.nextBefore = doc.next_before || null;
    if (v.before === null) v.newest = doc.events.length ? doc.events[0].id : v.newest;
    const headers = ["Time (UTC)", "Event", "Ident", ...(doc.owners ? ["Owner"] : []), "Address", "Channel", "Reason"];
    lv = listview(table(headers, doc.events.map((e) => logRow(e, doc.owners))), { label: "events", pageSize: 0, id: "logs" });
    holder.replaceChildren(lv);
    showPager();
    showLive();
  }

  // New rows on top; a reader scrolled into the table stays on the same rows.
  function prepend(events) {
    const body = lv.querySelector("tbody");
    const anchor = Array.from(body.rows).find((r) => !r.hidden && r.getBoundingClientRect().bottom > 0);
    const reading = body.getBoundingClientRect().top < 0; // scrolled into the rows
    const top0 = anchor ? anchor.getBoundingClientRect().top : 0;
    const none = body.querySelector("td[colspan]");
    if (none) none.parentElement.remove();
    for (const e of events.slice().reverse()) { // oldest first, each on top of the last
      const r = logRow(e, v.owners);
      r.classList.add("ev-new");
      body.insertBefore(r, body.rows[0] || null);
    }
    // Rows beyond the page size go from the bottom, but not under a reader
    // scrolled into the table (the page could not scroll to keep the place)
    // until they are a page more than it holds.
    const limit = Number(f.limit.value);
    const keep = reading ? 2 * limit : limit;
    if (body.rows.length > keep) {
      while (body.rows.length > limit) body.deleteRow(-1);
      v.more = true;
      v.nextBefore = Number(body.rows[body.rows.length - 1].dataset.id);
    }
    lv.listview.refresh();
    if (reading && anchor && anchor.isConnected) window.scrollBy(0, anchor.getBoundingClientRect().top - top0);
    showPager();
  }

  async function poll() {
    if (!v.live || v.before !== null || !lv || document.hidden) return;
    let doc;
    try {
      doc = await api("GET", query({ after: v.newest || null }));
    } catch (e) { return; /* the next tick tries again */ }
    if (v.before !== null || !doc.events.length) return;
    v.newest = doc.events[0].id;
    if (doc.more) load(); // more news than a page: start over from the newest
    else prepend(doc.events);
  }

  root.append(
    h("h1", {}, "Logs"),
    h("p", { class: "muted" }, state.admin && !state.actAs
      ? "Recent events of everyone's authkeys, with their owner, and connections refused per address (newest first; kept in memory by the broker)."
      : "Recent failed logins, denied publishes and subscribes, drops and disconnects of your authkeys (newest first; kept in memory by the broker)."),
    h("form", { id: "logs-filter", onsubmit: (ev) => { ev.preventDefault(); v.before = null; v.stack = []; say("", ""); load(); } },
      h("label", {}, "Key (ident)", f.ident), h("label", {}, "Event", f.type),
      h("label", {}, "Since (UTC)", f.since), h("label", {}, "Until (UTC)", f.until),
      h("label", {}, "Rows", f.limit), h("button", { type: "submit", id: "logs-apply" }, "Show")),
    h("div", { class: "logs-bar" }, live, " ", liveState),
    holder,
    h("div", { class: "logs-pager" }, newer, " ", pageInfo, " ", older));
  await load();
  root.timer = setInterval(poll, LOG_POLL_MS);
};
