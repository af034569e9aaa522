// Small DOM helpers and the three states every data view has: loading, empty and error.
// Pages build DOM with h() (text is always set as text, never parsed as HTML, so values from
// the server cannot inject markup).
import { ApiError } from './api.js';

// h('div', {class: 'x', onclick: fn}, child, 'text', [more children])
export function h(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on') && typeof value === 'function') {
      node.addEventListener(name.slice(2), value);
    } else if (name === 'dataset') {
      Object.assign(node.dataset, value);
    } else {
      node.setAttribute(name, value === true ? '' : String(value));
    }
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    if (Array.isArray(child)) append(node, child);
    else node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function clear(node) {
  node.replaceChildren();
  return node;
}

export function loading(what) {
  return h('div', { class: 'state state-loading', role: 'status', 'aria-live': 'polite' },
           h('span', { class: 'spinner', 'aria-hidden': 'true' }), `Loading ${what}…`);
}

export function empty(message, hint) {
  return h('div', { class: 'state state-empty' }, h('p', {}, message),
           hint ? h('p', { class: 'muted' }, hint) : null);
}

// An error box showing the problem's detail and the field it names.
export function errorState(error, what) {
  const box = h('div', { class: 'state state-error', role: 'alert' });
  const status = error instanceof ApiError && error.status ? ` (HTTP ${error.status})` : '';
  box.append(h('p', { class: 'error-title' }, `Could not load ${what}${status}`));
  const detail = error instanceof ApiError ? (error.detail || error.title) : error.message;
  if (detail) box.append(h('p', { class: 'error-detail' }, detail));
  if (error instanceof ApiError && error.field) {
    box.append(h('p', { class: 'error-field' }, 'Field: ', h('code', {}, error.field)));
  }
  return box;
}

// Runs `load` and shows its states in `container`; `render(data)` returns the content.
// `isEmpty(data)` picks the empty state.
export async function withStates(container, what, load, render, emptyState) {
  clear(container).append(loading(what));
  let data;
  try {
    data = await load();
  } catch (error) {
    clear(container).append(errorState(error, what));
    return { error };
  }
  if (emptyState && emptyState.when(data)) {
    clear(container).append(empty(emptyState.message, emptyState.hint));
    return { data };
  }
  const content = render(data);
  clear(container).append(...[].concat(content));
  return { data };
}

export const fmt = {
  percent(value, digits = 1) {
    return isNum(value) ? `${(value * 100).toFixed(digits)}%` : '—';
  },
  number(value, digits = 2) {
    if (!isNum(value)) return '—';
    return Number.isInteger(value) ? value.toLocaleString('en-US')
                                   : value.toLocaleString('en-US', { maximumFractionDigits: digits });
  },
  money(value) {
    return isNum(value) ? value.toLocaleString('en-US', { minimumFractionDigits: 2,
                                                          maximumFractionDigits: 2 }) : '—';
  },
  p(value) {
    if (!isNum(value)) return '—';
    return value < 0.0001 ? '< 0.0001' : value.toFixed(4);
  },
  // "p = 0.0123" or "p < 0.0001".
  pEquals(value) {
    if (!isNum(value)) return 'p = —';
    return value < 0.0001 ? 'p < 0.0001' : `p = ${value.toFixed(4)}`;
  },
  date(value) {
    if (!value) return '—';
    const d = new Date(value);
    return Number.isNaN(d.getTime()) ? String(value) : d.toISOString().slice(0, 10);
  },
  datetime(value) {
    if (!value) return '—';
    const d = new Date(value);
    return Number.isNaN(d.getTime()) ? String(value)
                                     : d.toISOString().replace('T', ' ').slice(0, 16) + ' UTC';
  },
  label(name) {
    return String(name ?? '').replace(/_/g, ' ');
  },
};

export function isNum(value) {
  return typeof value === 'number' && Number.isFinite(value);
}

export function badge(text, kind) {
  return h('span', { class: `badge badge-${kind || String(text).toLowerCase()}` }, fmt.label(text));
}

// A table from rows; columns: [{label, value: row => node|string, class}]
export function table(columns, rows, attrs = {}) {
  return h('table', { class: 'data', ...attrs },
           h('thead', {}, h('tr', {}, columns.map((c) => h('th', { class: c.class }, c.label)))),
           h('tbody', {}, rows.map((row) => h('tr', {},
             columns.map((c) => h('td', { class: c.class }, c.value(row)))))));
}

export function card(title, ...children) {
  return h('section', { class: 'card' }, title ? h('h2', {}, title) : null, ...children);
}

export function kpi(label, value, note) {
  return h('div', { class: 'kpi' }, h('div', { class: 'kpi-value' }, value),
           h('div', { class: 'kpi-label' }, label), note ? h('div', { class: 'kpi-note' }, note) : null);
}

// Arrays in API documents sometimes arrive wrapped ({items: [...]}, {tests: [...]}).
export function listFrom(document, ...keys) {
  if (Array.isArray(document)) return document;
  if (document && typeof document === 'object') {
    for (const key of [...keys, 'items', 'data', 'results']) {
      if (Array.isArray(document[key])) return document[key];
    }
  }
  return [];
}
