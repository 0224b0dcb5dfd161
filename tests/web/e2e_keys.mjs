// SPDX-License-Identifier: BSD-3-Clause
// The Authkeys page in headless Chromium at 1280x800: a key's Copy buttons
// and connection snippet (its ident and the broker's real hpfeeds port),
// flow health after real hpfeeds-cli publishes (last published, the
// hourly count per channel, on My shares too), and "Regenerate secret": asked first, the new
// secret shown once, the old one refused by the broker and the new one
// accepted.
import path from "node:path";

import {
  CHAN, DESKTOP, PHONE, STEP_TIMEOUT, check, ctl, expect, go, launch, login, publish, run, shot, sleep,
  startBroker, stopBroker, tmp, waitText,
} from "./e2e_lib.mjs";

const ROW = 'tr[data-ident="alice-sensor"]';
const DETAIL = 'tr[data-detail-of="alice-sensor"]';

// hpfeeds-cli pub until its exit status is as wanted (a change reaches
// the broker within its reload); the last result.
async function publishUntil(port, secret, wantOk) {
  let res;
  const deadline = Date.now() + STEP_TIMEOUT;
  do {
    res = publish(port, "alice-sensor", secret, "flow check");
    if ((res.status === 0) === wantOk) return res;
    await sleep(250);
  } while (Date.now() < deadline);
  return res;
}

async function createKey(page) {
  await go(page, "authkeys");
  await page.fill("#key-ident", "alice-sensor");
  await page.fill("#key-publish", CHAN);
  await page.fill("#key-subscribe", CHAN);
  await page.click("#key-add");
  await page.waitForSelector("#secret-value", { timeout: STEP_TIMEOUT });
  return (await page.textContent("#secret-value")).trim();
}

async function snippetChecks(page, b, secret) {
  const snip = (await page.textContent(DETAIL + " details.connect pre")) || "";
  check("the row's snippet names the ident", snip.includes("--ident alice-sensor"), snip);
  check("the row's snippet has the broker's hpfeeds port", snip.includes("--port " + b.port), snip);
  check("the row's snippet has sub and pub lines with the channel",
    snip.includes("hpfeeds-cli sub") && snip.includes("hpfeeds-cli pub") && snip.includes("--channel " + CHAN), snip);
  check("the row's snippet holds a placeholder, never the secret",
    snip.includes("YOUR-SECRET") && !snip.includes(secret), snip);
  const shown = (await page.textContent("#secret-snippet")) || "";
  check("the snippet beside a secret just made carries it", shown.includes("--secret " + secret), shown);
  check("a Copy button for the ident", (await page.locator(ROW + ' button.copy[aria-label^="copy the ident"]').count()) === 1);
  check("a Copy button for the secret while it is shown",
    (await page.locator('#new-secret button.copy[aria-label^="copy the secret"]').count()) === 1);
  await page.click(ROW + ' button.copy[aria-label^="copy the ident"]');
  await waitText(page, ROW + ' button.copy[aria-label^="copy the ident"]', /Copied/, "the ident copy button");
  check("copying the ident says so", /copied the ident/.test(await page.textContent("#status")));
}

async function flowChecks(page, b, secret) {
  for (let i = 0; i < 3; i++) {
    const res = publish(b.port, "alice-sensor", secret, "message " + i);
    expect(res.status === 0, "hpfeeds-cli pub: " + res.stdout + res.stderr);
  }
  const flow = await waitText(page, DETAIL + " .flow", /published 3 in the last hour/, "flow health");
  check("after 3 real publishes the page shows 3 in the last hour on the channel",
    flow.includes("published 3 in the last hour (3 in the last day) on " + CHAN), flow);
  check("the page shows when the key last published and connected",
    /last connected: \d+ s ago/.test(flow) && /last published: \d+ s ago/.test(flow), flow);
  check("the page says flow counts start again at a restart",
    /restart begins it again at zero/.test(await page.textContent("#flow-note")));
  // My shares: what the sender's keys published on a shared channel.
  ctl(b.conf, ["share", "add", "--from", "alice", "--to", "bob", "--channel", CHAN]);
  await go(page, "shares");
  const shared = await waitText(page, 'tr[data-channel="' + CHAN + '"] .share-flow', /published/, "share flow");
  check("My shares: 3 published in the last hour by alice's keys on the shared channel",
    /^3 published in the last hour by your keys$/.test(shared.trim()), shared);
  await go(page, "authkeys");
}

async function regenerate(page, b, s1) {
  let asked = "";
  page.once("dialog", (d) => { asked = d.message(); d.dismiss(); });
  await page.click(ROW + " button.regen");
  await sleep(500);
  check("Regenerate asks first", /Regenerate the secret of alice-sensor/.test(asked), asked);
  const still = (await page.locator("#secret-value").count()) ? await page.textContent("#secret-value") : "";
  check("dismissed: no new secret shown", still === "", still);
  const kept = publish(b.port, "alice-sensor", s1, "still the first secret");
  check("dismissed: the first secret still works", kept.status === 0, kept.stdout + kept.stderr);
  page.once("dialog", (d) => d.accept());
  await page.click(ROW + " button.regen");
  const s2 = (await waitText(page, "#secret-value", new RegExp("^(?!" + s1 + "$)[0-9a-f]{32}$"), "the new secret")).trim();
  check("confirmed: a new secret is shown", /^[0-9a-f]{32}$/.test(s2) && s2 !== s1, s2);
  check("with a Copy button", (await page.locator('#new-secret button.copy[aria-label^="copy the secret"]').count()) === 1);
  await shot(page, "02-regenerated");
  await go(page, "shares");
  await go(page, "authkeys");
  await page.waitForSelector(ROW, { timeout: STEP_TIMEOUT });
  check("the new secret is shown once: gone after leaving the page",
    (await page.locator("#secret-value").count()) === 0 && !(await page.textContent("body")).includes(s2));
  const old = await publishUntil(b.port, s1, false);
  check("the old secret is refused by the broker", old.status !== 0, old.stdout + old.stderr);
  const now = await publishUntil(b.port, s2, true);
  check("the new secret is accepted", now.status === 0, now.stdout + now.stderr);
}

// The whole flow at one viewport, on a broker of its own.
async function flow(chromium, viewport, tag) {
  const b = await startBroker("graph", path.join(tmp, "keys-" + tag), { requireAccept: false });
  const base = "http://127.0.0.1:" + b.web;
  const browser = await launch(chromium);
  try {
    const ctx = await browser.newContext({ viewport, permissions: ["clipboard-read", "clipboard-write"] });
    const page = await ctx.newPage();
    await login(page, base, "alice");
    const s1 = await createKey(page);
    check(tag + ": alice creates a key; its secret is shown", /^[0-9a-f]{32}$/.test(s1), s1);
    await snippetChecks(page, b, s1);
    await flowChecks(page, b, s1);
    await shot(page, tag + "-01-flow");
    const w = await page.evaluate(() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]);
    check(tag + ": the key page fits the " + viewport.width + " px window (no sideways scrolling)",
      w[0] <= w[1], JSON.stringify(w));
    await regenerate(page, b, s1);
  } finally {
    await browser.close();
    check(tag + ": the broker stops cleanly", (await stopBroker(b)) === 0);
  }
}

run("keys", async ({ chromium }) => {
  await flow(chromium, DESKTOP, "desktop");
  await flow(chromium, PHONE, "phone");
});
