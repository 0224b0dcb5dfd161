// SPDX-License-Identifier: BSD-3-Clause
// The console's "Shared with me" page: offers from others, and their consent.
"use strict";

pages.offers = async (root) => {
  const doc = await api("GET", "/api/offers");
  root.append(
    h("h1", {}, "Shared with me"),
    h("p", { class: "muted" }, doc.require_accept
      ? "This broker delivers a share only once you accept it."
      : "This broker delivers shares without acceptance; accepting records your consent."),
    listview(table(["From", "Channel", "Type", "Via", "State", ""], doc.offers.map((o) => h("tr", { "data-from": o.from, "data-channel": o.channel },
      h("td", {}, o.from), h("td", { class: "mono" }, o.channel), h("td", {}, o.type), h("td", {}, o.via || "directly"),
      h("td", {}, h("span", { class: "tag " + o.state }, o.state)),
      h("td", {}, o.accepted
        ? h("button", { class: "danger", type: "button", "aria-label": "Reject " + o.channel + " from " + o.from, onclick: () => confirmDanger("Withdraw your acceptance of " + o.channel + " from " + o.from, "Its messages stop reaching you.") && act("rejected " + o.channel + " from " + o.from,
            () => api("POST", "/api/offers/reject", { from: o.from, channel: o.channel })) }, "Reject")
        : h("button", { type: "button", class: "accept", "aria-label": "Accept " + o.channel + " from " + o.from, onclick: () => act("accepted " + o.channel + " from " + o.from,
            () => api("POST", "/api/offers/accept", { from: o.from, channel: o.channel })) }, "Accept"))))), { label: "offers", id: "offers" }));
};
