// SPDX-License-Identifier: BSD-3-Clause
// The console's "Shared with me" page: offers from others, and their consent.
"use strict";

// What a recipient can do from each state: accept and decline replace each
// other, and "Withdraw" takes either answer back (the offer is pending again).
// Only withdrawing an acceptance stops messages that flow now: it asks first.
function offerButtons(o) {
  const body = { from: o.from, channel: o.channel };
  const what = o.channel + " from " + o.from;
  const button = (cls, label, done, path, ask) => h("button", {
    type: "button", class: cls, "aria-label": label + " " + what,
    onclick: () => (!ask || confirmDanger(ask, "Its messages stop reaching you.")) &&
      act(done + " " + what, () => api("POST", path, body)),
  }, label);
  const accept = button("accept", "Accept", "accepted", "/api/offers/accept");
  if (o.state === "accepted")
    return [button("withdraw danger", "Withdraw", "withdrew your acceptance of", "/api/offers/reject",
      "Withdraw your acceptance of " + what)];
  if (o.state === "declined")
    return [accept, " ", button("withdraw secondary", "Withdraw", "withdrew your decline of", "/api/offers/reject")];
  return [accept, " ", button("decline secondary", "Decline", "declined", "/api/offers/decline")];
}

// An answer is per sender and channel: when a sender offers one channel
// twice (directly and through a group, or as shares and shares_all), one
// Accept or Decline answers both rows, and the rows say so.
function sameAnswerNote(offers) {
  const n = new Map();
  for (const o of offers) n.set(o.from + "\n" + o.channel, (n.get(o.from + "\n" + o.channel) || 0) + 1);
  return (o) => n.get(o.from + "\n" + o.channel) > 1
    ? h("small", { class: "muted same-answer" }, " one answer for every offer of this channel from " + o.from) : null;
}

pages.offers = async (root) => {
  const doc = await api("GET", "/api/offers");
  const note = sameAnswerNote(doc.offers);
  root.append(
    h("h1", {}, "Shared with me"),
    h("p", { class: "muted" }, doc.require_accept
      ? "This broker delivers a share only once you accept it; a declined share delivers nothing."
      : "This broker delivers shares without acceptance; accepting or declining records your answer."),
    listview(table(["From", "Channel", "Type", "Via", "State", ""], doc.offers.map((o) => h("tr", { "data-from": o.from, "data-channel": o.channel, "data-state": o.state },
      h("td", {}, o.from), h("td", { class: "mono" }, o.channel), h("td", {}, o.type), h("td", {}, o.via || "directly"),
      h("td", {}, h("span", { class: "tag " + o.state }, o.state), note(o)),
      h("td", {}, offerButtons(o))))), { label: "offers", id: "offers" }));
};
