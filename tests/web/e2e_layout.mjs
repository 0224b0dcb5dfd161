// SPDX-License-Identifier: BSD-3-Clause
// End to end: the console's layout, keyboard use and accessibility, with a
// community loaded (200 users, 500 shares, groups, authkeys, offers) by
// hpfriendsctl import.  Every page at a laptop's 1280x800 and a phone's
// 390x844: no horizontal page scrolling, the current menu item marked
// (aria-current), field borders at least 3:1 against the page, and
// axe-core (tests/web/node_modules, pinned) finding no serious or critical
// violation.  Then: the phone's menu behind a Menu button; focus on the
// login field; focus and the message kept where an action was; every
// destructive action asks first (dismissed: nothing changes; accepted: it
// is done) and stands apart from Add and Save; the same password refused;
// a lock-out that says how long it lasts; the favicon.
//
// Each page leaves a screenshot of the screen under tests/web/artifacts/layout/
// of the build tree (fail-*.png where a check failed).

import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import {
  DESKTOP, PHONE, STEP_TIMEOUT, check, ctl, expect, startBroker, stopBroker, publish,
  launch, newPage, login, go, waitText, run,
} from "./e2e_lib.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const AXE_FILE = path.join(process.env.HPF_WEB_NODE_DIR || here, "node_modules", "axe-core", "axe.min.js");
const PAGES = ["shares", "offers", "authkeys", "groups", "logs", "graph", "audit", "account"];
// Pages only an administrator has (carol is one).
const ADMIN_PAGES = ["admin"];
const N_USERS = 200;
const N_SHARES = 500;
let artifacts = null;

const pad = (n) => String(n).padStart(3, "0");

// The community: alice (whose pages are looked at) shares with many, is
// offered many channels, owns groups and keys; the others share among
// themselves up to N_SHARES.  Everything named here is used below.
function community(exported) {
  const doc = JSON.parse(exported);
  const others = [];
  for (let i = 1; doc.users.length < N_USERS; i++) {
    others.push("u" + pad(i));
    doc.users.push({ name: "u" + pad(i), admin: false });
  }
  const member = (g, owner, members) => doc.groups.push({ name: g, owner, members });
  member("partners", "alice", ["bob", "carol", ...others.slice(0, 30)]);
  member("doomed", "alice", []);
  member("ops", "u010", ["alice", "bob"]);
  for (let g = 0; g < 20; g++) member("team" + g, others[g], others.slice(g + 1, g + 6));
  const share = (from, to, channel, type = "shares") =>
    doc.shares.push(to.startsWith("@") ? { from, to_group: to.slice(1), channel, type } : { from, to_user: to, channel, type });
  for (let i = 0; i < 100; i++) share("alice", others[i], "sensor." + pad(i + 1), i % 7 ? "shares" : "shares_all");
  share("alice", "@partners", "dionaea.captures");
  share("alice", "@partners", "cowrie.sessions." + "long".repeat(20));
  for (let i = 0; i < 60; i++) share(others[i], "alice", "feed." + others[i]);
  for (let i = 0; i < 20; i++) doc.accepts.push({ user: "alice", from: others[i], channel: "feed." + others[i] });
  for (let i = 0; doc.shares.length < N_SHARES; i++) {
    const n = others.length, from = i % n;
    share(others[from], others[(from + 1 + (i * 7) % (n - 1)) % n], "mesh." + pad(i)); // never itself
  }
  for (let k = 1; k <= 25; k++) {
    doc.authkeys.push({ ident: "alice-k" + pad(k), owner: "alice", secret: "s" + k,
      publish: ["sensor." + pad(k), "dionaea.captures"], subscribe: k % 2 ? ["feed.u001"] : [] });
  }
  return JSON.stringify(doc);
}

async function evalIn(page, fn, arg) {
  return page.evaluate(fn, arg);
}

// "rgb(r, g, b)" -> relative luminance (WCAG 2).
function luminance(css) {
  const [r, g, b] = (css.match(/[\d.]+/g) || [0, 0, 0]).slice(0, 3).map((v) => {
    const c = Number(v) / 255;
    return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
  });
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
}
function contrast(a, b) {
  const [x, y] = [luminance(a), luminance(b)].sort((p, q) => q - p);
  return (x + 0.05) / (y + 0.05);
}

// The fields' border colours and the colour of the card they sit on.
async function fieldBorders(page) {
  return evalIn(page, () => Array.from(document.querySelectorAll("section#page input, section#page select, #login-page input"))
    .filter((el) => el.getClientRects().length && !el.readOnly && el.type !== "hidden")
    .map((el) => {
      let bg = "rgba(0, 0, 0, 0)";
      for (let n = el.parentElement; n && /rgba\(0, 0, 0, 0\)|transparent/.test(bg); n = n.parentElement) {
        bg = getComputedStyle(n).backgroundColor;
      }
      return { what: el.id || el.getAttribute("aria-label") || el.name, border: getComputedStyle(el).borderTopColor, bg };
    }));
}

async function axeViolations(page) {
  // The console's CSP allows no inline script; the source is evaluated
  // through the browser's debugging protocol instead, which it does not cover.
  if (!(await evalIn(page, () => typeof window.axe !== "undefined"))) {
    await page.evaluate(fs.readFileSync(AXE_FILE, "utf8"));
  }
  return evalIn(page, async () => {
    const r = await window.axe.run(document, { resultTypes: ["violations"] });
    return { rules: r.passes.length + r.violations.length,
      violations: r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help,
        nodes: v.nodes.slice(0, 3).map((n) => n.target.join(" ")) })) };
  });
}

// The checks every page gets; a screenshot of the screen when one fails.
async function pageChecks(page, label, name) {
  let good = true;
  const [sw, cw] = await evalIn(page, () => [document.documentElement.scrollWidth, document.documentElement.clientWidth]);
  good = check(label + ": no horizontal page scrolling", sw <= cw, "scrollWidth " + sw + " > " + cw) && good;
  if (name) {
    const current = await page.$$eval('#nav a[aria-current="page"]', (as) => as.map((a) => a.dataset.page));
    good = check(label + ": the menu marks the current page (aria-current)", current.join() === name, current.join()) && good;
  }
  const weak = (await fieldBorders(page)).filter((f) => contrast(f.border, f.bg) < 3)
    .map((f) => f.what + " " + f.border + " on " + f.bg + " (" + contrast(f.border, f.bg).toFixed(2) + ":1)");
  good = check(label + ": field borders at least 3:1 against the page", weak.length === 0, weak.slice(0, 3).join("; ")) && good;
  const axe = await axeViolations(page);
  const bad = axe.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  good = check(label + ": axe-core (" + (axe.rules > 10 ? "rules ran" : "only " + axe.rules + " rules ran") +
    ") finds no serious or critical violations", axe.rules > 10 && bad.length === 0, JSON.stringify(bad)) && good;
  await page.screenshot({ path: path.join(artifacts, (good ? "" : "fail-") + label.replace(/\W+/g, "-") + ".png") });
}

async function activeName(page) {
  return evalIn(page, () => {
    const a = document.activeElement;
    return a ? a.id || a.getAttribute("aria-label") || a.tagName : "";
  });
}

async function everyPage(browser, base, viewport, label) {
  const page = await newPage(browser, viewport);
  await page.goto(base + "/");
  await page.waitForSelector("#login-form", { state: "visible", timeout: STEP_TIMEOUT });
  check(label + ": the login field has focus on load", (await activeName(page)) === "login-user", await activeName(page));
  await pageChecks(page, label + " login", null);
  await login(page, base, "alice");
  for (const name of PAGES) {
    await go(page, name);
    await pageChecks(page, label + " " + name, name);
  }
  const admin = await newPage(page.context().browser(), viewport);
  await login(admin, base, "carol");
  for (const name of ADMIN_PAGES) {
    await go(admin, name);
    await pageChecks(admin, label + " " + name + " (administrator)", name);
  }
  await admin.context().close();
  return page;
}

// The phone's menu: behind a Menu button that says whether it is open.
async function phoneMenu(page) {
  const toggle = "#menu-toggle";
  const closed = await page.isVisible(toggle) && !(await page.isVisible('#nav a[data-page="shares"]')) &&
    (await page.getAttribute(toggle, "aria-expanded")) === "false" && (await page.getAttribute(toggle, "aria-controls")) === "nav";
  if (!check("phone: the menu is a Menu button (aria-expanded=false, aria-controls=nav), links hidden", closed)) return;
  const counts = [await page.textContent("#menu-count"), await page.textContent("#pending-count")];
  check("phone: the folded menu's button shows the count of offers waiting",
    /^[1-9]\d*$/.test(counts[0]) && counts[0] === counts[1] && await page.isVisible("#menu-count"), counts.join(" / "));
  const box = await page.locator("header").boundingBox();
  check("phone: the header is one compact bar", box && box.height <= 80 && box.width <= PHONE.width,
    JSON.stringify(box));
  await page.click(toggle);
  check("phone: the Menu button opens the links (aria-expanded=true)",
    (await page.getAttribute(toggle, "aria-expanded")) === "true" && await page.isVisible('#nav a[data-page="groups"]'));
  await page.keyboard.press("Escape");
  check("phone: Escape closes the menu and focus goes back to its button",
    (await page.getAttribute(toggle, "aria-expanded")) === "false" && (await activeName(page)) === "menu-toggle");
  await page.click(toggle);
  await page.click('#nav a[data-page="groups"]');
  await page.waitForSelector('section#page[data-page="groups"]', { timeout: STEP_TIMEOUT });
  check("phone: a link chosen, its page shows and the menu closes",
    (await page.getAttribute(toggle, "aria-expanded")) === "false" && !(await page.isVisible('#nav a[data-page="shares"]')));
}

// Clicks, answering a dialog if one opens; returns what it asked ("": none).
async function clickAnswering(page, selector, accept) {
  let asked = "";
  const answer = (d) => { asked = d.message(); return accept ? d.accept() : d.dismiss(); };
  page.on("dialog", answer);
  try {
    await page.click(selector); // a dialog opens (and is answered) before the click returns
  } finally {
    page.off("dialog", answer);
  }
  return asked;
}

// Clicks a destructive button twice: dismissed, then accepted.  The
// dialog names the thing; dismissed, a fresh load still has it.
async function confirmPattern(page, pageName, button, what, gone, done) {
  await go(page, pageName);
  await page.waitForSelector(button, { timeout: STEP_TIMEOUT });
  const asked = await clickAnswering(page, button, false);
  await go(page, pageName === "groups" ? "shares" : "groups");
  await go(page, pageName);
  check(what + ": asks first, naming it", asked.includes(gone.name), JSON.stringify(asked));
  if (!check(what + ": dismissed, nothing changes", await page.locator(gone.selector).count() > 0)) return;
  await clickAnswering(page, button, true);
  await waitText(page, "#status", done, what);
  check(what + ": accepted, it is done", await page.locator(gone.selector).count() === 0);
}

async function destructive(page) {
  await go(page, "shares");
  const label = await page.getAttribute('tr[data-to="u001"][data-channel="sensor.001"] button.danger', "aria-label");
  check("a row's button names its row (aria-label)", label === "Remove the share of sensor.001 with u001", label);
  await confirmPattern(page, "shares", 'tr[data-to="u001"][data-channel="sensor.001"] button.danger',
    "Remove share", { name: "sensor.001 with u001", selector: 'tr[data-to="u001"][data-channel="sensor.001"]' }, /removed/);
  await confirmPattern(page, "authkeys", 'tr[data-ident="alice-k001"] button.danger', "Delete authkey",
    { name: "alice-k001", selector: 'tr[data-ident="alice-k001"]' }, /deleted/);
  const member = 'h2:has-text("@partners") + table tr:has(td:text-is("u001")) button.danger';
  await confirmPattern(page, "groups", member, "Remove member", { name: "u001", selector: member }, /removed u001/);
  await confirmPattern(page, "groups", 'form.member-form[data-group="doomed"] button.danger', "Delete group",
    { name: "@doomed", selector: 'form.member-form[data-group="doomed"]' }, /deleted @doomed/);
  await confirmPattern(page, "groups", "button:text('Leave @ops')", "Leave group",
    { name: "@ops", selector: "button:text('Leave @ops')" }, /left @ops/);
  const offer = 'tr[data-from="u001"][data-channel="feed.u001"]';
  await confirmPattern(page, "offers", offer + " button.danger", "Withdraw acceptance",
    { name: "feed.u001", selector: offer + " .tag.accepted" }, /rejected|withdrew/);
}

// Danger apart from Add and Save: a clear gap, or another line.
async function apart(page, a, b, what) {
  const [x, y] = [await page.locator(a).boundingBox(), await page.locator(b).boundingBox()];
  const gap = x && y ? (Math.abs(x.y - y.y) > 4 ? Infinity : y.x - (x.x + x.width)) : -1;
  check(what + " stands apart (at least 16 px, or on its own line)", gap >= 16, "gap " + gap);
}

// Focus and the message stay where the action was.
async function focusKept(page) {
  await go(page, "authkeys");
  const row = 'tr[data-ident="alice-k005"]';
  await apart(page, row + " button.secondary", row + " button.danger", "Delete authkey, beside Save,");
  await page.click(row + " button.secondary");
  await waitText(page, "#status", /saved alice-k005/, "saving a key");
  check("after Save the redrawn row's Save button has focus",
    (await activeName(page)) === "Save the channel lists of alice-k005", await activeName(page));
  const near = await evalIn(page, (sel) => {
    const next = document.querySelector(sel).nextElementSibling;
    return next && next.classList.contains("said-row") ? next.textContent : "";
  }, row);
  check("the message shows under the row it is about", /saved alice-k005/.test(near), near);
  const live = await evalIn(page, () => {
    const s = document.getElementById("status");
    return [s.getAttribute("role"), s.getAttribute("aria-live"), s.textContent];
  });
  check("and is announced: #status (role=status, aria-live=polite) holds it",
    live[0] === "status" && live[1] === "polite" && /saved alice-k005/.test(live[2]), JSON.stringify(live));

  await go(page, "groups");
  await apart(page, 'form.member-form[data-group="partners"] button[type="submit"]',
    'form.member-form[data-group="partners"] button.danger', "Delete group, beside Add,");
  await page.fill("#group-name", "fresh");
  await page.press("#group-name", "Enter");
  await waitText(page, "#status", /created group fresh/, "creating a group");
  check("after Enter in a form, focus is back in its field", (await activeName(page)) === "group-name", await activeName(page));
  const after = await saidAfter(page, "group-form");
  check("the message shows right after the form that caused it", /created group fresh/.test(after), after);

  // A removed row: focus on the next row's button, the message where it was.
  await go(page, "shares");
  await clickAnswering(page, 'tr[data-to="u003"][data-channel="sensor.003"] button.danger', true);
  await waitText(page, "#status", /removed the share of sensor.003/, "removing a share");
  check("after a row is removed, focus is on the next row's button",
    (await activeName(page)) === "Remove the share of sensor.004 with u004", await activeName(page));
  const where = await evalIn(page, () => {
    const said = document.querySelector("tr.said-row");
    const next = said && said.nextElementSibling;
    return next ? next.dataset.channel : "";
  });
  check("and the message sits where the row was", where === "sensor.004", where);
}

// The message shown after a form (below its hint, if any); "" if none.
async function saidAfter(page, formId) {
  return evalIn(page, (id) => {
    let next = document.getElementById(id).nextElementSibling;
    while (next && next.matches("small.hint")) next = next.nextElementSibling;
    return next && next.classList.contains("said") ? next.textContent : "";
  }, formId);
}

async function account(page) {
  await go(page, "account");
  await page.fill("#pw-old", "alice-password");
  await page.fill("#pw-new", "alice-password");
  await page.click('#pw-form button[type="submit"]');
  const said = await waitText(page, "#status", /same/, "the same password");
  check("the same password again is refused, in words", /same as the current one/.test(said), said);
  const near = await saidAfter(page, "pw-form");
  check("the refusal shows next to the password form", /same as the current one/.test(near), near);
}

// Last: it locks this address out for the rest of the run.
async function lockout(browser, base) {
  const page = await newPage(browser, PHONE);
  await page.goto(base + "/");
  await page.waitForSelector("#login-form", { state: "visible", timeout: STEP_TIMEOUT });
  let said = "";
  for (let i = 0; i < 6 && !/try again/.test(said); i++) {
    await page.fill("#login-user", "carol");
    await page.fill("#login-password", "wrong-" + i);
    await page.click("#login-submit");
    said = await waitText(page, "#status", new RegExp(i < 5 ? "wrong|try again" : "try again"), "login " + i);
    await page.evaluate(() => { document.getElementById("status").textContent = ""; });
  }
  check("a locked-out login says how long to wait", /try again in \d+ seconds?/.test(said), said);
  const near = await saidAfter(page, "login-form");
  check("next to the login form", /try again in/.test(near), near);
  const [sw, cw] = await evalIn(page, () => [document.documentElement.scrollWidth, document.documentElement.clientWidth]);
  check("phone: the lock-out message fits the screen", sw <= cw, sw + " > " + cw);
}

async function main(chromium) {
  const b = await startBroker("graph", undefined, { users: ["alice", "bob", "carol"] });
  const base = "http://127.0.0.1:" + b.web;
  const file = path.join(b.dir, "community.json");
  fs.writeFileSync(file, community(ctl(b.conf, ["export"])));
  ctl(b.conf, ["import", file]);
  ctl(b.conf, ["user", "admin", "carol", "yes"]);
  ctl(b.conf, ["user", "add", "x".repeat(64)]); // the longest name: selects of users must still fit a phone
  const shares = JSON.parse(ctl(b.conf, ["export"])).shares.length;
  check("the community is loaded: " + N_USERS + " users, " + shares + " shares", shares === N_SHARES, String(shares));
  for (let i = 0; i < 3; i++) publish(b.port, "alice-k002", "not-the-secret", "x"); // events for the logs page
  const res = await fetch(base + "/favicon.svg");
  check("the favicon is served as image/svg+xml", res.status === 200 &&
    res.headers.get("content-type").startsWith("image/svg+xml") && /<svg/.test(await res.text()));
  const browser = await launch(chromium);
  let desk = null;
  try {
    desk = await everyPage(browser, base, DESKTOP, "desktop");
    const icons = await desk.$$eval('link[rel="icon"]', (ls) => ls.map((l) => l.getAttribute("href")));
    check("the page links its favicon", icons.join() === "favicon.svg", icons.join());
    await destructive(desk);
    await focusKept(desk);
    await account(desk);
    await desk.click("#logout");
    await desk.waitForSelector("#login-form", { state: "visible", timeout: STEP_TIMEOUT });
    check("after logging out the login field has focus", (await activeName(desk)) === "login-user");
    const phone = await everyPage(browser, base, PHONE, "phone");
    await phoneMenu(phone);
    await lockout(browser, base);
  } catch (e) {
    // Where a step broke: the screen, the page and the status line.
    if (desk) {
      await desk.screenshot({ path: path.join(artifacts, "failure.png") }).catch(() => {});
      console.log("# page at failure: " + await desk.getAttribute("section#page", "data-page").catch(() => "?") +
        "; status: " + JSON.stringify(await desk.textContent("#status").catch(() => "?")));
    }
    throw e;
  } finally {
    await browser.close();
  }
  check("the broker stops cleanly", await stopBroker(b) === 0);
}

await run("layout", async (h) => {
  artifacts = h.artifacts;
  expect(fs.existsSync(AXE_FILE), AXE_FILE + " missing (run tests/web/setup.sh)");
  await main(h.chromium);
});
