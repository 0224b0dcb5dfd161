// SPDX-License-Identifier: BSD-3-Clause
// The console's "My shares" page: share a channel with a user or group,
// see each recipient's consent, remove a share.
"use strict";

// Flow health: what the sender's keys published on the channel in the last
// hour (counted in the broker's memory since it started).
function shareFlow(s) {
  if (s.published_hour === undefined) return null;
  return h("div", { class: "share-flow muted" },
    Number(s.published_hour).toLocaleString("en-US") + " published in the last hour by " +
    (s.from === state.user ? "your" : s.from + "'s") + " keys");
}

pages.shares = async (root) => {
  const [shares, users, groups] = await Promise.all([
    api("GET", "/api/shares"), api("GET", "/api/users"), api("GET", "/api/groups")]);
  const targets = users.users.map((u) => u.name).filter((n) => n !== state.user)
    .concat(groups.groups.map((g) => "@" + g.name));
  const to = h("input", { id: "share-to", list: "share-targets", placeholder: "user or @group", required: true });
  const chan = h("input", { id: "share-channel", placeholder: "channel", required: true, "aria-describedby": "share-channel-rule" });
  const type = h("select", { id: "share-type" },
    h("option", { value: "shares" }, "shares (my messages)"),
    h("option", { value: "shares_all" }, "shares_all (also what I receive)"));
  root.append(
    h("h1", {}, "My shares"),
    h("p", { class: "muted" }, "Channels you share, and with whom. A share to a group reaches all its members."),
    h("form", { id: "share-form", onsubmit: (ev) => { ev.preventDefault();
      act("shared " + chan.value + " with " + to.value,
        () => addShare(to.value.trim(), chan.value.trim(), type.value)); } },
      h("label", {}, "To", to), h("datalist", { id: "share-targets" }, targets.map((t) => h("option", { value: t }))),
      h("label", {}, "Channel", chan), h("label", {}, "Type", type),
      h("button", { type: "submit", id: "share-add" }, "Share")),
    ruleHint("share-channel-rule", "One channel name per share: no spaces or commas (the rule of every channel name)."),
    listview(table(["To", "Channel", "Type", "Recipients", ""], shares.shares.map((s) => h("tr", { "data-to": s.to, "data-channel": s.channel },
      h("td", {}, s.to), h("td", { class: "mono" }, s.channel, shareFlow(s)), h("td", {}, h("span", { class: "tag" }, s.type)),
      h("td", { class: "recipients" }, recipientStates(s.recipients)),
      h("td", {}, h("button", { class: "danger", type: "button", "aria-label": "Remove the share of " + s.channel + " with " + s.to, onclick: () =>
        confirmDanger("Remove the share of " + s.channel + " with " + s.to, "Its recipients stop receiving it.") && act("removed the share of " + s.channel + " with " + s.to,
          () => api("DELETE", "/api/shares", { to: s.to, channel: s.channel })) }, "Remove"))))), { label: "shares", id: "shares" }));
};
