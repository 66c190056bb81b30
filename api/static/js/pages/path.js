// Path search between two entities: a form used on the entity page and on its own page.
import { api, ENTITY_TYPES, query } from "../api.js";
import { createExplorer } from "../explorer.js";
import { t } from "../i18n.js";
import { entityLink, errorBox, gradeBadge, h, typeLabel } from "../ui.js";

function endInputs(name, value) {
  const type = h("select", { name: `${name}_type`, "aria-label": `${t(`path.${name === "source" ? "from" : "to"}`)} ${t("col.type")}` },
    ENTITY_TYPES.map((et) => h("option", { value: et, selected: value && value.type === et }, typeLabel(et))));
  const id = h("input", { name: `${name}_id`, value: (value && value.id) || "", size: 12, required: true,
    placeholder: t("search.placeholder") });
  return { type, id };
}

/** The form; `onResult(pathOut)` gets each found path. */
export function pathForm({ source = null, target = null, onResult = () => {}, onSubmitted = null } = {}) {
  const src = endInputs("source", source);
  const dst = endInputs("target", target);
  const maxHops = h("select", { name: "max_hops" }, [2, 3, 4, 5, 6].map((n) => h("option", { value: n, selected: n === 6 }, n)));
  const result = h("div", { class: "path-result", "data-testid": "path-result", "aria-live": "polite" });
  const form = h("form", { class: "filters path-form", "data-testid": "path-form", onsubmit: async (ev) => {
    ev.preventDefault();
    const params = { source_type: src.type.value, source_id: src.id.value.trim(), target_type: dst.type.value,
      target_id: dst.id.value.trim(), max_hops: maxHops.value };
    if (onSubmitted) onSubmitted(params);
    result.replaceChildren(t("loading"));
    try {
      const p = await api("/v1/paths", { params });
      if (!p.found) {
        result.replaceChildren(h("p", { class: "alert alert-warn", dataset: { found: "false" } }, t("path.notfound", { n: params.max_hops })));
        return;
      }
      result.replaceChildren(h("p", { class: "alert alert-ok", dataset: { found: "true", hops: p.hops } }, t("path.found", { n: p.hops })),
        pathSteps(p));
      onResult(p);
    } catch (err) {
      result.replaceChildren(errorBox(err));
    }
  } },
  h("label", {}, t("path.from"), src.type, src.id), h("label", {}, t("path.to"), dst.type, dst.id),
  h("label", {}, t("path.max"), maxHops), h("button", { type: "submit", class: "primary" }, t("path.find")));
  const element = h("section", { class: "panel" }, h("h3", {}, t("path.title")), form, result);
  return {
    element, submit: () => form.requestSubmit(),
    setEnd(end, node) {
      const ins = end === "source" ? src : dst;
      ins.type.value = node.type;
      ins.id.value = node.id;
      element.scrollIntoView({ behavior: "smooth", block: "center" });
    },
  };
}

/** The path as a chain: node -REL-> node ... (the API lists nodes and edges; walk the edges from the source). */
function pathSteps(p) {
  const key = (type, id) => `${type}:${id}`;
  const nodes = new Map(p.nodes.map((n) => [key(n.type, n.id), n]));
  const adj = new Map();
  for (const e of p.edges) {
    const a = key(e.source_type, e.source_id);
    const b = key(e.target_type, e.target_id);
    if (!adj.has(a)) adj.set(a, []);
    if (!adj.has(b)) adj.set(b, []);
    adj.get(a).push([b, e.relation]);
    adj.get(b).push([a, e.relation]);
  }
  const start = p.nodes.length ? key(p.nodes[0].type, p.nodes[0].id) : null;
  const chain = [];
  const seen = new Set();
  let cur = start;
  let rel = null;
  while (cur && !seen.has(cur)) {
    seen.add(cur);
    chain.push([nodes.get(cur), rel]);
    const next = (adj.get(cur) || []).find(([n]) => !seen.has(n));
    cur = next ? next[0] : null;
    rel = next ? next[1] : null;
  }
  const label = (n) => (["person", "employer", "clinic", "pharmacy", "agency"].includes(n.type)
    ? entityLink(n.type, n.id) : h("span", { class: "identifier" }, `${typeLabel(n.type)} ${n.id}`));
  return h("ol", { class: "path-steps" }, chain.map(([n, r]) => h("li", {},
    r ? h("span", { class: "rel" }, `— ${r} —`) : null, " ", h("span", { class: `type-pill type-${n.type}` }, typeLabel(n.type)), " ",
    label(n), " ", n.grade ? gradeBadge(n.grade) : null)));
}

/** The standalone page: the form and a graph of the path found. */
export function pathPage(main, { params }) {
  const explorer = createExplorer({});
  const val = (end) => (params.get(`${end}_id`) ? { type: params.get(`${end}_type`) || "person", id: params.get(`${end}_id`) } : null);
  const form = pathForm({ source: val("source"), target: val("target"),
    onResult: (g) => explorer.overlay(g, "path", { replace: true }),
    onSubmitted: (p) => history.replaceState(null, "", `#/path?${query(p)}`) });
  main.replaceChildren(h("h2", {}, t("path.title")), form.element, explorer.element);
  if (val("source") && val("target")) form.submit();
}
