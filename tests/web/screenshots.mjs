// SPDX-License-Identifier: BSD-3-Clause
// Makes the README's console pictures (`make screenshots`; not part of
// make check): a broker with a small sharing community, alice's "My
// shares" page in headless Chromium at 1280x800 and at 390x844, the
// screen only, written to doc/screenshots/console-desktop.png and
// console-phone.png of the source tree, then made smaller with optipng
// when it is installed.

import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import {
  DESKTOP, PHONE, SRCDIR, check, ctl, startBroker, stopBroker, launch, newPage, login, go, run,
} from "./e2e_lib.mjs";

const OUT = path.join(SRCDIR, "doc", "screenshots");

function community(conf) {
  ctl(conf, ["group", "add", "partners", "--owner", "alice"]);
  for (const u of ["bob", "carol"]) ctl(conf, ["group", "member", "add", "partners", u]);
  const share = (from, to, channel, type = "shares") =>
    ctl(conf, ["share", "add", "--from", from, "--to", to, "--channel", channel, "--type", type]);
  share("alice", "@partners", "dionaea.captures");
  share("alice", "bob", "cowrie.sessions", "shares_all");
  share("alice", "dave", "glastopf.events");
  share("carol", "alice", "honeytrap.attacks");
  ctl(conf, ["share", "accept", "--user", "bob", "--from", "alice", "--channel", "dionaea.captures"]);
  ctl(conf, ["share", "accept", "--user", "bob", "--from", "alice", "--channel", "cowrie.sessions"]);
  ctl(conf, ["authkey", "add", "--owner", "alice", "--ident", "alice-dionaea", "--publish", "dionaea.captures"]);
}

async function picture(browser, base, viewport, name) {
  const page = await newPage(browser, viewport);
  await login(page, base, "alice");
  await go(page, "shares");
  await page.waitForSelector('.recipient[data-user="bob"]');
  await page.mouse.move(0, viewport.height - 1); // no hover highlight in the picture
  const file = path.join(OUT, name);
  await page.screenshot({ path: file }); // the screen, not the whole page
  const opt = spawnSync("optipng", ["-quiet", "-o5", "-strip", "all", file], { encoding: "utf8" });
  if (opt.error) console.log("# optipng not installed: " + name + " left as Chromium wrote it");
  check(name + " written (" + fs.statSync(file).size + " bytes)", fs.statSync(file).size > 1000);
}

await run("screenshots", async ({ chromium }) => {
  const b = await startBroker("graph", undefined, { users: ["alice", "bob", "carol", "dave"] });
  community(b.conf);
  fs.mkdirSync(OUT, { recursive: true });
  const browser = await launch(chromium);
  try {
    const base = "http://127.0.0.1:" + b.web;
    await picture(browser, base, DESKTOP, "console-desktop.png");
    await picture(browser, base, PHONE, "console-phone.png");
  } finally {
    await browser.close();
  }
  check("the broker stops cleanly", await stopBroker(b) === 0);
});
