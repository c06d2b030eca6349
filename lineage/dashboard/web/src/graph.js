// The graph explorer: the server's capped, annotated, laid-out answer drawn with sigma.js (WebGL),
// with a table view of the same answer, a panel for the selected node, and a DOM list of what
// needs attention (blocked runs, blocking sources, erased nodes) so nothing important lives
// only in the canvas.
import Graph from "graphology";
import Sigma from "sigma";
import { EdgeLineProgram, NodePointProgram } from "sigma/rendering";
import * as api from "./api.js";
import { h, link, route, table, badge, section, nodeLabel, parseNodeId } from "./dom.js";

export const STATUS_COLORS = {
  approved: "#2e7d32", missing: "#e65100", revoked: "#c62828", expired: "#6a1b9a",
  proposed: "#f9a825", erased: "#212121", derived: "#78909c",
};
const JOB = "#37474f", BLOCKED = "#d50000", GROUP = "#b0bec5";

let renderer = null;

export function destroy() {
  if (renderer) {
    renderer.kill();
    renderer = null;
  }
}

function statusOf(n, erased) {
  return erased.has(n.id) ? "erased" : n.status;
}

function describe(n, erased) {
  if (n.type === "group") return `${n.count} more (hidden by the cap)`;
  if (n.type === "job") return n.blocked ? "job · BLOCKED by the gate" : `job · ${n.state || "no runs"}`;
  const bits = [`dataset · ${statusOf(n, erased)}`];
  if (n.erasure) bits.push(`on erasure #${n.erasure}`);
  if (n.blocking) bits.push(`blocking (${n.blocking.join(", ")})`);
  if (n.sensitive && n.sensitive.length) bits.push(`sensitive: ${n.sensitive.join(", ")}`);
  return bits.join(" · ");
}

// The server marks every dataset on an erasure manifest (`erasure`: the manifest's id, status
// "erased"), so a viewer, who may not read the manifests themselves, still sees what was erased.
function erasedNodes(answer) {
  return new Set(answer.nodes.filter((n) => n.erasure).map((n) => n.id));
}

export async function graphPage(main, params, setTitle) {
  const state = {
    node: params.get("node") || "",
    dir: params.get("dir") || "upstream",
    depth: params.get("depth") || "2",
    asOf: params.get("asOf") || "",
    view: params.get("view") || "graph",
    cap: params.get("cap") || "",
    expand: params.getAll("expand"),
    more: params.getAll("more"),
  };
  const go = (patch) => { location.hash = route("graph", { ...state, ...patch }); };
  setTitle(`Graph · ${nodeLabel(state.node)}`);
  const asOfIso = state.asOf ? `${state.asOf}T23:59:59Z` : undefined;
  const answer = await api.get("/api/v1/dashboard/graph", {
    nodeId: state.node, direction: state.dir, depth: state.depth, asOf: asOfIso,
    expand: state.expand, more: state.more, cap: state.cap,
  });
  const erased = erasedNodes(answer);
  performance.mark("lineage:data");
  const all = [...answer.nodes, ...answer.groups];
  const byId = new Map(all.map((n) => [n.id, n]));

  const dirSel = h("select", { id: "dir", onchange: (e) => go({ dir: e.target.value, expand: [], more: [] }) },
    ["upstream", "downstream", "both"].map((d) => h("option", { value: d, selected: d === state.dir ? "" : null, text: d })));
  const depthIn = h("input", { id: "depth", type: "number", min: "0", max: "50", value: state.depth, onchange: (e) => go({ depth: e.target.value }) });
  const asOfIn = h("input", { id: "asof", type: "date", value: state.asOf, onchange: (e) => go({ asOf: e.target.value }) });
  const viewBtn = h("button", { type: "button", id: "toggle-view", onclick: () => go({ view: state.view === "graph" ? "table" : "graph" }),
    text: state.view === "graph" ? "Table view" : "Graph view" });
  const controls = h("form", { class: "controls", onsubmit: (e) => e.preventDefault(), "aria-label": "Graph options" },
    h("label", { for: "dir" }, "Direction "), dirSel,
    h("label", { for: "depth" }, " Depth "), depthIn,
    h("label", { for: "asof" }, " As of "), asOfIn,
    asOfIn.value ? h("button", { type: "button", onclick: () => go({ asOf: "" }), text: "Now" }) : null,
    " ", viewBtn);

  const attention = attentionList(answer, erased);
  const summary = h("p", { class: "muted", id: "graph-summary" },
    `${answer.nodes.length} nodes, ${answer.edges.length} edges` +
    (answer.hidden ? `; ${answer.hidden} more hidden by the cap (see the "+N more" groups)` : "") +
    (answer.asOf ? `; as of ${answer.asOf}` : ""));
  const panel = h("aside", { class: "panel", id: "node-panel", "aria-live": "polite" },
    h("p", { class: "muted", text: "Select a node (click it, or use the table view) to see it here." }));

  main.replaceChildren(
    h("h1", {}, "Lineage of ", h("span", { class: "name", text: nodeLabel(state.node) })),
    controls, legend(), attention, summary,
  );
  const select = (id) => showPanel(panel, byId.get(id), state, go, erased);
  if (state.view === "table") {
    main.append(h("div", { class: "split" }, graphTable(answer, erased, select), panel));
  } else {
    const box = h("div", { id: "sigma", class: "sigma", role: "img", "aria-label": `Lineage graph of ${nodeLabel(state.node)}; the table view lists the same nodes` });
    main.append(h("div", { class: "split" }, box, panel));
    draw(box, answer, erased, state.node, select);
  }
  select(state.node);
}

function legend() {
  return h("ul", { class: "legend", "aria-label": "Legend" },
    Object.entries(STATUS_COLORS).map(([k, c]) => {
      const sw = h("span", { class: "swatch" });
      sw.style.background = c; // CSSOM, which the page's CSP allows (no inline style attributes)
      return h("li", {}, sw, k);
    }),
    h("li", {}, h("span", { class: "swatch job" }), "job"),
    h("li", {}, h("span", { class: "swatch blocked" }), "blocked run / blocking source"));
}

function attentionList(answer, erased) {
  const items = [];
  for (const n of answer.nodes) {
    if (n.type === "job" && n.blocked)
      items.push(h("li", { class: "blocked" }, badge("blocked run", "bad"), " ",
        n.runId ? link("run", { id: n.runId }, `${n.namespace}:${n.name}`) : `${n.namespace}:${n.name}`));
    if (n.type === "dataset" && (n.blocking || ["missing", "revoked", "expired"].includes(n.status)))
      items.push(h("li", { class: "blocking" }, badge(n.blocking ? "blocking source" : n.status, "bad"), " ",
        link("dataset", { node: n.id }, `${n.namespace}:${n.name}`),
        n.blocking ? ` — ${n.blocking.join(", ")}` : "",
        (n.contracts || []).length ? ` (under ${n.contracts.map((c) => `${c.id}@${c.version}, ${c.status}`).join("; ")})` : " (no contract covers it)"));
    if (erased.has(n.id))
      items.push(h("li", { class: "erased" }, badge("erased", "erased"), " ", link("dataset", { node: n.id }, `${n.namespace}:${n.name}`),
        " — on ", link("erasure", { id: n.erasure }, `erasure #${n.erasure}`)));
  }
  if (!items.length) return h("div", { id: "attention" });
  return h("div", { id: "attention", class: "attention", role: "region", "aria-label": "Needs attention" },
    h("h2", { text: "Needs attention" }), h("ul", {}, items));
}

function graphTable(answer, erased, select) {
  const rows = [...answer.nodes, ...answer.groups].sort((a, b) => a.x - b.x || a.y - b.y).map((n) => {
    const st = n.type === "dataset" ? statusOf(n, erased) : n.type === "job" ? (n.blocked ? "blocked" : n.state || "—") : "";
    const tr = h("tr", { class: `k-${n.type} s-${st}`, "data-node": n.id },
      h("td", {}, h("button", { type: "button", class: "linkish", onclick: () => select(n.id), text: n.type === "group" ? n.name : n.name })),
      h("td", { text: n.namespace }),
      h("td", { text: n.type }),
      h("td", {}, n.type === "dataset" ? badge(st, st) : n.blocked ? badge("blocked", "bad") : st),
      h("td", {}, (n.sensitive || []).map((c) => badge(c, "sensitive")), (n.categories || []).filter((c) => !(n.sensitive || []).includes(c)).map((c) => badge(c, "cat"))),
      h("td", { text: String(Math.round(n.x)) }));
    return tr;
  });
  return h("div", { class: "tablebox" }, table(["name", "namespace", "kind", "status", "categories", "layer"], rows, { caption: "Nodes of this graph", class: "data graph-table" }));
}

// Past this many nodes the graph is an overview: cheaper WebGL programs, no labels until zoom.
export const BIG = 2000;
// Labels come back once the camera is zoomed in this far (sigma's ratio: 1 = whole graph).
const LABEL_RATIO = 0.25;

function draw(box, answer, erased, start, select) {
  destroy();
  const big = answer.nodes.length > BIG;
  // Built as one serialized graph and imported in bulk (no per-edge existence checks: the
  // server's edges are already unique).
  const nodes = [], edges = [], seen = new Set();
  for (const n of [...answer.nodes, ...answer.groups]) {
    let color = JOB, size = big ? 2 : 6;
    if (n.type === "dataset") color = STATUS_COLORS[statusOf(n, erased)] || STATUS_COLORS.derived;
    if (n.type === "group") { color = GROUP; size = big ? 2 : 5; }
    const alarm = Boolean((n.type === "job" && n.blocked) || (n.type === "dataset" && (n.blocking || erased.has(n.id))));
    if (alarm) { color = erased.has(n.id) ? STATUS_COLORS.erased : BLOCKED; size = big ? 5 : 11; }
    if (n.id === start) size += big ? 2 : 4;
    seen.add(n.id);
    nodes.push({ key: n.id, attributes: {
      // The server's x is the layer; drawn top to bottom (sources on top) so labels, which run
      // sideways, do not collide along a chain.
      x: n.y, y: -n.x, size, color,
      label: n.sensitive && n.sensitive.length && !big ? `${n.name} [sensitive]` : n.name,
      forceLabel: alarm || n.id === start, highlighted: alarm, kind: n.type,
      borderColor: alarm ? BLOCKED : undefined,
    } });
  }
  for (const e of answer.edges) {
    if (seen.has(e.source) && seen.has(e.target))
      // Arrows for a readable graph; one-pixel lines past BIG nodes, where arrowheads are too
      // small to see and each edge would cost two triangles on a software rasteriser.
      edges.push({ source: e.source, target: e.target, attributes: { size: big ? 0.5 : 1.5, color: "#b0bec5", type: big ? "line" : "arrow" } });
  }
  const g = new Graph({ multi: false, type: "directed" });
  g.import({ nodes, edges });
  performance.mark("lineage:sigma");
  const settings = {
    renderEdgeLabels: false, enableEdgeEvents: false, labelRenderedSizeThreshold: big ? 8 : 4, defaultEdgeType: big ? "line" : "arrow",
    hideEdgesOnMove: big, hideLabelsOnMove: big, labelDensity: big ? 0.2 : 1, zIndex: true,
  };
  if (big) {
    // Fewer, cheaper WebGL programs (each is compiled with its picking twin at start-up):
    // points for nodes, GL lines for edges, and "arrow" mapped to lines too so its two-part
    // program is never built.  Labels are off until the camera zooms in.
    Object.assign(settings, { nodeProgramClasses: { circle: NodePointProgram }, edgeProgramClasses: { line: EdgeLineProgram, arrow: EdgeLineProgram },
      renderLabels: false });
  }
  renderer = new Sigma(g, box, settings);
  performance.mark("lineage:constructed");
  if (big) {
    const camera = renderer.getCamera();
    camera.on("updated", (state) => {
      const want = state.ratio < LABEL_RATIO;
      if (renderer && renderer.getSetting("renderLabels") !== want) renderer.setSetting("renderLabels", want);
    });
  }
  renderer.on("clickNode", ({ node }) => select(node));
  window.lineageDashboard = { graph: g, renderer };
  // Marks the benchmark and the browser tests read: the first frame drawn, then idle.
  renderer.once("afterRender", () => {
    performance.mark("lineage:rendered");
    const idle = window.requestIdleCallback || ((f) => setTimeout(f, 0));
    idle(() => { performance.mark("lineage:interactive"); box.dataset.ready = "1"; }, { timeout: 2000 });
  });
  renderer.refresh();
}

function showPanel(panel, n, state, go, erased) {
  if (!n) return;
  const kids = [h("h2", {}, h("span", { class: "name", text: n.name })), h("p", { class: "muted", text: n.namespace }),
    h("p", { class: "node-desc", text: describe(n, erased) })];
  if (n.type === "group") {
    kids.push(h("button", { type: "button", id: "show-more", onclick: () => go({ more: [...state.more, n.parent] }), text: `Show all ${n.count}` }));
  } else {
    if (n.type === "dataset") {
      kids.push(h("p", {}, link("dataset", { node: n.id }, "Open dataset page")));
      if (n.erasure) kids.push(h("p", { class: "erased" }, "Erased: it is on ", link("erasure", { id: n.erasure }, `erasure #${n.erasure}`),
        " (the manifest needs the auditor or steward role)."));
      if (n.contracts && n.contracts.length)
        kids.push(h("ul", {}, n.contracts.map((c) => h("li", {}, link("contract", { id: c.id }, `${c.id}@${c.version}`), " ", badge(c.status, c.status)))));
      else if (!n.erasure) kids.push(h("p", { text: n.status === "missing" ? "No contract covers this origin: the gate blocks training on it." : "No contract covers it directly; its sources carry the contracts." }));
      if (n.sensitive && n.sensitive.length) kids.push(h("p", {}, "Sensitive: ", n.sensitive.map((c) => badge(c, "sensitive"))));
      kids.push(h("p", {}, link("impact", { node: n.id }, "Impact of this source")));
    } else {
      if (n.runId) kids.push(h("p", {}, link("run", { id: n.runId }, n.blocked ? "Open the blocked run" : "Open latest run")));
      kids.push(h("p", {}, link("job", { node: n.id }, "Open job page")));
    }
    if (n.id !== state.node) kids.push(h("p", {}, link("graph", { ...state, node: n.id, expand: [], more: [] }, "Re-centre the graph here")));
    if (n.frontier && !state.expand.includes(n.id))
      kids.push(h("button", { type: "button", id: "expand", onclick: () => go({ expand: [...state.expand, n.id] }), text: "Expand one more step" }));
  }
  panel.replaceChildren(...kids);
}
