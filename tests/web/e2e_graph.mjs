// SPDX-License-Identifier: BSD-3-Clause
// End to end: the console's Graph page at scale, in headless Chromium.
//
// A broker is loaded (hpfriendsctl import) with 200 users, 12 groups and
// 500 shares over 20 channels, one of them 242 characters long, some of
// them accepted.  alice, an administrator, sees the whole graph.  At
// 1280x800 and at 390x844 the suite checks that the vendored library draws
// it, that the table of edges (the text alternative) holds exactly the
// edges the filters leave, computed here from the fixture alone: by
// channel, and N hops from alice for N = 1 and 2; that the long channel is
// shortened on the canvas and whole in the details panel, the legend is
// there, the page never scrolls sideways, the CSP refuses nothing and the
// console logs no error.  Screenshots at both sizes.

import fs from "node:fs";
import path from "node:path";
import {
  DESKTOP, PHONE, STEP_TIMEOUT, check, ctl, expect, startBroker, stopBroker, launch, newPage,
  shot, login, go, waitText, run, tmp,
} from "./e2e_lib.mjs";

const N_USERS = 200, N_GROUPS = 12, N_SHARES = 500, N_CHANNELS = 20;
const LONG = ("long.channel-" + "abcdefghijklmnopqrstuvwxyz0123456789".repeat(8)).slice(0, 242);
const LABEL_MAX = 24;

// A fixed pseudo-random sequence, so every run loads the same graph.
function lcg(seed) {
  let x = seed >>> 0;
  return (n) => { x = (Math.imul(x, 1664525) + 1013904223) >>> 0; return x % n; };
}

// alice and bob (made by startBroker) plus u001.. up to N_USERS; groups with
// 3-12 members; N_SHARES distinct (from, to, channel) shares, a third of
// them to groups; the long channel from alice to bob; half of the user
// shares accepted.
function fixture() {
  const rnd = lcg(16);
  const users = ["alice", "bob"];
  for (let i = 1; users.length < N_USERS; i++) users.push("u" + String(i).padStart(3, "0"));
  const chans = [LONG];
  for (let i = 1; chans.length < N_CHANNELS; i++) chans.push("feed" + i + ".events");
  const groups = [];
  for (let i = 0; i < N_GROUPS; i++) {
    const members = new Set();
    const want = 3 + rnd(10);
    while (members.size < want) members.add(users[rnd(users.length)]);
    if (i === 0) members.add("alice");
    groups.push({ name: "team" + i, owner: users[rnd(users.length)], members: [...members] });
  }
  const shares = [], seen = new Set();
  const add = (from, to, toGroup, channel) => {
    const key = [from, toGroup ? "@" + to : to, channel].join("\n");
    if (from === to || seen.has(key)) return;
    seen.add(key);
    shares.push({ from, to, toGroup, channel, type: rnd(4) === 0 ? "shares_all" : "shares" });
  };
  add("alice", "bob", false, LONG);
  while (shares.length < N_SHARES) {
    const from = users[rnd(users.length)], channel = chans[1 + rnd(chans.length - 1)];
    if (rnd(3) === 0) add(from, groups[rnd(groups.length)].name, true, channel);
    else add(from, users[rnd(users.length)], false, channel);
  }
  const accepts = shares.filter((s, i) => !s.toGroup && i % 2 === 0)
    .map((s) => ({ user: s.to, from: s.from, channel: s.channel }));
  return { users, groups, shares, accepts, chans };
}

function load(b, fx) {
  const data = JSON.parse(ctl(b.conf, ["export"]));
  const have = new Set(data.users.map((u) => u.name));
  for (const u of fx.users) if (!have.has(u)) data.users.push({ name: u, admin: false });
  data.groups = fx.groups;
  data.shares = fx.shares.map((s) => Object.assign({ from: s.from, channel: s.channel, type: s.type },
    s.toGroup ? { to_group: s.to } : { to_user: s.to }));
  data.accepts = fx.accepts;
  const file = path.join(tmp, "graph-fixture.json");
  fs.writeFileSync(file, JSON.stringify(data));
  ctl(b.conf, ["import", file]);
}

// The edges the page should list, from the fixture alone: shares on the
// channel ("" for all) and the memberships of the groups they reach, then
// those between nodes within `hops` of alice (0: all), either direction.
function expected(fx, channel, hops) {
  let edges = fx.shares.map((s) => ({ from: s.from, to: (s.toGroup ? "@" : "") + s.to, channel: s.channel }));
  const members = fx.groups.flatMap((g) => g.members.map((m) => ({ from: "@" + g.name, to: m, member: true })));
  if (channel) {
    edges = edges.filter((e) => e.channel === channel);
    const reached = new Set(edges.map((e) => e.to));
    edges = edges.concat(members.filter((m) => reached.has(m.from)));
  } else {
    edges = edges.concat(members);
  }
  if (!hops) return edges.length;
  const dist = new Map([["alice", 0]]);
  for (let d = 0; d < hops; d++) {
    for (const e of edges) {
      for (const [a, z] of [[e.from, e.to], [e.to, e.from]]) {
        if (dist.get(a) === d && !dist.has(z)) dist.set(z, d + 1);
      }
    }
  }
  return edges.filter((e) => dist.has(e.from) && dist.has(e.to)).length;
}

async function rows(page) {
  return page.locator("#graph-edges tbody tr[data-edge]").count();
}

// The drawing is done when the canvas' node count matches the table's.
async function drawn(page) {
  const deadline = Date.now() + STEP_TIMEOUT;
  while (Date.now() < deadline) {
    const c = page.locator("#graph-canvas");
    const n = await c.getAttribute("data-nodes"), d = await c.getAttribute("data-drawn");
    if (n && n === d) return Number(d);
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error("the graph was not drawn within " + STEP_TIMEOUT + " ms");
}

async function choose(page, select, value) {
  await page.selectOption(select, value);
  return drawn(page);
}

async function noSideScroll(page, what) {
  const [sw, iw] = await page.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
  check(what + ": no horizontal page scroll (" + sw + " <= " + iw + ")", sw <= iw);
}

async function atSize(browser, base, fx, viewport, tag) {
  const page = await newPage(browser, viewport);
  const errors = [];
  // Chromium logs each HTTP error as a console error; those are checked by
  // URL instead: only the session probe before login may fail (401; the
  // favicon is another helper's file, so its 404 is not counted here).
  page.on("console", (m) => {
    if ((m.type() === "error" && !/^Failed to load resource/.test(m.text())) || /Content Security Policy/.test(m.text())) errors.push(m.text());
  });
  page.on("response", (r) => {
    const u = new URL(r.url());
    if (r.status() >= 400 && !(u.pathname === "/api/session" && r.status() === 401) && u.pathname !== "/favicon.ico") {
      errors.push(r.status() + " " + u.pathname);
    }
  });
  page.on("pageerror", (e) => errors.push(String(e)));
  let answer = null;
  page.on("response", async (r) => {
    if (new URL(r.url()).pathname === "/api/graph") answer = await r.body().catch(() => null);
  });
  await login(page, base, "alice");
  const t0 = Date.now();
  await go(page, "graph");
  const nodes = await drawn(page);
  const ms = Date.now() - t0;
  const doc = answer ? JSON.parse(answer.toString("utf8")) : {};
  check(tag + ": /api/graph gives the whole graph, " + (answer ? answer.length : 0) + " bytes, not truncated",
    doc.truncated === false && doc.edges.length === expected(fx, "", 0) && doc.center === "alice");
  const lib = await page.evaluate(() => typeof cytoscape === "function" && !!graphView.cy &&
    document.querySelectorAll("#graph-canvas canvas").length > 0);
  check(tag + ": the vendored library draws the graph on a canvas (" + nodes + " nodes, " + ms + " ms)", lib && nodes > 1);

  let swatches = 0;
  for (const k of ["user", "me", "group", "shares", "shares_all", "member", "pending"]) {
    swatches += await page.locator('#graph-legend li[data-kind="' + k + '"] .swatch.' + k).count();
  }
  check(tag + ": legend with colour samples for user, me, group, shares, shares_all, membership, pending",
    swatches === 7 && /membership/.test(await page.textContent("#graph-legend")), String(swatches));

  const n2 = await rows(page);
  check(tag + ": default 2 hops from alice: " + n2 + " edges, as computed from the fixture",
    n2 === expected(fx, "", 2), "expected " + expected(fx, "", 2));
  check(tag + ": the canvas holds the nodes of those edges",
    Number(await page.getAttribute("#graph-canvas", "data-edges")) === n2);
  await choose(page, "#graph-hops", "1");
  const n1 = await rows(page);
  check(tag + ": 1 hop from alice: " + n1 + " edges, as computed, fewer than at 2",
    n1 === expected(fx, "", 1) && n1 < n2, "expected " + expected(fx, "", 1));
  let t1 = Date.now();
  const allNodes = await choose(page, "#graph-hops", "0");
  const all = await rows(page);
  check(tag + ": the whole graph drawn: " + allNodes + " nodes in " + (Date.now() - t1) + " ms",
    allNodes > N_USERS);
  await shot(page, "graph-" + tag + "-whole");
  check(tag + ": no hop limit: all " + all + " edges (500 shares and the memberships)",
    all === expected(fx, "", 0) && all > N_SHARES, "expected " + expected(fx, "", 0));
  const chan = fx.chans[3];
  await choose(page, "#graph-channel", chan);
  const nc = await rows(page);
  check(tag + ": channel " + chan + " alone: " + nc + " edges, as computed",
    nc === expected(fx, chan, 0) && nc < all, "expected " + expected(fx, chan, 0));
  await choose(page, "#graph-hops", "2");
  const nc2 = await rows(page);
  check(tag + ": channel and 2 hops together: " + nc2 + " edges, as computed",
    nc2 === expected(fx, chan, 2), "expected " + expected(fx, chan, 2));

  await choose(page, "#graph-channel", LONG);
  const opt = page.locator("#graph-channel option", { hasText: "long.channel" });
  check(tag + ": the long channel is shortened in the channel list, whole in its title",
    (await opt.textContent()).length === LABEL_MAX + 1 && await opt.getAttribute("title") === LONG);
  const label = await page.evaluate((full) => {
    const e = graphView.cy.edges().filter((x) => x.data("full") === full)[0];
    return e ? e.style("label") : null;
  }, LONG);
  check(tag + ": the 242-character channel's label on the canvas is " + (label || "").length + " characters",
    label === LONG.slice(0, LABEL_MAX) + "\u2026", label);
  await page.focus("#graph-edges tbody tr[data-edge]");
  const detail = await waitText(page, '#graph-details dd[data-field="channel"]', /./, "details panel");
  check(tag + ": the details panel gives the channel in full", detail === LONG, detail.length + " characters");
  check(tag + ": and the edge's ends and state", (await page.textContent('#graph-details dd[data-field="from"]')) === "alice" &&
    (await page.textContent('#graph-details dd[data-field="to"]')) === "bob" &&
    /^(accepted|pending)/.test(await page.textContent('#graph-details dd[data-field="state"]')));

  await choose(page, "#graph-channel", "");
  await choose(page, "#graph-layout", "layers");
  const z0 = await page.evaluate(() => graphView.cy.zoom());
  await page.click("#graph-zoom-in");
  const z1 = await page.evaluate(() => graphView.cy.zoom());
  await page.click("#graph-fit");
  const z2 = await page.evaluate(() => graphView.cy.zoom());
  check(tag + ": layered layout drawn; zoom in and fit change the zoom (" + [z0, z1, z2].map((z) => z.toFixed(2)).join(", ") + ")",
    z1 > z0 * 1.2 && Math.abs(z2 - z0) < 0.01);
  await choose(page, "#graph-layout", "force");
  await noSideScroll(page, tag);
  const box = await page.locator("#graph-canvas").boundingBox();
  check(tag + ": the canvas fits the width (" + Math.round(box.width) + " px)", box.width <= viewport.width && box.width > 200);
  await page.fill("#readers-channel", fx.chans[1]);
  await page.click("#readers-go");
  await page.waitForSelector("#readers-out li", { timeout: STEP_TIMEOUT });
  check(tag + ": who receives still answers", /alice/.test(await page.textContent("#readers-out")));
  await shot(page, "graph-" + tag);
  check(tag + ": no console errors and no CSP violations", errors.length === 0, errors.join(" | "));
  await page.context().close();
}

async function main(chromium) {
  const b = await startBroker("graph");
  ctl(b.conf, ["user", "admin", "alice", "yes"]);
  const fx = fixture();
  expect(fx.shares.length === N_SHARES && fx.users.length === N_USERS, "fixture size");
  load(b, fx);
  const base = "http://127.0.0.1:" + b.web;
  const browser = await launch(chromium);
  try {
    await atSize(browser, base, fx, DESKTOP, "desktop");
    await atSize(browser, base, fx, PHONE, "phone");
  } finally {
    await browser.close();
  }
  check("the broker stops cleanly", await stopBroker(b) === 0);
}

run("graph", async ({ chromium }) => main(chromium));
