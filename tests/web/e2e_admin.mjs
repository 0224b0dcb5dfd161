// SPDX-License-Identifier: BSD-3-Clause
// End to end: administration and the audit trail in the console, in
// headless Chromium.  root (an administrator) creates a user, resets a
// password (the new one is shown once and logs in), sets one, acts as alice
// (a banner says so; the share made lands in alice's data and the audit
// rows name root acting as alice), stops acting, reads and filters the
// whole audit trail and deletes a user after confirming.  alice, no
// administrator, sees no Admin link, is refused the page, and sees only
// the audit rows about her own objects.  Screenshots at 1280x800 and
// 390x844 under tests/web/artifacts/admin/.
//
// The harness (broker, browser, checks) is e2e_lib.mjs.

import {
  DESKTOP, PHONE, STEP_TIMEOUT, check, ctl, startBroker, stopBroker, launch, newPage, shot, login,
  go, waitText, run, sleep,
} from "./e2e_lib.mjs";

async function rows(page, selector) {
  return page.locator(selector).count();
}

async function asAlice(browser, base) {
  const page = await newPage(browser, DESKTOP);
  await login(page, base, "alice");
  check("alice (no admin) sees no Admin link", await page.locator("#nav-admin").isHidden());
  await page.goto(base + "/#/admin");
  await page.waitForSelector('section#page[data-page="admin"]', { timeout: STEP_TIMEOUT });
  check("alice is told the Admin page is for administrators",
    /Only administrators/.test(await page.textContent("section#page")));
  await go(page, "groups");
  await page.fill("#group-name", "ateam");
  await page.click("#group-add");
  await waitText(page, "#status", /created group ateam/);
  await go(page, "audit");
  await waitText(page, "section#page tbody", /group add/, "alice's audit rows");
  const actors = await page.locator("section#page tbody tr td:nth-child(2)").allTextContents();
  check("alice's audit page shows her own change, made by her", actors[0] === "alice", actors.join(","));
  await shot(page, "alice-audit");
  return page;
}

async function createAndReset(page, browser, base) {
  await page.fill("#admin-new-name", "carol");
  await page.fill("#admin-new-password", "carol-password");
  await page.click("#admin-create");
  await waitText(page, "#status", /created user carol/);
  check("carol is listed", await rows(page, 'tr[data-user="carol"]') === 1);
  const carol = await newPage(browser, DESKTOP);
  await login(carol, base, "carol");
  await carol.close();

  // Reset bob's password: confirmed, shown once, and it logs in.
  page.once("dialog", (d) => d.accept());
  await page.click('tr[data-user="bob"] button[aria-label="Reset password of bob"]');
  await page.waitForSelector("#admin-made-password", { timeout: STEP_TIMEOUT });
  const made = (await page.textContent("#admin-made-password code")).trim();
  check("a new password for bob is shown once", made.length >= 16, made);
  await shot(page, "admin-password-shown");
  const bob = await newPage(browser, DESKTOP);
  await bob.goto(base + "/");
  await bob.fill("#login-user", "bob");
  await bob.fill("#login-password", made);
  await bob.click("#login-submit");
  await bob.waitForSelector("#nav:not([hidden])", { timeout: STEP_TIMEOUT });
  check("bob logs in with the new password", (await bob.textContent("#whoami")).startsWith("bob"));
  await bob.close();
  await go(page, "audit");
  await go(page, "admin");
  check("the password is not shown again", await rows(page, "#admin-made-password") === 0);

  // Set one by hand: the form's user and password.
  await page.selectOption("#admin-pw-user", "bob");
  await page.fill("#admin-pw-value", "bob-password");
  await page.click("#admin-pw-set");
  await waitText(page, "#status", /set the password of bob/);
}

async function actAsAlice(page) {
  await page.selectOption("#act-as-user", "alice");
  await page.click("#act-as-go");
  await page.waitForSelector('section#page[data-page="shares"]', { timeout: STEP_TIMEOUT });
  await waitText(page, "#acting", /Acting as alice/, "the acting banner");
  await page.fill("#share-to", "bob");
  await page.fill("#share-channel", "adm.chan");
  await page.click("#share-add");
  await waitText(page, "#status", /shared adm.chan with bob/);
  check("the share shows on alice's page", await rows(page, 'tr[data-channel="adm.chan"]') === 1);
  await shot(page, "acting-as-alice");
  await go(page, "audit");
  await waitText(page, "section#page tbody", /share set/, "the audit rows while acting");
  const first = await page.locator("section#page tbody tr").first().locator("td").allTextContents();
  check("the audit row names root acting as alice",
    first[1] === "admin root acting as alice" && first[2] === "share set" &&
    first[3] === "alice -> bob on adm.chan", first.join(" | "));
  await page.click("#acting-stop");
  await page.waitForSelector('section#page[data-page="admin"]', { timeout: STEP_TIMEOUT });
  check("stopping hides the banner", await page.locator("#acting").isHidden());
  await waitText(page, "#status", /no longer acting as alice/);
}

async function wholeTrail(page, ctlConf) {
  await go(page, "audit");
  await waitText(page, "section#page tbody", /user del|user add/, "root's audit rows");
  const actions = await page.locator("section#page tbody tr td:nth-child(3)").allTextContents();
  check("root sees everyone's changes: user add, password, share set, group add",
    ["user add", "user password", "share set", "group add"].every((a) => actions.includes(a)),
    actions.join(","));
  await page.fill("#audit-actor", "alice");
  await page.click("#audit-apply");
  // The unfiltered rows hold "group add" too: wait for the filtered table
  // itself (only alice's rows), not for text it shares with the old one.
  let actors = [];
  for (const deadline = Date.now() + STEP_TIMEOUT; Date.now() < deadline; await sleep(100)) {
    actors = await page.locator("section#page tbody tr td:nth-child(2)").allTextContents();
    if (actors.length > 0 && actors.every((a) => a === "alice")) break;
  }
  check("the actor filter keeps alice's rows only", actors.length > 0 && actors.every((a) => a === "alice"),
    actors.join(","));
  await shot(page, "admin-audit");
  await page.fill("#audit-actor", "");
  await page.click("#audit-apply");
  const out = ctl(ctlConf, ["share", "list", "--user", "alice"]);
  check("the share made while acting is alice's in storage", /^alice\tbob\tadm\.chan\t/m.test(out), out);
}

async function main(chromium) {
  const b = await startBroker("graph", undefined, { users: ["root", "alice", "bob"], admin: "root",
    requireAccept: false });
  const base = "http://127.0.0.1:" + b.web;
  const browser = await launch(chromium);
  try {
    await asAlice(browser, base);
    const page = await newPage(browser, DESKTOP);
    const errors = [];
    page.on("pageerror", (e) => errors.push(String(e)));
    await login(page, base, "root");
    check("root sees the Admin link", await page.locator("#nav-admin").isVisible());
    await go(page, "admin");
    await shot(page, "admin-desktop");
    await createAndReset(page, browser, base);
    await actAsAlice(page);
    await wholeTrail(page, b.conf);
    await go(page, "admin");
    page.once("dialog", (d) => d.accept());
    await page.click('tr[data-user="carol"] button[aria-label="Delete user carol"]');
    await waitText(page, "#status", /deleted carol/);
    check("carol is gone from the list", await rows(page, 'tr[data-user="carol"]') === 0);
    page.once("dialog", (d) => d.dismiss());
    await page.click('tr[data-user="bob"] button[aria-label="Delete user bob"]');
    await page.waitForTimeout(300);
    check("a dismissed confirmation deletes nothing", await rows(page, 'tr[data-user="bob"]') === 1);
    check("no script errors on the admin pages", errors.length === 0, errors.join("; "));

    const phone = await newPage(browser, PHONE);
    await login(phone, base, "root");
    await go(phone, "admin");
    await shot(phone, "admin-phone");
    await go(phone, "audit");
    await shot(phone, "audit-phone");
  } finally {
    await browser.close();
    await stopBroker(b);
  }
}

run("admin", async ({ chromium }) => main(chromium));
