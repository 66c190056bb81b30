// The ranked risk list: filters, grade badges, top reasons, rule hits, pagination and CSV export.
import { api, ENTITY_TYPES, query } from "../api.js";
import { t } from "../i18n.js";
import { loadRules, ruleTitle } from "../rules.js";
import { entityHref, entityLink, errorBox, fmtNum, fmtTime, gradeBadge, h, loading, reasonText, scoreBar, table, typeLabel } from "../ui.js";

const GRADES = ["A", "B", "C", "D"];
const PAGE_SIZES = [20, 50, 100, 200];
const cursorTrail = new Map();   // filter signature -> cursors of the pages before the current one

function filtersFrom(params) {
  return {
    region: params.get("region") || "", grade: params.getAll("grade"), rule: params.get("rule") || "",
    ring: params.get("ring") || "", min_score: params.get("min_score") || "", max_score: params.get("max_score") || "",
    limit: params.get("limit") || "50",
  };
}

export async function riskPage(main, { type, params }) {
  if (!ENTITY_TYPES.includes(type)) type = "person";
  const f = filtersFrom(params);
  const cursor = params.get("cursor") || "";
  const signature = `${type}?${query(f)}`;
  const go = (filters, cur = "") => { location.hash = `#/risk/${type}?${query({ ...filters, cursor: cur })}`; };

  const tabs = h("nav", { class: "tabs", "aria-label": t("col.type") }, ENTITY_TYPES.map((et) =>
    h("a", { href: `#/risk/${et}`, class: et === type ? "tab active" : "tab", "aria-current": et === type ? "page" : null,
      dataset: { type: et } }, typeLabel(et))));

  const rules = await loadRules();
  const typeRules = [...rules.values()].filter((r) => r.entity_type === type);
  const ruleInput = typeRules.length
    ? h("select", { name: "rule" }, h("option", { value: "" }, t("risk.any")),
      typeRules.map((r) => h("option", { value: r.rule_id, selected: r.rule_id === f.rule }, `${ruleTitle(rules, r.rule_id)} (${r.rule_id})`)))
    : h("input", { name: "rule", value: f.rule, size: 18 });
  const regions = h("datalist", { id: "regions" });
  const form = h("form", { class: "filters", "data-testid": "risk-filters", onsubmit: (ev) => {
    ev.preventDefault();
    const fd = new FormData(form);
    cursorTrail.delete(signature);
    go({ region: fd.get("region").trim(), grade: fd.getAll("grade"), rule: fd.get("rule"), ring: fd.get("ring").trim(),
      min_score: fd.get("min_score"), max_score: fd.get("max_score"), limit: fd.get("limit") });
  } },
  h("label", {}, t("risk.region"), h("input", { name: "region", value: f.region, list: "regions", size: 8 })), regions,
  h("fieldset", { class: "grades" }, h("legend", {}, t("risk.grade")), GRADES.map((g) =>
    h("label", { class: "grade-check" }, h("input", { type: "checkbox", name: "grade", value: g, checked: f.grade.includes(g) }), gradeBadge(g)))),
  h("label", {}, t("risk.rule"), ruleInput),
  h("label", {}, t("risk.ring"), h("input", { name: "ring", value: f.ring, size: 14 })),
  h("label", {}, t("risk.min"), h("input", { name: "min_score", type: "number", min: 0, max: 1, step: "0.01", value: f.min_score, class: "num" })),
  h("label", {}, t("risk.max"), h("input", { name: "max_score", type: "number", min: 0, max: 1, step: "0.01", value: f.max_score, class: "num" })),
  h("label", {}, t("risk.pagesize"), h("select", { name: "limit" }, PAGE_SIZES.map((n) => h("option", { value: n, selected: String(n) === f.limit }, n)))),
  h("div", { class: "filter-actions" },
    h("button", { type: "submit", class: "primary" }, t("risk.apply")),
    h("button", { type: "button", onclick: () => { cursorTrail.delete(signature); location.hash = `#/risk/${type}`; } }, t("risk.reset")),
    h("button", { type: "button", "data-action": "export", onclick: () => exportCsv(type, f, exportStatus) }, t("risk.export"))));
  const exportStatus = h("span", { class: "muted", "aria-live": "polite", "data-testid": "export-status" });
  const body = h("div", {}, loading());
  main.replaceChildren(h("section", { class: "panel", "data-testid": "risk-page", dataset: { type } },
    h("h2", {}, t("risk.title"), " · ", typeLabel(type)), tabs, form, exportStatus, body));

  let page;
  try {
    page = await api(`/v1/risk/${type}`, { params: { region: f.region, grade: f.grade, rule: f.rule, ring: f.ring,
      min_score: f.min_score, max_score: f.max_score, limit: f.limit, cursor } });
  } catch (err) {
    body.replaceChildren(errorBox(err));
    return;
  }
  const trail = cursorTrail.get(signature) || [];
  const pageNo = cursor ? Math.max(trail.indexOf(cursor), 0) + 1 : 0;
  regions.replaceChildren(...[...new Set(page.items.map((i) => i.region).filter(Boolean))].sort().map((r) => h("option", { value: r })));
  if (!page.items.length) {
    body.replaceChildren(h("p", { class: "empty", "data-testid": "risk-empty" }, t("risk.empty")));
    return;
  }
  const first = page.items[0].rank;
  const reasonCells = new Map();
  const rows = page.items.map((item) => {
    const reasonCell = h("td", { class: "reasons" }, h("span", { class: "muted" }, "…"));
    reasonCells.set(item.entity_id, reasonCell);
    return h("tr", { class: "clickable", dataset: { id: item.entity_id, grade: item.grade, rank: item.rank },
      onclick: (ev) => { if (!ev.target.closest("a")) location.hash = entityHref(type, item.entity_id); } },
    h("td", { class: "num" }, item.rank),
    h("td", {}, entityLink(type, item.entity_id)),
    h("td", {}, gradeBadge(item.grade), item.grade_cap
      ? h("span", { class: "cap-note", title: t("entity.cap") }, ` ≤${item.grade_cap}`) : null),
    h("td", {}, scoreBar(item.risk_score)),
    h("td", { class: "num" }, fmtNum(item.credit_points, 1)),
    h("td", {}, item.region || "–"),
    reasonCell,
    h("td", {}, item.rule_hits.map((r) => h("span", { class: "chip chip-rule", title: r }, ruleTitle(rules, r)))),
    h("td", {}, item.rings.map((r) => h("a", { class: "chip chip-ring", href: `#/ring/${encodeURIComponent(r)}` }, r))));
  });
  const pager = h("div", { class: "pager" },
    h("button", { type: "button", "data-action": "prev", disabled: !cursor, onclick: () => {
      const tr = cursorTrail.get(signature) || [];
      const i = tr.indexOf(cursor);
      go(f, i > 0 ? tr[i - 1] : "");
    } }, t("risk.prev")),
    h("span", { class: "muted" }, t("risk.summary", { total: page.total, from: first, to: page.items[page.items.length - 1].rank, asof: fmtTime(page.as_of) })),
    h("button", { type: "button", "data-action": "next", disabled: !page.next_cursor, onclick: () => {
      const tr = (cursorTrail.get(signature) || []).slice(0, pageNo);
      tr.push(page.next_cursor);
      cursorTrail.set(signature, tr);
      go(f, page.next_cursor);
    } }, t("risk.next")));
  body.replaceChildren(h("p", { class: "summary", "data-testid": "risk-summary", dataset: { total: page.total } },
    t("risk.summary", { total: page.total, from: first, to: page.items[page.items.length - 1].rank, asof: fmtTime(page.as_of) })),
  table([t("col.rank"), t("col.entity"), t("col.grade"), t("col.score"), t("col.points"), t("col.region"),
    t("col.reasons"), t("col.rules"), t("col.rings")], rows, { cls: "data risk-table" }), pager);
  fillReasons(type, page.items, reasonCells);
}

/** Top reasons of the rows shown, from one batch credit call (roles without credit access see none). */
async function fillReasons(type, items, cells) {
  try {
    const resp = await api("/v1/credit/batch", { method: "POST",
      body: { items: items.map((i) => ({ entity_type: type, entity_id: i.entity_id })) } });
    for (const r of resp.results) {
      const cell = cells.get(r.entity_id);
      if (!cell) continue;
      const top = (r.reasons || []).filter((x) => (x.contribution ?? 1) > 0).slice(0, 2);
      cell.replaceChildren(...(top.length ? top.map((x) => h("div", { class: "reason-line", title: x.feature }, reasonText(x)))
        : [h("span", { class: "muted" }, "–")]));
    }
  } catch {
    cells.forEach((cell) => cell.replaceChildren(h("span", { class: "muted" }, "–")));
  }
}

async function exportCsv(type, f, status) {
  status.textContent = t("risk.exporting");
  try {
    const resp = await api(`/v1/risk/${type}`, { raw: true, params: { region: f.region, grade: f.grade, rule: f.rule,
      ring: f.ring, min_score: f.min_score, max_score: f.max_score, format: "csv" } });
    const blob = await resp.blob();
    const text = await blob.text();
    const url = URL.createObjectURL(blob);
    const a = h("a", { href: url, download: `risk-${type}.csv` });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
    status.textContent = t("risk.exported", { n: Math.max(0, text.trim().split("\n").length - 1) });
  } catch (err) {
    status.replaceChildren(errorBox(err));
  }
}
