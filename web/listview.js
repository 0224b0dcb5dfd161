// SPDX-License-Identifier: BSD-3-Clause
// Finding things in the console's tables: a search box, sortable column
// headers (aria-sort) and paging, around what table() in app.js builds.
// Rows stay the page's own DOM nodes (their buttons, inputs and data-*
// attributes keep working); the list only reorders and hides them.
"use strict";

const LIST_PAGE = 25; // rows a page shows unless the caller says otherwise

// The text a row is searched and sorted by: its cells, and what its inputs hold.
function cellText(td) {
  if (!td) return "";
  let t = td.textContent;
  for (const i of td.querySelectorAll("input")) t += " " + i.value;
  return t.trim();
}

// Numbers sort as numbers ("12 / 1.0 KiB" by 12), everything else as text.
function compareCells(a, b) {
  const na = /^-?\d+(\.\d+)?/.exec(a), nb = /^-?\d+(\.\d+)?/.exec(b);
  if (na && nb && Number(na[0]) !== Number(nb[0])) return Number(na[0]) - Number(nb[0]);
  return a.localeCompare(b, undefined, { numeric: true, sensitivity: "base" });
}

// tbl: what table() returned (a <table>, or an element holding one).
// opts: { label: what the rows are ("shares"), pageSize: rows a page (0: no
// paging, the caller pages), id: a prefix for element ids }.
// Returns an element holding the tools and tbl; .listview on it has
// refresh() (after the caller changed rows) and rows() (every data row).
function listview(tbl, opts) {
  opts = opts || {};
  const label = opts.label || "rows";
  const size = opts.pageSize === undefined ? LIST_PAGE : opts.pageSize;
  const table = tbl.tagName === "TABLE" ? tbl : tbl.querySelector("table");
  const body = table.tBodies[0];
  const st = { query: "", col: -1, dir: 1, page: 0 };
  // The "none" row table() puts in an empty list is no data; a row marked
  // data-detail-of belongs to the row before it and moves and hides with it.
  const dataRows = () => Array.from(body.rows).filter((r) => !r.querySelector("td[colspan]") && !r.hasAttribute("data-detail-of"));
  const details = (r) => {
    const d = [];
    for (let n = r.nextElementSibling; n && n.hasAttribute("data-detail-of"); n = n.nextElementSibling) d.push(n);
    return d;
  };

  const search = h("input", { type: "search", class: "lv-search", placeholder: "Search " + label,
    "aria-label": "Search " + label, id: opts.id ? opts.id + "-search" : null,
    oninput: () => { st.query = search.value.trim().toLowerCase(); st.page = 0; refresh(); } });
  const count = h("span", { class: "lv-count muted", "aria-live": "polite" });
  const prev = h("button", { type: "button", class: "secondary lv-prev", onclick: () => { st.page--; refresh(); } }, "Previous");
  const next = h("button", { type: "button", class: "secondary lv-next", onclick: () => { st.page++; refresh(); } }, "Next");
  const pager = h("div", { class: "lv-pager" }, prev, " ", next);
  const heads = Array.from(table.tHead ? table.tHead.rows[0].cells : []);

  heads.forEach((th, i) => {
    const name = th.textContent.trim();
    if (!name) return; // a column of buttons
    const b = h("button", { type: "button", class: "lv-sort", title: "Sort by " + name }, name);
    b.addEventListener("click", () => {
      st.dir = st.col === i ? -st.dir : 1;
      st.col = i;
      sort();
      refresh();
    });
    th.replaceChildren(b);
    th.setAttribute("aria-sort", "none");
  });

  function sort() {
    const rows = dataRows();
    const keyed = rows.map((r, n) => ({ r, n, d: details(r), k: cellText(r.cells[st.col]) }));
    keyed.sort((a, b) => st.dir * compareCells(a.k, b.k) || a.n - b.n);
    for (const x of keyed) body.append(x.r, ...x.d);
    heads.forEach((th, i) => {
      if (th.hasAttribute("aria-sort"))
        th.setAttribute("aria-sort", i === st.col ? (st.dir > 0 ? "ascending" : "descending") : "none");
    });
  }

  function refresh() {
    if (st.col >= 0) sort();
    const rows = dataRows();
    const hits = rows.filter((r) => !st.query || [r, ...details(r)].some((x) =>
      Array.from(x.cells).some((td) => cellText(td).toLowerCase().includes(st.query))));
    const pages = size ? Math.max(1, Math.ceil(hits.length / size)) : 1;
    st.page = Math.min(Math.max(st.page, 0), pages - 1);
    const from = size ? st.page * size : 0, to = size ? from + size : hits.length;
    const shown = new Set(hits.slice(from, to));
    for (const r of rows) for (const x of [r, ...details(r)]) x.hidden = !shown.has(r);
    const matched = hits.length === rows.length ? rows.length + " " + label
      : hits.length + " of " + rows.length + " " + label + " match";
    const range = size && hits.length > size ? "showing " + (from + 1) + "\u2013" + Math.min(to, hits.length) + "; " : "";
    count.textContent = rows.length ? range + matched : "";
    pager.hidden = !size || pages < 2;
    prev.disabled = st.page === 0;
    next.disabled = st.page >= pages - 1;
  }

  // A wide table scrolls in its own box, never the page.
  const wrap = h("div", { class: "listview" }, h("div", { class: "lv-tools" }, search, count),
    h("div", { class: "lv-scroll" }, tbl), pager);
  wrap.listview = { refresh, rows: dataRows };
  refresh();
  return wrap;
}
