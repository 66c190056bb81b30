// Rings: the list of suspected rings and one ring's view (members and evidence graph).
import { api, query } from "../api.js";
import { createExplorer } from "../explorer.js";
import { isEntityType } from "../graph.js";
import { t } from "../i18n.js";
import { entityLink, errorBox, fmtNum, fmtScore, gradeBadge, h, loading, table, typeLabel } from "../ui.js";

export async function ringsPage(main, { params }) {
  const f = { ring_type: params.get("ring_type") || "", min_score: params.get("min_score") || "" };
  const form = h("form", { class: "filters", onsubmit: (ev) => {
    ev.preventDefault();
    const fd = new FormData(form);
    location.hash = `#/rings?${query({ ring_type: fd.get("ring_type").trim(), min_score: fd.get("min_score") })}`;
  } },
  h("label", {}, t("rings.type"), h("input", { name: "ring_type", value: f.ring_type, size: 12 })),
  h("label", {}, t("rings.min"), h("input", { name: "min_score", type: "number", min: 0, max: 1, step: "0.01", value: f.min_score, class: "num" })),
  h("button", { type: "submit", class: "primary" }, t("risk.apply")));
  const body = h("div", {}, loading());
  main.replaceChildren(h("section", { class: "panel", "data-testid": "rings-page" }, h("h2", {}, t("rings.title")), form, body));
  try {
    const page = await api("/v1/rings", { params: { ...f, limit: 500 } });
    body.replaceChildren(h("p", { class: "summary" }, `${page.total}`),
      table([t("ring.title"), t("col.type"), t("ring.score"), t("col.size"), t("col.money"), t("col.why")],
        page.items.map((r) => h("tr", { class: "clickable", dataset: { ring: r.ring_id },
          onclick: () => { location.hash = `#/ring/${encodeURIComponent(r.ring_id)}`; } },
        h("td", {}, h("a", { href: `#/ring/${encodeURIComponent(r.ring_id)}` }, r.ring_id)), h("td", {}, h("span", { class: "chip" }, r.ring_type)),
        h("td", { class: "num" }, fmtScore(r.ring_score)), h("td", { class: "num" }, r.size),
        h("td", { class: "num" }, fmtNum(r.money_at_stake, 0)), h("td", { class: "why" }, r.why)))));
  } catch (err) {
    body.replaceChildren(errorBox(err));
  }
}

export async function ringPage(main, { id }) {
  main.replaceChildren(loading());
  let ring;
  try {
    ring = await api(`/v1/rings/${encodeURIComponent(id)}`);
  } catch (err) {
    main.replaceChildren(errorBox(err));
    return;
  }
  const explorer = createExplorer({});
  main.replaceChildren(
    h("section", { class: "panel", "data-testid": "ring-page", dataset: { ring: ring.ring_id } },
      h("h2", {}, t("ring.title"), " ", ring.ring_id, " ", h("span", { class: "chip" }, ring.ring_type)),
      h("div", { class: "headline" },
        h("div", {}, h("strong", {}, fmtScore(ring.ring_score)), " ", t("ring.score")),
        h("div", {}, h("strong", {}, ring.size), " ", t("ring.size")),
        ring.money_at_stake !== null ? h("div", {}, h("strong", {}, fmtNum(ring.money_at_stake, 0)), " ", t("ring.money")) : null),
      h("p", { class: "why" }, ring.why),
      h("div", { class: "grid-2" },
        h("div", {}, h("h3", {}, t("ring.members")),
          table([t("col.type"), t("col.entity"), t("col.grade")], ring.members.map((m) => h("tr", { dataset: { member: m.id } },
            h("td", {}, typeLabel(m.type)), h("td", {}, entityLink(m.type, m.id)), h("td", {}, gradeBadge(m.grade)))),
          { cls: "data ring-members" })),
        sharedIdentifiers(ring))),
    h("h3", { class: "section-title" }, t("ring.evidence")), explorer.element);
  // Focus mode: the ring stands out; a few of each member's other links are drawn, dimmed, as context.
  await explorer.focusRing(ring, { replace: true, surroundings: true });
}

/** The identifiers the members share: the value for roles that see personal data, else the masked token. */
function sharedIdentifiers(ring) {
  const shared = ring.subgraph.nodes.filter((n) => !isEntityType(n.type));
  return h("div", { "data-testid": "ring-shared" }, h("h3", {}, t("ring.shared")),
    shared.length
      ? table([t("col.type"), t("ring.value"), t("ring.sharedby")], shared.map((n) => h("tr", { dataset: { type: n.type, value: n.id } },
        h("td", {}, typeLabel(n.type)), h("td", {}, h("code", { class: "identifier" }, n.id)),
        h("td", { class: "num" }, n.attributes.shared_by ?? "–"))), { cls: "data ring-shared" })
      : h("p", { class: "muted" }, t("ring.noshared")),
    ring.subgraph.masked && shared.length ? h("p", { class: "muted small" }, t("ring.maskednote")) : null);
}
