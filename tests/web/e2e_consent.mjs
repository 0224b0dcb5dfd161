// SPDX-License-Identifier: BSD-3-Clause
// End to end: declining an offer in the console (require_accept = true).
//
// alice shares a channel with bob and with carol; carol has accepted (a
// control reader).  In Chromium bob declines alice's offer: his page shows
// it declined with a way back, the menu counts nothing pending, and alice's
// "My shares" shows bob as declined.  Real hpfeeds subscribers (hpfeeds-cli)
// then prove what the states mean: while bob has declined, alice's messages
// reach carol but never bob; once bob accepts in the page, they reach him.
// Finally bob withdraws his answer and the offer is pending again.  At
// 1280x800 and at 390x844.
//
// Prints "ok - ..." / "FAIL - ..." per check; the harness is e2e_lib.mjs.

import { spawn, spawnSync } from "node:child_process";
import path from "node:path";
import {
  CHAN, CLI, DESKTOP, PHONE, STEP_TIMEOUT, check, ctl, sleep, startBroker, stopBroker, launch,
  newPage, shot, login, go, waitText, status, run, tmp,
} from "./e2e_lib.mjs";

const SYNC = "e2e.sync";
const KEYS = { alice: "alice-secret", bob: "bob-secret", carol: "carol-secret" };

// hpfeeds-cli sub with --count n on the given channels, its JSON lines kept.
function sub(port, ident, channels, n) {
  const args = ["sub", "-p", String(port), "-i", ident, "-s", KEYS[ident.split("-")[0]],
    "--count", String(n), "--json", "--timeout", "90"];
  for (const c of channels) args.push("-c", c);
  const p = spawn(CLI, args, { stdio: ["ignore", "pipe", "pipe"] });
  const out = { proc: p, text: "", err: "", code: null };
  p.stdout.on("data", (d) => { out.text += d; });
  p.stderr.on("data", (d) => { out.err += d; });
  out.done = new Promise((res) => p.on("exit", (code) => { out.code = code; res(code); }));
  out.lines = () => out.text.split("\n").filter((l) => l).map((l) => {
    try { return JSON.parse(l); } catch (e) { return { bad: l }; }
  });
  return out;
}

// hpfeeds-cli pub as alice on chan.
function publishOn(port, chan, payload) {
  return spawnSync(CLI, ["pub", "-p", String(port), "-i", "alice-pub", "-s", KEYS.alice, "-c", chan, payload],
    { encoding: "utf8", timeout: 10000 });
}

// Publishes payload(i) on chan as alice until until() holds (bounded).
async function publishUntil(b, chan, payload, until, what) {
  const deadline = Date.now() + STEP_TIMEOUT;
  for (let i = 0; Date.now() < deadline; i++) {
    if (until()) return true;
    const r = publishOn(b.port, chan, payload(i));
    if (r.status !== 0) { check(what + ": hpfeeds-cli pub", false, r.stderr); return false; }
    await sleep(300);
  }
  return until();
}

function setUp(conf) {
  ctl(conf, ["authkey", "add", "--owner", "alice", "--ident", "alice-pub", "--secret", KEYS.alice,
    "--publish", CHAN + "," + SYNC]);
  ctl(conf, ["authkey", "add", "--owner", "bob", "--ident", "bob-sub", "--secret", KEYS.bob,
    "--subscribe", CHAN + "," + SYNC]);
  ctl(conf, ["authkey", "add", "--owner", "carol", "--ident", "carol-sub", "--secret", KEYS.carol,
    "--subscribe", CHAN]);
  for (const [to, chan] of [["bob", CHAN], ["carol", CHAN], ["bob", SYNC]])
    ctl(conf, ["share", "add", "--from", "alice", "--to", to, "--channel", chan]);
  ctl(conf, ["share", "accept", "--user", "carol", "--from", "alice", "--channel", CHAN]);
  ctl(conf, ["share", "accept", "--user", "bob", "--from", "alice", "--channel", SYNC]);
}

const offerRow = 'tr[data-from="alice"][data-channel="' + CHAN + '"]';

// bob's "Shared with me": click a button of the offer row (saying yes when
// it asks first), wait for the new state.
async function answer(page, button, state, asks) {
  const asked = { text: "" };
  const onDialog = (d) => { asked.text = d.message(); d.accept(); };
  if (asks) page.once("dialog", onDialog);
  await page.click(offerRow + " button." + button);
  if (asks) check("withdrawing an acceptance asks first, naming the offer", asked.text.includes(CHAN), asked.text);
  await page.waitForSelector(offerRow + '[data-state="' + state + '"] .tag.' + state, { timeout: STEP_TIMEOUT });
  return status(page);
}

// alice's "My shares", opened afresh: bob's state on the share of CHAN with him.
async function aliceSees(page, state, what) {
  await page.reload();
  // Attached, not visible: on a phone the links are behind the Menu button.
  await page.waitForSelector("#nav:not([hidden])", { state: "attached", timeout: STEP_TIMEOUT });
  await go(page, "shares");
  const bob = 'tr[data-to="bob"][data-channel="' + CHAN + '"] .recipient[data-user="bob"]';
  await page.waitForSelector(bob + '[data-state="' + state + '"] .tag.' + state, { timeout: STEP_TIMEOUT });
  check(what, (await page.textContent(bob)).includes(state));
}

// Declined delivers nothing, accepted delivers: bob's CHAN messages are
// only those published after he accepted, although carol received the ones
// published while he had declined, on a connection whose subscriptions were
// proven live first (a sync message arrived after them on it).
async function deliveries(b, bobPage) {
  const bob = sub(b.port, "bob-sub", [CHAN, SYNC], 1000);
  const carol = sub(b.port, "carol-sub", [CHAN], 3);
  try {
    const on = (s, chan) => s.lines().filter((l) => l.channel === chan);
    check("bob's subscriber is live (a sync message reached him)",
      await publishUntil(b, SYNC, (i) => "sync-" + i, () => on(bob, SYNC).length > 0, "sync"), bob.err);
    check("while bob has declined, alice's messages reach carol",
      await publishUntil(b, CHAN, (i) => "declined-" + i, () => carol.lines().length >= 3, "declined"),
      carol.err);
    check("while bob has declined, none reaches bob", on(bob, CHAN).length === 0, bob.text);

    await answer(bobPage, "accept", "accepted");
    check("bob accepts the declined offer in the page", /accepted/.test(await status(bobPage)));
    await publishUntil(b, CHAN, (i) => "accepted-" + i, () => on(bob, CHAN).length > 0, "accepted");
    const got = on(bob, CHAN);
    check("after accepting, bob receives alice's messages, and only those published since",
      got.length > 0 && got.every((l) => /^accepted-/.test(l.payload) && l.ident === "alice-pub"),
      JSON.stringify(bob.text) + " " + bob.err);
  } finally {
    for (const x of [bob, carol]) if (x.code === null) x.proc.kill("SIGTERM");
  }
}

async function flow(chromium, viewport, tag) {
  const b = await startBroker("graph", path.join(tmp, tag), { users: ["alice", "bob", "carol"] });
  setUp(b.conf);
  const base = "http://127.0.0.1:" + b.web;
  const browser = await launch(chromium);
  try {
    const bobPage = await newPage(browser, viewport);
    const alicePage = await newPage(browser, viewport);
    const errors = [];
    for (const p of [bobPage, alicePage]) {
      p.on("pageerror", (e) => errors.push(String(e)));
      p.on("console", (m) => {
        if (m.type() === "error" && !/^Failed to load resource/.test(m.text())) errors.push(m.text());
      });
    }
    await login(bobPage, base, "bob");
    await go(bobPage, "offers");
    await bobPage.waitForSelector(offerRow + '[data-state="pending"]', { timeout: STEP_TIMEOUT });
    check(tag + ": bob sees alice's offer pending with Accept and Decline",
      await bobPage.isVisible(offerRow + " button.accept") && await bobPage.isVisible(offerRow + " button.decline"));
    check(tag + ": the menu counts one pending offer", (await bobPage.textContent("#pending-count")) === "1");

    const said = await answer(bobPage, "decline", "declined");
    check(tag + ": the page says declined", /declined/.test(said), said);
    // By its hidden attribute: on a phone the menu (and so the badge) is folded away anyway.
    await bobPage.waitForSelector("#pending-count[hidden]", { state: "attached", timeout: STEP_TIMEOUT });
    check(tag + ": a declined offer is not counted as pending in the menu", true);
    check(tag + ": the declined offer offers a way back (Accept, Withdraw)",
      await bobPage.isVisible(offerRow + " button.accept") && await bobPage.isVisible(offerRow + " button.withdraw"));
    await shot(bobPage, tag + "-01-bob-declined");

    await login(alicePage, base, "alice");
    await aliceSees(alicePage, "declined", tag + ": alice sees bob declined");
    check(tag + ": carol stays accepted beside him", await alicePage.getAttribute(
      'tr[data-to="carol"][data-channel="' + CHAN + '"] .recipient[data-user="carol"]', "data-state") === "accepted");
    await shot(alicePage, tag + "-02-alice-sees-declined");

    if (tag === "desktop") await deliveries(b, bobPage);
    else await answer(bobPage, "accept", "accepted");
    await aliceSees(alicePage, "accepted", tag + ": alice sees bob accepted");

    // The way back from an acceptance: withdraw, and the offer is pending again.
    await answer(bobPage, "withdraw", "pending", true);
    await waitText(bobPage, "#pending-count", /^1$/, "the pending count");
    check(tag + ": after withdrawing, the offer is pending and counted again", true);
    await shot(bobPage, tag + "-03-bob-withdrawn");
    check(tag + ": no JavaScript errors", errors.length === 0, errors.join(" | "));
  } finally {
    await browser.close();
    check(tag + ": the broker stops cleanly", await stopBroker(b) === 0);
  }
}

run("consent", async ({ chromium }) => {
  await flow(chromium, DESKTOP, "desktop");
  await flow(chromium, PHONE, "phone");
});
