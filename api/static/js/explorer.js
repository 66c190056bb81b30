// The interactive neighbourhood explorer used by the entity, ring and path pages.
import { api, REL_TYPES, ENTITY_TYPES } from "./api.js";
import { t } from "./i18n.js";
import { GraphView, isEntityType, legend, nodeKey } from "./graph.js";
import { h, entityHref, errorBox, gradeBadge, typeLabel, valueCell } from "./ui.js";

const EXPAND_LIMIT = 60;

/** The explorer panel; `root` ({type, id}) is the entity whose neighbourhood it starts from (optional). */
export function createExplorer({ root = null, onPathEnd = null } = {}) {
  const status = h("span", { class: "graph-status", "data-testid": "graph-status" });
  const errors = h("div", { class: "graph-errors" });
  const canvas = h("div", { class: "graph-canvas", "data-testid": "graph-canvas" });
  const info = h("div", { class: "graph-info", "data-testid": "graph-selected" }, h("p", { class: "muted" }, t("graph.noselection")));
  const nodeList = h("ul", { class: "node-list", "data-testid": "graph-node-list" });
  const hops = h("select", { name: "hops", "aria-label": t("graph.hops") },
    [1, 2, 3].map((n) => h("option", { value: n, selected: n === 1 }, n)));
  const limit = h("select", { name: "limit", "aria-label": t("graph.limit") },
    [30, 60, 120, 250, 500].map((n) => h("option", { value: n, selected: n === 60 }, n)));
  const colour = h("select", { name: "colour", "aria-label": t("graph.colour") },
    h("option", { value: "type" }, t("graph.bytype")), h("option", { value: "risk" }, t("graph.byrisk")));
  const relBoxes = REL_TYPES.map((rel) => h("label", { class: "rel-box" },
    h("input", { type: "checkbox", value: rel, checked: true, name: "rel" }), rel));
  const relFilter = h("details", { class: "rel-filter" }, h("summary", {}, t("graph.rels")), h("div", {}, relBoxes));

  let view = null;
  const panel = h("section", { class: "panel explorer", "data-testid": "explorer" },
    h("div", { class: "explorer-toolbar" },
      root ? [h("label", {}, t("graph.hops"), " ", hops), h("label", {}, t("graph.limit"), " ", limit),
        h("button", { type: "button", onclick: () => reload() }, t("graph.reload"))] : null,
      h("label", {}, t("graph.colour"), " ", colour), relFilter,
      h("button", { type: "button", onclick: () => view && view.fit() }, t("graph.fit")), status),
    errors,
    h("div", { class: "explorer-body" }, canvas,
      h("aside", { class: "explorer-side" }, h("h4", {}, t("graph.selected")), info,
        h("h4", {}, t("graph.nodelist")), nodeList)),
    h("p", { class: "muted small" }, t("graph.help")), legend());

  function selectedRels() {
    return relBoxes.map((b) => b.querySelector("input")).filter((i) => i.checked).map((i) => i.value);
  }

  function relParams() {
    const rels = selectedRels();
    return rels.length === REL_TYPES.length ? undefined : rels;
  }

  function refreshStatus(truncated = false) {
    const c = view.counts();
    status.textContent = `${t("graph.nodes", { n: c.nodes, e: c.edges })}${truncated ? ` ${t("graph.truncated")}` : ""}`;
    nodeList.replaceChildren(...view.nodes()
      .sort((a, b) => (a.type + a.id).localeCompare(b.type + b.id))
      .map((n) => h("li", {}, h("button", { type: "button", class: "linkish", dataset: { key: nodeKey(n.type, n.id) },
        onclick: () => view.select(n.type, n.id) }, `${typeLabel(n.type)} ${n.id}`), n.grade ? gradeBadge(n.grade) : null)));
  }

  function showInfo(node) {
    if (!node) { info.replaceChildren(h("p", { class: "muted" }, t("graph.noselection"))); return; }
    const entity = isEntityType(node.type);
    const attrs = Object.entries(node.attributes || {}).filter(([k]) => k !== "member");
    info.replaceChildren(...[
      h("div", { class: "sel-head" }, h("strong", {}, `${typeLabel(node.type)} ${node.id}`), " ", node.grade ? gradeBadge(node.grade) : null),
      entity ? null : h("p", { class: "muted small" }, t("graph.identifier")),
      attrs.length ? h("dl", { class: "kv small" }, attrs.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, valueCell(v))])) : null,
      entity ? h("div", { class: "sel-actions" },
        h("button", { type: "button", "data-action": "expand", onclick: () => expand(node) }, t("graph.expand")),
        h("a", { class: "button", href: entityHref(node.type, node.id) }, t("graph.open")),
        onPathEnd ? h("button", { type: "button", onclick: () => onPathEnd("source", node) }, t("graph.pathfrom")) : null,
        onPathEnd ? h("button", { type: "button", onclick: () => onPathEnd("target", node) }, t("graph.pathto")) : null) : null,
    ].filter(Boolean));
  }

  function ensureView() {
    if (!view) {
      view = new GraphView(canvas, { onSelect: showInfo, onExpand: (node) => expand(node) });
      colour.addEventListener("change", () => view.setColourBy(colour.value));
      relBoxes.forEach((b) => b.addEventListener("change", () => {
        view.setHiddenRels(REL_TYPES.filter((r) => !selectedRels().includes(r)));
        refreshStatus();
      }));
    }
    return view;
  }

  async function reload() {
    if (!root) return;
    ensureView();
    errors.replaceChildren();
    status.textContent = t("loading");
    try {
      const g = await api(`/v1/entities/${encodeURIComponent(root.type)}/${encodeURIComponent(root.id)}/neighbours`,
        { params: { hops: hops.value, limit: limit.value, rel_type: relParams() } });
      view.clear();
      view.merge(g);
      view.setRoot(root.type, root.id);
      view.layout();
      refreshStatus(g.truncated);
    } catch (err) {
      errors.replaceChildren(errorBox(err));
      status.textContent = "";
    }
  }

  async function expand(node) {
    if (!node || !ENTITY_TYPES.includes(node.type)) return;
    ensureView();
    errors.replaceChildren();
    try {
      const g = await api(`/v1/entities/${encodeURIComponent(node.type)}/${encodeURIComponent(node.id)}/neighbours`,
        { params: { hops: 1, limit: EXPAND_LIMIT, rel_type: relParams() } });
      const added = view.merge(g);
      view.markFresh(added);
      view.layout({ around: nodeKey(node.type, node.id), fit: false });
      view.fit();
      view.select(node.type, node.id);
      refreshStatus(g.truncated);
      panel.dataset.expanded = String((Number(panel.dataset.expanded) || 0) + 1);
    } catch (err) {
      errors.replaceChildren(errorBox(err));
    }
  }

  /** Add a graph (ring evidence or a path) with `cls` on its elements, laid out again. */
  function overlay(graph, cls, { replace = false } = {}) {
    ensureView();
    if (replace) view.clear();
    view.clearClass(cls);
    const added = view.merge(graph, { cls });
    if (root) view.setRoot(root.type, root.id);
    view.markFresh(added);
    view.layout({ fit: true });
    refreshStatus(graph.truncated);
  }

  return { element: panel, reload, expand, overlay, get view() { return ensureView(); } };
}
