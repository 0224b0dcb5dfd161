// SPDX-License-Identifier: BSD-3-Clause
// The harness every end-to-end console suite (e2e*.mjs) shares: a real
// hpfriendsd started on SQLite with users that have console passwords,
// hpfriendsctl and hpfeeds-cli runs, Debian's headless Chromium through
// playwright-core from tests/web/node_modules, checks that print
// "ok - ..." / "FAIL - ..." and a "N passed, M failed" summary, and
// screenshots under tests/web/artifacts/SUITE/ of the build tree.
//
// A suite calls run(suite, async (h) => { ... }): it fails, never skips, when
// the browser or the package is missing, and exits 1 on any failure.
//
// Environment (make check sets the first two): HPF_BUILDDIR, HPF_SRCDIR,
// HPFRIENDS_PLUGIN_DIR, HPF_WEB_NODE_DIR, HPF_CHROMIUM (default /usr/bin/chromium),
// HPF_KEEP_TMP=1 keeps the temporary directory.

import { spawn, spawnSync } from "node:child_process";
import { createRequire } from "node:module";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
export const SRCDIR = process.env.HPF_SRCDIR || path.resolve(here, "..", "..");
export const BUILDDIR = process.env.HPF_BUILDDIR || process.cwd();
export const DAEMON = path.join(BUILDDIR, "core", "hpfriendsd");
export const CTL = path.join(BUILDDIR, "core", "hpfriendsctl");
export const CLI = path.join(BUILDDIR, "sdk", "cli", "hpfeeds-cli");
export const CHROMIUM = process.env.HPF_CHROMIUM || "/usr/bin/chromium";
const PLUGINS = process.env.HPFRIENDS_PLUGIN_DIR || path.join(BUILDDIR, "plugins", ".libs");
// playwright-core is installed by tests/web/setup.sh next to this file
// (HPF_WEB_NODE_DIR overrides, e.g. for a distcheck build).
const NODE_DIR = process.env.HPF_WEB_NODE_DIR || here;
export const CHAN = "dionaea.captures";
export const STEP_TIMEOUT = 60000;
// Few PBKDF2 rounds for the hashes made here: sanitizer builds make the
// default 600,000 take seconds per login (the API test checks the default).
export const FAST = { HPFRIENDS_PASSWORD_ITERATIONS: "1000" };
// The two viewports every page is checked at: a laptop and a phone.
export const DESKTOP = { width: 1280, height: 800 };
export const PHONE = { width: 390, height: 844 };

let passed = 0, failed = 0;
const failures = [];
const children = [];
export const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "hpf-web-e2e-"));
let artifacts = null;
let brokerLog = null;

export function check(name, cond, detail) {
  if (cond) {
    passed++;
    console.log("ok - " + name);
  } else {
    failed++;
    failures.push(name + (detail ? ": " + detail : ""));
    console.log("FAIL - " + name + (detail ? ": " + detail : ""));
  }
  return !!cond;
}

// A step that cannot go on: run() reports it as one failed check.
export class Broken extends Error {}
export function expect(cond, what) {
  if (!cond) throw new Broken(what);
}

export function ctl(conf, args, input) {
  const r = spawnSync(CTL, ["-c", conf, ...args], { input: input || "", encoding: "utf8",
    env: { ...process.env, ...FAST, HPFRIENDS_PLUGIN_DIR: PLUGINS }, timeout: 30000 });
  expect(r.status === 0, "hpfriendsctl " + args.join(" ") + ": " + r.stderr);
  return r.stdout;
}

export const sleep = (ms) => new Promise((res) => setTimeout(res, ms));

// A broker on SQLite in dir with console users (password NAME-password);
// extra lines go to the config's [broker] section.
export async function startBroker(access = "graph", dir = tmp, opts = {}) {
  const users = opts.users || ["alice", "bob"];
  fs.mkdirSync(dir, { recursive: true });
  const conf = path.join(dir, "hpfriends.conf");
  fs.writeFileSync(conf, [
    "[broker]", "name = e2e", "listen = tcp:127.0.0.1:0", "access = " + access,
    "require_accept = " + (opts.requireAccept === false ? "false" : "true"), "reload_interval = 1",
    ...(opts.broker || []), "",
    "[storage]", "plugin = sqlite", "path = hpfriends.db", "",
    "[web]", "listen = tcp:127.0.0.1:0", "root = " + path.join(SRCDIR, "web"), ...(opts.web || []), ""].join("\n"));
  for (const u of users) {
    ctl(conf, ["user", "add", u]);
    ctl(conf, ["user", "passwd", u], u + "-password\n");
  }
  if (opts.admin) ctl(conf, ["user", "admin", opts.admin, "yes"]);
  const ready = path.join(dir, "ready");
  brokerLog = brokerLog || path.join(dir, "broker.log");
  const log = fs.openSync(path.join(dir, "broker.log"), "a");
  const p = spawn(DAEMON, ["-f", "-c", conf, "--ready-file", ready],
    { stdio: ["ignore", log, log], env: { ...process.env, ...FAST, HPFRIENDS_PLUGIN_DIR: PLUGINS } });
  children.push(p);
  const deadline = Date.now() + STEP_TIMEOUT;
  while (Date.now() < deadline) {
    expect(p.exitCode === null, "hpfriendsd exited with " + p.exitCode);
    if (fs.existsSync(ready)) {
      const lines = fs.readFileSync(ready, "utf8").split("\n").map((l) => l.split(" "));
      const tcp = lines.find((l) => l[0] === "tcp");
      const web = lines.find((l) => l[0] === "http" && l[1] === "web");
      if (tcp && web) return { proc: p, port: Number(tcp[2]), web: Number(web[2]), conf, dir };
    }
    await sleep(50);
  }
  throw new Broken("hpfriendsd not ready");
}

export async function stopBroker(b) {
  b.proc.kill("SIGTERM");
  return new Promise((res) => {
    if (b.proc.exitCode !== null) res(b.proc.exitCode);
    b.proc.on("exit", (c) => res(c));
    setTimeout(() => res("timeout"), STEP_TIMEOUT);
  });
}

// hpfeeds-cli sub --count 1 --json with bob's key, in the background.
export function subscriber(port, ident, secret) {
  const p = spawn(CLI, ["sub", "-p", String(port), "-i", ident, "-s", secret, "-c", CHAN,
    "--count", "1", "--json", "--timeout", "30"], { stdio: ["ignore", "pipe", "pipe"] });
  children.push(p);
  const out = { text: "", err: "", code: null, done: null };
  p.stdout.on("data", (d) => { out.text += d; });
  p.stderr.on("data", (d) => { out.err += d; });
  out.done = new Promise((res) => p.on("exit", (code) => { out.code = code; res(code); }));
  return out;
}

export function publish(port, ident, secret, payload) {
  return spawnSync(CLI, ["pub", "-p", String(port), "-i", ident, "-s", secret, "-c", CHAN, payload],
    { encoding: "utf8", timeout: 10000 });
}

// Debian's chromium, headless; a page with viewport at DESKTOP unless told.
export async function launch(chromium) {
  return chromium.launch({ executablePath: CHROMIUM, headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"] });
}

export async function newPage(browser, viewport = DESKTOP) {
  return (await browser.newContext({ viewport })).newPage();
}

export async function shot(page, name) {
  const file = path.join(artifacts, name + ".png");
  await page.screenshot({ path: file, fullPage: true });
  check("screenshot " + name + ".png saved", fs.statSync(file).size > 1000);
  return file;
}

export async function login(page, base, user) {
  await page.goto(base + "/");
  await page.waitForSelector("#login-form", { state: "visible", timeout: STEP_TIMEOUT });
  await page.fill("#login-user", user);
  await page.fill("#login-password", user + "-password");
  await page.click("#login-submit");
  // Attached, not visible: on a phone the links are behind the Menu button.
  await page.waitForSelector("#nav:not([hidden])", { state: "attached", timeout: STEP_TIMEOUT });
  const who = await page.textContent("#whoami");
  check(user + " logs in", who.startsWith(user), who);
}

// On a narrow screen the menu's links are behind the Menu button: open it.
export async function openMenu(page) {
  if (await page.isVisible("#menu-toggle") &&
      (await page.getAttribute("#menu-toggle", "aria-expanded")) !== "true") {
    await page.click("#menu-toggle");
  }
}

export async function go(page, name) {
  await openMenu(page);
  await page.click('#nav a[data-page="' + name + '"]');
  await page.waitForSelector('section#page[data-page="' + name + '"]', { timeout: STEP_TIMEOUT });
}

// Poll text in node: the console's CSP forbids eval, so no waitForFunction.
export async function waitText(page, selector, re, what) {
  const deadline = Date.now() + STEP_TIMEOUT;
  let last = "";
  while (Date.now() < deadline) {
    last = (await page.textContent(selector).catch(() => "")) || "";
    if (re.test(last)) return last;
    await sleep(100);
  }
  throw new Broken((what || selector) + ": no " + re + " in " + JSON.stringify(last));
}

export async function status(page) {
  return (await page.textContent("#status")) || "";
}

function cleanup() {
  for (const c of children) {
    if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  }
}

// Runs one suite: fn gets { chromium, artifacts } once the browser package
// and the programs are known to be there; exits the process with the result.
export async function run(suite, fn) {
  try {
    const require = createRequire(import.meta.url);
    let chromium;
    try {
      ({ chromium } = require(path.join(NODE_DIR, "node_modules", "playwright-core")));
    } catch (e) {
      throw new Broken("playwright-core is not installed in " + NODE_DIR + "/node_modules (run tests/web/setup.sh): " + e.message);
    }
    expect(fs.existsSync(CHROMIUM), CHROMIUM + " not found (apt-get install chromium)");
    for (const f of [DAEMON, CTL, CLI]) expect(fs.existsSync(f), f + " not built");
    artifacts = path.join(BUILDDIR, "tests", "web", "artifacts", suite);
    fs.rmSync(artifacts, { recursive: true, force: true });
    fs.mkdirSync(artifacts, { recursive: true });
    await fn({ chromium, artifacts });
  } catch (e) {
    check("the " + suite + " run completed", false, e instanceof Broken ? e.message : (e.stack || String(e)));
  }
  cleanup();
  if (failed && brokerLog) {
    try {
      for (const line of fs.readFileSync(brokerLog, "utf8").split("\n")) console.log("# " + line);
    } catch (e) { /* no log */ }
  }
  // Again after the broker's log, so the end of the output names them.
  for (const f of failures) console.log("# failed check: " + f);
  console.log(passed + " passed, " + failed + " failed");
  if (failed === 0 && !process.env.HPF_KEEP_TMP) fs.rmSync(tmp, { recursive: true, force: true });
  else console.log("# files kept in " + tmp);
  process.exit(failed ? 1 : 0);
}
