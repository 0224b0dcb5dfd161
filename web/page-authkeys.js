// SPDX-License-Identifier: BSD-3-Clause
// The console's "Authkeys" page: the user's idents, secrets and channel lists.
"use strict";

function fmtBytes(n) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(1) : String(n)) + " " + units[i];
}

// ---- flow health and connection snippets ----

const nf = new Intl.NumberFormat("en-US");

// "12 s ago", "5 min ago", "3 h ago", "2 d ago" for an ISO time; "never" for null.
function ago(iso) {
  if (!iso) return "never since the broker started";
  const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  if (s < 60) return s + " s ago";
  if (s < 3600) return Math.floor(s / 60) + " min ago";
  if (s < 86400) return Math.floor(s / 3600) + " h ago";
  return Math.floor(s / 86400) + " d ago";
}

function when(label, iso) {
  return h("div", {}, label + ": ", h("time", { datetime: iso || undefined, title: iso || "" }, ago(iso)));
}

// A key's recent traffic: last connected and published, per channel counts.
function flowCell(k) {
  const lines = [when("last connected", k.last_connected), when("last published", k.last_published)];
  for (const c of k.flow || []) {
    lines.push(h("div", { class: "flow-chan", "data-channel": c.channel },
      "published " + nf.format(c.hour) + " in the last hour (" + nf.format(c.day) + " in the last day) on ",
      h("code", {}, c.channel)));
  }
  if (k.delivered_day) {
    lines.push(h("div", { class: "flow-recv" }, "delivered to it " + nf.format(k.delivered_hour) +
      " in the last hour (" + nf.format(k.delivered_day) + " in the last day)"));
  }
  return lines;
}

// Words the shell reads as one argument: quoted unless plainly safe.
function shq(v) {
  return /^[A-Za-z0-9._@%+=:,\/-]+$/.test(v) ? v : "'" + v.replace(/'/g, "'\\''") + "'";
}

// Where sensors connect: the API's answer, or this page's host when the
// broker listens on every address.
function endpoint(doc) {
  const e = doc.hpfeeds || {};
  return { host: e.host || location.hostname, port: e.port || 10000, tls: !!e.tls };
}

// A ready-to-paste description of how to use key k; secret only when just made.
function snippetText(k, ep, secret) {
  const s = secret || "YOUR-SECRET";
  const base = ["hpfeeds-cli"];
  const common = ["--host", shq(ep.host), "--port", String(ep.port), "--ident", shq(k.ident),
    "--secret", shq(s)].concat(ep.tls ? ["--tls"] : []);
  const lines = ["# hpfeeds broker " + ep.host + ":" + ep.port + (ep.tls ? " (TLS)" : ""),
    "# ident: " + k.ident, "# secret: " + (secret ? secret + " (shown once)" : "the one shown when it was made")];
  if (k.publish.length) lines.push("# may publish on: " + k.publish.join(", "));
  if (k.subscribe.length) lines.push("# may subscribe to: " + k.subscribe.join(", "));
  if (k.subscribe.length) {
    lines.push(base.concat(["sub"], common, ...k.subscribe.map((c) => ["--channel", shq(c)])).join(" "));
  }
  if (k.publish.length) {
    lines.push(base.concat(["pub"], common, ["--channel", shq(k.publish[0]), "'hello'"]).join(" "));
  }
  if (!k.subscribe.length && !k.publish.length) lines.push("# no channels yet: add some to publish or subscribe");
  return lines.join("\n");
}

// Copy text to the clipboard; says how it went next to the button.
function copyButton(label, text, what) {
  return h("button", { class: "copy", type: "button", "aria-label": "copy " + what, onclick: async (ev) => {
    const btn = ev.currentTarget;
    try {
      await navigator.clipboard.writeText(typeof text === "function" ? text() : text);
      btn.textContent = "Copied";
      say("copied " + what + " to the clipboard", "ok");
    } catch (e) {
      say("the browser refused the clipboard: select the text and copy it by hand", "error");
    }
    setTimeout(() => { btn.textContent = label; }, 2000);
  } }, label);
}

function snippet(k, ep, secret, id) {
  const text = snippetText(k, ep, secret);
  return h("div", { class: "snippet" },
    h("pre", { class: "mono", id }, text), copyButton("Copy snippet", text, "the connection snippet of " + k.ident));
}

// The secret, shown once (after create or regenerate), with the snippet that uses it.
function showSecret(doc, k, secret, verb) {
  const box = document.getElementById("new-secret") || document.getElementById("status");
  box.replaceChildren(h("div", { class: "secret" },
    verb + " secret of ", h("code", {}, k.ident), " (shown once, copy it now): ",
    h("code", { id: "secret-value" }, secret), " ", copyButton("Copy", secret, "the secret of " + k.ident),
    snippet(k, endpoint(doc), secret, "secret-snippet")));
}

async function regenerate(k) {
  if (!confirmDanger("Regenerate the secret of " + k.ident, "The old secret stops working: sensors using it " +
      "are disconnected and must be given the new one.")) return;
  let r;
  try {
    r = await api("POST", "/api/authkeys/secret", { ident: k.ident });
  } catch (e) { say(e.message, "error"); return; }
  await route();
  say("new secret for " + r.ident, "ok");
  await showFresh(r.ident, r.secret, "New");
}

// The secret with the key as stored now (its lists as the server read them).
async function showFresh(ident, secret, verb) {
  const doc = await api("GET", "/api/authkeys").catch(() => ({ authkeys: [] }));
  const k = doc.authkeys.find((x) => x.ident === ident) || { ident, publish: [], subscribe: [] };
  showSecret(doc, k, secret, verb);
}

function keyRows(keys, doc) {
  const ep = endpoint(doc);
  return keys.map((k) => {
    const ro = state.listsEditable ? {} : { readonly: true };
    const pub = h("input", { value: k.publish.join(", "), "aria-label": "publish channels of " + k.ident, size: 22,
      "aria-describedby": "channel-rule", oninput: markDirty, ...ro });
    const sub = h("input", { value: k.subscribe.join(", "), "aria-label": "subscribe channels of " + k.ident, size: 22,
      "aria-describedby": "channel-rule", oninput: markDirty, ...ro });
    const save = state.listsEditable ? [h("button", { class: "secondary", type: "button", "aria-label": "Save the channel lists of " + k.ident, onclick: () => act("saved " + k.ident,
      () => api("PUT", "/api/authkeys", { ident: k.ident, publish: pub.value, subscribe: sub.value })) }, "Save"), " "] : [];
    // Two rows per key: its fields and actions, then its flow health and
    // connection snippet across the table.
    return [h("tr", { class: "key-main", "data-ident": k.ident },
      h("td", { class: "mono" }, k.ident, " ", copyButton("Copy", k.ident, "the ident " + k.ident)),
      h("td", {}, pub), h("td", {}, sub),
      h("td", { class: "num counters" }, String(k.published_msgs), " / ", fmtBytes(k.published_bytes)),
      h("td", { class: "num" }, String(k.received_msgs), " / ", fmtBytes(k.received_bytes)),
      h("td", { class: "num" }, String(k.connections)),
      h("td", {}, ...save,
        h("button", { class: "regen", type: "button", "aria-label": "Regenerate secret of " + k.ident,
          onclick: () => regenerate(k) }, "Regenerate secret"), " ",
        h("button", { class: "danger", type: "button", "aria-label": "Delete authkey " + k.ident, onclick: () => {
          if (confirmDanger("Delete authkey " + k.ident, "Its connections are closed.")) {
            act("deleted " + k.ident, () => api("DELETE", "/api/authkeys", { ident: k.ident }));
          } } }, "Delete"))),
    h("tr", { class: "key-detail", "data-detail-of": k.ident },
      h("td", { colspan: 7 }, h("div", { class: "flow" }, flowCell(k)),
        h("details", { class: "connect" }, h("summary", {}, "Connect " + k.ident), snippet(k, ep, null))))];
  }).flat();
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
  const tbl = listview(table(headers, keyRows(keys, doc)), { label: "authkeys", id: "keys" });
  root.append(
    h("h1", {}, "Authkeys"),
    h("p", { class: "muted" }, "Credentials for your sensors and subscribers. Counters update live."),
    h("p", { class: "muted", id: "flow-note" }, "Flow (last connected, last published, messages per hour and day) " +
      "is counted in the broker's memory since it started" + (doc.flow_since ? " (" + doc.flow_since + ")" : "") +
      ": a restart begins it again at zero. The totals beside it are saved."),
    h("form", { id: "key-form", onsubmit: async (ev) => {
      ev.preventDefault();
      try {
        const lists = state.listsEditable ? { publish: pub.value, subscribe: sub.value } : {};
        const r = await api("POST", "/api/authkeys", { ident: ident.value.trim(), ...lists });
        await route();
        say("created " + r.ident, "ok");
        // The secret is shown once: on the status line if the user has
        // moved on to another page meanwhile.
        await showFresh(r.ident, r.secret, "The");
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
        const flow = tbl.querySelector('tr[data-detail-of="' + CSS.escape(k.ident) + '"] .flow');
        if (flow) flow.replaceChildren(...flowCell(k));
      }
    } catch (e) { /* the next tick tries again */ }
  }, 2000);
};
