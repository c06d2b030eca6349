// Every page but the graph explorer.  Each takes (main, params, setTitle) and fills `main`.
import * as api from "./api.js";
import { h, link, route, table, badge, section, when, nodeLabel, parseNodeId } from "./dom.js";

function json(v) {
  return h("pre", { class: "json", text: JSON.stringify(v, null, 2) });
}

function ds(namespace, name) {
  return link("dataset", { node: `dataset:${namespace}:${name}` }, `${namespace}:${name}`);
}

function jobLink(namespace, name) {
  return link("job", { node: `job:${namespace}:${name}` }, `${namespace}:${name}`);
}

export function unavailable(main, what, path) {
  main.append(h("div", { class: "notice unavailable", role: "status" },
    h("strong", { text: `${what}: not available on this server.` }),
    ` This server has no ${path} endpoint (it is added by a later version of lineage).`));
}

// A page section fed by an endpoint the server may not have, or the role may not read.
async function optional(container, what, path, params, render) {
  try {
    render(await api.get(path, params));
  } catch (e) {
    if (e instanceof api.ApiError && e.missingRoute) unavailable(container, what, path);
    else if (e instanceof api.ApiError && e.status === 403) container.append(h("p", { class: "notice", role: "status", text: `${what}: ${e.message}` }));
    else throw e;
  }
}

function gateReasons(gate) {
  if (!gate) return null;
  const reasons = gate.reasons || [];
  return h("div", { class: `gate ${gate.allowed ? "ok" : "blocked"}`, id: "gate-decision" },
    h("p", {}, badge(gate.allowed ? "ALLOWED" : "BLOCKED", gate.allowed ? "approved" : "bad"), ` purpose `, h("code", { text: gate.purpose || "?" })),
    reasons.length ? table(["code", "reason", "input", "source", "contract", "clause"], reasons.map((r) => [
      h("code", { text: r.code || "" }), h("span", { class: "reason", text: r.message || "" }),
      r.dataset ? nodeLabel(r.dataset) : "—", r.source ? nodeLabel(r.source) : "—",
      r.contract ? link("contract", { id: String(r.contract).split("@")[0] }, r.contract) : "—", r.clause ? h("code", { text: r.clause }) : "—",
    ]), { caption: "The gate's reasons", class: "data reasons" }) : h("p", { text: "No reasons recorded." }),
    checks(gate.checks || []),
    gate.decision ? h("details", {}, h("summary", { text: "The decision as the gate printed it" }), h("pre", { text: gate.decision })) : null);
}

function checks(list) {
  if (!list.length) return null;
  return table(["input", "check", "column", "expected", "observed", "result"], list.map((c) => [
    nodeLabel(c.dataset), h("span", { title: c.description || "" }, h("code", { text: c.name || c.assertion || "" })), c.column || "—",
    c.expected || "—", c.actual || "—", badge(c.success ? "passed" : "failed", c.success ? "approved" : "bad")]),
    { caption: "Data-quality checks the gate ran on the inputs", class: "data checks" });
}

export async function homePage(main, params, setTitle) {
  setTitle("Home");
  const q = h("input", { id: "q", type: "search", placeholder: "dataset or job name", "aria-label": "Search by name" });
  main.replaceChildren(h("h1", { text: "Where did this model's data come from?" }),
    h("form", { role: "search", onsubmit: (e) => { e.preventDefault(); location.hash = `#/search?q=${encodeURIComponent(q.value)}`; } },
      q, " ", h("button", { type: "submit", text: "Search" })),
    h("p", { class: "muted", text: "Search for a model, training set or source, then open its graph." }));
  const box = h("div", {});
  main.append(box);
  const body = await api.get("/api/v1/namespaces", { limit: 100 });
  box.append(section("Namespaces", h("ul", {}, body.namespaces.map((n) => h("li", {}, link("namespace", { ns: n.name }, n.name))))));
}

export async function namespacePage(main, params, setTitle) {
  const ns = params.get("ns") || "";
  setTitle(`Namespace · ${ns}`);
  const [d, j] = await Promise.all([api.get(`/api/v1/namespaces/${api.seg(ns)}/datasets`, { limit: 1000 }), api.get(`/api/v1/namespaces/${api.seg(ns)}/jobs`, { limit: 1000 })]);
  main.replaceChildren(h("h1", {}, "Namespace ", h("span", { class: "name", text: ns })),
    section(`Datasets (${d.totalCount})`, table(["dataset", "graph", "updated"], d.datasets.map((x) => [ds(x.namespace, x.name), link("graph", { node: `dataset:${x.namespace}:${x.name}` }, "graph"), when(x.updatedAt)]))),
    section(`Jobs (${j.totalCount})`, table(["job", "graph", "latest run"], j.jobs.map((x) => [jobLink(x.namespace, x.name), link("graph", { node: `job:${x.namespace}:${x.name}` }, "graph"), x.latestRun ? link("run", { id: x.latestRun.id }, x.latestRun.state) : "—"]))));
}

export async function searchPage(main, params, setTitle) {
  const text = params.get("q") || "";
  setTitle(text ? `Search · ${text}` : "Search");
  const q = h("input", { id: "q", type: "search", value: text, "aria-label": "Search by name", placeholder: "dataset or job name" });
  main.replaceChildren(h("h1", { text: "Search" }),
    h("form", { role: "search", onsubmit: (e) => { e.preventDefault(); location.hash = `#/search?q=${encodeURIComponent(q.value)}`; } }, q, " ", h("button", { type: "submit", text: "Search" })));
  q.focus();
  if (!text) return;
  const body = await api.get("/api/v1/dashboard/search", { q: text });
  main.append(body.results.length ? table(["name", "namespace", "kind", ""], body.results.map((r) => [
    link(r.kind, { node: `${r.kind}:${r.namespace}:${r.name}` }, r.name), r.namespace, r.kind,
    link("graph", { node: `${r.kind}:${r.namespace}:${r.name}` }, "graph"),
  ]), { caption: `Matches for “${text}”`, class: "data results" }) : h("p", { text: `Nothing named like “${text}”.` }));
}

export async function datasetPage(main, params, setTitle) {
  const id = params.get("node") || "";
  const p = parseNodeId(id);
  setTitle(`Dataset · ${nodeLabel(id)}`);
  const body = await api.get("/api/v1/dashboard/dataset", { nodeId: id });
  const d = body.dataset;
  main.replaceChildren(
    h("h1", {}, "Dataset ", h("span", { class: "name", text: d.name })),
    h("p", { class: "muted" }, `namespace ${d.namespace} · `, link("graph", { node: id }, "upstream graph"), " · ", link("graph", { node: id, dir: "downstream" }, "downstream graph"), " · ", link("impact", { node: id }, "impact")),
    section("Covering contracts", body.contracts.length ? h("div", {}, body.contracts.map(contractSummary)) :
      h("p", { class: "notice", text: "No contract covers this dataset. If it is an origin, the gate blocks every training run that reads it." })),
  );
  const gates = body.runs.filter((r) => r.gate);
  main.append(section("Gate and quality results", gates.length ? table(["run", "job", "verdict", "purpose", "reasons", "quality checks on this dataset"], gates.map((r) => {
    const mine = (r.gate.checks || []).filter((c) => c.dataset === id), failed = mine.filter((c) => !c.success).length;
    return [link("run", { id: r.runId }, r.runId.slice(0, 8)), jobLink(r.job.namespace, r.job.name),
      badge(r.gate.allowed ? "allowed" : "blocked", r.gate.allowed ? "approved" : "bad"), r.gate.purpose || "",
      (r.gate.reasons || []).map((x) => x.code).join(", "),
      mine.length ? `${mine.length - failed} passed, ${failed} failed` : "none run"];
  })) : h("p", { class: "muted", text: "No gate has checked a run reading this dataset." })));
  main.append(section("Runs that read or wrote it", table(["run", "job", "role", "state", "time"], body.runs.map((r) => [
    link("run", { id: r.runId }, r.runId.slice(0, 8)), jobLink(r.job.namespace, r.job.name), r.role, badge(r.state, r.state.toLowerCase()), when(r.eventTime)]))));
  main.append(section("Schema", d.fields.length ? h("details", { open: d.fields.length <= 12 ? "" : null },
    h("summary", { text: `${d.fields.length} field(s)` }),
    table(["field", "type", "description"], d.fields.map((f) => [f.name, f.type || "", f.description || ""]))) : h("p", { class: "muted", text: "No schema recorded." })));
  const versions = h("div", {});
  main.append(section("Versions", versions));
  const v = await api.get(`/api/v1/namespaces/${api.seg(p.namespace)}/datasets/${api.seg(p.name)}/versions`, { limit: 20 });
  versions.append(table(["version", "created", "by run"], v.versions.map((x) => [h("code", { text: x.version }), when(x.createdAt), x.createdByRun ? link("run", { id: x.createdByRun.id }, x.createdByRun.id.slice(0, 8)) : "—"])),
    h("p", { class: "muted", text: `${v.totalCount} version(s)` }));
}

function contractSummary(c) {
  const t = c.terms, g = c.governing || c;
  return h("div", { class: "contract-card" },
    h("h3", {}, link("contract", { id: c.id }, `${c.id}@${g.version}`), " ", badge(g.status, g.status)),
    h("dl", {},
      h("dt", { text: "Permitted purposes" }), h("dd", { text: t.permitted.map((x) => x.purpose).join(", ") || "none" }),
      h("dt", { text: "Prohibited" }), h("dd", { text: (t.prohibited || []).join(", ") || "none" }),
      h("dt", { text: "Data categories" }), h("dd", {}, t.data_categories.map((x) => badge(x, "cat"))),
      h("dt", { text: "Approved by" }), h("dd", { text: approvers(c).join(" + ") || "nobody yet" }),
      h("dt", { text: "Expires" }), h("dd", { text: t.expires || "never" })),
    history(c.history || []));
}

function approvers(c) {
  return (c.history || []).filter((x) => (x.action === "approve" || x.action === "endorse") && x.revision === c.revision).map((x) => x.actor);
}

function history(rows) {
  return table(["version", "when", "who", "action", "status", "why"], rows.map((x) => [
    String(x.version), when(x.recorded_at), h("span", {}, x.actor, x.credential ? h("small", { class: "muted", text: ` (${x.credential})` }) : null),
    x.action, badge(x.status, x.status), x.reason || ""]), { caption: "History", class: "data history" });
}

export async function contractsPage(main, params, setTitle) {
  setTitle("Contracts");
  const body = await api.get("/api/v1/contracts");
  main.replaceChildren(h("h1", { text: "Contracts" }),
    table(["contract", "status", "provider", "permits", "prohibits", "categories", "expires", "changed"], body.contracts.map((c) => [
      link("contract", { id: c.id }, `${c.id}@${c.version}`), badge(c.status, c.status), c.terms.provider,
      c.terms.permitted.map((p) => p.purpose).join(", "), (c.terms.prohibited || []).join(", "),
      c.terms.data_categories.map((x) => badge(x, "cat")), c.terms.expires || "—", when(c.changedAt)]), { caption: `${body.totalCount} contract(s)` }));
}

export async function contractPage(main, params, setTitle) {
  const id = params.get("id") || "";
  setTitle(`Contract · ${id}`);
  const c = await api.get(`/api/v1/contracts/${api.seg(id)}`);
  const t = c.terms;
  main.replaceChildren(
    h("h1", {}, "Contract ", h("span", { class: "name", text: `${c.id}@${c.version}` }), " ", badge(c.status, c.status)),
    h("dl", { class: "facts" },
      h("dt", { text: "Provider" }), h("dd", { text: t.provider }),
      h("dt", { text: "Requester" }), h("dd", { text: `${t.requester}${t.requester_organization ? ` (${t.requester_organization})` : ""}` }),
      h("dt", { text: "Legal basis" }), h("dd", { text: t.legal_basis }),
      h("dt", { text: "Permitted purposes" }), h("dd", {}, t.permitted.map((p) => h("div", { text: `${p.purpose}${p.categories ? ` (${p.categories.join(", ")})` : ""}` }))),
      h("dt", { text: "Prohibited purposes" }), h("dd", { text: (t.prohibited || []).join(", ") || "none" }),
      h("dt", { text: "Data categories" }), h("dd", {}, t.data_categories.map((x) => badge(x, "cat"))),
      h("dt", { text: "Data subjects" }), h("dd", { text: (t.data_subjects || []).join(", ") || "—" }),
      h("dt", { text: "Expires" }), h("dd", { text: t.expires || "never" }),
      h("dt", { text: "Registered by" }), h("dd", { text: `${c.registeredBy}${c.registeredWith ? ` (${c.registeredWith})` : ""}` }),
      h("dt", { text: "Datasets" }), h("dd", {}, t.datasets.map((d) => h("div", {}, ds(d.namespace, d.name), " ", link("graph", { node: `dataset:${d.namespace}:${d.name}`, dir: "downstream" }, "(downstream graph)"))))),
    section("Version history", history(c.history)),
    h("details", {}, h("summary", { text: "The registered document" }), json(c.document)));
}

export async function runPage(main, params, setTitle) {
  const id = params.get("id") || "";
  setTitle(`Run · ${id.slice(0, 8)}`);
  const [run, extra] = await Promise.all([api.get(`/api/v1/jobs/runs/${api.seg(id)}`), api.get(`/api/v1/dashboard/runs/${api.seg(id)}`)]);
  const j = extra.job;
  const io = (list) => list.length ? h("ul", {}, list.map((x) => h("li", {}, ds(x.datasetVersionId.namespace, x.datasetVersionId.name), " ", h("code", { class: "muted", text: x.datasetVersionId.version })))) : h("p", { class: "muted", text: "none" });
  main.replaceChildren(
    h("h1", {}, "Run of ", h("span", { class: "name", text: `${j.namespace}:${j.name}` })),
    h("p", {}, badge(run.state, run.state.toLowerCase()), " ", h("code", { text: run.id }), " · ", jobLink(j.namespace, j.name), " · ", link("graph", { node: `job:${j.namespace}:${j.name}` }, "graph")),
    extra.gate ? section("Gate decision", gateReasons(extra.gate)) : null,
    h("div", { class: "cols" }, section("Inputs", io(run.inputDatasetVersions)), section("Outputs", io(run.outputDatasetVersions))),
    section("State timeline", table(["event", "event time", "recorded"], extra.timeline.map((e) => [badge(e.eventType, e.eventType.toLowerCase()), when(e.eventTime), when(e.recordedAt)]), { class: "data timeline" })),
    section("Facets", json(run.facets)));
}

export async function jobPage(main, params, setTitle) {
  const id = params.get("node") || "";
  const p = parseNodeId(id);
  setTitle(`Job · ${nodeLabel(id)}`);
  const [job, runs] = await Promise.all([api.get(`/api/v1/namespaces/${api.seg(p.namespace)}/jobs/${api.seg(p.name)}`), api.get(`/api/v1/namespaces/${api.seg(p.namespace)}/jobs/${api.seg(p.name)}/runs`, { limit: 50 })]);
  main.replaceChildren(h("h1", {}, "Job ", h("span", { class: "name", text: job.name })),
    h("p", { class: "muted" }, `namespace ${job.namespace} · `, link("graph", { node: id }, "upstream graph"), " · ", link("graph", { node: id, dir: "downstream" }, "downstream graph")),
    h("div", { class: "cols" }, section("Reads", h("ul", {}, job.inputs.map((x) => h("li", {}, ds(x.namespace, x.name))))), section("Writes", h("ul", {}, job.outputs.map((x) => h("li", {}, ds(x.namespace, x.name)))))),
    section(`Runs (${runs.totalCount})`, table(["run", "state", "started", "ended"], runs.runs.map((r) => [link("run", { id: r.id }, r.id.slice(0, 8)), badge(r.state, r.state.toLowerCase()), when(r.startedAt), when(r.endedAt)]))));
}

export async function decisionsPage(main, params, setTitle) {
  setTitle("Decision log");
  const show = params.get("show") || "all", filter = (params.get("q") || "").toLowerCase();
  main.replaceChildren(h("h1", { text: "Gate decision log" }));
  await optional(main, "The decision log", "/api/v1/gate/decisions", { limit: 1000 }, (body) => {
    let rows = body.decisions;
    if (show === "blocked") rows = rows.filter((d) => !d.allowed);
    if (filter) rows = rows.filter((d) => JSON.stringify([d.job, d.purpose, d.reasons, Object.keys(d.inputs || {})]).toLowerCase().includes(filter));
    rows = rows.slice().sort((a, b) => (a.allowed - b.allowed) || (a.decidedAt < b.decidedAt ? 1 : -1)); // blocked first, newest first
    const q = h("input", { id: "filter", type: "search", value: params.get("q") || "", "aria-label": "Filter decisions" });
    const sel = h("select", { id: "show", "aria-label": "Which decisions" }, ["all", "blocked"].map((s) => h("option", { value: s, selected: s === show ? "" : null, text: s })));
    main.append(h("form", { class: "controls", onsubmit: (e) => { e.preventDefault(); location.hash = `#/decisions?show=${encodeURIComponent(sel.value)}&q=${encodeURIComponent(q.value)}`; } },
      h("label", { for: "filter" }, "Filter "), q, " ", sel, " ", h("button", { type: "submit", text: "Apply" })));
    main.append(table(["when", "verdict", "job", "purpose", "reasons"], rows.map((d) => h("tr", { class: d.allowed ? "ok" : "blocked" },
      h("td", {}, when(d.decidedAt)), h("td", {}, badge(d.allowed ? "allowed" : "blocked", d.allowed ? "approved" : "bad")),
      h("td", { text: d.job }), h("td", { text: d.purpose }),
      h("td", {}, h("ul", {}, (d.reasons || []).map((r) => h("li", {}, h("code", { text: r.code }), " ", r.message, r.clause ? h("small", { class: "muted", text: ` [${r.clause}]` }) : null)))))),
      { caption: `${rows.length} decision(s), blocked first` }));
  });
}

// The impact of a node: GET /api/v1/lineage/impact answers
// {nodeId, asOf, counts, datasets: [id], jobs: [id], runs: [{runId, job, state, createdAt}],
//  models: [{id, trainingRuns: [runId]}], contracts?: [{id, version, status, ref, changedBy, reason}]}.
export async function impactPage(main, params, setTitle) {
  const id = params.get("node") || "";
  const asOf = params.get("asOf") || "";
  setTitle(`Impact · ${nodeLabel(id)}`);
  main.replaceChildren(h("h1", {}, "Impact of ", h("span", { class: "name", text: nodeLabel(id) })));
  await optional(main, "Impact", "/api/v1/lineage/impact", { nodeId: id, asOf: asOf ? `${asOf}T23:59:59Z` : undefined }, (body) => {
    const c = body.counts || {};
    const models = body.models || [], modelIds = new Set(models.map((m) => m.id));
    const asOfIn = h("input", { id: "asof", type: "date", value: asOf, "aria-label": "As of",
      onchange: (e) => { location.hash = route("impact", { node: id, asOf: e.target.value }); } });
    main.append(
      h("form", { class: "controls", onsubmit: (e) => e.preventDefault() }, h("label", { for: "asof" }, "As of "), asOfIn),
      h("p", { id: "impact-summary", text: `Built from it${body.asOf ? ` (as recorded by ${body.asOf})` : ""}: ${c.models || 0} model(s), ` +
        `${c.datasets || 0} dataset(s), ${c.jobs || 0} job(s), ${c.runs || 0} run(s).` }),
      body.contracts ? section("Contracts covering it", body.contracts.length ? h("ul", {}, body.contracts.map((k) => h("li", {},
        link("contract", { id: k.id }, `${k.id}@${k.version}`), " ", badge(k.status, k.status), k.reason ? ` — ${k.reason}` : ""))) :
        h("p", { class: "notice", text: "No contract covers it." })) : null,
      section("Models", models.length ? table(["model", "training runs"], models.map((m) => [
        link("dataset", { node: m.id }, nodeLabel(m.id)),
        m.trainingRuns.length ? m.trainingRuns.map((r, i) => [i ? ", " : "", link("run", { id: r }, r.slice(0, 8))]) : "none recorded"]),
        { caption: "Models trained on data built from it", class: "data models" }) : h("p", { class: "muted", text: "No model was trained on it." })),
      section("Datasets", (body.datasets || []).length ? table(["dataset", "kind"], body.datasets.map((d) => [
        link("dataset", { node: d }, nodeLabel(d)), modelIds.has(d) ? badge("model", "model") : "dataset"]), { class: "data datasets" }) :
        h("p", { class: "muted", text: "Nothing was built from it." })),
      section("Jobs", (body.jobs || []).length ? h("ul", {}, body.jobs.map((j) => h("li", {}, link("job", { node: j }, nodeLabel(j))))) : h("p", { class: "muted", text: "none" })),
      section("Runs", (body.runs || []).length ? table(["run", "job", "state", "created"], body.runs.map((r) => [
        link("run", { id: r.runId }, r.runId.slice(0, 8)), link("job", { node: r.job }, nodeLabel(r.job)),
        r.state ? badge(r.state, String(r.state).toLowerCase()) : "—", when(r.createdAt)]), { class: "data runs" }) : h("p", { class: "muted", text: "none" })),
      h("p", {}, link("graph", { node: id, dir: "downstream", depth: "5" }, "See it as a graph")));
  });
}

// An erasure's state from its counts (the list's rows carry counts, the manifest a state too).
function erasureState(e) {
  if (e.state) return e.state;
  const c = e.counts || {};
  if (c.recreated) return "recreated";
  return c.items && c.deleted === c.items ? "complete" : "in_progress";
}
const ERASURE_BADGE = { complete: "approved", in_progress: "proposed", recreated: "bad" };

// GET /api/v1/erasures answers {erasures: [{id, source, reason, requestedBy, recordedAt,
// counts: {items, deleted, outstanding, recreated}}], totalCount}.
export async function erasuresPage(main, params, setTitle) {
  setTitle("Erasures");
  main.replaceChildren(h("h1", { text: "Erasures" }));
  await optional(main, "Erasures", "/api/v1/erasures", { limit: 1000 }, (body) => {
    const rows = body.erasures || [];
    main.append(rows.length ? table(["erasure", "source", "status", "deleted", "outstanding", "requested", "by", "reason"], rows.map((e) => {
      const st = erasureState(e), c = e.counts || {};
      return h("tr", { class: `erasure s-${st}`, "data-erasure": String(e.id) },
        h("td", {}, link("erasure", { id: e.id }, `#${e.id}`)), h("td", {}, link("dataset", { node: e.source }, nodeLabel(e.source))),
        h("td", {}, badge(st.replace("_", " "), ERASURE_BADGE[st] || "")), h("td", { text: `${c.deleted ?? "?"} of ${c.items ?? "?"}` }),
        h("td", { text: String(c.outstanding ?? "?") }), h("td", {}, when(e.recordedAt)), h("td", { text: e.requestedBy || "—" }),
        h("td", { text: e.reason || "" }));
    }), { caption: `${body.totalCount ?? rows.length} erasure(s), newest first`, class: "data erasures" }) :
      h("p", { class: "muted empty", text: "No source has been erased." }));
  });
}

// GET /api/v1/erasures/{id}: {id, source, reason, requestedBy, credential, recordedAt,
// revokedContracts, state, counts, items: [{id, kind, dataset, location, state, deleted, recreated}], manifest, summary}.
export async function erasurePage(main, params, setTitle) {
  const id = params.get("id") || "";
  setTitle(`Erasure · #${id}`);
  main.replaceChildren(h("h1", {}, "Erasure ", h("span", { class: "name", text: `#${id}` })));
  if (!/^[1-9][0-9]{0,18}$/.test(id)) {
    main.append(h("p", { class: "notice", role: "status", text: `“${id}” is not an erasure number.` }));
    return;
  }
  await optional(main, "Erasures", `/api/v1/erasures/${api.seg(id)}`, {}, (e) => {
    const st = erasureState(e), c = e.counts || {};
    main.append(
      h("p", { id: "erasure-state" }, badge(st.replace("_", " "), ERASURE_BADGE[st] || ""), ` ${c.deleted} of ${c.items} deleted · source `,
        link("dataset", { node: e.source }, nodeLabel(e.source))),
      h("dl", { class: "facts" },
        h("dt", { text: "Reason" }), h("dd", { text: e.reason || "—" }),
        h("dt", { text: "Requested by" }), h("dd", { text: `${e.requestedBy}${e.credential ? ` (${e.credential})` : ""}` }),
        h("dt", { text: "Recorded" }), h("dd", {}, when(e.recordedAt)),
        h("dt", { text: "Contracts revoked" }), h("dd", {}, (e.revokedContracts || []).length ?
          e.revokedContracts.map((r, i) => [i ? ", " : "", link("contract", { id: String(r).split("@")[0] }, r)]) : "none")),
      section("What must go", table(["item", "kind", "dataset", "location", "state", "deleted by"], (e.items || []).map((it) => [
        String(it.id), it.kind === "model" ? badge("model", "model") : it.kind, link("dataset", { node: it.dataset }, nodeLabel(it.dataset)),
        it.location ? h("code", { text: it.location }) : "—",
        badge((it.recreated || []).length ? "recreated" : it.state, it.state === "deleted" && !(it.recreated || []).length ? "approved" : "bad"),
        it.deleted ? [String(it.deleted.actor || it.deleted.recordedBy || ""), " ", when(it.deleted.recordedAt || it.deleted.at)] : "—"]),
        { class: "data items" })),
      e.summary ? h("details", {}, h("summary", { text: "The manifest as sent" }), h("pre", { text: e.summary })) : null);
  });
}

// GET /api/v1/audit/status: {head: {block, blockHash, entries, sealedAt} | null, queued,
// lastCheckpoint: {block, blockHash, entries, at, keyId} | null,
// lastVerification: {at, ok, records, blocks, checkpoints, problems, first} | null}.
export async function recordPage(main, params, setTitle) {
  setTitle("Record status");
  main.replaceChildren(h("h1", { text: "Record status (tamper-evident ledger)" }));
  await optional(main, "The record's status", "/api/v1/audit/status", {}, (s) => {
    const v = s.lastVerification, cp = s.lastCheckpoint, head = s.head;
    const verdict = !v ? badge("never verified", "proposed") : v.ok ? badge("verified", "approved") : badge("FAILED", "bad");
    main.append(h("dl", { class: "facts", id: "record-status" },
      h("dt", { text: "Last verification" }), h("dd", { id: "last-verification" }, verdict, " ", v ? when(v.at) : "run `lineage audit verify`",
        v ? ` — ${v.records} record(s), ${v.blocks} block(s), ${v.checkpoints} checkpoint(s), ${v.problems} problem(s)` : ""),
      v && v.first ? [h("dt", { text: "First problem" }), h("dd", {}, h("code", { text: v.first }))] : null,
      h("dt", { text: "Last checkpoint" }), h("dd", { id: "last-checkpoint" }, cp ? [`block #${cp.block} (${cp.entries} entries) signed `, when(cp.at),
        cp.keyId ? ` with key ${cp.keyId}` : ""] : "none yet: run `lineage audit checkpoint`"),
      h("dt", { text: "Head block" }), h("dd", {}, head ? [`#${head.block} (${head.entries} entries) sealed `, when(head.sealedAt), " ", h("code", { class: "muted", text: String(head.blockHash).slice(0, 16) })] : "nothing sealed yet"),
      h("dt", { text: "Waiting to be sealed" }), h("dd", { text: String(s.queued ?? "—") })));
  });
}
