// Models for model owners: versions per entity type, metrics, detail and promotion.
import { api } from "../api.js";
import { t } from "../i18n.js";
import { errorBox, fmtNum, fmtTime, h, loading, table, typeLabel } from "../ui.js";

const HEADLINE = ["roc_auc", "pr_auc", "ks", "brier", "n", "positives"];

/** Why a version's metrics are not shown (the API withholds them below 30 labels per class). */
function withheldText(m) {
  const c = m.label_counts;
  if (!c) return m.metrics_withheld;
  const min = 30;
  if (c.fraud < min) return t("models.withheld.fraud", { n: c.fraud, min });
  if (c.not_fraud < min) return t("models.withheld.clean", { n: c.not_fraud, min });
  return m.metrics_withheld;
}

function withheldNote(m) {
  return h("span", { class: "muted small", "data-testid": "metrics-withheld" }, withheldText(m));
}

export async function modelsPage(main) {
  main.replaceChildren(loading());
  let models;
  try {
    models = await api("/v1/models");
  } catch (err) {
    main.replaceChildren(errorBox(err));
    return;
  }
  const message = h("div", { "aria-live": "polite", "data-testid": "models-message" });
  const detail = h("section", { class: "panel", "data-testid": "model-detail", hidden: true });
  const byType = new Map();
  for (const m of models) {
    if (!byType.has(m.entity_type)) byType.set(m.entity_type, []);
    byType.get(m.entity_type).push(m);
  }
  const sections = [...byType.entries()].map(([type, list]) => h("section", { class: "panel", dataset: { type } },
    h("h3", {}, typeLabel(type)),
    table([t("models.version"), t("models.kind"), t("models.created"), "", t("models.features"), ...HEADLINE, "", ""],
      list.map((m) => h("tr", { dataset: { version: m.version, champion: String(m.champion) } },
        h("td", {}, h("button", { type: "button", class: "linkish", onclick: () => showDetail(m.version, detail) }, m.version)),
        h("td", {}, m.kind), h("td", {}, fmtTime(m.created_at)),
        h("td", {}, h("span", { class: m.champion ? "chip chip-champion" : "chip" }, m.champion ? t("models.champion") : t("models.candidate"))),
        h("td", { class: "num" }, m.n_features),
        m.metrics
          ? HEADLINE.map((k) => h("td", { class: "num" }, typeof m.metrics[k] === "number" ? fmtNum(m.metrics[k], 3) : "–"))
          : h("td", { colspan: HEADLINE.length }, withheldNote(m)),
        h("td", {}, m.champion || !championOf(list) ? null : h("button", { type: "button", "data-action": "compare",
          onclick: () => showCompare(championOf(list).version, m.version, detail) }, t("models.compare"))),
        h("td", {}, m.champion ? null : h("button", { type: "button", "data-action": "promote", onclick: async () => {
          if (!window.confirm(t("models.confirm", { v: m.version, t: typeLabel(type) }))) return;
          try {
            await promote(m.version);
            await modelsPage(main);
            main.querySelector("[data-testid=models-message]").replaceChildren(
              h("div", { class: "alert alert-ok" }, t("models.promoted", { v: m.version })));
          } catch (err) { message.replaceChildren(errorBox(err)); }
        } }, t("models.promote")))))),
    list[0].metrics && list[0].metrics.note ? h("p", { class: "muted small" }, list[0].metrics.note) : null));
  main.replaceChildren(h("h2", {}, t("models.title")), message,
    h("p", { class: "muted" }, t("models.report")), ...sections, detail);
}

function championOf(list) { return list.find((m) => m.champion) || null; }

/** Promote through the gate; when it refuses, ask for a reason and force it (both audited by the API). */
async function promote(version) {
  const path = `/v1/models/${encodeURIComponent(version)}/promote`;
  try {
    return await api(path, { method: "POST" });
  } catch (err) {
    if (err.code !== "promotion_refused") throw err;
    const reason = window.prompt(t("models.force", { msg: err.message }));
    if (!reason || !reason.trim()) throw err;
    return await api(path, { method: "POST", params: { force_reason: reason.trim() } });
  }
}

const SIDE = [["out_of_fold", "roc_auc"], ["out_of_fold", "ks"], ["out_of_time", "roc_auc"], ["out_of_time", "ks"],
  ["out_of_time", "n"], ["out_of_time", "positives"], ["out_of_time", "cut"]];

/** Champion and challenger side by side on the served run (GET /v1/models/compare). */
async function showCompare(champion, challenger, panel) {
  panel.hidden = false;
  panel.replaceChildren(loading());
  try {
    const c = await api("/v1/models/compare", { params: { champion, challenger } });
    const cell = (v) => h("td", { class: "num" }, typeof v === "number" ? fmtNum(v, 3) : v === null || v === undefined ? "–" : String(v));
    const grades = Object.keys(c.grade_migration);
    const cols = [...new Set(grades.flatMap((g) => Object.keys(c.grade_migration[g])))];
    panel.replaceChildren(h("h3", {}, t("models.compare"), " ", champion, " → ", challenger),
      h("div", { class: c.gate.allowed ? "alert alert-ok" : "alert alert-warn", role: "status", "data-testid": "gate" },
        c.gate.allowed ? t("models.gate.ok") : t("models.gate.refused", { why: c.gate.problems.join("; ") })),
      ...c.warnings.map((w) => h("div", { class: "alert alert-warn" }, w)),
      table(["", t("models.champion"), t("models.candidate")], [
        ...SIDE.map(([part, k]) => h("tr", {}, h("th", {}, `${part.replaceAll("_", " ")} ${k}`),
          cell(c.champion[part][k]), cell(c.challenger[part][k]))),
        h("tr", {}, h("th", {}, t("models.psi")), h("td", {}), cell(c.score_psi))]),
      h("p", {}, t("models.migration"), ` (${c.entities})`),
      table(["", ...cols], grades.map((g) => h("tr", {}, h("th", {}, g), ...cols.map((k) => cell(c.grade_migration[g][k] || 0))))),
      h("p", {}, t("models.changed", { n: c.changed_total })),
      table(["id", t("models.champion"), t("models.candidate"), t("models.reasons")], c.changed.map((e) => h("tr", {},
        h("td", {}, e.entity_id), h("td", {}, `${e.champion_grade} (${fmtNum(e.champion_risk, 3)})`),
        h("td", {}, `${e.challenger_grade} (${fmtNum(e.challenger_risk, 3)})`),
        h("td", { class: "small" }, e.reasons.map((r) => r.text).join("; "))))));
    panel.scrollIntoView({ behavior: "smooth" });
  } catch (err) {
    panel.replaceChildren(errorBox(err));
  }
}

async function showDetail(version, panel) {
  panel.hidden = false;
  panel.replaceChildren(loading());
  try {
    const [d, m] = await Promise.all([api(`/v1/models/${encodeURIComponent(version)}`),
      api(`/v1/models/${encodeURIComponent(version)}/metrics`)]);
    const metrics = m.metrics || {};
    const scalar = Object.entries(metrics).filter(([, v]) => typeof v !== "object" || v === null);
    const nested = Object.entries(metrics).filter(([, v]) => typeof v === "object" && v !== null);
    panel.replaceChildren(h("h3", {}, t("models.detail"), " ", version),
      m.metrics ? null : h("div", { class: "alert alert-warn", role: "status" }, withheldNote(m)),
      h("dl", { class: "kv" }, scalar.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, typeof v === "number" ? fmtNum(v, 4) : String(v))])),
      ...nested.map(([k, v]) => h("details", {}, h("summary", {}, k === "calibration" ? t("models.calibration") : k),
        h("pre", {}, JSON.stringify(v, null, 1)))),
      h("details", {}, h("summary", {}, `${t("models.features")} (${d.features.length})`), h("p", { class: "small" }, d.features.join(", "))),
      h("details", {}, h("summary", {}, "params"), h("pre", {}, JSON.stringify(d.params, null, 1))));
    panel.scrollIntoView({ behavior: "smooth" });
  } catch (err) {
    panel.replaceChildren(errorBox(err));
  }
}
