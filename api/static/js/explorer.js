// The interactive explorer used by the entity, ring and path pages. It grows progressively: the
// root's direct neighbours first (a batch at a time), then a node's neighbours when it is expanded;
// everything fetched but not drawn is counted as hidden. Rings can be drawn in focus.
import { api, REL_TYPES, ENTITY_TYPES } from "./api.js";
import { t } from "./i18n.js";
import { GraphView, isEntityType, legend, nodeKey } from "./graph.js";
import { h, entityHref, errorBox, gradeBadge, typeLabel, valueCell } from "./ui.js";

export const BATCH = 25;          // nodes drawn per expansion or "show more"
const FETCH_LIMIT = 1000;         // a node's whole neighbourhood, up to the API's cap
const GRADE_RANK = { D: 0, C: 1, B: 3, A: 4 };

/** Which neighbours to draw first: bad grades, then shared identifiers, then by the link's weight. */
function rank(node, weight) {
  const g = node.grade ? GRADE_RANK[node.grade] : (isEntityType(node.type) ? 5 : 2);
  return [g ?? 5, -weight, node.type, node.id];
}

function cmp(a, b) {
  for (let i = 0; i < a.length; i += 1) if (a[i] !== b[i]) return a[i] < b[i] ? -1 : 1;
  return 0;
}

/** The explorer panel; `root` ({type, id}) is the entity whose neighbourhood it starts from (optional). */
export function createExplorer({ root = null, onPathEnd = null } = {}) {
  const status = h("span", { class: "graph-status", "data-testid": "graph-status", "aria-live": "polite" });
  const errors = h("div", { class: "graph-errors" });
  const canvas = h("div", { class: "graph-canvas", "data-testid": "graph-canvas" });
  const info = h("div", { class: "graph-info", "data-testid": "graph-selected" }, h("p", { class: "muted" }, t("graph.noselection")));
  const nodeList = h("ul", { class: "node-list", "data-testid": "graph-node-list" });
  const colour = h("select", { name: "colour", "aria-label": t("graph.colour") },
    h("option", { value: "type" }, t("graph.bytype")), h("option", { value: "risk" }, t("graph.byrisk")));
  const relBoxes = REL_TYPES.map((rel) => h("label", { class: "rel-box" },
    h("input", { type: "checkbox", value: rel, checked: true, name: "rel" }), rel));
  const relFilter = h("details", { class: "rel-filter" }, h("summary", {}, t("graph.rels")), h("div", {}, relBoxes));
  const moreButton = h("button", { type: "button", "data-action": "more", hidden: true, onclick: () => showMore() });
  const focusButton = h("button", { type: "button", "data-action": "focus", hidden: true, onclick: () => toggleFocus() });

  // What is known (fetched) and what is drawn: the view holds the drawn nodes.
  const known = new Map();       // key -> node
  const knownEdges = new Map();  // edge id -> edge
  const links = new Map();       // key -> Map(neighbour key -> link weight)
  const fetched = new Map();     // key -> true when its whole neighbourhood is known (false: the API cut it)
  const order = [];              // expanded keys, oldest first: "show more" serves them in this order
  let ring = null;               // {keys, members} of the ring in focus (or that was)
  let view = null;

  const panel = h("section", { class: "panel explorer", "data-testid": "explorer" },
    h("div", { class: "explorer-toolbar" },
      root ? h("button", { type: "button", "data-action": "reset", onclick: () => reload() }, t("graph.reset")) : null,
      moreButton, focusButton,
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

  function remember(graph) {
    for (const n of graph.nodes) {
      const key = nodeKey(n.type, n.id);
      const old = known.get(key);
      known.set(key, old ? { ...old, ...n, grade: n.grade || old.grade, attributes: { ...old.attributes, ...n.attributes } } : n);
    }
    for (const e of graph.edges) {
      const s = nodeKey(e.source_type, e.source_id);
      const d = nodeKey(e.target_type, e.target_id);
      knownEdges.set(`${s}|${e.relation}|${d}`, e);
      for (const [a, b] of [[s, d], [d, s]]) {
        if (!links.has(a)) links.set(a, new Map());
        links.get(a).set(b, (links.get(a).get(b) || 0) + (Number(e.count) || 1));
      }
    }
  }

  /** Neighbours of `key` that are known but not drawn, best first. */
  function hiddenNeighbours(key) {
    const around = links.get(key);
    if (!around) return [];
    return [...around.entries()].filter(([k]) => !view.has(k) && known.has(k))
      .sort(([ka, wa], [kb, wb]) => cmp(rank(known.get(ka), wa), rank(known.get(kb), wb))).map(([k]) => k);
  }

  function hiddenTotal() {
    let n = 0;
    for (const key of known.keys()) if (!view.has(key)) n += 1;
    return n;
  }

  /** Draw `keys` (known nodes) and every known edge between drawn nodes. */
  function draw(keys, cls = "") {
    const added = view.merge({ nodes: keys.map((k) => known.get(k)), edges: [...knownEdges.values()] }, { cls });
    view.markFresh(added);
    return added;
  }

  function refresh(truncatedNote = false) {
    const counts = new Map();
    for (const key of fetched.keys()) counts.set(key, hiddenNeighbours(key).length);
    view.setHiddenCounts(counts);
    const c = view.counts();
    const hidden = hiddenTotal();
    const cut = [...fetched.values()].some((whole) => !whole);
    status.textContent = [t("graph.nodes", { n: c.nodes, e: c.edges }),
      hidden ? t("graph.hidden", { n: hidden }) : null, cut || truncatedNote ? t("graph.truncated") : null]
      .filter(Boolean).join(" · ");
    status.dataset.hidden = String(hidden);
    moreButton.hidden = hidden === 0;
    moreButton.textContent = t("graph.more", { n: Math.min(BATCH, hidden) });
    focusButton.hidden = !ring;
    focusButton.textContent = view.focused ? t("graph.unfocus") : t("graph.focus");
    focusButton.setAttribute("aria-pressed", String(view.focused));
    nodeList.replaceChildren(...view.nodes()
      .sort((a, b) => (a.type + a.id).localeCompare(b.type + b.id))
      .map((n) => h("li", {}, h("button", { type: "button", class: "linkish", dataset: { key: nodeKey(n.type, n.id) },
        onclick: () => view.select(n.type, n.id) }, `${typeLabel(n.type)} ${n.id}`), n.grade ? gradeBadge(n.grade) : null)));
  }

  function showInfo(node) {
    if (!node) { info.replaceChildren(h("p", { class: "muted" }, t("graph.noselection"))); return; }
    const key = nodeKey(node.type, node.id);
    const entity = isEntityType(node.type);
    const attrs = Object.entries(node.attributes || {}).filter(([k]) => k !== "member");
    const hidden = fetched.has(key) ? hiddenNeighbours(key).length : null;
    info.replaceChildren(...[
      h("div", { class: "sel-head" }, h("strong", {}, `${typeLabel(node.type)} ${node.id}`), " ", node.grade ? gradeBadge(node.grade) : null),
      entity ? null : h("p", { class: "muted small" }, t("graph.identifier")),
      attrs.length ? h("dl", { class: "kv small" }, attrs.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, valueCell(v))])) : null,
      hidden !== null ? h("p", { class: "muted small", "data-testid": "node-hidden" },
        hidden ? t("graph.nodehidden", { n: hidden }) : t("graph.allshown")) : null,
      h("div", { class: "sel-actions" },
        entity && hidden !== 0 ? h("button", { type: "button", "data-action": "expand", onclick: () => expand(node) }, t("graph.expand")) : null,
        entity ? h("a", { class: "button", href: entityHref(node.type, node.id) }, t("graph.open")) : null,
        entity && onPathEnd ? h("button", { type: "button", onclick: () => onPathEnd("source", node) }, t("graph.pathfrom")) : null,
        entity && onPathEnd ? h("button", { type: "button", onclick: () => onPathEnd("target", node) }, t("graph.pathto")) : null),
    ].filter(Boolean));
  }

  function ensureView() {
    if (!view) {
      view = new GraphView(canvas, { onSelect: showInfo, onExpand: (node) => expand(node) });
      colour.addEventListener("change", () => view.setColourBy(colour.value));
      relBoxes.forEach((b) => b.addEventListener("change", () => {
        view.setHiddenRels(REL_TYPES.filter((r) => !selectedRels().includes(r)));
        refresh();
      }));
    }
    return view;
  }

  async function fetchAround(node) {
    const key = nodeKey(node.type, node.id);
    if (fetched.has(key)) return;
    const g = await api(`/v1/entities/${encodeURIComponent(node.type)}/${encodeURIComponent(node.id)}/neighbours`,
      { params: { hops: 1, limit: FETCH_LIMIT } });
    remember(g);
    fetched.set(key, !g.truncated);
    if (!order.includes(key)) order.push(key);
  }

  /** The root and the first batch of its neighbours (again from scratch). */
  async function reload() {
    if (!root) return;
    ensureView();
    errors.replaceChildren();
    status.textContent = t("loading");
    known.clear(); knownEdges.clear(); links.clear(); fetched.clear(); order.length = 0; ring = null;
    view.clear();
    try {
      await fetchAround(root);
      const key = nodeKey(root.type, root.id);
      if (!known.has(key)) known.set(key, { type: root.type, id: root.id, attributes: {} });
      draw([key, ...hiddenNeighbours(key).slice(0, BATCH)]);
      view.setRoot(root.type, root.id);
      refresh();
      await view.layout();
      refresh();
    } catch (err) {
      errors.replaceChildren(errorBox(err));
      status.textContent = "";
    }
  }

  /** Draw the next batch of `node`'s neighbours (fetched the first time). */
  async function expand(node, { batch = BATCH, layout = true } = {}) {
    if (!node || !ENTITY_TYPES.includes(node.type)) return [];
    ensureView();
    errors.replaceChildren();
    const key = nodeKey(node.type, node.id);
    try {
      await fetchAround(node);
      const added = draw([key, ...hiddenNeighbours(key).slice(0, batch)]);  // the node too: its attributes are known now
      if (layout) {
        refresh();
        await view.layout({ around: key, fit: false });
        view.fit();
        view.select(node.type, node.id);
      }
      refresh();
      panel.dataset.expanded = String((Number(panel.dataset.expanded) || 0) + 1);
      return added;
    } catch (err) {
      errors.replaceChildren(errorBox(err));
      return [];
    }
  }

  /** The next batch of hidden nodes, from the oldest expanded node on. */
  async function showMore() {
    const picked = [];
    for (const key of order) {
      for (const k of hiddenNeighbours(key)) {
        if (picked.length >= BATCH) break;
        if (!picked.includes(k)) picked.push(k);
      }
    }
    if (!picked.length) return;
    draw(picked);
    refresh();
    await view.layout({ around: order[0], fit: true });
    refresh();
  }

  /** Add a graph (ring evidence or a path) with `cls` on its elements, laid out again. */
  async function overlay(graph, cls, { replace = false } = {}) {
    ensureView();
    if (replace) { known.clear(); knownEdges.clear(); links.clear(); fetched.clear(); order.length = 0; view.clear(); }
    view.clearClass(cls);
    remember(graph);
    draw(graph.nodes.map((n) => nodeKey(n.type, n.id)), cls);
    if (root) view.setRoot(root.type, root.id);
    refresh(graph.truncated);
    await view.layout({ fit: true });
    refresh(graph.truncated);
  }

  /** Draw a ring (RingDetail) in focus: its members and shared identifiers stand out, the rest is dimmed.
   * `surroundings`: also draw up to `perMember` neighbours of each member (dimmed), as context. */
  async function focusRing(detail, { replace = false, surroundings = false, perMember = 4 } = {}) {
    ensureView();
    const graph = detail.subgraph;
    if (replace) { known.clear(); knownEdges.clear(); links.clear(); fetched.clear(); order.length = 0; view.clear(); }
    view.clearClass("in-ring");
    remember(graph);
    draw(graph.nodes.map((n) => nodeKey(n.type, n.id)), "in-ring");
    ring = { keys: graph.nodes.map((n) => nodeKey(n.type, n.id)), members: detail.members.map((m) => nodeKey(m.type, m.id)) };
    view.focus(ring.keys, ring.members);
    if (root) view.setRoot(root.type, root.id);
    if (surroundings) {
      status.textContent = t("loading");
      await Promise.all(detail.members.slice(0, 20).map((m) => expand(m, { batch: perMember, layout: false })));
    }
    refresh();
    await view.layout({ fit: false });
    view.fit(view.cy.nodes(".in-ring"));
    refresh();
    panel.dataset.focus = "on";
  }

  function toggleFocus() {
    if (!ring) return;
    if (view.focused) view.clearFocus(); else view.focus(ring.keys, ring.members);
    panel.dataset.focus = view.focused ? "on" : "off";
    refresh();
  }

  return {
    element: panel, reload, expand, overlay, focusRing, showMore,
    clearFocus() { if (view && view.focused) toggleFocus(); },
    get view() { return ensureView(); },
  };
}
