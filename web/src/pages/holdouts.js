// Global holdouts: the list with the create form, and one holdout's page — its share and
// hashing, the A/B tests and flags that opted in (and what they shipped), the cumulative
// impact chart (uPlot: each metric's mean per user, holdout against everyone else, since the
// start) and the month-by-month table with the difference and its interval.
import { get, post, enc } from '../api.js';
import { h, withStates, card, fmt, table, badge, errorState, kpi, listFrom } from '../ui.js';
import { lineChart } from '../charts.js';

// ---------------------------------------------------------------------------------- list

export function renderHoldouts(page, context) {
  const list = h('div');
  page.append(h('div', { class: 'page-head' }, h('h1', {}, 'Holdouts')), list, createForm(context));
  withStates(list, 'holdouts', () => get('/holdouts'), (document) => card('Holdouts', table([
    { label: 'Holdout', value: (x) => h('a', { href: `#/holdouts/${enc(x.holdout_id)}` }, x.name) },
    { label: 'Id', value: (x) => h('code', {}, x.holdout_id) },
    { label: 'Held out', value: (x) => `${fmt.number(x.percent, 2)}%` },
    { label: 'Hashed on', value: (x) => h('code', {}, x.hash_attribute) },
    { label: 'Status', value: (x) => badge(x.status) },
    { label: 'Since', value: (x) => fmt.date(x.started_at) },
  ], listFrom(document, 'holdouts'), { id: 'holdouts-table' })), {
    when: (d) => listFrom(d, 'holdouts').length === 0,
    message: 'No holdouts yet.',
    hint: 'A holdout keeps a few percent of users out of every test and flag rule that opts in.',
  });
}

function createForm(context) {
  const message = h('div', { class: 'form-message' });
  const field = (name, label, input, hint) => h('div', { class: 'field', 'data-field': name },
    h('label', { for: `holdout-${name}` }, label), input,
    hint ? h('small', { class: 'muted' }, hint) : null);
  const submit = h('button', { type: 'submit', class: 'primary' }, 'Create holdout');
  const form = h('form', { class: 'card create-holdout', novalidate: true },
    h('h2', {}, 'New holdout'),
    field('name', 'Name', h('input', { id: 'holdout-name', name: 'name', placeholder: 'FY27 holdout' })),
    field('percent', 'Percent held out', h('input', { id: 'holdout-percent', name: 'percent', value: '5' }),
          'More than 0 and at most 20.'),
    field('start_date', 'Held out since', h('input', { id: 'holdout-start_date', name: 'start_date',
                                                       type: 'date' }),
          'Empty: from now on.'),
    message, h('div', { class: 'actions' }, submit));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    message.replaceChildren();
    const body = { name: form.elements.name.value.trim() };
    const percent = form.elements.percent.value.trim();
    if (percent) body.percent = Number.isNaN(Number(percent)) ? percent : Number(percent);
    if (form.elements.start_date.value) body.start_date = `${form.elements.start_date.value}T00:00:00Z`;
    submit.disabled = true;
    try {
      const created = await post('/holdouts', body);
      context.navigate(`#/holdouts/${enc(created.holdout_id)}`);
    } catch (error) {
      submit.disabled = false;
      message.append(errorState(error, 'the new holdout'));
    }
  });
  return form;
}

// ------------------------------------------------------------------------------- detail

function difference(cell, relative) {
  const effect = relative ? cell?.relative : cell?.absolute;
  if (!effect) return '—';
  const show = (v) => (relative ? fmt.percent(v, 1) : fmt.number(v, 4));
  return `${show(effect.estimate)} [${show(effect.ci_lower)}, ${show(effect.ci_upper)}]`;
}

export function renderHoldoutDetail(page, context, holdoutId) {
  const body = h('div');
  page.append(h('div', { class: 'page-head' },
    h('h1', {}, 'Holdout ', h('code', {}, holdoutId)),
    h('a', { href: '#/holdouts' }, '← All holdouts')), body);
  withStates(body, 'the holdout\'s impact', () => get(`/holdouts/${enc(holdoutId)}/impact`),
             (impact) => impactView(impact, context, holdoutId));
}

function impactView(impact, context, holdoutId) {
  const holdout = impact.holdout;
  const periods = impact.periods || [];
  const last = periods[periods.length - 1];
  const message = h('div', { id: 'holdout-message', class: 'form-message' });
  const stop = h('button', { id: 'stop-holdout', type: 'button' }, 'Stop holdout (release its users)');
  stop.disabled = holdout.status !== 'running';
  stop.addEventListener('click', async () => {
    stop.disabled = true;
    try {
      await post(`/holdouts/${enc(holdoutId)}/stop`);
      context.navigate(`#/holdouts/${enc(holdoutId)}`);
    } catch (error) {
      stop.disabled = false;
      message.append(errorState(error, 'stopping the holdout'));
    }
  });
  const summary = card(holdout.name,
    h('div', { class: 'kpis' },
      kpi('Held out', `${fmt.number(holdout.percent, 2)}%`, `hash of ${holdout.hash_attribute}, seed ${holdout.seed}`),
      kpi('Status', badge(holdout.status), `since ${fmt.date(holdout.started_at)}`),
      kpi('Holdout users', fmt.number(last?.holdout_users ?? 0), 'latest month'),
      kpi('Everyone else', fmt.number(last?.general_users ?? 0), 'latest month')),
    h('div', { class: 'actions' }, stop), message);

  const tests = card('A/B tests in the holdout', table([
    { label: 'Test', value: (t) => h('a', { href: `#/ab-tests/${enc(t.test_id)}` }, t.test_name || t.test_id) },
    { label: 'Feature', value: (t) => h('code', {}, t.feature_name) },
    { label: 'Status', value: (t) => badge(t.status) },
    { label: 'Shipped', value: (t) => t.shipped ?? '—' },
  ], impact.ab_tests || [], { id: 'holdout-tests-table' }));
  const flags = card('Flags with rules in the holdout', table([
    { label: 'Flag', value: (f) => h('a', { href: `#/flags/${enc(f.key)}` }, f.key) },
    { label: 'State', value: (f) => badge(f.status) },
    { label: 'Rules', value: (f) => f.rules.map((r) => r.id).join(', ') },
    { label: 'Held-out users get', value: (f) => h('code', {}, JSON.stringify(f.default_value)) },
  ], impact.flags || [], { id: 'holdout-flags-table' }));

  const charts = (impact.metrics || []).map((metric) => {
    const x = periods.map((p) => Date.parse(p.to) / 1000);
    const series = ['general', 'holdout'].map((group) => ({
      label: group === 'general' ? 'Everyone else' : 'Holdout',
      values: periods.map((p) => p.cumulative[metric.name]?.[group]?.mean ?? null),
    }));
    return card(`${fmt.label(metric.name)}: mean per user since the start`,
      lineChart(x, series, { name: `holdout-impact-${metric.name}`, percent: metric.type === 'binomial',
                             emptyText: 'No full month since the holdout started yet.' }),
      h('p', { class: 'muted' }, 'Each point: since the start, up to the end of that month.'));
  });

  const rows = [];
  for (const p of periods) {
    for (const metric of impact.metrics || []) {
      rows.push({ month: p.month, metric: metric.name, monthly: p.monthly[metric.name],
                  cumulative: p.cumulative[metric.name], binomial: metric.type === 'binomial' });
    }
  }
  const mean = (cell, group, binomial) => (binomial ? fmt.percent(cell?.[group]?.mean, 2)
                                                    : fmt.number(cell?.[group]?.mean, 3));
  const byMonth = card('By month (everyone else minus the holdout)', table([
    { label: 'Month', value: (r) => r.month },
    { label: 'Metric', value: (r) => fmt.label(r.metric) },
    { label: 'Holdout (month)', value: (r) => mean(r.monthly, 'holdout', r.binomial) },
    { label: 'Everyone else (month)', value: (r) => mean(r.monthly, 'general', r.binomial) },
    { label: 'Cumulative holdout', value: (r) => mean(r.cumulative, 'holdout', r.binomial), class: 'cumulative-holdout' },
    { label: 'Cumulative everyone else', value: (r) => mean(r.cumulative, 'general', r.binomial) },
    { label: 'Cumulative difference', value: (r) => difference(r.cumulative, false) },
    { label: 'Relative [95% CI]', value: (r) => difference(r.cumulative, true), class: 'cumulative-relative' },
    { label: 'p', value: (r) => fmt.p(r.cumulative?.absolute?.p_value) },
  ], rows, { id: 'holdout-impact-table' }));
  return [summary, ...charts, byMonth, tests, flags];
}
