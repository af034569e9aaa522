// Overview: GET /dashboard, "everything the dashboard shows, in one document". Sections are
// rendered from the document's shape (numbers become figures, lists become short tables),
// with links into the detailed pages, so new fields the server adds show up without a
// dashboard release.
import { get } from '../api.js';
import { h, withStates, card, kpi, fmt, table, isNum, badge } from '../ui.js';

const SECTION_LINKS = {
  ab_tests: '#/ab-tests', experiments: '#/ab-tests', tests: '#/ab-tests',
  recommendations: '#/recommendations', feature_recommendations: '#/recommendations',
  upgrade_timing: '#/upgrade-timing',
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
    if (!value || typeof value !== 'object') continue;
    if (key === 'ab_tests' && Array.isArray(value.tests)) out.push(abTestSection(value));
    else if (ENGINE_CARDS[key] && !value.error) sections.append(engineCard(key, value));
    else sections.append(section(key, value));
  }
  if (sections.childElementCount) out.push(sections);
  return out;
}

// The A/B test section: counts by status, then each test with its current verdict (results
// are included for the newest running or finished tests).
function abTestSection(value) {
  const results = value.results || {};
  const counts = Object.entries(value.counts_by_status || {});
  const body = [];
  if (value.error) body.push(h('div', { class: 'state state-error' }, h('p', {}, value.error)));
  body.push(h('div', { class: 'kpis small' }, kpi('tests', fmt.number(value.tests.length)),
    counts.map(([status, count]) => kpi(status, fmt.number(count)))));
  if (!value.tests.length) {
    body.push(h('div', { class: 'state state-empty' }, h('p', {}, 'No A/B tests yet.'),
      h('p', {}, h('a', { href: '#/ab-tests/new' }, 'Create the first one'))));
  } else {
    body.push(h('div', { class: 'table-scroll' }, table([
      { label: 'Test', value: (t) => h('a', { href: `#/ab-tests/${encodeURIComponent(t.test_id)}` }, t.test_name || t.test_id) },
      { label: 'Status', value: (t) => badge(t.status || 'unknown') },
      { label: 'Exposed', class: 'num', value: (t) => fmt.number(results[t.test_id]?.total_exposures) },
      { label: 'Winner', value: (t) => results[t.test_id]?.winner || t.winner || '—' },
      { label: 'Verdict', value: (t) => verdict(results[t.test_id]) },
    ], value.tests, { id: 'overview-tests' })));
  }
  const c = card(null, h('h2', {}, 'A/B tests', h('a', { class: 'more', href: '#/ab-tests' }, 'Open →')), ...body);
  c.dataset.section = 'ab_tests';
  return c;
}

function verdict(result) {
  if (!result) return h('span', { class: 'muted' }, 'not analysed');
  if (result.error) return h('span', { class: 'field-error' }, result.error);
  const parts = [];
  if (result.recommendation_action) parts.push(badge(result.recommendation_action, 'info'), ' ');
  if (result.srm?.mismatch) parts.push(badge('SRM', 'cancelled'), ' ');
  parts.push(h('span', { class: 'small' }, typeof result.recommendation === 'string'
    ? result.recommendation : result.recommendation?.text ?? ''));
  return parts;
}

const TITLES = { ab_tests: 'A/B tests', experiments: 'A/B tests', upgrade_timing: 'Upgrade timing',
                 retention: 'Retention campaigns', sunset: 'Feature sunset' };

// The four engines at a glance: a few figures each, the same as on their own pages.
const ENGINE_CARDS = {
  recommendations: (s) => [
    kpi('recommendations', fmt.number(s.recommendations)),
    kpi('users reached', fmt.number(s.users_with_recommendations)),
    kpi('acted on (28 d)', fmt.percent(s.outcomes?.overall?.acted_on_rate)),
    kpi('top feature', fmt.label(s.top_features?.[0]?.feature_name ?? '—')),
  ],
  upgrade_timing: (s) => [
    kpi('free users', fmt.number(s.free_users)),
    kpi('optimal this week', fmt.number(s.optimal_this_week)),
    kpi('holdout AUC', fmt.number(s.model?.evaluation?.model?.auc, 3)),
    kpi('holdout Brier', fmt.number(s.model?.evaluation?.model?.brier, 4)),
  ],
  retention: (s) => [
    kpi('campaigns', fmt.number(s.totals?.campaigns)),
    kpi('targeted', fmt.number(s.totals?.targeted)),
    kpi('held out', fmt.number(s.totals?.held_out)),
    kpi('measured lift', liftOf(s.campaigns)),
  ],
  sunset: (s) => [
    kpi('features', fmt.number(s.features)),
    kpi('candidates', fmt.number(s.candidates?.length)),
    kpi('revenue at risk / month', fmt.money(s.revenue_at_risk)),
    kpi('cost saved / month', fmt.money(s.cost_saved)),
  ],
};

// The newest campaign with a measured lift, as "+1.2 pp".
function liftOf(campaigns) {
  const measured = (campaigns || []).find((c) => isNum(c.results?.lift?.estimate));
  if (!measured) return '—';
  const pp = measured.results.lift.estimate * 100;
  return `${pp >= 0 ? '+' : ''}${pp.toFixed(1)} pp`;
}

function engineCard(key, value) {
  const link = SECTION_LINKS[key];
  const c = card(null, h('h2', {}, TITLES[key] || fmt.label(key),
                         link ? h('a', { class: 'more', href: link }, 'Open →') : null),
                 h('div', { class: 'kpis small' }, ENGINE_CARDS[key](value)));
  c.dataset.section = key;
  return c;
}

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
          h('span', { class: 'chip' }, fmt.label(name), ': ', h('strong', {}, summarize(name, count))))));
      }
    }
    if (!body.length) body.push(h('p', { class: 'muted' }, 'Nothing yet.'));
  }
  const c = card(null, h('h2', {}, title, link ? h('a', { class: 'more', href: link }, 'Open →') : null),
                 ...body);
  c.dataset.section = key;
  return c;
}

function summarize(key, value) {
  if (Array.isArray(value)) return `${value.length} items`;
  if (value && typeof value === 'object') return `${Object.keys(value).length} entries`;
  return formatValue(key, value);
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
