// The graph explorer: a cytoscape view over API graphs (GraphOut), coloured by entity type or grade.
import { t } from "./i18n.js";
import { h, typeLabel } from "./ui.js";

export const TYPE_COLOURS = {
  person: "#4e79a7", employer: "#f28e2b", clinic: "#d37295", pharmacy: "#59a14f", agency: "#8c6d31",
  phone: "#9c9c9c", address: "#b5a48f", bank_account: "#8fa4b5",
};
export const GRADE_COLOURS = { A: "#2e7d32", B: "#9ab23a", C: "#ef8a17", D: "#c62828" };
const SHAPES = {
  person: "ellipse", employer: "round-rectangle", clinic: "diamond", pharmacy: "hexagon", agency: "triangle",
  phone: "round-tag", address: "round-tag", bank_account: "round-tag",
};
const ENTITY = new Set(["person", "employer", "clinic", "pharmacy", "agency"]);

export function nodeKey(type, id) { return `${type}:${id}`; }
export function isEntityType(type) { return ENTITY.has(type); }

function label(node) {
  const name = node.attributes && node.attributes.name;
  if (!isEntityType(node.type)) return node.id.length > 14 ? `${node.id.slice(0, 13)}…` : node.id;
  return name && name !== "***" ? `${node.id}\n${name}` : node.id;
}

export class GraphView {
  /** `container`: the element to draw in; `onSelect(node|null)`, `onExpand(node)` callbacks. */
  constructor(container, { onSelect = () => {}, onExpand = () => {} } = {}) {
    this.colourBy = "type";
    this.hiddenRels = new Set();
    this.onSelect = onSelect;
    this.cy = window.cytoscape({
      container, minZoom: 0.15, maxZoom: 3,
      style: this.style(),
    });
    this.cy.on("tap", "node", (ev) => this.onSelect(ev.target.data("node")));
    this.cy.on("tap", (ev) => { if (ev.target === this.cy) this.onSelect(null); });
    this.cy.on("dbltap", "node", (ev) => onExpand(ev.target.data("node")));
    container.rgGraph = this;  // for tests and the browser console
  }

  style() {
    return [
      { selector: "node", style: {
        "background-color": "data(fill)", "border-color": "data(stroke)", "border-width": 3,
        shape: "data(shape)", width: "data(size)", height: "data(size)", label: "data(label)",
        "font-size": 9, "text-wrap": "wrap", "text-valign": "bottom", "text-margin-y": 3, color: "#222",
        "text-background-color": "#fff", "text-background-opacity": 0.7, "text-background-padding": 1 } },
      { selector: "node.root", style: { "border-width": 6, "border-color": "#111", "font-weight": "bold" } },
      { selector: "node.member", style: { "border-width": 5, "border-style": "double", "border-color": "#6a1b9a" } },
      { selector: "node.path", style: { "border-width": 6, "border-color": "#1565c0" } },
      { selector: "node:selected", style: { "overlay-color": "#1565c0", "overlay-opacity": 0.25, "overlay-padding": 6 } },
      { selector: "edge", style: {
        width: "data(width)", "line-color": "#b8bec7", "curve-style": "bezier", label: "data(relation)",
        "font-size": 7, color: "#666", "text-rotation": "autorotate", "text-opacity": 0.8 } },
      { selector: "edge.path", style: { "line-color": "#1565c0", width: 4 } },
      { selector: ".hidden", style: { display: "none" } },
    ];
  }

  nodeData(node) {
    const typeColour = TYPE_COLOURS[node.type] || "#999";
    const gradeColour = GRADE_COLOURS[node.grade] || "#d0d0d0";
    const byRisk = this.colourBy === "risk";
    const entity = isEntityType(node.type);
    return {
      id: nodeKey(node.type, node.id), node, label: label(node), shape: SHAPES[node.type] || "ellipse",
      fill: byRisk ? (entity ? gradeColour : "#e0e0e0") : typeColour,
      stroke: byRisk ? typeColour : (entity ? gradeColour : "#bdbdbd"),
      size: entity ? (node.grade === "D" ? 34 : node.grade === "C" ? 28 : 24) : 14,
    };
  }

  /** Add the nodes and edges of `graph` (GraphOut); returns the keys of nodes that were new. */
  merge(graph, { cls = "" } = {}) {
    const added = [];
    const cy = this.cy;
    cy.batch(() => {
      for (const node of graph.nodes) {
        const key = nodeKey(node.type, node.id);
        const existing = cy.getElementById(key);
        if (existing.nonempty()) {
          const merged = { ...existing.data("node"), ...node,
            attributes: { ...existing.data("node").attributes, ...node.attributes } };
          existing.data(this.nodeData(merged));
        } else {
          cy.add({ group: "nodes", data: this.nodeData(node) });
          added.push(key);
        }
        if (cls) cy.getElementById(key).addClass(cls);
      }
      for (const e of graph.edges) {
        const s = nodeKey(e.source_type, e.source_id);
        const tgt = nodeKey(e.target_type, e.target_id);
        const id = `${s}|${e.relation}|${tgt}`;
        if (cy.getElementById(id).empty() && cy.getElementById(s).nonempty() && cy.getElementById(tgt).nonempty()) {
          cy.add({ group: "edges", data: { id, source: s, target: tgt, relation: e.relation, count: e.count,
            width: 1 + Math.min(5, Math.log2(1 + (e.count || 1))) } });
        }
        if (cls) cy.getElementById(id).addClass(cls);
      }
    });
    this.applyRelFilter();
    return added;
  }

  clear() { this.cy.elements().remove(); }

  /** Lay out the graph; with `around`, new nodes start near that node and old ones keep their place. */
  layout({ around = null, fit = true } = {}) {
    const cy = this.cy;
    if (around) {
      const centre = cy.getElementById(around).position();
      cy.nodes().filter((n) => n.data("fresh")).forEach((n, i) => {
        const a = (2 * Math.PI * i) / 12;
        n.position({ x: centre.x + 80 * Math.cos(a), y: centre.y + 80 * Math.sin(a) });
      });
    }
    const layout = cy.layout({ name: "cose", animate: false, randomize: !around, fit, padding: 24,
      nodeRepulsion: () => 9000, idealEdgeLength: () => 70, numIter: 600 });
    layout.run();
    if (fit && cy.zoom() > 1.3) { cy.zoom(1.3); cy.center(); }   // small graphs: no giant nodes
    cy.nodes().forEach((n) => n.removeData("fresh"));
  }

  markFresh(keys) { keys.forEach((k) => this.cy.getElementById(k).data("fresh", true)); }

  setRoot(type, id) {
    this.cy.nodes().removeClass("root");
    this.cy.getElementById(nodeKey(type, id)).addClass("root");
  }

  setColourBy(mode) {
    this.colourBy = mode;
    this.cy.batch(() => this.cy.nodes().forEach((n) => n.data(this.nodeData(n.data("node")))));
  }

  /** Hide edges of unchecked relationship types and the nodes left without a visible edge. */
  setHiddenRels(rels) { this.hiddenRels = new Set(rels); this.applyRelFilter(); }

  applyRelFilter() {
    const cy = this.cy;
    cy.batch(() => {
      cy.edges().forEach((e) => e.toggleClass("hidden", this.hiddenRels.has(e.data("relation"))));
      cy.nodes().forEach((n) => {
        const keep = n.hasClass("root") || n.hasClass("member") || n.hasClass("path") || n.connectedEdges().length === 0
          || n.connectedEdges().some((e) => !e.hasClass("hidden"));
        n.toggleClass("hidden", !keep);
      });
    });
  }

  clearClass(cls) { this.cy.elements().removeClass(cls); }

  select(type, id) {
    this.cy.nodes().unselect();
    const n = this.cy.getElementById(nodeKey(type, id));
    if (n.nonempty()) { n.select(); this.onSelect(n.data("node")); }
  }

  fit() {
    this.cy.fit(undefined, 24);
    if (this.cy.zoom() > 1.3) { this.cy.zoom(1.3); this.cy.center(); }
  }

  counts() {
    const visible = this.cy.elements().filter((e) => !e.hasClass("hidden"));
    return { nodes: visible.nodes().length, edges: visible.edges().length };
  }

  nodes() { return this.cy.nodes().filter((n) => !n.hasClass("hidden")).map((n) => n.data("node")); }

  destroy() { this.cy.destroy(); }
}

/** The legend: shapes and colours of entity types and grades. */
export function legend() {
  const sw = (colour, text, round = true) => h("span", { class: "legend-item" },
    h("span", { class: `swatch${round ? " round" : ""}`, style: `background:${colour}` }), text);
  return h("div", { class: "legend", "aria-label": t("graph.legend") },
    Object.entries(TYPE_COLOURS).map(([type, c]) => sw(c, typeLabel(type))),
    h("span", { class: "legend-sep" }),
    Object.entries(GRADE_COLOURS).map(([g, c]) => sw(c, g, false)));
}
