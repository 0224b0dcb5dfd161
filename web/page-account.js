// SPDX-License-Identifier: BSD-3-Clause
// The console's "Account" page: password change.
"use strict";

pages.account = async (root) => {
  const old = h("input", { type: "password", id: "pw-old", autocomplete: "current-password", required: true });
  const nw = h("input", { type: "password", id: "pw-new", autocomplete: "new-password", minlength: 8, required: true,
    "aria-describedby": "pw-rule" });
  root.append(h("h1", {}, "Account"),
    h("p", {}, "Logged in as ", h("strong", {}, state.user), state.admin ? " (administrator: the Admin page acts for other users)" : ""),
    h("form", { id: "pw-form", onsubmit: (ev) => { ev.preventDefault();
      act("password changed", () => api("POST", "/api/password", { old: old.value, new: nw.value })); } },
      h("label", {}, "Current password", old), h("label", {}, "New password", nw),
      h("button", { type: "submit" }, "Change password")),
    ruleHint("pw-rule", "At least 8 characters, and not the current password. Your other sessions end."));
};
