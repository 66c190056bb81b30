// Small DOM helpers. Text from the API is always set as text, never parsed as HTML.
import { t, getLang } from "./i18n.js";

/** An element: h("a", {href: "#", class: "x", onclick: fn}, "text", child, ...). */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") el.addEventListener(name.slice(2), value);
    else if (name === "class") el.className = value;
    else if (name === "dataset") Object.assign(el.dataset, value);
    else if (value === true) el.setAttribute(name, "");
    else el.setAttribute(name, String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function typeLabel(type) { return t(`type.${type}`); }

export function entityHref(type, id) { return `#/entity/${encodeURIComponent(type)}/${encodeURIComponent(id)}`; }

export function entityLink(type, id) {
  return h("a", { href: entityHref(type, id), class: "entity-link", dataset: { type, id } }, id);
}

/** A grade badge; `cap`/`scoreGrade` mark a grade lowered by a rule. */
export function gradeBadge(grade, { cap = null, scoreGrade = null, large = false } = {}) {
  if (!grade) return h("span", { class: "grade grade-none" }, "–");
  const capped = cap && scoreGrade && scoreGrade !== grade;
  return h("span", {
    class: `grade grade-${grade}${large ? " grade-large" : ""}${capped ? " grade-capped" : ""}`,
    title: capped ? t("grade.capped", { g: scoreGrade }) : null,
    "data-grade": grade,
  }, grade, capped ? h("sup", {}, "cap") : null);
}

export function fmtNum(value, digits = 2) {
  if (value === null || value === undefined || Number.isNaN(value)) return "–";
  return Number(value).toLocaleString(getLang() === "zh" ? "zh-CN" : "en-GB",
    { maximumFractionDigits: digits, minimumFractionDigits: 0 });
}

export function fmtScore(value) { return value === null || value === undefined ? "–" : Number(value).toFixed(3); }

export function fmtTime(iso) {
  if (!iso) return "–";
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString(getLang() === "zh" ? "zh-CN" : "en-GB");
}

export function scoreBar(score) {
  const pct = Math.max(0, Math.min(1, Number(score) || 0)) * 100;
  return h("span", { class: "score" },
    h("span", { class: "score-bar" }, h("span", { style: `width:${pct.toFixed(1)}%` })),
    h("span", { class: "score-num" }, fmtScore(score)));
}

/** A personal value: "***" from the API is shown as a visible "masked" pill. */
export function valueCell(value) {
  if (value === "***") return h("span", { class: "masked", title: t("masked") }, "***");
  if (value === null || value === undefined || value === "") return h("span", { class: "muted" }, "–");
  if (typeof value === "number") return fmtNum(value, 4);
  if (typeof value === "object") return h("code", {}, JSON.stringify(value));
  return String(value);
}

/** A table from column labels and rows of cells. */
export function table(columns, rows, { cls = "data" } = {}) {
  return h("table", { class: cls },
    h("thead", {}, h("tr", {}, columns.map((c) => h("th", {}, c)))),
    h("tbody", {}, rows));
}

/** A message box for an API error (or anything thrown). */
export function errorBox(err) {
  const msg = err && err.message ? err.message : String(err);
  let key = "err.generic";
  if (err && err.status === 403) key = "err.forbidden";
  else if (err && err.status === 404) key = "err.notfound";
  else if (err && err.status === 503) key = "err.unavailable";
  return h("div", { class: "alert alert-error", role: "alert", "data-status": err && err.status }, t(key, { msg }));
}

export function loading() { return h("div", { class: "loading" }, t("loading")); }

/** A reason's text in the current language. */
export function reasonText(reason) {
  return getLang() === "zh" && reason.text_zh ? reason.text_zh : reason.text;
}
