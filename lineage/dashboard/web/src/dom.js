// Building the DOM safely: every piece of data becomes a text node (textContent), never markup.
// Names of datasets and jobs are user input; nothing here ever assigns innerHTML.

export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") el.className = v;
    else if (k === "text") el.textContent = String(v);
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "href") el.setAttribute("href", safeHref(v));
    else el.setAttribute(k, String(v));
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

// Links are only ever to this page's own routes ("#/...") or same-origin API paths.
function safeHref(v) {
  const s = String(v);
  return s.startsWith("#/") || s.startsWith("/api/") ? s : "#/";
}

export function route(path, params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) {
    if (Array.isArray(v)) v.forEach((x) => q.append(k, x));
    else if (v !== undefined && v !== null && v !== "") q.set(k, v);
  }
  const s = q.toString();
  return `#/${path}${s ? "?" + s : ""}`;
}

export function link(path, params, ...children) {
  return h("a", { href: route(path, params) }, ...children);
}

export function table(headers, rows, opts = {}) {
  return h("table", { class: opts.class || "data" },
    opts.caption ? h("caption", { text: opts.caption }) : null,
    h("thead", {}, h("tr", {}, headers.map((x) => h("th", { scope: "col", text: x })))),
    h("tbody", {}, rows.map((r) => (r instanceof Node ? r : h("tr", {}, r.map((c) => h("td", {}, c)))))));
}

export function badge(text, kind) {
  return h("span", { class: `badge ${kind || ""}`.trim(), text });
}

export function section(title, ...children) {
  return h("section", {}, h("h2", { text: title }), ...children);
}

export function when(iso) {
  return iso ? h("time", { datetime: iso, text: iso.replace("T", " ").replace(/\.\d+Z$/, "Z") }) : "—";
}

export function nodeLabel(id) {
  const p = parseNodeId(id);
  return p ? `${p.namespace}:${p.name}` : id;
}

// kind:NAMESPACE:NAME, where the namespace may itself hold colons (s3://bucket): the server's
// answers carry namespace and name apart, so this is only for ids taken from the URL.
export function parseNodeId(id) {
  const m = /^(dataset|job):(.*)$/.exec(id || "");
  if (!m) return null;
  const rest = m[2];
  const i = rest.lastIndexOf(":");
  if (i < 0) return null;
  return { kind: m[1], namespace: rest.slice(0, i), name: rest.slice(i + 1) };
}
