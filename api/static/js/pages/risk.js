// The ranked risk list: filters (regions from the data), sortable columns, grade badges, top reasons,
// rule hits, pagination and CSV export. The list answer carries the top reasons itself, so a page
// view is one API call and one audit row.
import { api, ENTITY_TYPES, query } from "../api.js";
import { getLang, t } from "../i18n.js";
import { loadRules, ruleTitle } from "../rules.js";
import { entityHref, entityLink, errorBox, fmtNum, fmtTime, gradeBadge, h, loading, reasonText, scoreBar, typeLabel } from "../ui.js";

const GRADES = ["A", "B", "C", "D"];
const PAGE_SIZES = [20, 50, 100, 200];
const DEFAULT_SORT = "priority";
const cursorTrail = new Map();   // filter signature -> cursors of the pages before the current one

function filtersFrom(params) {
  return {
    region: params.get("region") || "", grade: params.getAll("grade"), rule: params.get("rule") || "",
    ring: params.get("ring") || "", min_score: params.get("min_score") || "", max_score: params.get("max_score") || "",
    limit: params.get("limit") || "50", sort: params.get("sort") || "", order: params.get("order") || "",
  };
}

/** The API parameters of the list (filters and sort) without the page size. */
function listParams(f) {
  return { region: f.region, grade: f.grade, rule: f.rule, ring: f.ring, min_score: f.min_score,
    max_score: f.max_score, sort: f.sort, order: f.order };
}

async function regionsOf(type) {
  try {
    return (await api(`/v1/risk/${type}/regions`)).regions;
  } catch {
    return [];
  }
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

  const [rules, regions] = await Promise.all([loadRules(), regionsOf(type)]);
  const typeRules = [...rules.values()].filter((r) => r.entity_type === type);
  const ruleInput = typeRules.length
    ? h("select", { name: "rule" }, h("option", { value: "" }, t("risk.any")),
      typeRules.map((r) => h("option", { value: r.rule_id, selected: r.rule_id === f.rule }, `${ruleTitle(rules, r.rule_id)} (${r.rule_id})`)))
    : h("input", { name: "rule", value: f.rule, size: 18 });
  const regionChoices = f.region && !regions.includes(f.region) ? [...regions, f.region] : regions;
  const regionSelect = h("select", { name: "region", "data-testid": "region-filter" },
    h("option", { value: "" }, t("risk.allregions")),
    regionChoices.map((r) => h("option", { value: r, selected: r === f.region }, r)));
  const form = h("form", { class: "filters", "data-testid": "risk-filters", onsubmit: (ev) => {
    ev.preventDefault();
    const fd = new FormData(form);
    cursorTrail.delete(signature);
    go({ region: fd.get("region"), grade: fd.getAll("grade"), rule: fd.get("rule"), ring: fd.get("ring").trim(),
      min_score: fd.get("min_score"), max_score: fd.get("max_score"), limit: fd.get("limit"), sort: f.sort, order: f.order });
  } },
  h("label", {}, t("risk.region"), regionSelect),
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
    page = await api(`/v1/risk/${type}`, { params: { ...listParams(f), limit: f.limit, cursor } });
  } catch (err) {
    body.replaceChildren(errorBox(err));
    return;
  }
  const trail = cursorTrail.get(signature) || [];
  const pageNo = cursor ? Math.max(trail.indexOf(cursor), 0) + 1 : 0;
  if (!page.items.length) {
    body.replaceChildren(h("p", { class: "empty", "data-testid": "risk-empty" }, t("risk.empty")));
    return;
  }
  const rows = page.items.map((item) => h("tr", { class: "clickable",
    dataset: { id: item.entity_id, grade: item.grade, rank: item.rank, priority: item.priority, region: item.region || "" },
    onclick: (ev) => { if (!ev.target.closest("a")) location.hash = entityHref(type, item.entity_id); } },
  h("td", { class: "num" }, item.priority),
  h("td", {}, entityLink(type, item.entity_id)),
  h("td", {}, gradeBadge(item.grade), item.grade_cap
    ? h("span", { class: "cap-note", title: t("entity.cap") }, ` ≤${item.grade_cap}`) : null),
  h("td", {}, scoreBar(item.risk_score)),
  h("td", { class: "num" }, fmtNum(item.credit_points, 1)),
  h("td", { class: "num", dataset: { amount: item.amount_at_stake ?? "" } }, fmtNum(item.amount_at_stake, 0)),
  h("td", {}, item.region || "–"),
  h("td", { class: "reasons" }, item.top_reasons.length
    ? item.top_reasons.map((x) => h("div", { class: "reason-line", title: x.code || x.feature || null }, reasonText(x)))
    : h("span", { class: "muted" }, "–")),
  h("td", {}, item.rule_hits.map((r) => h("span", { class: "chip chip-rule", title: r }, ruleTitle(rules, r)))),
  h("td", {}, item.rings.map((r) => h("a", { class: "chip chip-ring", href: `#/ring/${encodeURIComponent(r)}` }, r)))));

  const summary = t("risk.summary", { total: page.total, from: page.offset + 1, to: page.offset + page.items.length,
    asof: fmtTime(page.as_of) });
  const pager = h("div", { class: "pager" },
    h("button", { type: "button", "data-action": "prev", disabled: !cursor, onclick: () => {
      const tr = cursorTrail.get(signature) || [];
      const i = tr.indexOf(cursor);
      go(f, i > 0 ? tr[i - 1] : "");
    } }, t("risk.prev")),
    h("span", { class: "muted", "data-testid": "risk-footer" }, summary),
    h("button", { type: "button", "data-action": "next", disabled: !page.next_cursor, onclick: () => {
      const tr = (cursorTrail.get(signature) || []).slice(0, pageNo);
      tr.push(page.next_cursor);
      cursorTrail.set(signature, tr);
      go(f, page.next_cursor);
    } }, t("risk.next")));

  const sortBy = (key) => {
    const order = page.sort === key ? (page.order === "asc" ? "desc" : "asc") : "";
    const sorted = { ...f, sort: key === DEFAULT_SORT && !order ? "" : key, order };
    go(sorted);
  };
  const head = (label, key) => {
    if (!key) return h("th", {}, label);
    const current = page.sort === key;
    return h("th", { class: "sortable", "aria-sort": current ? (page.order === "asc" ? "ascending" : "descending") : "none",
      dataset: { sort: key } },
    h("button", { type: "button", class: "linkish sort", title: t("risk.sortby", { col: label }), onclick: () => sortBy(key) },
      label, h("span", { class: "sort-arrow", "aria-hidden": "true" }, current ? (page.order === "asc" ? " ▲" : " ▼") : "")));
  };
  const columns = [[t("col.rank"), "priority"], [t("col.entity"), "entity_id"], [t("col.grade"), "grade"],
    [t("col.score"), "risk_score"], [t("col.points"), "credit_points"], [t("col.money"), "amount_at_stake"],
    [t("col.region"), "region"], [t("col.reasons")], [t("col.rules")], [t("col.rings")]];
  body.replaceChildren(h("p", { class: "summary", "data-testid": "risk-summary",
    dataset: { total: page.total, sort: page.sort, order: page.order } }, summary),
  h("table", { class: "data risk-table" }, h("thead", {}, h("tr", {}, columns.map(([label, key]) => head(label, key)))),
    h("tbody", {}, rows)),
  pager);
}

async function exportCsv(type, f, status) {
  status.textContent = t("risk.exporting");
  try {
    const resp = await api(`/v1/risk/${type}`, { raw: true, params: { ...listParams(f), format: "csv", lang: getLang() } });
    const count = resp.headers.get("X-Row-Count");
    const blob = await resp.blob();
    const url = URL.createObjectURL(blob);
    const a = h("a", { href: url, download: `risk-${type}.csv` });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
    status.textContent = t("risk.exported", { n: count ?? "?" });
  } catch (err) {
    status.replaceChildren(errorBox(err));
  }
}
