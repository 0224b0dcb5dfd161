// SPDX-License-Identifier: BSD-3-Clause
// The console's "Logs" page: the broker's recent events for the user's keys.
"use strict";

pages.logs = async (root) => {
  const doc = await api("GET", "/api/logs");
  root.append(
    h("h1", {}, "Logs"),
    h("p", { class: "muted" }, "Recent failed logins, denied publishes and subscribes, drops and disconnects of your authkeys (newest first; kept in memory by the broker)."),
    table(["Time (UTC)", "Event", "Ident", "Address", "Channel", "Reason"], doc.events.map((e) => h("tr", {},
      h("td", { class: "mono" }, e.time), h("td", {}, h("span", { class: "tag" }, e.type)), h("td", { class: "mono" }, e.ident),
      h("td", { class: "mono" }, e.peer || ""), h("td", { class: "mono" }, e.channel || ""),
      h("td", {}, e.reason || (e.count ? e.count + " dropped" : ""))))));
};
