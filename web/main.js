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
