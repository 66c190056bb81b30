// Objections (record one on a person's or employer's behalf; correct or reject it; the grade before
// and after the re-grade) and the labels page (decided cases as training labels, and where they
// disagreed with labels.csv). docs/cases.md.
import { api, query } from "../api.js";
import { t } from "../i18n.js";
import { loadRules, ruleTitle } from "../rules.js";
import { entityLink, errorBox, fmtNum, fmtTime, gradeBadge, h, loading, table, typeLabel } from "../ui.js";

const OBJECTABLE = ["person", "employer"];

function objectionHref(id) { return `#/objection/${encodeURIComponent(id)}`; }

/** The rows a rule's evidence records name, addressed as an amendment addresses them. */
export function recordRefs(entityType, entityId, records) {
  const refs = [];
  for (const r of records || []) {
    if (typeof r !== "object" || r === null) continue;
    const own = entityType === "person" ? { person_id: entityId } : { employer_id: entityId };
    if (r.visit_id) refs.push({ table: "visits", key: { visit_id: String(r.visit_id) } });
    else if (r.purchase_id) refs.push({ table: "purchases", key: { purchase_id: String(r.purchase_id) } });
    else if (r.month && (r.employer_id || entityType === "employer") && (r.person_id || entityType === "person")) {
      refs.push({ table: "contributions", key: { employer_id: String(r.employer_id || entityId), person_id: String(r.person_id || entityId), month: r.month } });
    } else if (r.month && r.benefit_type) refs.push({ table: "benefits", key: { ...own, month: r.month, benefit_type: r.benefit_type } });
  }
  const seen = new Set();
  return refs.filter((x) => { const k = JSON.stringify(x); return seen.has(k) ? false : seen.add(k); });
}

function gradeCell(g) {
  if (!g) return h("span", { class: "muted" }, "–");
  return h("span", { class: "grade-cell" }, gradeBadge(g.grade), " ", fmtNum(g.credit_points, 1), " ",
    h("span", { class: "small muted" }, (g.rule_hits || []).join(", ") || "–"));
}

export async function objectionsPage(main, { params }) {
  const type = OBJECTABLE.includes(params.get("entity_type")) ? params.get("entity_type") : "person";
  const id = params.get("entity_id") || "";
  const listBox = h("div", {}, loading());
  const formBox = h("div", {});
  main.replaceChildren(
    h("section", { class: "panel", "data-testid": "objections-page" }, h("h2", {}, t("obj.title")),
      h("form", { class: "filters", onsubmit: (ev) => {
        ev.preventDefault();
        const fd = new FormData(ev.target);
        location.hash = `#/objections?${query({ entity_type: fd.get("entity_type"), entity_id: fd.get("entity_id").trim() })}`;
      } },
      h("label", {}, t("col.type"), h("select", { name: "entity_type" }, OBJECTABLE.map((et) => h("option", { value: et, selected: et === type }, typeLabel(et))))),
      h("label", {}, t("col.entity"), h("input", { name: "entity_id", value: id, size: 12 })),
      h("button", { type: "submit", class: "primary" }, t("risk.apply"))),
      listBox),
    formBox);
  try {
    const rows = await api("/v1/objections", { params: { entity_type: id ? type : "", entity_id: id } });
    listBox.replaceChildren(rows.length
      ? table([t("obj.id"), t("col.type"), t("col.entity"), t("obj.against"), t("cases.status"), t("obj.before"), t("obj.after"), t("case.created")],
        rows.map((o) => h("tr", { dataset: { objection: o.objection_id, status: o.status } },
          h("td", {}, h("a", { href: objectionHref(o.objection_id) }, o.objection_id)), h("td", {}, typeLabel(o.entity_type)),
          h("td", {}, entityLink(o.entity_type, o.entity_id)), h("td", {}, o.against === "grade" ? t("obj.grade") : o.rule_id),
          h("td", {}, h("span", { class: `chip status-${o.status}` }, t(`obj.status.${o.status}`))),
          h("td", {}, gradeCell(o.before)), h("td", {}, gradeCell(o.after)), h("td", { class: "small" }, fmtTime(o.created_at)))),
        { cls: "data objections-table" })
      : h("p", { class: "muted" }, t("obj.none")));
  } catch (err) {
    listBox.replaceChildren(errorBox(err));
  }
  if (id) formBox.replaceChildren(await objectionForm(type, id));
}

async function objectionForm(type, id) {
  let detail;
  try {
    detail = await api(`/v1/entities/${encodeURIComponent(type)}/${encodeURIComponent(id)}`);
  } catch (err) {
    return errorBox(err);
  }
  const rules = await loadRules();
  const message = h("div", { "data-testid": "objection-message" });
  const records = h("textarea", { name: "records", rows: 6, cols: 80, "aria-label": t("obj.records") }, "[]");
  const ruleSelect = h("select", { name: "rule_id", "aria-label": t("obj.rule") },
    detail.rule_hits.map((hit) => h("option", { value: hit.rule_id }, `${ruleTitle(rules, hit.rule_id)} (${hit.rule_id})`)));
  const against = h("select", { name: "against", "aria-label": t("obj.against") },
    h("option", { value: "rule_hit" }, t("obj.rulehit")), h("option", { value: "grade" }, t("obj.grade")));
  const fill = () => {
    const hit = detail.rule_hits.find((x) => x.rule_id === ruleSelect.value);
    records.value = JSON.stringify(against.value === "rule_hit" && hit ? recordRefs(type, id, hit.evidence && hit.evidence.records) : [], null, 1);
  };
  ruleSelect.addEventListener("change", fill);
  against.addEventListener("change", () => { ruleSelect.disabled = against.value === "grade"; fill(); });
  if (!detail.rule_hits.length) { against.value = "grade"; ruleSelect.disabled = true; }
  fill();
  const statement = h("textarea", { name: "statement", rows: 3, cols: 80, "aria-label": t("obj.statement"), placeholder: t("obj.statement.placeholder") });
  const form = h("form", { class: "objection-form", "data-testid": "objection-form", onsubmit: async (ev) => {
    ev.preventDefault();
    try {
      const body = { entity_type: type, entity_id: id, against: against.value, statement: statement.value,
        records: JSON.parse(records.value || "[]"), rule_id: against.value === "rule_hit" ? ruleSelect.value : null };
      const o = await api("/v1/objections", { method: "POST", body });
      location.hash = objectionHref(o.objection_id);
    } catch (err) {
      message.replaceChildren(errorBox(err));
    }
  } },
  h("p", {}, t("obj.for"), " ", typeLabel(type), " ", entityLink(type, id), " · ", t("obj.current"), " ",
    detail.credit ? gradeBadge(detail.credit.grade) : "–"),
  h("label", {}, t("obj.against"), " ", against), " ", h("label", {}, t("obj.rule"), " ", ruleSelect),
  h("label", { class: "block" }, t("obj.records"), records),
  h("label", { class: "block" }, t("obj.statement"), statement),
  h("button", { type: "submit", class: "primary", "data-action": "record" }, t("obj.record")), message);
  return h("section", { class: "panel" }, h("h3", {}, t("obj.new")), form);
}

export async function objectionPage(main, { id }) {
  main.replaceChildren(loading());
  let o;
  try {
    o = await api(`/v1/objections/${encodeURIComponent(id)}`);
  } catch (err) {
    main.replaceChildren(errorBox(err));
    return;
  }
  const message = h("div", { "data-testid": "objection-message" });
  const note = h("textarea", { name: "note", rows: 2, cols: 80, "aria-label": t("case.note"), placeholder: t("obj.note.placeholder") });
  const amendments = h("textarea", { name: "amendments", rows: 6, cols: 80, "aria-label": t("obj.amendments") },
    JSON.stringify(o.records.map((r) => ({ ...r, action: "delete" })), null, 1));
  const busy = h("span", { class: "muted small", "data-testid": "objection-busy" });
  const decide = async (path, body) => {
    busy.textContent = path === "correct" ? t("obj.regrading") : "";
    try {
      await api(`/v1/objections/${encodeURIComponent(o.objection_id)}/${path}`, { method: "POST", body });
      await objectionPage(main, { id });
    } catch (err) {
      busy.textContent = "";
      message.replaceChildren(errorBox(err));
    }
  };
  const actions = o.status === "open"
    ? h("div", { class: "case-actions", "data-testid": "objection-actions" },
      h("label", { class: "block" }, t("obj.amendments"), amendments), note,
      h("div", {},
        h("button", { type: "button", "data-action": "correct", onclick: () => {
          let parsed;
          try { parsed = JSON.parse(amendments.value); } catch (err) { message.replaceChildren(errorBox(err)); return; }
          decide("correct", { amendments: parsed, note: note.value });
        } }, t("obj.correct")),
        h("button", { type: "button", "data-action": "reject", onclick: () => decide("reject", { note: note.value }) }, t("obj.reject")), busy),
      message)
    : null;
  main.replaceChildren(h("section", { class: "panel", "data-testid": "objection-head", dataset: { objection: o.objection_id, status: o.status } },
    h("h2", {}, t("obj.one"), " ", o.objection_id, " ", h("span", { class: `chip status-${o.status}` }, t(`obj.status.${o.status}`))),
    h("dl", { class: "kv" },
      h("dt", {}, t("col.entity")), h("dd", {}, typeLabel(o.entity_type), " ", entityLink(o.entity_type, o.entity_id)),
      h("dt", {}, t("obj.against")), h("dd", {}, o.against === "grade" ? t("obj.grade") : o.rule_id),
      h("dt", {}, t("obj.statement")), h("dd", {}, o.statement),
      h("dt", {}, t("case.created")), h("dd", {}, `${fmtTime(o.created_at)} · ${o.created_by}`),
      o.decided_at ? [h("dt", {}, t("obj.decided")), h("dd", {}, `${fmtTime(o.decided_at)} · ${o.decided_by}${o.note ? ` · ${o.note}` : ""}`)] : null),
    h("h3", {}, t("obj.records")),
    o.records.length ? table([t("obj.table"), t("obj.key")], o.records.map((r) => h("tr", {}, h("td", {}, r.table), h("td", {}, h("code", {}, JSON.stringify(r.key))))))
      : h("p", { class: "muted" }, "–"),
    h("h3", {}, t("obj.beforeafter")),
    table(["", t("col.grade"), t("col.points"), t("col.rules"), t("obj.run")], [["before", o.before], ["after", o.after]].map(([k, g]) =>
      h("tr", { "data-testid": `grade-${k}`, dataset: { grade: g ? g.grade : "" } }, h("td", {}, t(`obj.${k}`)),
        h("td", {}, g ? gradeBadge(g.grade) : "–"), h("td", { class: "num" }, g ? fmtNum(g.credit_points, 1) : "–"),
        h("td", { class: "small" }, g ? (g.rule_hits.join(", ") || "–") : "–"), h("td", { class: "small muted" }, g ? g.run_id : "–")))),
    o.amendments && o.amendments.length ? [h("h3", {}, t("obj.amendments")),
      table([t("obj.table"), t("obj.key"), t("obj.action"), t("obj.changes")], o.amendments.map((a) => h("tr", {},
        h("td", {}, a.table), h("td", {}, h("code", {}, JSON.stringify(a.key))), h("td", {}, a.action),
        h("td", {}, a.changes ? h("code", {}, JSON.stringify(a.changes)) : "–"))), { cls: "data amendments-table" })] : null,
    actions));
}

export async function labelsPage(main) {
  const body = h("div", {}, loading());
  main.replaceChildren(h("section", { class: "panel", "data-testid": "labels-page" }, h("h2", {}, t("labels.title")),
    h("p", { class: "muted small" }, t("labels.intro")), body));
  try {
    const [labels, conflicts] = await Promise.all([api("/v1/cases/dispositions"), api("/v1/cases/label-conflicts")]);
    body.replaceChildren(
      h("h3", {}, t("labels.dispositions"), ` (${labels.length})`),
      labels.length ? table([t("col.type"), t("col.entity"), t("labels.label"), t("case.asof"), t("case.id"), t("labels.decided")],
        labels.map((x) => h("tr", { dataset: { case: x.case_id, label: x.label } }, h("td", {}, typeLabel(x.entity_type)),
          h("td", {}, x.entity_id), h("td", { class: "num" }, x.label), h("td", {}, x.as_of), h("td", {}, x.case_id),
          h("td", { class: "small" }, `${fmtTime(x.decided_at)} · ${x.decided_by}`))), { cls: "data labels-table" })
        : h("p", { class: "muted" }, t("labels.none")),
      h("h3", {}, t("labels.conflicts"), ` (${conflicts.length})`),
      conflicts.length ? table([t("col.type"), t("col.entity"), "labels.csv", t("labels.case"), t("labels.kept")],
        conflicts.map((x) => h("tr", { dataset: { entity: x.entity_id, kept: x.kept } }, h("td", {}, typeLabel(x.entity_type)), h("td", {}, x.entity_id),
          h("td", {}, `${x.file_label} (${x.file_as_of || "–"})`), h("td", {}, `${x.case_label} (${x.case_as_of || "–"}, ${x.case_id})`),
          h("td", {}, x.kept))), { cls: "data conflicts-table" })
        : h("p", { class: "muted" }, t("labels.noconflicts")));
  } catch (err) {
    body.replaceChildren(errorBox(err));
  }
}
