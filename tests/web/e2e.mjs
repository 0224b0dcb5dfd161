// SPDX-License-Identifier: BSD-3-Clause
// End to end: the web console in headless Chromium (Debian's
// /usr/bin/chromium, driven by playwright-core from tests/web/node_modules).
//
// A real hpfriendsd (SQLite storage, require_accept = true) is started here
// with two users that have console passwords.  In the browser alice logs in,
// creates an authkey (its secret is shown once), creates a group with bob and
// shares a channel with it; bob logs in, creates his authkey and accepts the
// offer.  Then a real hpfeeds subscriber (hpfeeds-cli sub) with bob's
// authkey receives what alice's authkey publishes (hpfeeds-cli pub), and
// alice's authkeys page shows the messages counted.  On the way, a page
// clicked while another still loads must win even when it loads last.  A
// screenshot of each page is saved under tests/web/artifacts/ in the build
// tree (failure.png too when a step breaks).
//
// Prints "ok - ..." / "FAIL - ..." per check and "N passed, M failed";
// exits 1 on any failure.  Never skips: a missing browser or package fails.
//
//
// The harness (broker, browser, checks) is e2e_lib.mjs.

import path from "node:path";
import {
  CHAN, STEP_TIMEOUT, DESKTOP, PHONE, check, ctl, sleep, startBroker, stopBroker, subscriber,
  publish, launch, shot, login, go, openMenu, waitText, status, run, tmp,
} from "./e2e_lib.mjs";

// The flow runs twice: at DESKTOP and at PHONE size (TAG prefixes the
// screenshots of the phone run; VP is the viewport of the run).
let VP = DESKTOP, TAG = "";

async function main(chromium, artifacts) {
  const b = await startBroker("graph", path.join(tmp, TAG || "desktop"));
  const base = "http://127.0.0.1:" + b.web;
  const browser = await launch(chromium);
  const ctx = await browser.newContext({ viewport: VP });
  const page = await ctx.newPage();
  try {
    const consoleErrors = [];
    // Refused API calls (401 before login, the wrong password) are logged by
    // Chromium as failed loads; those are expected.  Anything else is not.
    page.on("console", (m) => {
      if (m.type() === "error" && !/^Failed to load resource/.test(m.text())) consoleErrors.push(m.text());
    });
    page.on("pageerror", (e) => consoleErrors.push(String(e)));

    // ---- alice ----
    await page.goto(base + "/");
    await page.waitForSelector("#login-form", { state: "visible", timeout: STEP_TIMEOUT });
    await shot(page, TAG + "01-login");
    await page.fill("#login-user", "alice");
    await page.fill("#login-password", "wrong-password");
    await page.click("#login-submit");
    await waitText(page, "#status", /./);
    check("a wrong password is refused in the page", /wrong user name or password/.test(await status(page)),
      await status(page));
    await login(page, base, "alice");
    const cookies = await ctx.cookies();
    const sess = cookies.find((c) => c.name === "hpf_session");
    check("session cookie is HttpOnly and SameSite=Strict", sess && sess.httpOnly && sess.sameSite === "Strict",
      JSON.stringify(sess));

    await go(page, "authkeys");
    await page.fill("#key-ident", "alice-sensor");
    await page.fill("#key-publish", CHAN);
    await page.fill("#key-subscribe", "");
    await page.click("#key-add");
    await page.waitForSelector("#secret-value", { timeout: STEP_TIMEOUT });
    const aliceSecret = (await page.textContent("#secret-value")).trim();
    check("alice creates an authkey; its secret is shown", /^[0-9a-f]{32}$/.test(aliceSecret), aliceSecret);
    check("the new authkey is listed", await page.isVisible('tr[data-ident="alice-sensor"]'));
    await shot(page, TAG + "02-authkeys-alice");
    await channelListFields(page);

    await go(page, "groups");
    await page.fill("#group-name", "partners");
    await page.click("#group-add");
    await page.waitForSelector('form.member-form[data-group="partners"]', { timeout: STEP_TIMEOUT });
    await page.fill('form.member-form[data-group="partners"] input', "bob");
    await page.click('form.member-form[data-group="partners"] button[type="submit"]');
    await waitText(page, "#status", /added bob/);
    check("alice makes group partners with bob",
      /Memberbob/.test(await waitText(page, "section#page", /Memberbob/, "the group's members")));
    await shot(page, TAG + "03-groups");

    await go(page, "shares");
    await page.fill("#share-to", "@partners");
    await page.fill("#share-channel", CHAN);
    await page.selectOption("#share-type", "shares");
    await page.click("#share-add");
    await waitText(page, "#status", /shared/);
    const sharesText = await waitText(page, "section#page", /@partners/, "the share list");
    check("alice shares the channel with @partners", sharesText.includes("@partners") && sharesText.includes(CHAN),
      sharesText);
    check("alice sees bob's consent as pending",
      await page.getAttribute('.recipient[data-user="bob"]', "data-state") === "pending");
    await shot(page, TAG + "04-shares");
    await longInput(page);

    await go(page, "graph");
    await page.waitForSelector("#graph-canvas canvas", { timeout: STEP_TIMEOUT });
    const graphText = await page.textContent("#graph-edges");
    check("the graph shows alice, @partners and bob", ["alice", "@partners", "bob"].every((n) => graphText.includes(n)),
      graphText);
    await page.fill("#readers-channel", CHAN);
    await page.click("#readers-go");
    await page.waitForSelector("#readers-out li", { timeout: STEP_TIMEOUT });
    const readers = await page.textContent("#readers-out");
    // require_accept: bob has not accepted yet, so he is listed as pending, not as a reader.
    check("readers before bob accepts: alice reads, bob is listed as pending",
      await page.locator("#readers-out li.reader").count() === 1 &&
      (await page.textContent("#readers-out li.reader")).includes("alice") &&
      /bob pending: has not accepted/.test(await page.textContent("#readers-out li.pending")), readers);
    await shot(page, TAG + "05-graph");

    await page.click("#logout");
    await page.waitForSelector("#login-form", { state: "visible", timeout: STEP_TIMEOUT });

    // ---- bob ----
    await login(page, base, "bob");
    await go(page, "authkeys");
    await page.fill("#key-ident", "bob-sub");
    await page.fill("#key-publish", "");
    await page.fill("#key-subscribe", CHAN);
    await page.click("#key-add");
    await page.waitForSelector("#secret-value", { timeout: STEP_TIMEOUT });
    const bobSecret = (await page.textContent("#secret-value")).trim();
    check("bob creates his authkey", /^[0-9a-f]{32}$/.test(bobSecret), bobSecret);

    await go(page, "offers");
    const offerRow = 'tr[data-from="alice"][data-channel="' + CHAN + '"]';
    await page.waitForSelector(offerRow, { timeout: STEP_TIMEOUT });
    check("bob sees alice's offer, pending", (await page.textContent(offerRow)).includes("pending"));
    const badge = await waitText(page, "#pending-count", /^1$/, "the pending count in the menu");
    // On a phone the menu is folded and its button carries the count.
    const shown = VP === PHONE ? "#menu-count" : "#pending-count";
    check(TAG + "the menu counts one pending offer", badge === "1" && await page.isVisible(shown) &&
      (await page.textContent(shown)) === "1", badge);
    await page.click(offerRow + " button.accept");
    await waitText(page, "#status", /accepted/);
    await page.waitForSelector(offerRow + " .tag.accepted", { timeout: STEP_TIMEOUT });
    check("bob accepts the offer", true);
    await page.waitForSelector("#pending-count", { state: "hidden", timeout: STEP_TIMEOUT });
    check("after accepting, no pending count in the menu", true);
    await shot(page, TAG + "06-shared-with-me");

    // A real hpfeeds subscriber with bob's key receives what alice's key publishes.
    const sub = subscriber(b.port, "bob-sub", bobSecret);
    const payload = "hello from alice " + Date.now();
    let pubOk = true;
    const deadline = Date.now() + 20000;
    while (sub.code === null && Date.now() < deadline) {
      const r = publish(b.port, "alice-sensor", aliceSecret, payload);
      if (r.status !== 0) { pubOk = false; check("hpfeeds-cli pub", false, r.stderr); break; }
      await Promise.race([sub.done, sleep(300)]);
    }
    if (sub.code === null) sub.done = Promise.resolve(null);
    let got = null;
    try { got = JSON.parse(sub.text.split("\n")[0]); } catch (e) { got = null; }
    check("bob's hpfeeds subscriber receives alice's message", pubOk && sub.code === 0 && got &&
      got.payload === payload && got.ident === "alice-sensor" && got.channel === CHAN,
      "exit " + sub.code + " out " + JSON.stringify(sub.text) + " err " + JSON.stringify(sub.err));

    await go(page, "logs");
    await shot(page, TAG + "07-logs");
    await page.click("#logout");
    await page.waitForSelector("#login-form", { state: "visible", timeout: STEP_TIMEOUT });

    // ---- alice again: counters and logs ----
    const bad = publish(b.port, "alice-sensor", "not-the-secret", "x");
    check("a wrong secret is refused by the broker", bad.status !== 0, bad.stdout + bad.stderr);
    // alice lands on My shares and clicks Authkeys while it still loads;
    // Authkeys, held back longer, loads last and must be the page shown.
    let held = 0;
    const hold = (ms) => async (r) => {
      held++;
      await sleep(ms);
      await r.continue();
    };
    await page.route("**/api/shares", hold(1000));
    await page.route("**/api/authkeys", hold(2000));
    await login(page, base, "alice");
    await go(page, "authkeys");
    await page.unroute("**/api/shares");
    await page.unroute("**/api/authkeys");
    await sleep(300); // past where a stale render would land
    check("the page clicked last is shown, though it loaded last",
      held >= 2 && (await page.getAttribute("section#page", "data-page")) === "authkeys",
      "held " + held + ", shown " + (await page.getAttribute("section#page", "data-page")));
    const row = 'tr[data-ident="alice-sensor"]';
    const counts = await waitText(page, row + " td.counters", /^\s*[1-9]\d* \//, "live counters");
    check("alice's authkey shows published messages and bytes", /^[1-9]\d* \/ \d/.test(counts.trim()), counts);
    await shot(page, TAG + "08-authkeys-counters");
    await go(page, "logs");
    await waitText(page, "section#page", /auth_failed/);
    check("alice's logs show the failed login of her authkey", true);
    await shot(page, TAG + "09-logs-alice");
    await go(page, "graph");
    await page.fill("#readers-channel", CHAN);
    await page.click("#readers-go");
    await page.waitForSelector("#readers-out li", { timeout: STEP_TIMEOUT });
    const readers2 = await page.textContent("#readers-out");
    check("readers after bob accepted: bob via @partners", readers2.includes("bob") &&
      readers2.includes("alice -shares-> @partners"), readers2);
    await shot(page, TAG + "10-graph-readers");
    await widenShare(page);
    check("no JavaScript errors in the pages", consoleErrors.length === 0, consoleErrors.join(" | "));
  } catch (e) {
    // What the browser showed when a step broke: the page and the status line.
    await page.screenshot({ path: path.join(artifacts, TAG + "failure.png"), fullPage: true }).catch(() => {});
    const at = await page.getAttribute("section#page", "data-page").catch(() => "?");
    const text = await page.textContent("section#page").catch(() => "?");
    console.log("# page at failure: " + at + ": " + JSON.stringify((text || "").slice(0, 400)));
    console.log("# status line: " + JSON.stringify(await page.textContent("#status").catch(() => "?")));
    throw e;
  } finally {
    await browser.close();
  }
  check(TAG + "the broker stops cleanly", await stopBroker(b) === 0);
  if (!TAG) await channelsMode(chromium);
}

// Authkey channel fields: the rule is shown beside them and applied as
// hpfriendsctl applies it; a saved row stays where it was; leaving with an
// unsaved edit asks.
async function channelListFields(page) {
  const hint = (await page.textContent("#channel-rule")) || "";
  check("the channel list rule is shown next to the fields",
    /separated by commas/.test(hint) && /no spaces/.test(hint), hint);
  await page.fill("#key-ident", "alice-a");
  await page.click("#key-add");
  await page.waitForSelector('tr[data-ident="alice-a"]', { timeout: STEP_TIMEOUT });
  const order = async () => page.$$eval("tr[data-ident]", (rows) => rows.map((r) => r.dataset.ident).join(" "));
  const before = await order();
  const pub = 'tr[data-ident="alice-a"] input[aria-label^="publish"]';
  await page.fill(pub, "new.chan; other chan,third");
  await page.click('tr[data-ident="alice-a"] button.secondary');
  const refused = await waitText(page, "#status", /channel/, "a refused list");
  check("'new.chan; other chan,third' is refused, naming the rule",
    /other chan/.test(refused) && /separated by commas/.test(refused), refused);
  let asked = "";
  page.once("dialog", (d) => { asked = d.message(); d.dismiss(); });
  await openMenu(page);
  await page.click('#nav a[data-page="groups"]');
  await sleep(300); // the dialog is synchronous in the page: past it, nothing may have moved
  check("leaving with an unsaved edit asks", /not saved/.test(asked), asked);
  check("dismissed, the page and the edit stay",
    (await page.getAttribute("section#page", "data-page")) === "authkeys" &&
    (await page.inputValue(pub)) === "new.chan; other chan,third");
  await page.fill(pub, " a.one , a.two ");
  await page.click('tr[data-ident="alice-a"] button.secondary');
  await waitText(page, "#status", /saved alice-a/, "saving a list");
  check("the list is stored as its names", (await page.inputValue(pub)) === "a.one, a.two",
    await page.inputValue(pub));
  check("the saved row stays in place", (await order()) === before, before + " / " + (await order()));
  page.once("dialog", (d) => d.accept());
  await page.click('tr[data-ident="alice-a"] button.danger');
  await waitText(page, "#status", /deleted alice-a/, "deleting the extra key");
}

// Long input: errors cut the echoed value, a long channel does not stretch
// the page, a body over 64 KiB is refused in words.
async function longInput(page) {
  const longChan = "c".repeat(242);
  await page.fill("#share-to", "@partners");
  await page.fill("#share-channel", longChan);
  await page.click("#share-add");
  await waitText(page, "#status", /shared c+ with/, "sharing a long channel");
  const w = await page.$eval("html", (el) => el.scrollWidth);
  check(TAG + "a 242-character channel does not stretch the page", w <= VP.width, "scrollWidth " + w);
  page.once("dialog", (d) => d.accept()); // removing asks first
  await page.click('tr[data-channel="' + longChan + '"] button.danger');
  await waitText(page, "#status", /removed/, "removing the long share");
  await go(page, "groups");
  await page.fill('form.member-form[data-group="partners"] input', "x".repeat(5000));
  await page.click('form.member-form[data-group="partners"] button[type="submit"]');
  const said = await waitText(page, "#status", /not found/, "adding an unknown long member");
  check("the error cuts a 5,000-character name short", said.length < 200 && said.includes("\u2026"),
    said.length + " characters");
  await page.fill("#group-name", "g".repeat(70000));
  await page.click("#group-add");
  const big = await waitText(page, "#status", /64 KiB/, "a 70 KB field");
  check("a body over 64 KiB is refused in words", /too much text/.test(big), big);
  await go(page, "shares");
}

// Sharing the channel again as shares_all widens the share: the page asks
// first (dismissed: nothing changes), says what changed, and bob's earlier
// acceptance no longer counts.
async function widenShare(page) {
  await go(page, "shares");
  await page.waitForSelector('.recipient[data-user="bob"]', { timeout: STEP_TIMEOUT });
  check("alice sees that bob accepted",
    await page.getAttribute('.recipient[data-user="bob"]', "data-state") === "accepted");
  const submit = async (answer) => {
    // The dialog opens once the API has answered 409: read it after the status line.
    const asked = { text: "" };
    page.once("dialog", (d) => { asked.text = d.message(); answer ? d.accept() : d.dismiss(); });
    await page.fill("#share-to", "@partners");
    await page.fill("#share-channel", CHAN);
    await page.selectOption("#share-type", "shares_all");
    await page.click("#share-add");
    return asked;
  };
  const asked = await submit(false);
  await waitText(page, "#status", /not changed/, "a dismissed widening");
  check("widening a share asks: changed from shares to shares_all",
    /changed from shares to shares_all/.test(asked.text), asked.text);
  check("dismissed, the share keeps its type", !(await page.textContent("table")).includes("shares_all"));
  await submit(true);
  const said = await waitText(page, "#status", /changed from/, "a confirmed widening");
  check("confirmed, the page says changed from shares to shares_all",
    /changed from shares to shares_all/.test(said), said);
  check("the share is now shares_all", (await page.textContent("table")).includes("shares_all"));
  await go(page, "graph");
  await page.fill("#readers-channel", CHAN);
  await page.click("#readers-go");
  await page.waitForSelector("#readers-out li", { timeout: STEP_TIMEOUT });
  const readers = await page.textContent("#readers-out");
  check("after the widening bob's old acceptance does not count: he is pending again",
    !(await page.textContent("#readers-out li.reader")).includes("bob") &&
    (await page.textContent("#readers-out li.pending")).includes("bob"), readers);
}

// access = channels: the lists are the only access control, so a user sees
// them read-only and cannot send them.
async function channelsMode(chromium) {
  const b = await startBroker("channels", path.join(tmp, "channels"));
  ctl(b.conf, ["authkey", "add", "--owner", "alice", "--ident", "alice-ro", "--secret", "s",
    "--subscribe", "c1"]);
  const browser = await launch(chromium);
  try {
    const page = await (await browser.newContext({ viewport: { width: 1200, height: 800 } })).newPage();
    await login(page, "http://127.0.0.1:" + b.web, "alice");
    await go(page, "authkeys");
    const row = 'tr[data-ident="alice-ro"]';
    await page.waitForSelector(row, { timeout: STEP_TIMEOUT });
    check("channels mode: the key's lists are read-only",
      await page.getAttribute(row + ' input[aria-label^="subscribe"]', "readonly") !== null);
    check("channels mode: no Save button", await page.locator(row + " button", { hasText: "Save" }).count() === 0);
    check("channels mode: no list inputs to create a key", await page.locator("#key-publish").count() === 0);
    check("channels mode: the page says who sets the lists",
      (await page.textContent("#key-form")).includes("set by an administrator"));
    await page.fill("#key-ident", "alice-new");
    await page.click("#key-add");
    await waitText(page, "#status", /created alice-new/, "creating a key without lists");
    await shot(page, TAG + "11-channels-mode-authkeys");
  } finally {
    await browser.close();
  }
  check("the channels-mode broker stops cleanly", await stopBroker(b) === 0);
}

await run("console", async ({ chromium, artifacts }) => {
  await main(chromium, artifacts);
  VP = PHONE;
  TAG = "phone-";
  await main(chromium, artifacts);
});
