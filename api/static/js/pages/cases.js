// Cases: the case list (filters, bulk assignment, the raised alerts to open cases from) and one
// case's page (status and actions, history, the alert's changes, its evidence and graph).
import { api, query } from "../api.js";
import { createExplorer } from "../explorer.js";
import { t } from "../i18n.js";
import { loadRules, ruleTitle } from "../rules.js";
import { entityLink, errorBox, fmtScore, fmtTime, h, loading, table, typeLabel, valueCell } from "../ui.js";

const OPEN = ["new", "in_progress", "awaiting_approval"];

export function caseHref(id) { return `#/case/${encodeURIComponent(id)}`; }

function statusChip(status) {
  return h("span", { class: `chip status status-${status}`, "data-status": status }, t(`case.status.${status}`));
}

function subjectCell(c) {
  return c.subject_type === "ring"
    ? h("a", { href: `#/ring/${encodeURIComponent(c.subject_id)}` }, c.subject_id)
    : entityLink(c.subject_type, c.subject_id);
}

export async function casesPage(main, { params }) {
  const f = {
    open: params.get("open") ?? "true", mine: params.get("mine") || "", status: params.get("status") || "",
    typology: params.get("typology") || "", region: params.get("region") || "",
  };
  const form = h("form", { class: "filters", "data-testid": "case-filters", onsubmit: (ev) => {
    ev.preventDefault();
    const fd = new FormData(form);
    location.hash = `#/cases?${query({
      open: fd.get("open") ? "true" : "false", mine: fd.get("mine") ? "true" : "",
      status: fd.get("status"), typology: fd.get("typology").trim(), region: fd.get("region").trim(),
    })}`;
  } },
  h("label", {}, h("input", { type: "checkbox", name: "open", checked: f.open === "true" }), " ", t("cases.open")),
  h("label", {}, h("input", { type: "checkbox", name: "mine", checked: f.mine === "true" }), " ", t("cases.mine")),
  h("label", {}, t("cases.status"), h("select", { name: "status" }, h("option", { value: "" }, t("risk.any")),
    ["new", "in_progress", "awaiting_approval", "confirmed", "dismissed"].map((s) =>
      h("option", { value: s, selected: f.status === s }, t(`case.status.${s}`))))),
  h("label", {}, t("cases.typology"), h("input", { name: "typology", value: f.typology, size: 10 })),
  h("label", {}, t("risk.region"), h("input", { name: "region", value: f.region, size: 8 })),
  h("button", { type: "submit", class: "primary" }, t("risk.apply")));

  const list = h("div", {}, loading());
  const alerts = h("div", {}, loading());
  main.replaceChildren(
    h("section", { class: "panel", "data-testid": "cases-page" }, h("h2", {}, t("cases.title")), form, list),
    h("section", { class: "panel", "data-testid": "alerts-panel" }, h("h3", {}, t("alerts.title")),
      h("p", { class: "muted small" }, t("alerts.intro")), alerts));
  const reload = () => casesPage(main, { params });
  try {
    const page = await api("/v1/cases", { params: {
      open: f.open === "true", mine: f.mine === "true", status: f.status, typology: f.typology, region: f.region, limit: 200,
    } });
    list.replaceChildren(caseTable(page, reload));
  } catch (err) {
    list.replaceChildren(errorBox(err));
  }
  try {
    const page = await api("/v1/alerts", { params: { raised: true, limit: 20 } });
    alerts.replaceChildren(alertTable(page));
  } catch (err) {
    alerts.replaceChildren(errorBox(err));
  }
}

function caseTable(page, reload) {
  if (!page.cases.length) return h("p", { class: "muted", "data-testid": "cases-empty" }, t("cases.empty"));
  const boxes = [];
  const assignee = h("input", { name: "assignee", size: 18, placeholder: t("cases.assignee.placeholder"), "aria-label": t("case.assignee") });
  const note = h("span", { class: "muted small", "data-testid": "bulk-result" });
  const bulk = h("form", { class: "filters bulk", "data-testid": "bulk-assign", onsubmit: async (ev) => {
    ev.preventDefault();
    const ids = boxes.filter((b) => b.checked).map((b) => b.value);
    if (!ids.length) { note.textContent = t("cases.pickfirst"); return; }
    try {
      await api("/v1/cases/assign", { method: "POST", body: { case_ids: ids, assignee: assignee.value.trim() || null } });
      await reload();
    } catch (err) {
      note.replaceChildren(errorBox(err));
    }
  } }, t("cases.bulk"), assignee, h("button", { type: "submit" }, t("cases.assign")), note);
  const rows = page.cases.map((c) => {
    const box = h("input", { type: "checkbox", value: c.case_id, "aria-label": c.case_id,
      disabled: !OPEN.includes(c.status) });
    boxes.push(box);
    return h("tr", { dataset: { case: c.case_id, status: c.status } },
      h("td", {}, box), h("td", {}, h("a", { href: caseHref(c.case_id), class: "case-link" }, c.case_id)),
      h("td", {}, statusChip(c.status)), h("td", {}, typeLabel(c.subject_type)), h("td", {}, subjectCell(c)),
      h("td", {}, h("span", { class: "chip" }, c.typology)), h("td", {}, c.region || "–"),
      h("td", {}, c.assignee || h("span", { class: "muted" }, t("case.unassigned"))), h("td", {}, c.due_date || "–"),
      h("td", { class: "small" }, fmtTime(c.updated_at)));
  });
  return h("div", {},
    h("p", { class: "summary", "data-testid": "cases-summary" }, t("cases.summary", { n: page.total })),
    table(["", t("case.id"), t("cases.status"), t("col.type"), t("case.subject"), t("cases.typology"), t("risk.region"),
      t("case.assignee"), t("case.due"), t("case.updated")], rows, { cls: "data cases-table" }),
    bulk);
}

function alertTable(page) {
  if (!page.alerts.length) return h("p", { class: "muted" }, t("alerts.none"));
  return table([t("alerts.event"), t("col.type"), t("case.subject"), t("cases.typology"), t("col.score"), t("alerts.changes"), ""],
    page.alerts.map((a) => {
      const result = h("span", { class: "small" });
      return h("tr", { dataset: { alert: a.alert_id, event: a.event } },
        h("td", {}, h("span", { class: `chip event-${a.event}` }, t(`alerts.event.${a.event}`))),
        h("td", {}, typeLabel(a.subject_type)), h("td", {}, subjectCell(a)), h("td", {}, h("span", { class: "chip" }, a.typology)),
        h("td", { class: "num" }, fmtScore(a.score)), h("td", { class: "small" }, alertChanges(a)),
        h("td", {}, a.case_id ? [h("a", { href: caseHref(a.case_id), class: "small", "data-action": "earlier-case" }, a.case_id), " ",
          statusChip(a.case_status), " "] : null,
        h("button", { type: "button", "data-action": "open-case", onclick: async () => {
          try {
            const c = await api("/v1/cases", { method: "POST", body: { alert_id: a.alert_id } });
            location.hash = caseHref(c.case_id);
          } catch (err) {
            result.replaceChildren(errorBox(err));
          }
        } }, t("alerts.open")), result));
    }), { cls: "data alerts-table" });
}

function alertChanges(a) {
  const parts = [];
  if (a.event === "new") parts.push(t("alerts.firstseen", { at: fmtTime(a.first_seen) }));
  if (a.new_members.length) parts.push(t("alerts.newmembers", { list: a.new_members.join(", ") }));
  if (a.left_members.length) parts.push(t("alerts.leftmembers", { list: a.left_members.join(", ") }));
  if (a.new_serious_rules.length) parts.push(t("alerts.newserious", { list: a.new_serious_rules.join(", ") }));
  else if (a.new_rules.length) parts.push(t("alerts.newrules", { list: a.new_rules.join(", ") }));
  if (a.score_rise !== null && Math.abs(a.score_rise) > 1e-9) parts.push(t("alerts.rise", { d: (a.score_rise >= 0 ? "+" : "") + a.score_rise.toFixed(3) }));
  return parts.join(" · ") || "–";
}

export async function casePage(main, { id }) {
  main.replaceChildren(loading());
  let c;
  try {
    c = await api(`/v1/cases/${encodeURIComponent(id)}`);
  } catch (err) {
    main.replaceChildren(errorBox(err));
    return;
  }
  // the head, the alert and the history are drawn again after each action; the evidence and the
  // graph once (a graph laid out again on every click would reshuffle under the investigator)
  const headSlot = h("div", {});
  const alertSlot = h("div", {});
  const historySlot = h("div", {});
  const draw = (current) => {
    headSlot.replaceChildren(caseHead(current, async () => {
      try {
        draw(await api(`/v1/cases/${encodeURIComponent(id)}`));
      } catch (err) {
        headSlot.append(errorBox(err));
      }
    }));
    alertSlot.replaceChildren(alertPanel(current));
    historySlot.replaceChildren(historyPanel(current));
  };
  draw(c);
  const evidence = h("section", { class: "panel", "data-testid": "case-evidence" }, h("h3", {}, t("case.evidence")), loading());
  const explorer = c.subject_type === "ring" ? createExplorer({}) : createExplorer({ root: { type: c.subject_type, id: c.subject_id } });
  main.replaceChildren(headSlot, h("div", { class: "grid-2" }, h("div", {}, alertSlot, evidence), historySlot),
    h("h3", { class: "section-title" }, t("graph.title")), explorer.element);
  try {
    if (c.subject_type === "ring") {
      const ring = await api(`/v1/rings/${encodeURIComponent(c.subject_id)}`);
      evidence.replaceChildren(h("h3", {}, t("case.evidence")), h("p", { class: "why" }, ring.why),
        table([t("col.type"), t("col.entity")], ring.members.map((m) => h("tr", {}, h("td", {}, typeLabel(m.type)), h("td", {}, entityLink(m.type, m.id))))));
      await explorer.focusRing(ring, { replace: true, surroundings: true });
    } else {
      const [detail, rules] = await Promise.all([
        api(`/v1/entities/${encodeURIComponent(c.subject_type)}/${encodeURIComponent(c.subject_id)}`), loadRules()]);
      const hits = detail.rule_hits.filter((x) => c.typology === "manual" || x.rule_id.split("_")[0] === c.typology);
      evidence.replaceChildren(h("h3", {}, t("case.evidence")),
        h("div", {}, hits.length ? hits.map((hit) => h("div", { class: "rule-hit", dataset: { rule: hit.rule_id } },
          h("h4", {}, ruleTitle(rules, hit.rule_id), " ", h("code", { class: "muted" }, hit.rule_id)),
          recordsTable(hit.evidence))) : h("p", { class: "muted" }, t("entity.norules"))));
      explorer.reload();
    }
  } catch (err) {
    evidence.replaceChildren(errorBox(err));
  }
}

function caseHead(c, redraw) {
  const message = h("div", { "data-testid": "case-message" });
  const note = h("textarea", { name: "note", rows: 2, cols: 60, "aria-label": t("case.note"), placeholder: t("case.note.placeholder") });
  const act = async (path, body) => {
    try {
      await api(`/v1/cases/${encodeURIComponent(c.case_id)}/${path}`, { method: "POST", body });
      await redraw();
    } catch (err) {
      message.replaceChildren(errorBox(err));
    }
  };
  const buttons = [];
  const button = (action, label, onclick) => buttons.push(h("button", { type: "button", "data-action": action, onclick }, label));
  if (c.status === "new") button("start", t("case.start"), () => act("status", { status: "in_progress", version: c.version }));
  if (c.status === "in_progress") button("confirm", t("case.confirm"), () => act("status", { status: "confirmed", note: note.value, version: c.version }));
  if (c.status === "new" || c.status === "in_progress") button("dismiss", t("case.dismiss"), () => act("status", { status: "dismissed", note: note.value, version: c.version }));
  if (c.status === "awaiting_approval") {
    button("approve", t("case.approve"), () => act("approval", { approve: true, note: note.value || null, version: c.version }));
    button("refuse", t("case.refuse"), () => act("approval", { approve: false, note: note.value, version: c.version }));
  }
  if (OPEN.includes(c.status)) button("assign-me", t("case.assignme"), () => act("assign", { assignee: "me" }));
  button("comment", t("case.comment"), () => act("comments", { text: note.value }));
  return h("section", { class: "panel", "data-testid": "case-head", dataset: { case: c.case_id, status: c.status } },
    h("h2", {}, t("case.title"), " ", c.case_id, " ", statusChip(c.status)),
    h("dl", { class: "kv" },
      h("dt", {}, t("case.subject")), h("dd", {}, typeLabel(c.subject_type), " ", subjectCell(c),
        ["person", "employer"].includes(c.subject_type) ? [" · ", h("a", { href: `#/objections?${query({ entity_type: c.subject_type, entity_id: c.subject_id })}`,
          "data-action": "objections" }, t("obj.title"))] : null),
      h("dt", {}, t("cases.typology")), h("dd", {}, c.typology),
      h("dt", {}, t("risk.region")), h("dd", {}, c.region || "–"),
      h("dt", {}, t("case.assignee")), h("dd", { "data-testid": "case-assignee" }, c.assignee || t("case.unassigned")),
      h("dt", {}, t("case.due")), h("dd", {}, c.due_date || "–"),
      h("dt", {}, t("case.created")), h("dd", {}, `${fmtTime(c.created_at)} · ${c.created_by}`),
      c.proposed_by ? [h("dt", {}, t("case.proposed")), h("dd", { "data-testid": "case-proposed" }, c.proposed_by)] : null,
      c.disposition ? [h("dt", {}, t("case.disposition")), h("dd", { "data-testid": "case-disposition" },
        `${t(`case.status.${c.disposition}`)} · ${c.decided_by} · ${t("case.asof")} ${c.as_of}`, c.note ? ` · ${c.note}` : "")] : null),
    h("div", { class: "case-actions", "data-testid": "case-actions" }, note, h("div", {}, buttons)), message);
}

function historyPanel(c) {
  return h("section", { class: "panel", "data-testid": "case-history" }, h("h3", {}, t("case.history")),
    h("ol", { class: "history" }, c.history.map((e) => h("li", { dataset: { kind: e.kind } },
      h("span", { class: "small muted" }, fmtTime(e.at)), " ", h("strong", {}, t(`case.event.${e.kind}`)), " ",
      e.from_status !== e.to_status ? h("span", { class: "small" }, `${e.from_status} → ${e.to_status} `) : null,
      h("span", { class: "muted small" }, e.actor), e.note ? h("div", { class: "note" }, e.note) : null,
      e.detail && e.detail.assignee !== undefined ? h("div", { class: "small muted" }, `${t("case.assignee")}: ${e.detail.assignee ?? t("case.unassigned")}`) : null))));
}

function alertPanel(c) {
  const a = c.alert;
  return h("section", { class: "panel", "data-testid": "case-alert" }, h("h3", {}, t("case.alert")),
    a ? h("dl", { class: "kv" },
      h("dt", {}, t("alerts.event")), h("dd", {}, t(`alerts.event.${a.event}`)),
      h("dt", {}, t("col.score")), h("dd", {}, fmtScore(a.score)),
      h("dt", {}, t("alerts.seen")), h("dd", {}, `${fmtTime(a.first_seen)} – ${fmtTime(a.last_seen)}`),
      h("dt", {}, t("alerts.changes")), h("dd", {}, alertChanges({ ...a,
        new_members: JSON.parse(a.new_members || "[]"), left_members: JSON.parse(a.left_members || "[]"),
        new_rules: JSON.parse(a.new_rules || "[]"), new_serious_rules: JSON.parse(a.new_serious_rules || "[]") })))
      : h("p", { class: "muted" }, t(c.alert_id ? "case.alertgone" : "case.noalert")));
}

function recordsTable(evidence) {
  const records = evidence && Array.isArray(evidence.records) ? evidence.records : [];
  if (!records.length || typeof records[0] !== "object") return h("pre", { class: "evidence" }, JSON.stringify(evidence, null, 2));
  const cols = [...new Set(records.flatMap((r) => Object.keys(r)))];
  return table(cols, records.map((r) => h("tr", {}, cols.map((col) => h("td", {}, valueCell(r[col]))))), { cls: "data small" });
}
