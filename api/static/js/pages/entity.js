// The entity page: details (masked by role), grade and reasons, rule evidence, rings, graph explorer, path search.
import { api, roleHint } from "../api.js";
import { createExplorer } from "../explorer.js";
import { t } from "../i18n.js";
import { loadRules, ruleTitle } from "../rules.js";
import { errorBox, fmtNum, fmtScore, fmtTime, gradeBadge, h, loading, reasonText, table, typeLabel, valueCell } from "../ui.js";
import { pathForm } from "./path.js";

export async function entityPage(main, { type, id }) {
  main.replaceChildren(loading());
  let detail;
  try {
    detail = await api(`/v1/entities/${encodeURIComponent(type)}/${encodeURIComponent(id)}`);
  } catch (err) {
    main.replaceChildren(errorBox(err));
    return;
  }
  const rules = await loadRules();
  const credit = detail.credit;
  const explorer = createExplorer({ root: { type, id }, onPathEnd: (end, node) => paths.setEnd(end, node) });
  const paths = pathForm({ source: { type, id }, onResult: (g) => explorer.overlay(g, "path") });

  const header = h("section", { class: "panel entity-head", "data-testid": "entity-head", dataset: { type, id } },
    h("div", { class: "entity-title" },
      h("span", { class: `type-pill type-${type}` }, typeLabel(type)),
      h("h2", {}, id, detail.attributes.name && detail.attributes.name !== "***" ? ` · ${detail.attributes.name}` : ""),
      credit ? gradeBadge(credit.grade, { cap: credit.grade_cap, scoreGrade: credit.score_grade, large: true }) : null),
    credit ? h("div", { class: "headline" },
      h("div", {}, h("strong", { "data-testid": "credit-points" }, fmtNum(credit.credit_points, 1)), " ", t("entity.points")),
      h("div", {}, h("strong", {}, fmtScore(credit.probability)), " ", t("entity.prob")),
      h("div", { class: "muted small" }, `${t("entity.scoregrade")}: ${credit.score_grade}`,
        credit.grade_cap ? ` · ${t("entity.cap")}: ${credit.grade_cap}${credit.cap_applied ? " ✓" : ""}` : "",
        ` · ${t("entity.bands")}: A ≥ ${credit.bands.A}, B ≥ ${credit.bands.B}, C ≥ ${credit.bands.C}`),
      h("div", { class: "muted small" }, `${t("entity.model")}: ${credit.model_version} · ${t("entity.asof")} ${fmtTime(credit.as_of)}`))
      : h("p", { class: "muted" }, t("entity.notscored")),
    detail.masked ? h("div", { class: "alert alert-warn", "data-testid": "masked-banner" }, t("entity.masked"),
      roleHint() ? ` (${roleHint()})` : "") : null);

  const attrs = Object.entries(detail.attributes);
  const details = h("section", { class: "panel", "data-testid": "entity-details" }, h("h3", {}, t("entity.details")),
    h("dl", { class: "kv" }, attrs.flatMap(([k, v]) => [h("dt", {}, k), h("dd", { dataset: { attr: k } }, valueCell(v))])));

  const reasons = credit && credit.reasons.length
    ? h("ol", { class: "reasons-list", "data-testid": "reasons" }, credit.reasons.map((r) => {
      const c = Number(r.contribution) || 0;
      const up = r.direction !== "lowers_risk";
      return h("li", { class: up ? "up" : "down", dataset: { code: r.code, direction: r.direction } },
        h("span", { class: "reason-text" }, reasonText(r)),
        h("span", { class: "contrib", title: `${r.code}${r.value === null || r.value === undefined ? "" : ` = ${r.value}`}` },
          r.contribution === null ? h("code", { class: "muted" }, r.code) : [
            h("span", { class: "contrib-bar", style: `width:${Math.min(100, Math.abs(c) * 30).toFixed(0)}px` }),
            `${c >= 0 ? "+" : ""}${fmtNum(c, 2)}`]));
    }))
    : h("p", { class: "muted" }, t("entity.noreasons"));
  const improve = credit && credit.to_improve
    ? h("p", { class: "improve", "data-testid": "to-improve" }, h("strong", {}, t("entity.improve")), " ",
      reasonText(credit.to_improve))
    : null;
  const creditPanel = h("section", { class: "panel" }, h("h3", {}, t("entity.credit")), reasons, improve);

  const rulesPanel = h("section", { class: "panel", "data-testid": "rule-evidence" }, h("h3", {}, t("entity.rules")),
    detail.rule_hits.length ? detail.rule_hits.map((hit) => h("div", { class: "rule-hit", dataset: { rule: hit.rule_id } },
      h("h4", {}, hitTitle(rules, hit), " ", h("code", { class: "muted" }, hit.rule_id)),
      h("div", { class: "muted small" }, `${t("entity.severity")} ${hit.severity}`, hit.grade_cap ? ` · ${t("entity.cap")} ${hit.grade_cap}` : ""),
      evidenceView(hit.evidence))) : h("p", { class: "muted" }, t("entity.norules")));

  const ringsPanel = h("section", { class: "panel", "data-testid": "entity-rings" }, h("h3", {}, t("entity.rings")),
    detail.rings.length ? h("ul", { class: "ring-list" }, detail.rings.map((r) => h("li", { dataset: { ring: r.ring_id } },
      h("a", { href: `#/ring/${encodeURIComponent(r.ring_id)}`, class: "ring-link" }, r.ring_id), " ",
      h("span", { class: "chip" }, r.ring_type), ` ${t("ring.score")} ${fmtScore(r.ring_score)} `,
      h("button", { type: "button", "data-action": "show-ring", onclick: async () => {
        // the ring in focus over the neighbourhood: outside the ring dimmed, shared identifiers labelled
        try { await explorer.focusRing(await api(`/v1/rings/${encodeURIComponent(r.ring_id)}`)); }
        catch (err) { ringsPanel.append(errorBox(err)); }
      } }, t("entity.showring")))))
      : h("p", { class: "muted" }, t("entity.norings")));

  main.replaceChildren(header,
    h("div", { class: "grid-2" }, h("div", {}, creditPanel, credit ? supervisionView(credit) : null, rulesPanel, ringsPanel), details),
    h("h3", { class: "section-title" }, t("graph.title")), explorer.element, paths.element);
  explorer.reload();
}

/** Rule evidence: a table when it holds records, else the JSON. */
function evidenceView(evidence) {
  if (evidence && Array.isArray(evidence.records) && evidence.records.length && typeof evidence.records[0] === "object") {
    const cols = [...new Set(evidence.records.flatMap((r) => Object.keys(r)))];
    const rest = Object.entries(evidence).filter(([k]) => k !== "records");
    return h("div", { class: "evidence" },
      rest.length ? h("p", { class: "small muted" }, rest.map(([k, v]) => `${k}: ${typeof v === "object" ? JSON.stringify(v) : v}`).join(" · ")) : null,
      table(cols, evidence.records.map((r) => h("tr", {}, cols.map((c) => h("td", {}, valueCell(r[c]))))), { cls: "data small" }));
  }
  return h("pre", { class: "evidence" }, JSON.stringify(evidence, null, 2));
}

/** Official scheme grades beside the model's, and the treatments of the policy in force (credit supervision). */
function supervisionView(credit) {
  const schemes = credit.schemes || [];
  const tr = credit.treatments;
  const pol = credit.policy;
  const yes = (v) => (v ? t("tr.yes") : t("tr.no"));
  const row = (key, label, value) => [h("dt", {}, label), h("dd", { dataset: { treatment: key } }, value)];
  return h("section", { class: "panel", "data-testid": "credit-supervision" }, h("h3", {}, t("entity.supervision")),
    schemes.length
      ? h("ul", { class: "scheme-list" }, schemes.map((s) => h("li", { dataset: { scheme: s.scheme, status: s.status } },
        h("strong", {}, getTitle(s)), " ", h("span", { class: "chip" }, s.status), " ",
        h("span", { class: "muted small" }, [s.clause,
          s.cap ? `${t("scheme.cap")} ${s.cap}${s.binds ? ` (${t("scheme.binds")})` : ""}` : "",
          s.listed_date ? `${s.listed_date} → ${s.removed_date || s.expires_date || ""}` : ""].filter(Boolean).join(" · ")))))
      : h("p", { class: "muted" }, t("entity.noschemes")),
    tr ? h("dl", { class: "kv", "data-testid": "treatments" }, [
      ...row("priority_handling", t("tr.priority"), yes(tr.priority_handling)),
      ...row("commitment_procedure", t("tr.commitment"), yes(tr.commitment_procedure)),
      ...row("online_scope", t("tr.scope"), tr.online_scope),
      ...row("extra_checks", t("tr.checks"), tr.extra_checks.length ? tr.extra_checks.join(", ") : t("tr.none")),
      ...row("startup_loan", t("tr.loan"), tr.startup_loan.cap_yuan > 0
        ? t("tr.loanvalue", { cap: fmtNum(tr.startup_loan.cap_yuan, 0), term: tr.startup_loan.term_months }) : t("tr.none")),
    ]) : null,
    tr && tr.because.length ? h("p", { class: "small muted", "data-testid": "treatments-because" },
      tr.because.map((b) => reasonText(b)).join("; ")) : null,
    pol ? h("p", { class: "muted small", "data-testid": "policy-version", dataset: { policy: pol.id, version: pol.version } },
      `${t("entity.policy")} ${pol.id} ${pol.version} (${pol.effective_date})`) : null);
}

function getTitle(scheme) {
  return reasonText({ text: scheme.title, text_zh: scheme.title_zh });
}

/** A hit's title: its rule's, else (a scheme's or an imported listing's hit) its scheme and status. */
function hitTitle(rules, hit) {
  const title = ruleTitle(rules, hit.rule_id);
  const ev = hit.evidence || {};
  if (title !== hit.rule_id || !ev.scheme) return title;
  return `${ev.scheme}: ${ev.status}${ev.clause ? ` (${ev.clause})` : ""}`;
}
