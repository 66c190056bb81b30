// The graph view: cytoscape over API graphs (GraphOut), laid out by the vendored fcose extension
// (labels kept apart), coloured by entity type or grade, with a ring focus mode.
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
const RING_COLOUR = "#6a1b9a";

export function nodeKey(type, id) { return `${type}:${id}`; }
export function isEntityType(type) { return ENTITY.has(type); }

// -- the fcose layout (api/static/vendor/cytoscape-fcose/: layout-base, then cose-base, then fcose) --
const FCOSE_FILES = ["layout-base.js", "cose-base.js", "cytoscape-fcose.js"].map((f) => `/static/vendor/cytoscape-fcose/${f}`);
let fcoseReady = null;

function loadScript(src) {
  return new Promise((resolve, reject) => {
    const s = document.createElement("script");
    s.src = src;
    s.onload = resolve;
    s.onerror = () => reject(new Error(`could not load ${src}`));
    document.head.append(s);
  });
}

/** Pushes apart nodes whose label boxes overlap (fcose spaces the nodes, not their labels): each
 * overlapping pair moves apart along the axis of the smaller overlap, until none overlap or the
 * rounds run out. Quadratic per round, so only for the few hundred nodes a view draws. */
function separateLabels(nodes, rounds = 60) {
  if (nodes.length < 2 || nodes.length > 400) return;
  const gap = 4;
  for (let round = 0; round < rounds; round++) {
    const boxes = nodes.map((n) => n.boundingBox({ includeLabels: true }));
    const shift = boxes.map(() => ({ x: 0, y: 0 }));
    let moved = false;
    for (let i = 0; i < boxes.length; i++) {
      for (let j = i + 1; j < boxes.length; j++) {
        const a = boxes[i], b = boxes[j];
        const dx = Math.min(a.x2, b.x2) - Math.max(a.x1, b.x1) + gap;
        const dy = Math.min(a.y2, b.y2) - Math.max(a.y1, b.y1) + gap;
        if (dx <= 0 || dy <= 0) continue;
        moved = true;
        if (dx < dy) {
          const s = (a.x1 + a.x2 < b.x1 + b.x2 ? -1 : 1) * dx / 2;
          shift[i].x += s; shift[j].x -= s;
        } else {
          const s = (a.y1 + a.y2 < b.y1 + b.y2 ? -1 : 1) * dy / 2;
          shift[i].y += s; shift[j].y -= s;
        }
      }
    }
    if (!moved) return;
    nodes.forEach((n, i) => {
      const p = n.position();
      n.position({ x: p.x + shift[i].x, y: p.y + shift[i].y });
    });
  }
}

/** Resolves to true once the fcose layout is registered with cytoscape (false: cose is used instead). */
export function loadFcose() {
  if (!fcoseReady) {
    fcoseReady = (async () => {
      if (!window.cytoscapeFcose) for (const src of FCOSE_FILES) await loadScript(src);
      window.cytoscape.use(window.cytoscapeFcose);
      return true;
    })().catch((err) => { console.warn("fcose layout unavailable, using cose:", err); return false; });
  }
  return fcoseReady;
}

function shortId(id, n = 14) { return id.length > n ? `${id.slice(0, n - 1)}…` : id; }

function label(node, { hidden = 0, shared = false } = {}) {
  const more = hidden > 0 ? `\n+${hidden}` : "";
  if (!isEntityType(node.type)) {
    // a ring's shared identifier is drawn in full: the value for investigators, the token for others
    return shared ? `${typeLabel(node.type)}\n${node.id}${more}` : `${shortId(node.id)}${more}`;
  }
  const name = node.attributes && node.attributes.name;
  return `${node.id}${name && name !== "***" ? `\n${shortId(String(name), 22)}` : ""}${more}`;
}

export class GraphView {
  /** `container`: the element to draw in; `onSelect(node|null)`, `onExpand(node)` callbacks. */
  constructor(container, { onSelect = () => {}, onExpand = () => {} } = {}) {
    this.colourBy = "type";
    this.hiddenRels = new Set();
    this.hiddenCounts = new Map();  // key -> neighbours known but not drawn
    this.focusKeys = null;          // ring focus: the keys of the ring's nodes, else null
    this.onSelect = onSelect;
    this.cy = window.cytoscape({ container, minZoom: 0.1, maxZoom: 3, style: this.style(), wheelSensitivity: 0.4 });
    this.cy.on("tap", "node", (ev) => this.onSelect(ev.target.data("node")));
    this.cy.on("tap", (ev) => { if (ev.target === this.cy) this.onSelect(null); });
    this.cy.on("dbltap", "node", (ev) => onExpand(ev.target.data("node")));
    this.cy.on("select", "node", (ev) => ev.target.connectedEdges().addClass("labelled"));
    this.cy.on("unselect", "node", (ev) => ev.target.connectedEdges().removeClass("labelled"));
    this.cy.on("mouseover", "edge", (ev) => ev.target.addClass("hover"));
    this.cy.on("mouseout", "edge", (ev) => ev.target.removeClass("hover"));
    container.rgGraph = this;  // for tests and the browser console
    loadFcose();
  }

  style() {
    return [
      { selector: "node", style: {
        "background-color": "data(fill)", "border-color": "data(stroke)", "border-width": 3,
        shape: "data(shape)", width: "data(size)", height: "data(size)", label: "data(label)",
        "font-size": 10, "text-wrap": "wrap", "text-max-width": 120, "text-valign": "bottom", "text-margin-y": 4,
        color: "#1f2328", "text-background-color": "#fff", "text-background-opacity": 0.85,
        "text-background-padding": 2, "text-background-shape": "roundrectangle", "min-zoomed-font-size": 6 } },
      { selector: "node.root", style: { "border-width": 6, "border-color": "#111", "font-weight": "bold" } },
      { selector: "node.has-hidden", style: { "border-style": "dashed" } },
      { selector: "node.member", style: { "border-width": 6, "border-style": "double", "border-color": RING_COLOUR,
        "font-weight": "bold" } },
      { selector: "node.shared", style: { "border-width": 4, "border-color": RING_COLOUR, width: 26, height: 26,
        "font-size": 11, "font-weight": "bold", color: RING_COLOUR, "text-background-opacity": 1,
        "text-border-color": RING_COLOUR, "text-border-width": 1, "text-border-opacity": 1, "z-index": 20 } },
      { selector: "node.path", style: { "border-width": 6, "border-color": "#1565c0" } },
      { selector: "node:selected", style: { "overlay-color": "#1565c0", "overlay-opacity": 0.25, "overlay-padding": 6 } },
      { selector: "edge", style: {
        width: "data(width)", "line-color": "#b8bec7", "curve-style": "bezier", "font-size": 8, color: "#555",
        "text-rotation": "autorotate", "text-background-color": "#fbfcfd", "text-background-opacity": 0.9,
        "min-zoomed-font-size": 7 } },
      { selector: "edge.labelled, edge.hover", style: { label: "data(label)" } },
      { selector: "edge.ring", style: { "line-color": RING_COLOUR, "line-opacity": 0.75, width: 3, "z-index": 10 } },
      { selector: "edge.path", style: { "line-color": "#1565c0", width: 4 } },
      { selector: ".dim", style: { opacity: 0.18, "text-opacity": 0.35, "z-index": 0 } },
      { selector: ".hidden", style: { display: "none" } },
    ];
  }

  nodeData(node) {
    const key = nodeKey(node.type, node.id);
    const typeColour = TYPE_COLOURS[node.type] || "#999";
    const gradeColour = GRADE_COLOURS[node.grade] || "#d0d0d0";
    const byRisk = this.colourBy === "risk";
    const entity = isEntityType(node.type);
    const shared = Boolean(this.focusKeys && this.focusKeys.has(key) && !entity);
    return {
      id: key, node, label: label(node, { hidden: this.hiddenCounts.get(key) || 0, shared }),
      shape: SHAPES[node.type] || "ellipse",
      fill: byRisk ? (entity ? gradeColour : "#e0e0e0") : typeColour,
      stroke: byRisk ? typeColour : (entity ? gradeColour : "#bdbdbd"),
      size: entity ? (node.grade === "D" ? 34 : node.grade === "C" ? 28 : 24) : 16,
    };
  }

  /** Add the nodes and edges of `graph` (GraphOut; edges only where both ends are drawn); returns the keys of new nodes. */
  merge(graph, { cls = "" } = {}) {
    const added = [];
    const cy = this.cy;
    cy.batch(() => {
      for (const node of graph.nodes) {
        const key = nodeKey(node.type, node.id);
        const existing = cy.getElementById(key);
        if (existing.nonempty()) {
          const old = existing.data("node");
          existing.data(this.nodeData({ ...old, ...node, grade: node.grade || old.grade,
            attributes: { ...old.attributes, ...node.attributes } }));
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
          cy.add({ group: "edges", data: { id, source: s, target: tgt, relation: e.relation, label: edgeLabel(e),
            count: e.count, width: 1 + Math.min(5, Math.log2(1 + (e.count || 1))) } });
        }
        if (cls) cy.getElementById(id).addClass(cls);
      }
    });
    this.applyRelFilter();
    this.applyFocus();
    return added;
  }

  has(key) { return this.cy.getElementById(key).nonempty(); }

  clear() { this.cy.elements().remove(); this.hiddenCounts.clear(); this.focusKeys = null; }

  /** Lay out the drawn graph with fcose. With `around` (a node key), new nodes (markFresh) start
   * next to it and the others start where they are, so an expansion does not reshuffle the picture. */
  async layout({ around = null, fit = true } = {}) {
    const fcose = await loadFcose();
    const cy = this.cy;
    if (cy.destroyed()) return;
    const fresh = cy.nodes().filter((n) => n.data("fresh"));
    const incremental = Boolean(around) && cy.getElementById(around).nonempty() && fresh.length < cy.nodes().length;
    if (incremental) {
      const centre = cy.getElementById(around).position();
      fresh.forEach((n, i) => {
        const a = (2 * Math.PI * i) / Math.max(8, fresh.length);
        const r = 70 + 6 * Math.sqrt(fresh.length);
        n.position({ x: centre.x + r * Math.cos(a), y: centre.y + r * Math.sin(a) });
      });
    }
    const eles = cy.elements().not(".hidden");
    const identifierEdge = (e) => !isEntityType(e.target().data("node").type) || !isEntityType(e.source().data("node").type);
    const options = fcose ? {
      name: "fcose", quality: "proof", randomize: !incremental, animate: false, fit, padding: 30,
      nodeDimensionsIncludeLabels: true, uniformNodeDimensions: false, packComponents: true, tile: true,
      nodeRepulsion: (n) => (isEntityType(n.data("node").type) ? 18000 : 9000),
      idealEdgeLength: (e) => (identifierEdge(e) ? 70 : 120),
      edgeElasticity: (e) => (identifierEdge(e) ? 0.6 : 0.45),
      nodeSeparation: 110, gravity: 0.2, gravityRange: 3.8, numIter: 2500,
    } : { name: "cose", animate: false, randomize: !incremental, fit, padding: 30,
      nodeRepulsion: () => 9000, idealEdgeLength: () => 80, numIter: 600 };
    eles.layout(options).run();
    separateLabels(cy.nodes().not(".hidden"));
    if (fit) { cy.fit(eles, 30); this.capZoom(); }
    cy.nodes().forEach((n) => n.removeData("fresh"));
  }

  markFresh(keys) { keys.forEach((k) => this.cy.getElementById(k).data("fresh", true)); }

  setRoot(type, id) {
    this.cy.nodes().removeClass("root");
    this.cy.getElementById(nodeKey(type, id)).addClass("root");
  }

  /** `counts`: key -> neighbours known but not drawn; shown as "+N" under the node, dashed border. */
  setHiddenCounts(counts) {
    this.hiddenCounts = counts;
    this.cy.batch(() => this.cy.nodes().forEach((n) => {
      n.toggleClass("has-hidden", (counts.get(n.id()) || 0) > 0);
      n.data(this.nodeData(n.data("node")));
    }));
  }

  setColourBy(mode) {
    this.colourBy = mode;
    this.cy.batch(() => this.cy.nodes().forEach((n) => n.data(this.nodeData(n.data("node")))));
  }

  /** Ring focus: the ring's nodes (`keys`) stand out, everything else is dimmed; members get the
   * member mark, the ring's shared identifiers are drawn large with their value (or token). */
  focus(keys, members) {
    this.focusKeys = new Set(keys);
    this.focusMembers = new Set(members);
    this.applyFocus();
    this.cy.batch(() => this.cy.nodes().forEach((n) => n.data(this.nodeData(n.data("node")))));
  }

  clearFocus() {
    this.focusKeys = null;
    this.focusMembers = null;
    this.cy.batch(() => {
      this.cy.elements().removeClass("dim shared ring");
      this.cy.nodes().forEach((n) => n.data(this.nodeData(n.data("node"))));
    });
  }

  get focused() { return this.focusKeys !== null; }

  applyFocus() {
    const keys = this.focusKeys;
    if (!keys) return;
    const members = this.focusMembers || new Set();
    this.cy.batch(() => {
      this.cy.nodes().forEach((n) => {
        const inRing = keys.has(n.id());
        n.toggleClass("dim", !inRing);
        n.toggleClass("member", members.has(n.id()));
        n.toggleClass("shared", inRing && !members.has(n.id()) && !isEntityType(n.data("node").type));
      });
      this.cy.edges().forEach((e) => {
        const inRing = keys.has(e.source().id()) && keys.has(e.target().id());
        e.toggleClass("dim", !inRing);
        e.toggleClass("ring", inRing);
      });
    });
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

  capZoom() { if (this.cy.zoom() > 1.3) { this.cy.zoom(1.3); this.cy.center(); } }   // small graphs: no giant nodes

  fit(eles = undefined) { this.cy.fit(eles, 30); this.capZoom(); }

  counts() {
    const visible = this.cy.elements().filter((e) => !e.hasClass("hidden"));
    return { nodes: visible.nodes().length, edges: visible.edges().length };
  }

  nodes() { return this.cy.nodes().filter((n) => !n.hasClass("hidden")).map((n) => n.data("node")); }

  destroy() { this.cy.destroy(); }
}

/** The legend: shapes and colours of entity types and grades, and the ring marks. */
export function legend() {
  const sw = (colour, text, round = true) => h("span", { class: "legend-item" },
    h("span", { class: `swatch${round ? " round" : ""}`, style: `background:${colour}` }), text);
  return h("div", { class: "legend", "aria-label": t("graph.legend") },
    Object.entries(TYPE_COLOURS).map(([type, c]) => sw(c, typeLabel(type))),
    h("span", { class: "legend-sep" }),
    Object.entries(GRADE_COLOURS).map(([g, c]) => sw(c, g, false)),
    h("span", { class: "legend-sep" }),
    h("span", { class: "legend-item" }, h("span", { class: "swatch round ring-swatch" }), t("graph.member")),
    h("span", { class: "legend-item" }, h("span", { class: "swatch dashed-swatch" }), t("graph.hiddenmark")));
}

// An edge's label: its relationship name; SAME_PERSON (two records of one person, issue 16) also
// says how the records matched and with what probability.
function edgeLabel(e) {
  if (e.relation !== "SAME_PERSON") return e.relation;
  const p = e.properties || {};
  const how = [p.matched_on, p.match_probability != null ? Number(p.match_probability).toFixed(2) : null]
    .filter(Boolean).join(" ");
  return how ? `SAME_PERSON (${how})` : e.relation;
}
