// A/B tests: the list, the create form, and one test's page with its lifecycle actions
// (start, pause, resume, complete, cancel) and statistical results: one confidence-interval
// chart per metric, the sample-ratio-mismatch warning and cumulative conversion over time.
import { get, post, enc, ApiError } from '../api.js';
import { h, clear, withStates, card, kpi, fmt, table, badge, errorState, listFrom, isNum }
  from '../ui.js';
import { intervalChart, lineChart } from '../charts.js';

// ---------------------------------------------------------------------------------- list

export function renderTestList(page) {
  const body = h('div');
  page.append(h('div', { class: 'page-head' }, h('h1', {}, 'A/B tests'),
                h('a', { class: 'button primary', href: '#/ab-tests/new' }, 'New A/B test')), body);
  withStates(body, 'A/B tests', () => get('/ab-tests'), (document) => {
    const tests = listFrom(document, 'tests', 'ab_tests');
    return card(null, table([
      { label: 'Test', value: (t) => h('a', { href: `#/ab-tests/${enc(t.test_id)}` },
                                       t.test_name || t.test_id) },
      { label: 'Feature', value: (t) => t.feature_name || '—' },
      { label: 'Status', value: (t) => badge(t.status || 'unknown') },
      { label: 'Groups', value: (t) => Object.keys(t.test_groups || t.traffic_allocation || {}).join(', ') || '—' },
      { label: 'Start', value: (t) => fmt.date(t.start_date || t.started_at) },
      { label: 'Created', value: (t) => fmt.date(t.created_at) },
    ], tests, { id: 'tests-table' }));
  }, {
    when: (d) => listFrom(d, 'tests', 'ab_tests').length === 0,
    message: 'No A/B tests yet.',
    hint: 'Create one with “New A/B test”.',
  });
}

// -------------------------------------------------------------------------------- create

export function renderTestCreate(page, context) {
  const groups = h('div', { class: 'group-rows' });
  const addGroup = (name = '', config = '{}', share = '') => {
    const row = h('div', { class: 'group-row' },
      h('input', { name: 'group_name', 'aria-label': 'Group name', placeholder: 'name', value: name }),
      h('input', { name: 'group_config', 'aria-label': 'Group settings (JSON)', class: 'mono',
                   placeholder: '{"ui": "new"}', value: config }),
      h('input', { name: 'group_share', 'aria-label': 'Traffic share', type: 'number', min: '0',
                   max: '1', step: '0.01', placeholder: '0.5', value: share }),
      h('button', { type: 'button', class: 'link-button', onclick: () => row.remove() }, 'Remove'));
    groups.append(row);
  };
  addGroup('control', '{"ui": "old"}', '0.5');
  addGroup('variant', '{"ui": "new"}', '0.5');

  const field = (name, label, input, hint) => h('div', { class: 'field', 'data-field': name },
    h('label', { for: `f-${name}` }, label), input, hint ? h('small', { class: 'muted' }, hint) : null);
  const text = (name, attrs = {}) => h('input', { id: `f-${name}`, name, ...attrs });
  const message = h('div', { class: 'form-message' });
  const submit = h('button', { type: 'submit', class: 'primary' }, 'Create test');
  const form = h('form', { class: 'card create-test', novalidate: true },
    field('test_name', 'Test name', text('test_name', { required: true, placeholder: 'Feature UI Test' })),
    field('feature_name', 'Feature', text('feature_name', { required: true, placeholder: 'account_linking' })),
    field('description', 'Description', h('textarea', { id: 'f-description', name: 'description', rows: 2 })),
    field('hypothesis', 'Hypothesis', text('hypothesis', { placeholder: 'New UI will improve conversion rate by 20%' })),
    field('success_metrics', 'Success metrics', text('success_metrics', { value: 'conversion_rate' }),
          'Comma-separated; the first is the primary metric.'),
    h('fieldset', { 'data-field': 'test_groups' }, h('legend', {}, 'Groups (name, settings JSON, traffic share)'),
      groups, h('button', { type: 'button', onclick: () => addGroup() }, 'Add group')),
    field('start_date', 'Start date (optional, UTC)', text('start_date', { type: 'datetime-local' })),
    message, h('div', { class: 'actions' }, submit, h('a', { href: '#/ab-tests' }, 'Cancel')));

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    message.replaceChildren();
    for (const el of form.querySelectorAll('.invalid')) el.classList.remove('invalid');
    const built = buildCreateRequest(form);
    if (built.error) {
      showFieldError(form, message, built.error.field, built.error.message);
      return;
    }
    submit.disabled = true;
    submit.textContent = 'Creating…';
    try {
      const created = await post('/ab-tests', built.body);
      context.navigate(`#/ab-tests/${enc(created.test_id)}`);
    } catch (error) {
      submit.disabled = false;
      submit.textContent = 'Create test';
      if (error instanceof ApiError && error.field) markField(form, error.field);
      message.append(errorState(error, 'the new test'));
    }
  });
  page.append(h('div', { class: 'page-head' }, h('h1', {}, 'New A/B test')), form);
}

function buildCreateRequest(form) {
  const value = (name) => form.elements[name]?.value.trim() ?? '';
  const fail = (field, message) => ({ error: { field, message } });
  const body = { test_name: value('test_name'), feature_name: value('feature_name') };
  if (!body.test_name) return fail('test_name', 'Give the test a name.');
  if (!body.feature_name) return fail('feature_name', 'Name the feature under test.');
  if (value('description')) body.description = value('description');
  if (value('hypothesis')) body.hypothesis = value('hypothesis');
  body.success_metrics = value('success_metrics').split(',').map((m) => m.trim()).filter(Boolean);
  if (!body.success_metrics.length) return fail('success_metrics', 'Name at least one metric.');
  body.test_groups = {};
  body.traffic_allocation = {};
  for (const row of form.querySelectorAll('.group-row')) {
    const [nameInput, configInput, shareInput] = row.querySelectorAll('input');
    const name = nameInput.value.trim();
    if (!name) return fail('test_groups', 'Every group needs a name.');
    if (name in body.test_groups) return fail('test_groups', `Group “${name}” appears twice.`);
    let config;
    try {
      config = JSON.parse(configInput.value.trim() || '{}');
    } catch {
      return fail('test_groups', `Settings of group “${name}” are not valid JSON.`);
    }
    const share = Number(shareInput.value);
    if (!(share > 0 && share <= 1)) {
      return fail('traffic_allocation', `Traffic share of “${name}” must be in (0, 1].`);
    }
    body.test_groups[name] = config;
    body.traffic_allocation[name] = share;
  }
  if (Object.keys(body.test_groups).length < 2) return fail('test_groups', 'A test needs at least two groups.');
  const start = value('start_date');
  if (start) body.start_date = `${start.length === 16 ? `${start}:00` : start}Z`;
  return { body };
}

function markField(form, field) {
  const root = String(field).split(/[.[]/)[0];
  const box = form.querySelector(`[data-field="${CSS.escape(root)}"]`) ||
              (root === 'traffic_allocation' ? form.querySelector('[data-field="test_groups"]') : null);
  if (box) box.classList.add('invalid');
}

function showFieldError(form, message, field, text) {
  markField(form, field);
  message.append(h('p', { class: 'field-error', role: 'alert' }, text, ' ',
                   h('span', { class: 'muted' }, '(', h('code', {}, field), ')')));
}

// -------------------------------------------------------------------------------- detail

const ACTIONS = {
  draft: [['start', 'Start'], ['cancel', 'Cancel test']],
  active: [['pause', 'Pause'], ['complete', 'Complete']],
  paused: [['resume', 'Resume'], ['complete', 'Complete'], ['cancel', 'Cancel test']],
};

export function renderTestDetail(page, context, testId) {
  const head = h('div', { class: 'page-head' }, h('h1', {}, 'A/B test'));
  const summary = h('div');
  const results = h('div', { class: 'results' });
  page.append(h('p', {}, h('a', { href: '#/ab-tests' }, '← All A/B tests')), head, summary, results);

  const refresh = async () => {
    const { data: test } = await withStates(summary, 'the test',
      () => get(`/ab-tests/${enc(testId)}`), (t) => renderSummary(t, head, act));
    if (!context.isCurrent()) return;
    if (test && test.status === 'draft') {
      clear(results).append(card('Results', h('div', { class: 'state state-empty' },
        h('p', {}, 'This test has not started yet; results appear once it is active and users are exposed.'))));
      return;
    }
    await withStates(results, 'results', () => get(`/ab-tests/${enc(testId)}/results`), renderResults);
  };

  const act = async (action, button) => {
    const body = action === 'complete' ? completeBody(summary) : undefined;
    if (body === null) return;
    button.disabled = true;
    const status = summary.querySelector('.action-message');
    status?.replaceChildren(h('span', { class: 'muted' }, `${action}…`));
    try {
      await post(`/ab-tests/${enc(testId)}/${action}`, body);
      await refresh();
    } catch (error) {
      button.disabled = false;
      status?.replaceChildren(errorState(error, `${action} the test`));
    }
  };
  refresh();
}

function completeBody(summary) {
  const select = summary.querySelector('select[name="winner"]');
  return select && select.value ? { winner: select.value } : {};
}

function renderSummary(test, head, act) {
  head.replaceChildren(h('h1', {}, test.test_name || test.test_id, ' ', badge(test.status || 'unknown')));
  const groups = Object.keys(test.test_groups || test.traffic_allocation || {});
  const actions = (ACTIONS[test.status] || []).map(([action, label]) =>
    h('button', { type: 'button', class: action === 'start' ? 'primary' : '', 'data-action': action,
                  onclick: (e) => act(action, e.currentTarget) }, label));
  const winnerPick = ['active', 'paused'].includes(test.status) && groups.length
    ? h('label', { class: 'inline' }, 'Winner when completing: ',
        h('select', { name: 'winner' }, h('option', { value: '' }, 'by the analysis'),
          groups.map((g) => h('option', { value: g }, g))))
    : null;
  const allocation = test.traffic_allocation || {};
  return card(null,
    h('dl', { class: 'facts' },
      fact('Test id', h('code', {}, test.test_id)),
      fact('Feature', test.feature_name),
      fact('Hypothesis', test.hypothesis),
      fact('Description', test.description),
      fact('Metrics', (test.success_metrics || []).join(', ')),
      fact('Groups', groups.map((g) => `${g} (${fmt.percent(allocation[g], 0)})`).join(', ')),
      fact('Start date', fmt.datetime(test.start_date || test.started_at)),
      test.ended_at || test.completed_at ? fact('Ended', fmt.datetime(test.ended_at || test.completed_at)) : null,
      test.winner ? fact('Winner', test.winner) : null),
    actions.length ? h('div', { class: 'actions' }, actions, winnerPick) : null,
    h('div', { class: 'action-message' }));
}

function fact(label, value) {
  if (value === undefined || value === null || value === '') return null;
  return [h('dt', {}, label), h('dd', {}, value)];
}

function recommendationText(rec) {
  if (!rec) return null;
  if (typeof rec === 'string') return rec;
  return rec.text || fmt.label(rec.action);
}

function renderResults(r) {
  const out = [];
  const exposures = r.srm?.observed || {};
  const totalExposed = isNum(r.total_exposures) ? r.total_exposures
    : Object.values(exposures).reduce((a, b) => a + (isNum(b) ? b : 0), 0);
  out.push(h('div', { class: 'kpis' },
    kpi('Winner', r.winner || 'none yet'),
    kpi('Users exposed', fmt.number(totalExposed)),
    isNum(r.days_running) ? kpi('Days running', fmt.number(r.days_running, 1)) : null,
    isNum(r.days_needed) ? kpi('More days needed', fmt.number(Math.ceil(r.days_needed)),
      isNum(r.additional_users_per_group) ? `${fmt.number(r.additional_users_per_group)} more users per group` : null) : null,
    r.primary_metric ? kpi('Primary metric', fmt.label(r.primary_metric)) : null,
    isNum(r.alpha) ? kpi('Significance level', fmt.number(r.alpha), r.correction && r.correction !== 'none'
      ? `${r.correction} correction` : null) : null));
  const recText = recommendationText(r.recommendation);
  if (recText) {
    const action = r.recommendation_action || r.recommendation?.action;
    out.push(h('div', { class: 'callout', 'data-role': 'recommendation' },
      h('strong', {}, 'Recommendation: '), action ? [badge(action, 'info'), ' '] : null, recText,
      r.decision_rule ? h('span', { class: 'muted small', 'data-role': 'decision-rule' },
        ` Decided by rule ${r.decision_rule.replaceAll('_', ' ')}` +
        (r.decided_by_metric ? ` on ${r.decided_by_metric}.` : '.')) : null));
  }
  if (r.multi_variant_users > 0 || r.unknown_variant_exposures > 0) {
    out.push(h('div', { class: 'callout warning', 'data-role': 'data-quality' },
      h('strong', {}, 'Data quality: '),
      `${fmt.number(r.multi_variant_users ?? 0)} users were exposed to more than one group and `,
      `${fmt.number(r.unknown_variant_exposures ?? 0)} exposures name a group this test does not have.`));
  }
  out.push(srmBox(r.srm));
  if (r.group_analysis && Object.keys(r.group_analysis).length) {
    out.push(card('Groups', table([
      { label: 'Group', value: ([name]) => name },
      { label: 'Users', class: 'num', value: ([, g]) => fmt.number(g.sample_size) },
      { label: 'Conversion rate', class: 'num', value: ([, g]) => fmt.percent(g.conversion_rate, 2) },
      { label: 'Lift', class: 'num', value: ([, g]) => (isNum(g.lift) ? `${(g.lift * 100).toFixed(2)}%` : '—') },
      { label: 'Significance (1 − p)', class: 'num', value: ([, g]) => significance(g) },
      { label: 'p-value', class: 'num', value: ([, g]) => fmt.p(g.p_value) },
      { label: 'Winner', value: ([, g]) => (g.winner ? badge('winner', 'active') : '') },
    ], Object.entries(r.group_analysis), { id: 'group-analysis' })));
  }
  const metrics = Array.isArray(r.metrics) ? r.metrics : [];
  if (!metrics.length) {
    out.push(card('Metrics', h('div', { class: 'state state-empty' },
      h('p', {}, 'No metric results yet: no exposures or conversions have been recorded for this test.'))));
  }
  for (const metric of metrics) out.push(metricCard(metric, r.control, r.alpha));
  if (metrics.length && r.test_id) out.push(slicesCard(r));
  if (r.bandit) out.push(banditCard(r.bandit));
  out.push(conversionOverTime(r));
  return out;
}

function significance(g) {
  if (g.is_control) return h('span', { class: 'muted' }, 'control');
  // statistical_significance = 1 - adjusted p (the same number as `fulcrum analyze`);
  // `significant` is the decision at the test's alpha.
  return [fmt.percent(g.statistical_significance, 1),
          g.significant ? [' ', badge('significant', 'active')] : null];
}

function srmBox(srm) {
  if (!srm) {
    return h('p', { class: 'muted', 'data-role': 'srm' },
             'Sample ratio check: not enough exposed users yet.');
  }
  if (srm.mismatch) {
    const groups = Object.keys(srm.observed || {});
    return h('div', { class: 'callout warning', role: 'alert', 'data-role': 'srm' },
      h('strong', {}, 'Sample ratio mismatch. '),
      `Exposures do not match the planned traffic split (χ² ${fmt.pEquals(srm.p_value)}); `,
      'the assignment or logging is likely broken, so treat these results as untrustworthy. ',
      h('span', { class: 'muted' }, groups.map((g) =>
        `${g}: ${fmt.number(srm.observed[g])} observed vs ${fmt.number(srm.expected?.[g], 0)} expected`).join('; ')));
  }
  return h('p', { class: 'muted', 'data-role': 'srm' },
           `Sample ratio check passed (χ² ${fmt.pEquals(srm.p_value)}).`);
}

// Engines put a treatment's effects either under lift{absolute, relative} or directly.
function effectsOf(g) {
  if (g.lift && typeof g.lift === 'object') return g.lift;
  if (g.absolute || g.relative) return { absolute: g.absolute, relative: g.relative };
  return null;
}

function metricCard(metric, control, alpha) {
  const groups = Object.entries(metric.groups || {}).map(([name, g]) => [name, { ...g, lift: effectsOf(g) }]);
  const percent = metric.type === 'binomial';
  const value = percent ? (v) => fmt.percent(v, 2) : (v) => fmt.number(v, 3);
  const treatments = groups.filter(([, g]) => !g.is_control && g.lift);
  const useRelative = treatments.every(([, g]) => g.lift.relative && isNum(g.lift.relative.estimate));
  const rows = treatments.map(([name, g]) => {
    const effect = useRelative ? g.lift.relative : g.lift.absolute;
    return { label: name, estimate: effect.estimate, lower: effect.ci?.[0], upper: effect.ci?.[1],
             significant: g.significant };
  });
  const ciLevel = isNum(metric.alpha ?? alpha) ? 1 - (metric.alpha ?? alpha) : null;
  return card(null,
    h('h2', {}, fmt.label(metric.name), ' ', h('span', { class: 'muted small' }, metric.type),
      metric.primary ? badge('primary', 'info') : null,
      metric.role && metric.role !== 'secondary' ? badge(metric.role, 'info') : null,
      metric.cuped?.applied || metric.cuped_applied ? badge('CUPED', 'info') : null,
      isNum(metric.quantile) ? badge(`p${fmt.number(100 * metric.quantile, 1)}`, 'info') : null,
      metric.capping?.applied ? badge(`capped at ${value(metric.capping.cap)}`, 'info') : null),
    metric.capping ? cappingNote(metric.capping, value) : null,
    table([
      { label: 'Group', value: ([name, g]) => [name, g.is_control ? h('span', { class: 'muted' }, ' (control)') : ''] },
      { label: 'Users', class: 'num', value: ([, g]) => fmt.number(g.sample_size ?? g.n) },
      { label: percent ? 'Conversion' : 'Mean', class: 'num', value: ([, g]) => value(g.mean) },
      { label: 'Lift', class: 'num', value: ([, g]) => (g.lift ? liftText(g.lift, percent) : '—') },
      { label: 'Interval', class: 'num', value: ([, g]) => (g.lift ? intervalText(g.lift, useRelative, percent) : '—') },
      { label: 'p (adjusted)', class: 'num', value: ([, g]) => (g.is_control ? '—' : fmt.p(g.adjusted_p_value ?? g.p_value)) },
      { label: 'Chance to beat control', class: 'num', value: ([, g]) => (g.is_control ? '—' : fmt.percent(g.chance_to_beat_control, 1)) },
      metric.role === 'guardrail'
        ? { label: 'Guardrail', value: ([, g]) => guardrailText(g.guardrail) }
        : { label: '', value: ([, g]) => (g.significant ? badge('significant', 'active') : '') },
    ], groups, { 'data-metric': metric.name }),
    metric.capping?.applied ? uncappedTable(metric, value, percent) : null,
    intervalChart(rows, {
      format: useRelative ? (v) => `${(v * 100).toFixed(1)}%`
                          : percent ? (v) => `${(v * 100).toFixed(2)} pp` : (v) => fmt.number(v, 3),
      higherIsBetter: metric.higher_is_better,
      title: `${metric.name} effect vs ${control || 'control'}`,
      caption: `${useRelative ? 'Relative' : 'Absolute'} effect versus ${control || 'control'} with its ` +
               `${ciLevel ? fmt.percent(ciLevel, 0) + ' ' : ''}confidence interval; the vertical line is no effect.`,
    }));
}

// The primary metric per value of a user attribute (GET .../results?slice=), on demand.
const SLICE_ATTRIBUTES = ['tier', 'country', 'app_version', 'segment'];

function slicesCard(r) {
  const body = h('div', { 'data-role': 'slices-body' },
    h('p', { class: 'muted small' }, 'Choose a user attribute to see the primary metric per value.'));
  const load = async (attribute) => {
    if (!attribute) return;
    clear(body).append(h('p', { class: 'muted' }, 'Loading…'));
    try {
      const data = await get(`/ab-tests/${enc(r.test_id)}/results?slice=${enc(attribute)}&slice_top=5`);
      clear(body).append(slicesTable(data.slices, r.primary_metric));
    } catch (error) {
      clear(body).append(errorState(error, 'the slices'));
    }
  };
  return card('Slices',
    h('label', { class: 'inline' }, 'Slice by: ',
      h('select', { name: 'slice', onchange: (e) => load(e.currentTarget.value) },
        h('option', { value: '' }, '—'), SLICE_ATTRIBUTES.map((a) => h('option', { value: a }, a)))),
    body);
}

function slicesTable(slices, metric) {
  const rows = slices?.rows || [];
  if (!rows.length) return h('p', { class: 'muted' }, 'No exposed users yet.');
  const treatments = Object.entries(rows.find((row) => row.tested)?.groups || {})
    .filter(([, g]) => !g.is_control).map(([name]) => name);
  const label = (row) => (row.other ? h('em', {}, 'other (the rest)')
                                    : row.value === '' ? h('span', { class: 'muted' }, '(none)') : row.value);
  return h('div', {},
    h('p', { class: 'muted small' },
      `${fmt.label(metric || slices.metric)} by ${slices.attribute}: the ${slices.top} values with the most users, ` +
      `then the rest; p-values ${slices.correction}-adjusted across the slices` +
      (isNum(slices.capped_at) ? `; capped at ${fmt.number(slices.capped_at, 3)}.` : '.')),
    table([
      { label: slices.attribute, value: (row) => label(row) },
      { label: 'Users', class: 'num', value: (row) => fmt.number(row.users) },
      ...treatments.flatMap((t) => [
        { label: `${t} lift`, class: 'num', value: (row) => {
          const g = row.groups?.[t];
          const lift = g && effectsOf(g);
          return lift ? liftText(lift, false) : '—';
        } },
        { label: `${t} p (adjusted)`, class: 'num', value: (row) => {
          const g = row.groups?.[t];
          return g ? [fmt.p(g.adjusted_p_value), g.significant ? [' ', badge('significant', 'active')] : null]
                   : h('span', { class: 'muted' }, 'too few users');
        } },
      ]),
    ], rows, { 'data-role': 'slices' }));
}

// What the cap is (the capped comparison above decides; the uncapped one is beside it).
function cappingNote(capping, value) {
  if (!capping.applied) {
    return h('p', { class: 'muted small', 'data-role': 'capping' },
             `Not capped in this analysis: ${capping.reason || 'no cap could be taken'}.`);
  }
  const how = capping.type === 'percentile'
    ? `the ${fmt.number(100 * capping.value, 2)}th percentile of all exposed users' values`
    : 'a fixed value';
  const users = Object.entries(capping.users_capped || {})
    .map(([g, n]) => `${g}: ${fmt.number(n)}`).join(', ');
  return h('p', { class: 'muted small', 'data-role': 'capping' },
           `Values above ${value(capping.cap)} (${how}) count as ${value(capping.cap)}; users capped ${users}. ` +
           'The capped comparison decides; the uncapped one is shown below it.');
}

// The same comparison without the cap, side by side with the capped one.
function uncappedTable(metric, value, percent) {
  const groups = Object.entries(metric.capping.uncapped || {})
    .map(([name, g]) => [name, { ...g, lift: effectsOf(g) }]);
  return [h('h3', { class: 'small' }, 'Uncapped'),
    table([
      { label: 'Group', value: ([name, g]) => [name, g.is_control ? h('span', { class: 'muted' }, ' (control)') : ''] },
      { label: 'Users', class: 'num', value: ([, g]) => fmt.number(g.sample_size ?? g.n) },
      { label: 'Mean', class: 'num', value: ([, g]) => value(g.mean) },
      { label: 'Lift', class: 'num', value: ([, g]) => (g.lift ? liftText(g.lift, percent) : '—') },
      { label: 'p', class: 'num', value: ([, g]) => (g.is_control ? '—' : fmt.p(g.p_value)) },
    ], groups, { 'data-role': 'uncapped', 'data-uncapped-metric': metric.name })];
}

// A guardrail's non-inferiority verdict: within its margin, worse than it, or not yet known.
function guardrailText(check) {
  if (!check) return '';
  const margin = `${fmt.number(100 * check.margin, 2)}%`;
  if (check.harmed) return badge(`worse than −${margin}`, 'cancelled');
  if (check.non_inferior) return badge(`within −${margin}`, 'active');
  return h('span', { class: 'muted' }, `not yet shown within −${margin}`);
}

function liftText(lift, percent) {
  if (lift.relative && isNum(lift.relative.estimate)) return `${(lift.relative.estimate * 100).toFixed(2)}%`;
  const a = lift.absolute?.estimate;
  return percent ? `${((a ?? NaN) * 100).toFixed(2)} pp` : fmt.number(a, 3);
}

function intervalText(lift, relative, percent) {
  const effect = relative ? lift.relative : lift.absolute;
  const [lo, hi] = effect?.ci || [];
  if (!isNum(lo) || !isNum(hi)) return '—';
  if (relative) return `[${(lo * 100).toFixed(2)}%, ${(hi * 100).toFixed(2)}%]`;
  return percent ? `[${(lo * 100).toFixed(2)}, ${(hi * 100).toFixed(2)}] pp`
                 : `[${fmt.number(lo, 3)}, ${fmt.number(hi, 3)}]`;
}

// A bandit test: the weights in force, each arm's probability of being best, and the
// weights over time from the history the bandit_weights job writes.
function banditCard(b) {
  const history = Array.isArray(b.history) ? b.history : [];
  const groups = Object.keys(b.current_weights || {});
  const latest = history.length ? history[history.length - 1] : null;
  const rows = groups.map((g) => {
    const arm = latest?.arms?.find((a) => a.group === g);
    return {
      group: g,
      weight: fmt.percent(b.current_weights[g]),
      best: fmt.percent(b.best_arm_probability?.[g]),
      users: arm ? fmt.number(arm.users) : '—',
    };
  });
  const settings = `Thompson sampling${b.top_two ? ' (top-two)' : ''} on ${fmt.label(b.metric || '')}, ` +
    `at least ${(b.min_weight * 100).toFixed(1)}% per arm, recomputed every ` +
    `${fmt.number(b.recompute_interval_minutes / 60, 2)} h` +
    (b.updated_at ? `; last ${fmt.date(Date.parse(b.updated_at))}` : '; not recomputed yet');
  const x = history.map((e) => Date.parse(e.at) / 1000);
  const series = groups.map((g) => ({
    label: g,
    values: history.map((e) => e.arms?.find((a) => a.group === g)?.weight ?? null),
  }));
  return card('Bandit weights over time', h('div', { 'data-role': 'bandit' },
    h('p', { class: 'muted small' }, settings),
    table([{ label: 'Arm', value: (row) => row.group },
      { label: 'Current weight', value: (row) => row.weight },
      { label: 'Probability best', value: (row) => row.best },
      { label: 'Users', value: (row) => row.users }], rows, { 'data-role': 'bandit-arms' }),
    history.length ? lineChart(x, series, { percent: true, name: 'bandit-weights' })
      : h('p', { class: 'muted', 'data-role': 'bandit-empty' },
        'No recomputation yet: users are split by the starting weights.')));
}

// Cumulative conversion by day. Accepts the shapes an engine may emit:
// {dates|days: [...], groups: {name: [rates] | {conversion_rate: [...]}}} or a list of
// {date, group, conversion_rate|cumulative_conversion_rate}.
function conversionOverTime(r) {
  const raw = r.daily_cumulative ?? r.cumulative_conversion ?? r.timeseries;
  const series = normalizeSeries(raw);
  const metricName = raw?.metric ? ` (${fmt.label(raw.metric)})` : '';
  const title = `Cumulative conversion over time${metricName}`;
  if (!series) {
    return card(title, h('div', { class: 'state state-empty', 'data-role': 'timeseries-empty' },
      h('p', {}, raw ? 'No daily data yet: nobody has been exposed to this test.'
                     : 'The server sent no daily series for this test.')));
  }
  return card(title, lineChart(series.x, series.series, { percent: true, daily: true, name: 'cumulative-conversion' }));
}

export function normalizeSeries(raw) {
  if (!raw) return null;
  const toSeconds = (d) => (isNum(d) ? (d > 1e11 ? d / 1000 : d) : Date.parse(d) / 1000);
  if (Array.isArray(raw)) {
    const byGroup = new Map();
    const dates = [...new Set(raw.map((p) => p.date ?? p.day ?? p.at))].sort();
    for (const p of raw) {
      const g = p.group ?? p.variant;
      if (!byGroup.has(g)) byGroup.set(g, new Map());
      byGroup.get(g).set(p.date ?? p.day ?? p.at, p.cumulative_conversion_rate ?? p.conversion_rate ?? p.value);
    }
    if (!dates.length) return null;
    return { x: dates.map(toSeconds), series: [...byGroup].map(([label, m]) => ({ label, values: dates.map((d) => m.get(d)) })) };
  }
  if (raw.groups && Object.values(raw.groups).every(Array.isArray) &&
      Object.values(raw.groups).some((v) => v.length && typeof v[0] === 'object')) {
    // {metric, groups: {name: [{date, users, converted, conversion_rate}]}}
    const rows = Object.entries(raw.groups).flatMap(([group, points]) =>
      points.map((p) => ({ ...p, group })));
    return rows.length ? normalizeSeries(rows) : null;
  }
  const dates = raw.dates || raw.days;
  if (!Array.isArray(dates) || !dates.length || !raw.groups) return null;
  return {
    x: dates.map(toSeconds),
    series: Object.entries(raw.groups).map(([label, v]) => ({
      label,
      values: Array.isArray(v) ? v : (v.cumulative_conversion_rate || v.conversion_rate || []),
    })),
  };
}
