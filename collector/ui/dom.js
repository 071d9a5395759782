// Building DOM nodes. Event data only ever enters the page as text (text nodes and attribute
// values set one by one), never as markup, so a captured field cannot become an element or a
// script whatever it holds; and characters a reader cannot see (text.js) are shown escaped,
// ⟨U+202E⟩ in a marked span, so a captured field cannot read as something it is not.

import { hasHidden, jsonEscape, splitHidden, visible } from './text.js';

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
  if (text !== undefined && text !== null) setText(node, String(text));
  for (const [name, value] of Object.entries(attrs ?? {})) {
    if (value !== undefined && value !== null && value !== false) node.setAttribute(name, visible(String(value)));
  }
  for (const child of children) if (child) node.append(child);
  return node;
}

/** Sets `node`'s text, each hidden character shown by `escape` in a span marked `hidden-char`. */
export function setText(node, text, escape = (piece) => `⟨${piece.hidden}⟩`) {
  if (!hasHidden(text)) {
    node.textContent = text;
    return;
  }
  if (node.namespaceURI === SVG_NS) {
    node.textContent = visible(text);
    return;
  }
  node.replaceChildren(...textNodes(text, escape));
}

function textNodes(text, escape) {
  return splitHidden(text).map((piece) =>
    typeof piece === 'string'
      ? document.createTextNode(piece)
      : build(document.createElement('span'), { cls: 'hidden-char', text: escape(piece), attrs: { title: `${piece.hidden}: a character that is not visible or reorders text, shown as its code point` } }, []));
}

/**
 * Sets `node`'s text to `value` as indented JSON, each hidden character written as its JSON
 * escape (`\u202E`), so the text still parses to the same value. The line breaks between
 * members are the layout's own: inside strings JSON.stringify has already escaped every control.
 */
export function setJson(node, value) {
  const lines = JSON.stringify(value, null, 2).split('\n');
  node.replaceChildren(...lines.flatMap((line, i) => [...(i ? [document.createTextNode('\n')] : []), ...textNodes(line, (piece) => jsonEscape(piece.char))]));
}

/** Removes every child of `node`. */
export function clear(node) {
  node.replaceChildren();
}

/** Shows or hides `node`. */
export function show(node, visibleNow) {
  node.hidden = !visibleNow;
}

/** A `<dt>`/`<dd>` pair for a facts list. */
export function fact(list, term, value, cls) {
  list.append(el('dt', { text: term }), el('dd', { text: value, cls }));
}
