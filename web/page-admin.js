// SPDX-License-Identifier: BSD-3-Clause
// The console's "Admin" page (administrators only): the user list with
// create, delete, admin flag and password reset, and "act as user": the
// other pages then show that user's view (every API call carries
// ?user=NAME) under a banner with the way back.
"use strict";

// Act as name (null: as oneself), shown in the banner above every page.
function setActAs(name) {
  state.actAs = name || null;
  const banner = document.getElementById("acting");
  banner.replaceChildren();
  banner.hidden = !state.actAs;
  if (!state.actAs) return;
  banner.append(
    h("strong", {}, "Acting as " + state.actAs),
    " \u2014 the pages show " + state.actAs + "'s view; changes are made for " + state.actAs +
      " and recorded as yours. ",
    h("button", { type: "button", id: "acting-stop", class: "secondary", onclick: () => {
      const was = state.actAs;
      setActAs(null);
      location.hash = "#/admin";
      route().then(() => say("back to your own view (no longer acting as " + was + ")", "ok"));
    } }, "Stop acting as " + state.actAs));
}

// A password made by the server, shown once above the redrawn page.
function showMadePassword(name, pw) {
  const box = h("div", { id: "admin-made-password", class: "secret", role: "alert" },
    "New console password of " + name + ": ", h("code", { class: "mono" }, pw),
    " \u2014 shown once: give it to " + name + " now.");
  document.getElementById("page").prepend(box);
}

async function resetPassword(name, pw) {
  let doc;
  try {
    doc = await api("POST", "/api/admin/users/password", pw ? { name, password: pw } : { name });
  } catch (e) {
    say(e.message, "error");
    return;
  }
  await route();
  if (doc.password) showMadePassword(name, doc.password);
  say(pw ? "set the password of " + name : "made a new password for " + name, "ok");
}

function userRow(u) {
  const self = u.name === state.user;
  return h("tr", { "data-user": u.name },
    h("td", {}, u.name), h("td", {}, u.admin ? h("span", { class: "tag yes" }, "admin") : ""),
    h("td", {}, u.password ? "yes" : h("span", { class: "muted" }, u.explicit ? "no password" : "authkey owner only")),
    h("td", { class: "num" }, String(u.authkeys)), h("td", { class: "num" }, String(u.shares)),
    h("td", {},
      self ? h("span", { class: "muted" }, "you") : [
        h("button", { type: "button", class: "secondary", "aria-label": "Act as " + u.name, onclick: () => {
          setActAs(u.name);
          location.hash = "#/shares";
        } }, "Act as"),
        u.explicit ? h("button", { type: "button", class: "secondary", "aria-label": (u.admin ? "Remove admin from " : "Make admin ") + u.name,
          onclick: () => act((u.admin ? "removed the admin flag of " : "made an admin: ") + u.name,
            () => api("POST", "/api/admin/users/admin", { name: u.name, admin: !u.admin })) },
          u.admin ? "Remove admin" : "Make admin") : null,
        u.explicit ? h("button", { type: "button", class: "secondary", "aria-label": "Reset password of " + u.name,
          onclick: () => {
            if (confirmDanger("Make a new console password for " + u.name, "The old one stops working."))
              resetPassword(u.name, null);
          } }, "Reset password") : null,
        u.explicit ? h("button", { type: "button", class: "danger", "aria-label": "Delete user " + u.name, onclick: () => {
          if (confirmDanger("Delete user " + u.name, "Its authkeys, shares, groups and acceptances go with it."))
            act("deleted " + u.name, () => api("DELETE", "/api/admin/users", { name: u.name }));
        } }, "Delete") : null]));
}

pages.admin = async (root) => {
  root.append(h("h1", {}, "Admin"));
  if (!state.admin) {
    root.append(h("p", { class: "muted" }, "Only administrators manage users."));
    return;
  }
  const doc = await api("GET", "/api/admin/users");
  const name = h("input", { id: "admin-new-name", placeholder: "user name", required: true });
  const admin = h("input", { id: "admin-new-admin", type: "checkbox" });
  const pw = h("input", { id: "admin-new-password", type: "password", autocomplete: "new-password", minlength: 8,
    placeholder: "optional" });
  const who = h("select", { id: "admin-pw-user", "aria-label": "user whose password to set" },
    doc.users.filter((u) => u.explicit).map((u) => h("option", { value: u.name }, u.name)));
  const setPw = h("input", { id: "admin-pw-value", type: "password", autocomplete: "new-password", minlength: 8, required: true });
  const asWho = h("select", { id: "act-as-user", "aria-label": "user to act as" },
    doc.users.filter((u) => u.name !== state.user).map((u) => h("option", { value: u.name }, u.name)));
  root.append(
    h("h2", {}, "Act as a user"),
    h("form", { id: "act-as-form", onsubmit: (ev) => { ev.preventDefault();
      setActAs(asWho.value);
      location.hash = "#/shares"; } },
      h("label", {}, "User", asWho), h("button", { type: "submit", id: "act-as-go" }, "Act as")),
    h("h2", {}, "New user"),
    h("form", { id: "admin-create-form", onsubmit: (ev) => { ev.preventDefault();
      const body = { name: name.value.trim(), admin: admin.checked };
      if (pw.value) body.password = pw.value;
      act("created user " + body.name, () => api("POST", "/api/admin/users", body)); } },
      h("label", {}, "Name", name), h("label", {}, "Console password", pw),
      h("label", {}, admin, " administrator"), h("button", { type: "submit", id: "admin-create" }, "Create")),
    h("h2", {}, "Set a console password"),
    h("form", { id: "admin-pw-form", onsubmit: (ev) => { ev.preventDefault();
      resetPassword(who.value, setPw.value); } },
      h("label", {}, "User", who), h("label", {}, "New password", setPw),
      h("button", { type: "submit", id: "admin-pw-set" }, "Set password")),
    h("h2", {}, "Users"),
    listview(table(["User", "Admin", "Console login", "Authkeys", "Shares", ""], doc.users.map(userRow)),
      { label: "users", id: "users" }));
};
