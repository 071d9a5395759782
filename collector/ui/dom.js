// Building DOM nodes. Event data only ever enters the page as text (textContent and
// attribute values set one by one), never as markup, so a captured field cannot become
// an element or a script whatever it holds.

const SVG_NS = 'http://www.w3.org/2000/svg';

/** An element with optional class, text and attributes, and children appended. */
export function el(tag, options = {}, children = []) {
  return build(document.createElement(tag), options, children);
}

/** An SVG element, built the same way. */
export function svg(tag, options = {}, children = []) {
  return build(document.createElementNS(SVG_NS, tag), options, children);
}

function build(node, { cls, text, attrs }, children) {
  if (cls) node.setAttribute('class', cls);
  if (text !== undefined && text !== null) node.textContent = String(text);
  for (const [name, value] of Object.entries(attrs ?? {})) {
    if (value !== undefined && value !== null && value !== false) node.setAttribute(name, String(value));
  }
  for (const child of children) if (child) node.append(child);
  return node;
}

/** Removes every child of `node`. */
export function clear(node) {
  node.replaceChildren();
}

/** Shows or hides `node`. */
export function show(node, visible) {
  node.hidden = !visible;
}

/** A `<dt>`/`<dd>` pair for a facts list. */
export function fact(list, term, value, cls) {
  list.append(el('dt', { text: term }), el('dd', { text: value, cls }));
}
