// The router: #/risk/TYPE, #/entity/TYPE/ID, #/rings, #/ring/ID, #/path, #/cases, #/case/ID,
// #/objections, #/objection/ID, #/labels, #/models, #/review, #/key.
import { api, ApiError, ENTITY_TYPES, getKey, roleHint } from "./api.js";
import { applyStatic, getLang, setLang, t } from "./i18n.js";
import { h, typeLabel, errorBox } from "./ui.js";
import { keyPage } from "./pages/key.js";
import { riskPage } from "./pages/risk.js";
import { entityPage } from "./pages/entity.js";
import { ringPage, ringsPage } from "./pages/rings.js";
import { pathPage } from "./pages/path.js";
import { modelsPage } from "./pages/models.js";
import { reviewPage } from "./pages/review.js";
import { casePage, casesPage } from "./pages/cases.js";
import { labelsPage, objectionPage, objectionsPage } from "./pages/objections.js";

const main = document.getElementById("main");

// What each role may open (docs/api.md), and where it lands after the key is given.
const GRAPH_ROLES = ["inspector", "investigator", "admin"];
const SECTION_ROLES = {
  risk: ["inspector", "investigator", "model_owner", "admin"], rings: GRAPH_ROLES, ring: GRAPH_ROLES,
  path: GRAPH_ROLES, entity: GRAPH_ROLES, models: ["model_owner", "admin"], review: ["investigator", "admin"],
  cases: GRAPH_ROLES, case: GRAPH_ROLES,
  objections: GRAPH_ROLES, objection: GRAPH_ROLES, labels: ["inspector", "investigator", "model_owner", "admin"],
};
const LANDING = { inspector: "#/risk/person", investigator: "#/risk/person", admin: "#/risk/person",
  model_owner: "#/models", approval_system: null };
const roleCache = new Map();   // key -> promise of its role (or a stand-in with the same rights)

/** The stored key's role: named by a development key, else found by what the key may list. */
function keyRole() {
  const key = getKey();
  if (!key) return Promise.resolve(null);
  if (roleHint(key)) return Promise.resolve(roleHint(key));
  if (!roleCache.has(key)) {
    const may = (path) => api(path, { params: { limit: 1 } }).then(() => true, (err) => {
      if (err instanceof ApiError && err.status === 403) return false;
      throw err;
    });
    roleCache.set(key, (async () => {
      if (await may("/v1/rings")) return "inspector";          // inspector, investigator, admin
      if (await may("/v1/models")) return "model_owner";
      return "approval_system";
    })().catch((err) => { roleCache.delete(key); throw err; }));
  }
  return roleCache.get(key);
}

function noPagesFor(role) {
  return h("section", { class: "panel narrow", "data-testid": "no-pages" },
    h("h2", {}, t("landing.title")), h("p", {}, t("landing.nopages", { role })),
    h("p", {}, h("a", { href: "#/key" }, t("nav.key"))));
}

function parseHash() {
  const raw = location.hash.replace(/^#\/?/, "");
  const [path, qs = ""] = raw.split("?");
  return { parts: path.split("/").filter(Boolean).map(decodeURIComponent), params: new URLSearchParams(qs) };
}

function renderChrome() {
  applyStatic();
  const role = document.getElementById("role");
  role.textContent = getKey() ? (roleHint() || t("role.unknown")) : t("role.none");
  const select = document.getElementById("search-type");
  select.replaceChildren(...ENTITY_TYPES.map((et) => h("option", { value: et }, typeLabel(et))));
  select.value = sessionStorage.getItem("riskgraph.searchType") || "person";
  const section = parseHash().parts[0] || "risk";
  document.querySelectorAll("#nav a").forEach((a) => a.classList.toggle("active", a.dataset.section === section
    || (a.dataset.section === "rings" && section === "ring") || (a.dataset.section === "cases" && section === "case")
    || (a.dataset.section === "objections" && section === "objection")));
  keyRole().then((r) => {
    document.querySelectorAll("#nav a").forEach((a) => {
      const allowed = SECTION_ROLES[a.dataset.section];
      a.hidden = Boolean(r && allowed && !allowed.includes(r));
    });
    document.getElementById("search").hidden = Boolean(r && !GRAPH_ROLES.includes(r));
  }, () => {});
}

async function route() {
  renderChrome();
  const { parts, params } = parseHash();
  const [section, ...rest] = parts;
  window.scrollTo(0, 0);
  if (section === "key") return keyPage(main, { next: params.get("next") || "#/" });
  if (!getKey()) return keyPage(main, { next: location.hash && location.hash !== "#/key" ? location.hash : "#/", message: t("key.needed") });
  document.body.dataset.page = section || "landing";
  try {
    if (!section) {   // the landing page: the first page the key's role may use
      const role = await keyRole();
      const landing = LANDING[role];
      if (!landing) return main.replaceChildren(noPagesFor(role));
      history.replaceState(null, "", landing);
      return await route();
    }
    if (section === "risk") return await riskPage(main, { type: rest[0] || "person", params });
    if (section === "entity" && rest.length >= 2) return await entityPage(main, { type: rest[0], id: rest.slice(1).join("/") });
    if (section === "rings") return await ringsPage(main, { params });
    if (section === "ring" && rest.length) return await ringPage(main, { id: rest.join("/") });
    if (section === "path") return pathPage(main, { params });
    if (section === "models") return await modelsPage(main);
    if (section === "review") return await reviewPage(main, { params });
    if (section === "cases") return await casesPage(main, { params });
    if (section === "case" && rest.length) return await casePage(main, { id: rest.join("/") });
    if (section === "objections") return await objectionsPage(main, { params });
    if (section === "objection" && rest.length) return await objectionPage(main, { id: rest.join("/") });
    if (section === "labels") return await labelsPage(main);
    main.replaceChildren(errorBox(new ApiError(404, "not_found", location.hash)));
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return keyPage(main, { next: location.hash, message: t("key.invalid") });
    main.replaceChildren(errorBox(err));
  } finally {
    main.dataset.ready = location.hash;   // tests wait for this
  }
}

document.getElementById("lang").addEventListener("click", () => { setLang(getLang() === "zh" ? "en" : "zh"); route(); });
document.getElementById("search").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const type = document.getElementById("search-type").value;
  const id = document.getElementById("search-id").value.trim();
  sessionStorage.setItem("riskgraph.searchType", type);
  if (id) location.hash = `#/entity/${encodeURIComponent(type)}/${encodeURIComponent(id)}`;
});
window.addEventListener("hashchange", route);
window.addEventListener("riskgraph:key", renderChrome);
route();
