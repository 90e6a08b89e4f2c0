// Small DOM builders: every value from the API goes in as text, never as HTML.

/** An element with attributes and children (strings become text nodes). */
export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === false || value === null || value === undefined) continue;
    if (name === "class") node.className = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

const LOCAL = new Intl.DateTimeFormat(undefined, {
  year: "numeric",
  month: "short",
  day: "numeric",
  hour: "2-digit",
  minute: "2-digit",
  second: "2-digit",
  timeZoneName: "short",
});

/** A time in the viewer's time zone; its UTC value on hover (and for assistive technology). */
export function time(iso) {
  if (!iso) return el("span", { class: "muted" }, "—");
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return el("span", {}, iso);
  const utc = `${date.toISOString().replace(".000Z", "Z")} (UTC)`;
  return el("time", { datetime: date.toISOString(), title: utc }, LOCAL.format(date));
}

/** A JSON value as compact text. */
export function json(value) {
  if (value === null || value === undefined) return el("span", { class: "muted" }, "null");
  return el("code", { class: "value" }, JSON.stringify(value));
}

/** A badge naming the layer a value comes from. */
export function source(layer) {
  return el("span", { class: `badge source-${layer}` }, layer);
}

/** Yes / no, readable without colour. */
export function yesNo(flag, yes = "Yes", no = "No") {
  return el("span", { class: flag ? "badge yes" : "badge no" }, flag ? yes : no);
}

/**
 * A table whose rows stack into labelled cards on narrow screens: each cell carries its
 * column's name in `data-label`.
 */
export function table(caption, columns, rows) {
  return el(
    "div",
    { class: "table-wrap" },
    el(
      "table",
      {},
      el("caption", {}, caption),
      el("thead", {}, el("tr", {}, columns.map((c) => el("th", { scope: "col" }, c)))),
      el(
        "tbody",
        {},
        rows.map((row) =>
          el(
            "tr",
            row.attributes ?? {},
            (row.cells ?? row).map((cell, i) => el("td", { "data-label": columns[i] }, cell)),
          ),
        ),
      ),
    ),
  );
}

/** A paragraph for an empty result. */
export function empty(text) {
  return el("p", { class: "empty" }, text);
}
