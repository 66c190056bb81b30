// The key page: asks for an API key, checks it, and shows where development keys are on loopback.
import { api, clearKey, getKey, pagesConfig, setKey } from "../api.js";
import { t } from "../i18n.js";
import { h } from "../ui.js";

export async function keyPage(main, { next = "#/risk/person", message = "" } = {}) {
  const config = await pagesConfig();
  const input = h("input", { type: "password", name: "api-key", id: "api-key", autocomplete: "off", size: 48,
    value: getKey(), required: true });
  const result = h("div", { "aria-live": "polite", "data-testid": "key-result" });
  const form = h("form", { class: "key-form", onsubmit: async (ev) => {
    ev.preventDefault();
    setKey(input.value);
    try {
      await api("/v1/rules");          // any role but approval_system may list rules
    } catch (err) {
      if (err.status === 401) { clearKey(); result.replaceChildren(h("div", { class: "alert alert-error", role: "alert" }, t("key.invalid"))); return; }
      // 403: a valid key whose role may not list rules (approval_system); keep it
    }
    result.replaceChildren(h("div", { class: "alert alert-ok" }, t("key.saved")));
    window.dispatchEvent(new Event("riskgraph:key"));
    location.hash = next;
  } },
  h("label", { for: "api-key" }, t("key.label")), " ", input, " ",
  h("button", { type: "submit", class: "primary" }, t("key.save")), " ",
  getKey() ? h("button", { type: "button", onclick: () => { clearKey(); input.value = "";
    window.dispatchEvent(new Event("riskgraph:key")); keyPage(main, { next }); } }, t("key.clear")) : null);

  main.replaceChildren(h("section", { class: "panel narrow", "data-testid": "key-page" },
    h("h2", {}, t("key.title")),
    message ? h("div", { class: "alert alert-warn", role: "status" }, message) : null,
    h("p", {}, t("key.intro")),
    getKey() ? h("p", { class: "muted" }, t("key.current")) : null,
    form, result,
    config.dev_keys_file
      ? h("div", { class: "alert alert-info", "data-testid": "dev-keys-hint" },
        h("p", {}, t("key.dev")), h("code", { class: "path" }, config.dev_keys_file), h("p", { class: "small" }, t("key.dev.roles")))
      : h("p", { class: "muted small" }, t("key.none"))));
  input.focus();
}
