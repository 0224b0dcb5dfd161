// SPDX-License-Identifier: BSD-3-Clause
// The console's "Authkeys" page: the user's idents, secrets and channel lists.
"use strict";

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
  const tbl = listview(table(headers, keyRows(keys)), { label: "authkeys", id: "keys" });
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
