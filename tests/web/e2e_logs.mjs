// SPDX-License-Identifier: BSD-3-Clause
// End to end: finding things in the console, in headless Chromium at
// 1280x800 and 390x844.  The Logs page filters by event type on the server,
// pages by cursor (Older / Newer never repeat a row), refreshes itself when
// a real failed AUTH (hpfeeds-cli with a wrong secret) happens, keeps the
// reader's place, pauses and resumes, colours each event type apart, and
// shows an Owner column to an administrator only.  My shares (30 shares)
// has a search box, sortable headers (aria-sort) and pages.
//
// The harness (broker, browser, checks) is e2e_lib.mjs.

import { spawnSync } from "node:child_process";
import path from "node:path";
import {
  CHAN, CLI, DESKTOP, PHONE, STEP_TIMEOUT, check, ctl, sleep, startBroker, stopBroker,
  launch, newPage, shot, login, go, waitText, run, tmp, expect,
} from "./e2e_lib.mjs";

const ROWS = "#logs-table tbody tr[data-id]";
const POLL_MS = 3000; // the page's refresh period

// One hpfeeds-cli run; status is non-zero when the broker refuses it.
function cli(port, ident, secret, chan, payload) {
  return spawnSync(CLI, ["pub", "-p", String(port), "-i", ident, "-s", secret, "-c", chan, payload],
    { encoding: "utf8", timeout: 10000 });
}

async function rowIds(page) {
  return page.$$eval(ROWS, (rows) => rows.filter((r) => !r.hidden).map((r) => Number(r.dataset.id)));
}

async function rowTypes(page) {
  return page.$$eval(ROWS, (rows) => rows.map((r) => r.dataset.type));
}

// Poll a condition over the page (no waitForFunction under the CSP).
async function until(what, fn, ms = STEP_TIMEOUT) {
  const deadline = Date.now() + ms;
  let last;
  while (Date.now() < deadline) {
    last = await fn();
    if (last) return last;
    await sleep(100);
  }
  expect(false, what + ": not within " + ms + " ms");
  return last;
}

// Apply a type filter and wait until the table shown is the new one.
async function showType(page, type) {
  const old = await page.$("#logs-table table");
  await page.selectOption("#logs-type", type);
  await page.click("#logs-apply");
  await until("rows for type " + (type || "all"), async () => !(await old.evaluate((t) => t.isConnected)));
}

async function filterAndPage(page, tag) {
  await showType(page, "denied");
  const types = await rowTypes(page);
  check(tag + ": type=denied narrows the rows to the denial",
    types.length === 1 && types[0] === "denied", types.join(" "));
  await showType(page, "auth_failed");
  const first = await rowIds(page);
  check(tag + ": a page of failed AUTHs holds 25 rows, newest first",
    first.length === 25 && first.every((id, i) => i === 0 || id < first[i - 1]), first.join(" "));
  check(tag + ": Newer is off on the newest page", await page.isDisabled("#logs-newer"));
  await page.click("#logs-older");
  await waitText(page, "#logs-page", /page 2/, "the second page");
  const second = await rowIds(page);
  check(tag + ": Older shows the 5 older rows, none repeated",
    second.length >= 5 && second.every((id) => id < Math.min(...first)), second.join(" "));
  await page.click("#logs-newer");
  await waitText(page, "#logs-page", /page 1/, "back to the first page");
  check(tag + ": Newer goes back to the same first page", (await rowIds(page))[0] === first[0]);
}

async function tagColours(page) {
  await showType(page, "");
  const bg = async (type) => page.$eval("#logs-table .tag.ev-" + type,
    (el) => getComputedStyle(el).backgroundColor);
  const a = await bg("auth_failed"), d = await bg("disconnect"), n = await bg("denied");
  const grey = "rgb(234, 238, 242)";
  check("event tags have distinct colours (auth_failed, denied, disconnect)",
    a !== d && a !== n && d !== n && ![a, d, n].includes(grey), [a, n, d].join(" / "));
}

// A failed AUTH over hpfeeds shows on top without a click; the rows the
// reader looks at stay where they were on the screen.
async function liveRefresh(page, b, tag) {
  await showType(page, "");
  const top = (await rowIds(page))[0];
  await page.evaluate(() => window.scrollTo(0, 400)).catch(() => {});
  const anchor = "#logs-table tbody tr[data-id=\"" + top + "\"]";
  const y0 = (await page.locator(anchor).boundingBox()).y;
  const bad = cli(b.port, "alice-k", "wrong-secret", CHAN, "x");
  check(tag + ": hpfeeds-cli with a wrong secret is refused", bad.status !== 0, bad.stderr);
  await until("the new event on top", async () => (await rowIds(page))[0] > top, 4 * POLL_MS + 5000);
  const types = await rowTypes(page);
  check(tag + ": live refresh brings the failed AUTH on top", types[0] === "auth_failed", types.slice(0, 3).join(" "));
  const y1 = (await page.locator(anchor).boundingBox()).y;
  check(tag + ": the row being read stays in place", Math.abs(y1 - y0) < 3, y0 + " -> " + y1);
  await page.click("#logs-live");
  check(tag + ": the pause button says paused",
    (await page.getAttribute("#logs-live", "aria-pressed")) === "false" &&
    /paused/.test(await page.textContent("#logs-live-state")));
  const paused = (await rowIds(page))[0];
  cli(b.port, "alice-k", "wrong-secret", CHAN, "x");
  await sleep(2 * POLL_MS + 500); // two refresh periods: a refresh would have come
  check(tag + ": paused, no new rows arrive", (await rowIds(page))[0] === paused);
  await page.click("#logs-live");
  await until("resumed: the held event arrives", async () => (await rowIds(page))[0] > paused, 4 * POLL_MS + 5000);
  check(tag + ": resumed, the event that came meanwhile shows", true);
}

async function sharesList(page, tag) {
  await go(page, "shares");
  const rows = "section#page tbody tr[data-channel]";
  const visible = async () => page.$$eval(rows, (rs) => rs.filter((r) => !r.hidden).map((r) => r.dataset.channel));
  check(tag + ": My shares shows the first 25 of 30", (await visible()).length === 25,
    String((await visible()).length));
  await page.fill("#shares-search", "chan.07");
  const hit = await until("search narrows", async () => { const v = await visible(); return v.length === 1 ? v : null; });
  check(tag + ": searching 'chan.07' leaves its row", hit[0] === "chan.07", hit.join(" "));
  await page.fill("#shares-search", "");
  const th = "section#page th:has(button.lv-sort:text-is('Channel'))";
  await page.click(th + " button");
  check(tag + ": Channel header says ascending", (await page.getAttribute(th, "aria-sort")) === "ascending");
  check(tag + ": sorted ascending", (await visible())[0] === "chan.00", (await visible())[0]);
  await page.click(th + " button");
  check(tag + ": a second click sorts descending",
    (await page.getAttribute(th, "aria-sort")) === "descending" && (await visible())[0] === "chan.29",
    (await visible())[0]);
  await page.click("section#page .lv-next");
  const last = await visible();
  check(tag + ": Next shows the last 5", last.length === 5 && last[4] === "chan.00", last.join(" "));
}

async function desktop(browser, b, base) {
  const page = await newPage(browser, DESKTOP);
  await login(page, base, "alice");
  await go(page, "logs");
  await page.waitForSelector(ROWS, { timeout: STEP_TIMEOUT });
  const n = (await rowIds(page)).length;
  const height = await page.evaluate(() => document.documentElement.scrollHeight);
  check("desktop: the log opens on one page of 25 rows, not all of them", n === 25, String(n));
  check("desktop: the page is short (" + height + " px)", height < 3000, String(height));
  const heads = await page.$$eval("#logs-table th", (ths) => ths.map((t) => t.textContent.trim()));
  check("desktop: no Owner column for a user", !heads.includes("Owner"), heads.join("|"));
  check("desktop: no 'refused' filter for a user",
    (await page.locator("#logs-type option[value=refused]").count()) === 0);
  await filterAndPage(page, "desktop");
  await tagColours(page);
  await shot(page, "01-logs-desktop");
  await page.fill("#logs-search", "closed by broker");
  const found = await until("searching the loaded rows", async () => {
    const t = await page.$$eval(ROWS, (rows) => rows.filter((r) => !r.hidden).map((r) => r.dataset.type));
    return t.length === 1 ? t : null; });
  check("desktop: searching 'closed by broker' finds the disconnect after the denied publish",
    found[0] === "disconnect" && /closed by broker: publish denied/.test(
      await page.textContent("#logs-table tbody tr[data-type=disconnect]:not([hidden])")));
  await page.fill("#logs-search", "");
  await page.fill("#logs-since", "2099-01-01T00:00");
  await showType(page, "");
  check("desktop: since 2099 (UTC) leaves no rows", (await rowIds(page)).length === 0);
  await page.fill("#logs-since", "");
  await showType(page, "");
  await liveRefresh(page, b, "desktop");
  await sharesList(page, "desktop");
  await shot(page, "02-shares-sorted-desktop");
  await page.context().close();

  const admin = await newPage(browser, DESKTOP);
  await login(admin, base, "root");
  await go(admin, "logs");
  await admin.waitForSelector(ROWS, { timeout: STEP_TIMEOUT });
  const aheads = await admin.$$eval("#logs-table th", (ths) => ths.map((t) => t.textContent.trim()));
  const oi = aheads.indexOf("Owner");
  check("admin: an Owner column", oi >= 0, aheads.join("|"));
  const owners = await admin.$$eval(ROWS, (rows, i) => rows.filter((r) => r.cells[2].textContent === "alice-k")
    .map((r) => r.cells[i].textContent), oi);
  check("admin: alice-k's rows name alice as owner",
    owners.length > 0 && owners.every((o) => o === "alice"), owners.join(" "));
  check("admin: a 'refused' filter", (await admin.locator("#logs-type option[value=refused]").count()) === 1);
  await shot(admin, "03-logs-admin");
  await admin.context().close();
}

async function phone(browser, base) {
  const page = await newPage(browser, PHONE);
  await login(page, base, "alice");
  await go(page, "logs");
  await page.waitForSelector(ROWS, { timeout: STEP_TIMEOUT });
  await filterAndPage(page, "phone");
  const wide = await page.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
  check("phone: the log scrolls in its own box, not the page", wide[0] <= wide[1], wide.join(" > "));
  await shot(page, "04-logs-phone");
  await page.context().close();
}

await run("logs", async ({ chromium }) => {
  // No back-off: every failed AUTH here comes from 127.0.0.1.
  const b = await startBroker("graph", path.join(tmp, "logs"), {
    users: ["alice", "bob", "root"], requireAccept: false,
    broker: ["auth_failures_before_backoff = 0"] });
  const base = "http://127.0.0.1:" + b.web;
  ctl(b.conf, ["user", "admin", "root", "yes"]); // the running broker reloads it
  ctl(b.conf, ["authkey", "add", "--owner", "alice", "--ident", "alice-k", "--secret", "alice-secret",
    "--publish", CHAN, "--subscribe", CHAN]);
  ctl(b.conf, ["authkey", "add", "--owner", "bob", "--ident", "bob-k", "--secret", "bob-secret"]);
  for (let i = 0; i < 30; i++)
    ctl(b.conf, ["share", "add", "--from", "alice", "--to", "bob", "--channel", "chan." + String(i).padStart(2, "0")]);
  // 30 failed AUTHs and one denied publish (which the broker closes) of alice-k.
  for (let i = 0; i < 30; i++) cli(b.port, "alice-k", "wrong-secret", CHAN, "x");
  const denied = cli(b.port, "alice-k", "alice-secret", "not.allowed", "x");
  check("a publish where alice-k may not is refused", denied.status !== 0, denied.stderr);
  cli(b.port, "bob-k", "wrong-secret", CHAN, "x");
  const browser = await launch(chromium);
  try {
    await desktop(browser, b, base);
    await phone(browser, base);
  } finally {
    await browser.close();
  }
  check("the broker stops cleanly", await stopBroker(b) === 0);
});
