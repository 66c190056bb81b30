// Rule titles (en/zh) from GET /v1/rules, fetched once per page load.
import { api } from "./api.js";
import { getLang } from "./i18n.js";

let cache = null;

export async function loadRules() {
  if (cache === null) {
    cache = api("/v1/rules").then((rules) => new Map(rules.map((r) => [r.rule_id, r]))).catch(() => new Map());
  }
  return cache;
}

export function ruleTitle(rules, ruleId) {
  const r = rules.get(ruleId);
  if (!r) return ruleId;
  return getLang() === "zh" ? r.title_zh || r.title_en : r.title_en || r.title_zh;
}
