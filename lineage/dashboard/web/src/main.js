// The dashboard's entry point: hash routing (every page's state is in the URL, so it can be
// shared), sign-in with a pasted API token, and error display.
import * as api from "./api.js";
import { h } from "./dom.js";
import { graphPage, destroy } from "./graph.js";
import * as pages from "./pages.js";

const ROUTES = {
  "": pages.homePage,
  graph: graphPage,
  dataset: pages.datasetPage,
  job: pages.jobPage,
  run: pages.runPage,
  contracts: pages.contractsPage,
  contract: pages.contractPage,
  decisions: pages.decisionsPage,
  search: pages.searchPage,
  namespace: pages.namespacePage,
  impact: pages.impactPage,
  erasures: pages.erasuresPage,
  erasure: pages.erasurePage,
  record: pages.recordPage,
};

let who = null;

function setTitle(t) {
  document.title = `${t} — lineage`;
}

function signIn(main, message) {
  setTitle("Sign in");
  const input = h("input", { id: "token", type: "password", autocomplete: "off", "aria-describedby": "token-help", size: "60" });
  main.replaceChildren(
    h("h1", { text: "Sign in" }),
    message ? h("p", { class: "notice", role: "alert", text: message }) : null,
    h("form", { id: "signin", onsubmit: async (e) => { e.preventDefault(); api.setToken(input.value); who = null; await render(); } },
      h("label", { for: "token" }, "API token "), input, " ", h("button", { type: "submit", text: "Sign in" })),
    h("p", { id: "token-help", class: "muted", text: "Paste an API token holding the viewer or auditor role (`lineage tokens create NAME --principal YOU --role viewer`). It is kept in this tab only (sessionStorage) and sent as a bearer token to this server's API. Behind a sign-in proxy you are signed in already." }));
  input.focus();
}

async function whoami() {
  if (who) return who;
  who = await api.get("/api/v1/auth/whoami");
  const el = document.getElementById("who");
  el.replaceChildren(`${who.name} (${who.roles.join(", ") || "no role"}) `,
    api.token() ? h("button", { type: "button", id: "signout", onclick: () => { api.setToken(null); who = null; el.replaceChildren(); render(); }, text: "Sign out" }) : "");
  return who;
}

async function render() {
  const main = document.getElementById("main");
  destroy();
  const raw = location.hash.replace(/^#\/?/, "");
  const [path, query] = raw.split("?", 2);
  const params = new URLSearchParams(query || "");
  const page = ROUTES[path];
  try {
    await whoami();
  } catch (e) {
    if (e instanceof api.ApiError && e.status === 401) return signIn(main, api.token() ? `The server refused that token: ${e.message}` : null);
    main.replaceChildren(h("p", { class: "notice", role: "alert", text: `Cannot reach the server: ${e.message}` }));
    return;
  }
  if (!page) {
    setTitle("Not found");
    main.replaceChildren(h("h1", { text: "No such page" }), h("p", {}, h("a", { href: "#/", text: "Home" })));
    return;
  }
  main.replaceChildren(h("p", { class: "muted", text: "Loading…" }));
  try {
    await page(main, params, setTitle);
  } catch (e) {
    if (e instanceof api.ApiError && e.status === 401) {
      who = null;
      return signIn(main, `The server refused the token: ${e.message}`);
    }
    main.append(h("p", { class: "notice error", role: "alert", text: e instanceof api.ApiError ? `${e.status}: ${e.message}` : `Error: ${e.message}` }));
  }
  main.focus({ preventScroll: true });
}

window.addEventListener("hashchange", render);
window.addEventListener("DOMContentLoaded", render);
