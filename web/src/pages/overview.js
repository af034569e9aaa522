// Overview: GET /dashboard, "everything the dashboard shows, in one document". Sections are
// rendered from the document's shape (numbers become figures, lists become short tables),
// with links into the detailed pages, so new fields the server adds show up without a
// dashboard release.
import { get } from '../api.js';
import { h, withStates, card, kpi, fmt, table, isNum, badge } from '../ui.js';

const SECTION_LINKS = {
  ab_tests: '#/ab-tests', experiments: '#/ab-tests', tests: '#/ab-tests',
  recommendations: '#/users', feature_recommendations: '#/users', upgrade_timing: '#/users',
  retention_campaigns: '#/retention', retention: '#/retention', campaigns: '#/retention',
  feature_sunset: '#/sunset', sunset: '#/sunset',
};

export function renderOverview(page, context) {
  const body = h('div', { class: 'overview' });
  page.append(h('div', { class: 'page-head' }, h('h1', {}, 'Overview'),
                h('button', { type: 'button', onclick: () => load() }, 'Refresh')), body);
  const load = () => withStates(body, 'the dashboard', () => get('/dashboard'), renderDocument, {
    when: (d) => !d || (typeof d === 'object' && !Object.keys(d).length),
    message: 'The dashboard has nothing to show yet.',
    hint: 'Ingest events and create an A/B test to fill it.',
  });
  load();
}

function renderDocument(document) {
  const out = [];
  const headline = [];
  for (const [key, value] of Object.entries(document)) {
    if (isNum(value)) headline.push(kpi(fmt.label(key), fmt.number(value)));
  }
  if (headline.length) out.push(h('div', { class: 'kpis' }, headline));
  const meta = Object.entries(document).filter(([, v]) => typeof v === 'string');
  if (meta.length) {
    out.push(h('p', { class: 'muted meta' }, meta.map(([k, v]) =>
      h('span', {}, `${fmt.label(k)}: `, k.endsWith('_at') ? fmt.datetime(v) : v, ' '))));
  }
  const sections = h('div', { class: 'grid' });
  for (const [key, value] of Object.entries(document)) {
    if (value && typeof value === 'object') sections.append(section(key, value));
  }
  out.push(sections);
  return out;
}

const TITLES = { ab_tests: 'A/B tests', experiments: 'A/B tests' };

function section(key, value) {
  const link = SECTION_LINKS[key];
  const title = h('span', {}, TITLES[key] || fmt.label(key));
  const body = [];
  if (Array.isArray(value)) {
    body.push(kpi('items', fmt.number(value.length)));
    if (value.length) body.push(rowsTable(value.slice(0, 6)));
  } else {
    const numbers = [], nested = [];
    for (const [k, v] of Object.entries(value)) {
      if (isNum(v)) numbers.push(kpi(fmt.label(k), formatValue(k, v)));
      else if (typeof v === 'string' || typeof v === 'boolean') numbers.push(kpi(fmt.label(k), String(v)));
      else if (v && typeof v === 'object') nested.push([k, v]);
    }
    if (numbers.length) body.push(h('div', { class: 'kpis small' }, numbers));
    for (const [k, v] of nested) {
      body.push(h('h3', {}, fmt.label(k)));
      if (Array.isArray(v)) {
        body.push(v.length ? rowsTable(v.slice(0, 6)) : h('p', { class: 'muted' }, 'None.'));
      } else {
        body.push(h('div', { class: 'chips' }, Object.entries(v).map(([name, count]) =>
          h('span', { class: 'chip' }, fmt.label(name), ': ',
            h('strong', {}, typeof count === 'object' ? JSON.stringify(count) : formatValue(name, count))))));
      }
    }
    if (!body.length) body.push(h('p', { class: 'muted' }, 'Nothing yet.'));
  }
  const c = card(null, h('h2', {}, title, link ? h('a', { class: 'more', href: link }, 'Open →') : null),
                 ...body);
  c.dataset.section = key;
  return c;
}

function formatValue(key, value) {
  if (!isNum(value)) return String(value ?? '—');
  if (/rate|share|ratio|fraction|score|probability/.test(key) && value >= 0 && value <= 1) {
    return fmt.percent(value);
  }
  if (/revenue|value|cost|amount/.test(key)) return fmt.money(value);
  return fmt.number(value);
}

function rowsTable(rows) {
  const objects = rows.filter((r) => r && typeof r === 'object');
  if (!objects.length) return h('p', {}, rows.join(', '));
  const keys = [];
  for (const row of objects) {
    for (const [k, v] of Object.entries(row)) {
      if ((v === null || typeof v !== 'object') && !keys.includes(k) && keys.length < 5) keys.push(k);
    }
  }
  return h('div', { class: 'table-scroll' }, table(keys.map((k) => ({
    label: fmt.label(k),
    value: (row) => {
      const v = row[k];
      if (k.endsWith('status')) return v ? badge(v) : '—';
      if (k.endsWith('_at') || k.endsWith('_date')) return fmt.date(v);
      return isNum(v) ? formatValue(k, v) : String(v ?? '—');
    },
  })), objects));
}
