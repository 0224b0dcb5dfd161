// SPDX-License-Identifier: BSD-3-Clause
// The console's "Groups" page: groups the user owns or belongs to, and members.
"use strict";

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
      g.mine ? h("button", { class: "danger", type: "button", "aria-label": "Remove " + m + " from @" + g.name, onclick: () => confirmDanger("Remove " + m + " from @" + g.name, "Shares to the group no longer reach " + m + ".") && act("removed " + m + " from @" + g.name,
        () => api("DELETE", "/api/groups/members", { group: g.name, member: m })) }, "Remove") : null)));
    root.append(table(["Member", ""], rows));
    if (g.mine) {
      root.append(h("form", { class: "member-form", "data-group": g.name, onsubmit: (ev) => { ev.preventDefault();
        act("added " + member.value + " to @" + g.name, () => api("POST", "/api/groups/members", { group: g.name, member: member.value.trim() })); } },
        h("label", {}, "Add member", member), h("button", { type: "submit", "aria-label": "Add a member to @" + g.name }, "Add"),
        h("button", { class: "danger", type: "button", "aria-label": "Delete group @" + g.name, onclick: () => {
          if (confirmDanger("Delete group @" + g.name, "The shares to it are deleted too.")) {
            act("deleted @" + g.name, () => api("DELETE", "/api/groups", { name: g.name }));
          } } }, "Delete group")));
    }
    if (g.member) {
      root.append(h("p", {}, h("button", { class: "danger", type: "button", onclick: () => confirmDanger("Leave @" + g.name, "Shares to the group no longer reach you.") && act("left @" + g.name,
        () => api("POST", "/api/groups/leave", { group: g.name })) }, "Leave @" + g.name)));
    }
  }
};
