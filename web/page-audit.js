// SPDX-License-Identifier: BSD-3-Clause
// The console's "Audit" page: who changed which share, key, group, member
// or user, and when.  A user sees the records about their own objects; an
// administrator sees everyone's, filtered by actor or by whose object.
"use strict";

// The filters and page in force; they last while the console stays open.
const auditView = { actor: "", about: "", before: 0 };

function auditTime(t) {
  return new Date(t * 1000).toISOString().replace(/\.\d+Z$/, "Z");
}

pages.audit = async (root) => {
  const q = new URLSearchParams({ limit: "100" });
  const all = state.admin && !state.actAs;
  if (all && auditView.actor) q.set("actor", auditView.actor);
  if (all && auditView.about) q.set("about", auditView.about);
  if (auditView.before) q.set("before", String(auditView.before));
  const doc = await api("GET", "/api/audit?" + q.toString());
  root.append(h("h1", {}, "Audit"), h("p", { class: "muted" }, doc.all
    ? "Every change made in the console or with hpfriendsctl, newest first."
    : "Changes to your shares, authkeys, groups and account, newest first, and who made them."));
  if (!doc.supported) {
    root.append(h("p", { id: "audit-unsupported" }, doc.message));
    return;
  }
  if (doc.all) {
    const actor = h("input", { id: "audit-actor", value: auditView.actor, placeholder: "e.g. alice" });
    const about = h("input", { id: "audit-about", value: auditView.about, placeholder: "user" });
    root.append(h("form", { id: "audit-filter", onsubmit: (ev) => { ev.preventDefault();
      Object.assign(auditView, { actor: actor.value.trim(), about: about.value.trim(), before: 0 });
      route(); } },
      h("label", {}, "Actor", actor), h("label", {}, "About user", about),
      h("button", { type: "submit", id: "audit-apply" }, "Filter")));
  }
  const head = ["Time (UTC)", "Actor", "Action", "Object", "Detail"].concat(doc.all ? ["User"] : []);
  root.append(table(head, doc.records.map((r) => h("tr", { "data-id": String(r.id), "data-action": r.action },
    h("td", { class: "mono" }, auditTime(r.time)), h("td", {}, r.actor),
    h("td", {}, h("span", { class: "tag" }, r.action)), h("td", { class: "mono" }, r.object),
    h("td", {}, r.detail), doc.all ? h("td", {}, r.user) : null))));
  const nav = h("p", {});
  if (auditView.before)
    nav.append(h("button", { type: "button", class: "secondary", id: "audit-newest",
      onclick: () => { auditView.before = 0; route(); } }, "Newest"));
  if (doc.next_before)
    nav.append(h("button", { type: "button", class: "secondary", id: "audit-older",
      onclick: () => { auditView.before = doc.next_before; route(); } }, "Older"));
  root.append(nav);
};
