// The recommendation and upgrade-timing dashboards, from the "recommendations" and
// "upgrade_timing" sections of GET /dashboard (computed server-side from the engines'
// cached results): what the engines recommend across all users, how past recommendations
// turned out, and who should be offered an upgrade when.
import { get, enc } from '../api.js';
import { h, withStates, card, kpi, fmt, table, isNum, badge } from '../ui.js';
import { barChart, histogram, calibrationChart } from '../charts.js';

function sectionPage(page, title, key, render) {
  const body = h('div', { 'data-panel': `dashboard-${key}` });
  page.append(h('div', { class: 'page-head' }, h('h1', {}, title),
                h('button', { type: 'button', onclick: () => load() }, 'Refresh')), body);
  const load = () => withStates(body, title.toLowerCase(), () => get('/dashboard'), (document) => {
    const section = document?.[key];
    if (!section) return h('div', { class: 'state state-empty' }, h('p', {}, 'Not available.'));
    if (section.error) {
      return h('div', { class: 'state state-error', role: 'alert' },
               h('p', { class: 'error-title' }, `The ${title.toLowerCase()} engine failed`),
               h('p', { class: 'error-detail' }, section.error));
    }
    // withStates appends the top-level nodes, so the page's nodes are spread, not nested.
    return [...render(section),
            h('p', { class: 'muted meta' }, `Figures computed ${fmt.datetime(section.computed_at)}.`)];
  });
  load();
}

export function renderRecommendations(page) {
  sectionPage(page, 'Recommendations', 'recommendations', recommendationsBody);
}

export function renderUpgradeTiming(page) {
  sectionPage(page, 'Upgrade timing', 'upgrade_timing', upgradeBody);
}

function recommendationsBody(s) {
  const counts = Object.entries(s.counts_by_type || {});
  const outcomes = s.outcomes || {};
  const byType = Object.entries(outcomes.by_type || {});
  const bins = (outcomes.calibration || []).map((b) => ({
    predicted: b.mean_confidence, observed: b.observed_rate, n: b.recommendations }));
  return [
    h('div', { class: 'kpis', 'data-role': 'recommendation-kpis' },
      kpi('recommendations', fmt.number(s.recommendations)),
      kpi('users with recommendations', fmt.number(s.users_with_recommendations),
          `of ${fmt.number(s.users)} users`),
      outcomes.overall ? kpi('acted on within 28 days', fmt.percent(outcomes.overall.acted_on_rate),
                             `${fmt.number(outcomes.overall.acted_on)} of ${fmt.number(outcomes.overall.recommendations)} measured`) : null,
      kpi('model trained', fmt.datetime(s.model_trained_at))),
    h('div', { class: 'two-columns' },
      card('Recommendations by type', barChart(counts.map(([type, n]) => ({ label: fmt.label(type), value: n })),
        { name: 'recommendations-by-type', title: 'recommendations by type' })),
      card('Acted on within 28 days, by type',
        outcomes.error ? h('p', { class: 'field-error' }, outcomes.error)
          : barChart(byType.map(([type, t]) => ({ label: fmt.label(type), value: t.acted_on_rate })),
            { name: 'acted-on-by-type', max: 1, format: (v) => fmt.percent(v),
              caption: `Recommendations made ${fmt.date(outcomes.recommended_at)} by the model of that day, `
                + `and whether they were acted on by ${fmt.date(outcomes.observed_until)}.` }))),
    h('div', { class: 'two-columns' },
      card('Calibration', calibrationChart(bins, {
        name: 'recommendation-calibration', xLabel: 'predicted confidence', yLabel: 'observed rate',
        caption: 'Each point: the recommendations of one confidence decile, their mean predicted '
          + 'confidence and the share acted on (out of sample). On the dashed line, confidence means what it says.' }),
        table([
          { label: 'Confidence', value: (b) => `${fmt.percent(b.confidence_from, 0)}–${fmt.percent(b.confidence_to, 0)}` },
          { label: 'Recommendations', class: 'num', value: (b) => fmt.number(b.recommendations) },
          { label: 'Predicted', class: 'num', value: (b) => fmt.percent(b.mean_confidence) },
          { label: 'Observed', class: 'num', value: (b) => fmt.percent(b.observed_rate) },
        ], (outcomes.calibration || []).filter((b) => b.recommendations > 0), { id: 'calibration-table' })),
      card('Features recommended most', h('div', { class: 'table-scroll' }, table([
        { label: 'Feature', value: (f) => fmt.label(f.feature_name) },
        { label: 'Recommendations', class: 'num', value: (f) => fmt.number(f.recommendations) },
        { label: 'Mostly as', value: (f) => badge(topKey(f.by_type), 'type') },
        { label: 'Mean confidence', class: 'num', value: (f) => fmt.percent(f.mean_confidence) },
        { label: 'Expected value', class: 'num', value: (f) => fmt.money(f.expected_value_total) },
      ], s.top_features || [], { id: 'top-features' })))),
  ];
}

function topKey(counts) {
  const entries = Object.entries(counts || {});
  if (!entries.length) return '—';
  return entries.sort((a, b) => b[1] - a[1])[0][0];
}

function upgradeBody(s) {
  const evaluation = s.model?.evaluation || {};
  const bins = (s.propensity_histogram?.bins || []).map((b) => ({ from: b.from, to: b.to, count: b.users }));
  return [
    h('div', { class: 'kpis', 'data-role': 'upgrade-kpis' },
      kpi('free users', fmt.number(s.free_users)),
      kpi('optimal date this week', fmt.number(s.optimal_this_week),
          `${fmt.date(s.week?.from)} – ${fmt.date(s.week?.to)}`),
      kpi('mean 7-day propensity', fmt.percent(s.mean_propensity, 2)),
      kpi('holdout AUC', fmt.number(evaluation.model?.auc, 3),
          isNum(evaluation.paywall_hits_only?.auc) ? `paywall-only rule ${fmt.number(evaluation.paywall_hits_only.auc, 3)}` : null),
      kpi('holdout Brier', fmt.number(evaluation.model?.brier, 4),
          isNum(evaluation.base_rate?.brier) ? `base rate ${fmt.number(evaluation.base_rate.brier, 4)}` : null)),
    h('div', { class: 'two-columns' },
      card('Upgrade propensity today (free users)', histogram(bins, {
        name: 'propensity-histogram', format: (v) => fmt.percent(v, 1),
        caption: 'Calibrated probability of upgrading within 7 days, one bar per bin of '
          + `${fmt.percent(s.propensity_histogram?.bin_width, 2)}.` })),
      card('Top candidates', h('div', { class: 'table-scroll' }, table([
        { label: 'User', value: (c) => h('a', { href: `#/users/${enc(c.user_id)}` }, c.user_id) },
        { label: 'Best date', value: (c) => fmt.date(c.optimal_upgrade_date) },
        { label: 'In days', class: 'num', value: (c) => fmt.number(c.days_until_optimal) },
        { label: 'Confidence', class: 'num', value: (c) => fmt.percent(c.confidence_score) },
        { label: 'Today', class: 'num', value: (c) => fmt.percent(c.propensity_today) },
      ], s.top_candidates || [], { id: 'top-candidates' })))),
  ];
}
