// The router: #/risk/TYPE, #/entity/TYPE/ID, #/rings, #/ring/ID, #/path, #/models, #/key.
import { ApiError, ENTITY_TYPES, getKey, roleHint } from "./api.js";
import { applyStatic, getLang, setLang, t } from "./i18n.js";
import { h, typeLabel, errorBox } from "./ui.js";
import { keyPage } from "./pages/key.js";
import { riskPage } from "./pages/risk.js";
import { entityPage } from "./pages/entity.js";
import { ringPage, ringsPage } from "./pages/rings.js";
import { pathPage } from "./pages/path.js";
import { modelsPage } from "./pages/models.js";

const main = document.getElementById("main");

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
  select.value = sessionStorage.getItem("riskgraph.searchType") || "clinic";
  const section = parseHash().parts[0] || "risk";
  document.querySelectorAll("#nav a").forEach((a) => a.classList.toggle("active", a.dataset.section === section
    || (a.dataset.section === "rings" && section === "ring")));
}

async function route() {
  renderChrome();
  const { parts, params } = parseHash();
  const [section, ...rest] = parts;
  window.scrollTo(0, 0);
  if (section === "key") return keyPage(main, { next: params.get("next") || "#/risk/person" });
  if (!getKey()) return keyPage(main, { next: location.hash && location.hash !== "#/key" ? location.hash : "#/risk/person", message: t("key.needed") });
  document.body.dataset.page = section || "risk";
  try {
    if (!section || section === "risk") return await riskPage(main, { type: rest[0] || "person", params });
    if (section === "entity" && rest.length >= 2) return await entityPage(main, { type: rest[0], id: rest.slice(1).join("/") });
    if (section === "rings") return await ringsPage(main, { params });
    if (section === "ring" && rest.length) return await ringPage(main, { id: rest.join("/") });
    if (section === "path") return pathPage(main, { params });
    if (section === "models") return await modelsPage(main);
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
