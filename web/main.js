// SPDX-License-Identifier: BSD-3-Clause
// The console's navigation and session: hash routes, login, logout, boot.
// Loaded last: every page-*.js has registered itself in pages by then.
"use strict";

function stopTimer() {
  if (state.timer) { clearInterval(state.timer); state.timer = null; }
}

function showLogin() {
  state.view++;
  stopTimer();
  state.user = null;
  state.csrf = null;
  state.dirty = false;
  setActAs(null);
  document.getElementById("nav").hidden = true;
  document.getElementById("menu-toggle").hidden = true;
  setMenu(false);
  document.getElementById("logout").hidden = true;
  document.getElementById("whoami").textContent = "";
  document.getElementById("page").hidden = true;
  document.getElementById("login-page").hidden = false;
  document.getElementById("login-user").focus(); // ready to type
}

// ---- the menu: a row of links, or behind a Menu button on a narrow screen ----

function setMenu(open) {
  document.getElementById("menu-toggle").setAttribute("aria-expanded", String(open));
  document.getElementById("top").classList.toggle("menu-open", open);
}

function markCurrent(name) {
  for (const a of document.querySelectorAll("#nav a")) {
    const here = a.dataset.page === name;
    a.classList.toggle("active", here);
    if (here) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
}

// ---- focus across a redraw ----
// A redraw builds the page anew; the element that had focus is found again
// by a path that survives it.  Per level: the child's id, else its data-*
// keys, else for a table row its first cell (rows come and go), else its
// place among its siblings (messages shown in the page not counted).

function isSaid(n) { return n.classList.contains("said") || n.classList.contains("said-row"); }

function keyOf(n) {
  if (n.id) return "#" + n.id;
  const data = Object.entries(n.dataset);
  if (data.length) return "data:" + JSON.stringify(data.sort());
  if (n.tagName === "TR" && n.cells.length) return "row:" + n.cells[0].textContent;
  return null;
}

function pathTo(el, root) {
  if (!el || !root.contains(el) || el === root) return null;
  const path = [];
  for (let n = el; n !== root; n = n.parentElement) {
    const kids = Array.from(n.parentElement.children).filter((k) => !isSaid(k));
    path.unshift({ tag: n.tagName, key: keyOf(n), index: kids.indexOf(n) });
  }
  return path;
}

// The element at path in root, or null; gone: where a row was that is
// no longer there (the next row, if any, has its place and gets focus).
function follow(root, path) {
  let n = root, gone = null;
  for (const step of path) {
    const kids = Array.from(n.children).filter((k) => !isSaid(k));
    let next = step.key ? kids.find((k) => keyOf(k) === step.key) : kids[step.index];
    if (!next && n.tagName === "TBODY") {
      gone = { tbody: n, before: kids[step.index] || null };
      next = kids[step.index] || kids[step.index - 1];
    }
    if (!next || next.tagName !== step.tag) return { node: null, gone };
    n = next;
  }
  return { node: n, gone };
}

function focusHeading(page) {
  const h1 = page.querySelector("h1");
  if (!h1) return;
  h1.setAttribute("tabindex", "-1");
  h1.focus();
}

// After a redraw: focus back where it was (or on the heading, if that is
// gone).  After a move to another page: on its heading, unless focus is
// still on something seen (the link clicked).  Returns where a removed row was.
function placeFocus(page, path) {
  if (path) {
    const { node, gone } = follow(page, path);
    const focusable = node && node.matches("a[href], button, input, select, textarea, [tabindex]");
    if (focusable && !node.disabled) node.focus();
    else focusHeading(page);
    return gone;
  }
  const a = document.activeElement;
  if (!a || a === document.body || !a.getClientRects().length) focusHeading(page);
  return null;
}

// Shows the page of the location's hash; on a redraw of the same page,
// returns where a row was that the action removed (for say()).
async function route() {
  const view = ++state.view;
  stopTimer();
  if (!state.user) { showLogin(); return null; }
  const name = (location.hash.match(/^#\/(\w+)/) || [])[1] || "shares";
  const render = pages[name] || pages.shares;
  markCurrent(name);
  setMenu(false);
  const fresh = h("section", { id: "page", "data-page": name });
  try {
    await render(fresh);
  } catch (e) {
    if (view === state.view) say(e.message, "error");
  }
  if (view !== state.view) {
    if (fresh.timer) clearInterval(fresh.timer);
    return null;
  }
  state.timer = fresh.timer || null;
  const old = document.getElementById("page");
  const path = state.page === name && !old.hidden ? pathTo(document.activeElement, old) : null;
  state.page = name;
  state.dirty = false;
  old.replaceWith(fresh);
  updatePending();
  return placeFocus(fresh, path);
}

function loggedIn(doc) {
  state.user = doc.user;
  state.admin = doc.admin;
  // With access = channels only an administrator sets channel lists.
  state.listsEditable = doc.lists_editable !== false;
  state.csrf = doc.csrf;
  document.getElementById("login-page").hidden = true;
  document.getElementById("nav").hidden = false;
  document.getElementById("menu-toggle").hidden = false;
  document.getElementById("logout").hidden = false;
  document.getElementById("whoami").textContent = doc.user + (doc.admin ? " (admin)" : "");
  document.getElementById("nav-admin").hidden = !doc.admin;
  setActAs(null);
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

// With the menu folded, its button shows the count of offers waiting.
const pendingCount = document.getElementById("pending-count");
if (pendingCount) {
  new MutationObserver(() => {
    const copy = document.getElementById("menu-count");
    copy.textContent = pendingCount.textContent;
    copy.hidden = pendingCount.hidden;
    copy.title = pendingCount.title;
  }).observe(pendingCount, { attributes: true, childList: true, characterData: true, subtree: true });
}

document.getElementById("menu-toggle").addEventListener("click", (ev) =>
  setMenu(ev.currentTarget.getAttribute("aria-expanded") !== "true"));
document.getElementById("top").addEventListener("keydown", (ev) => {
  const toggle = document.getElementById("menu-toggle");
  if (ev.key !== "Escape" || toggle.getAttribute("aria-expanded") !== "true") return;
  setMenu(false);
  toggle.focus();
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
