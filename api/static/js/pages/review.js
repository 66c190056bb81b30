// Clerical review of person record pairs (investigators, admins): accept (one person) or reject
// (two people; splits a wrong merge). Decisions are stored and audited; the next run honours them.
import { api } from "../api.js";
import { t } from "../i18n.js";
import { entityLink, errorBox, fmtNum, h, loading, table } from "../ui.js";

export async function reviewPage(main, { params }) {
  main.replaceChildren(loading());
  const offset = Number(params.get("offset") || 0);
  let page;
  try {
    page = await api("/v1/review/persons", { params: { limit: 50, offset } });
  } catch (err) {
    main.replaceChildren(errorBox(err));
    return;
  }
  const message = h("div", { "aria-live": "polite", "data-testid": "review-message" });
  const decide = async (pair, decision, row) => {
    try {
      await api("/v1/review/persons/decisions", { method: "POST", body: { left: pair.left, right: pair.right, decision } });
      row.remove();
      message.replaceChildren(h("div", { class: "alert alert-ok" }, t(`review.${decision}ed`, { a: pair.left, b: pair.right })));
    } catch (err) { message.replaceChildren(errorBox(err)); }
  };
  const rows = page.items.map((pair) => {
    const row = h("tr", { dataset: { left: pair.left, right: pair.right } },
      h("td", {}, entityLink("person", pair.left)), h("td", {}, entityLink("person", pair.right)),
      h("td", { class: "num" }, fmtNum(pair.match_probability, 3)));
    row.append(h("td", {},
      h("button", { type: "button", "data-action": "accept", onclick: () => decide(pair, "accept", row) }, t("review.accept")), " ",
      h("button", { type: "button", "data-action": "reject", onclick: () => decide(pair, "reject", row) }, t("review.reject"))));
    return row;
  });
  main.replaceChildren(h("h2", {}, t("review.title")), h("p", { class: "muted" }, t("review.intro", { n: page.total })), message,
    rows.length ? table([t("review.left"), t("review.right"), t("review.probability"), ""], rows)
      : h("p", { "data-testid": "review-empty" }, t("review.empty")));
}
