// Feature sunset analysis (GET /feature-sunset): one row per feature with its usage trend
// chart, revenue impact, maintenance cost, recommendation and migration plan.
import { get } from '../api.js';
import { h, withStates, card, fmt, badge, listFrom, isNum } from '../ui.js';
import { lineChart, sparkline } from '../charts.js';

export function renderSunset(page) {
  const body = h('div');
  page.append(h('div', { class: 'page-head' }, h('h1', {}, 'Feature sunset')), body);
  withStates(body, 'feature sunset analyses', () => get('/feature-sunset'), (d) => {
    const analyses = listFrom(d, 'analyses', 'features', 'feature_sunset');
    const order = { sunset: 0, deprecate: 0, monitor: 1, keep: 2 };
    analyses.sort((a, b) => (order[verdict(a)] ?? 1) - (order[verdict(b)] ?? 1));
    return h('div', { class: 'sunset-list' }, analyses.map(analysis));
  }, { when: (d) => listFrom(d, 'analyses', 'features', 'feature_sunset').length === 0,
       message: 'No features to analyse yet.', hint: 'Sunset analysis needs feature usage events.' });
}

function verdict(a) {
  const rec = a.sunset_recommendation;
  return typeof rec === 'string' ? rec.split(/[\s:]/)[0].toLowerCase() : String(rec?.action ?? '');
}

// Usage series: weekly active users oldest first (current_usage_details.weekly_active_users_history),
// or dated points [{date, users}] / {dates, values}.
function usageSeries(a) {
  const raw = a.current_usage_details?.weekly_active_users_history ?? a.usage_history ?? a.weekly_usage;
  if (Array.isArray(raw) && raw.length) {
    if (typeof raw[0] === 'number') return { values: raw };
    const dates = raw.map((p) => p.date ?? p.week_start ?? p.week ?? p.day);
    const values = raw.map((p) => p.active_users ?? p.users ?? p.value ?? p.count ?? p.events);
    return { dates, values };
  }
  if (raw && Array.isArray(raw.values)) return { dates: raw.dates, values: raw.values };
  return null;
}

function trendText(trend, details) {
  if (typeof trend === 'string' && details && isNum(details.relative_weekly_change)) {
    const change = details.relative_weekly_change;
    const p = isNum(details.p_value) ? ` (Mann-Kendall ${fmt.pEquals(details.p_value)})` : '';
    return `${fmt.label(trend)}, ${change >= 0 ? '+' : ''}${(change * 100).toFixed(1)}% a week${p}`;
  }
  if (trend === null || trend === undefined) return '—';
  if (isNum(trend)) return `${trend >= 0 ? '+' : ''}${(trend * 100).toFixed(1)}% per period`;
  if (typeof trend === 'string') return fmt.label(trend);
  const parts = [];
  if (trend.direction) parts.push(fmt.label(trend.direction));
  const slope = trend.relative_change ?? trend.change ?? trend.slope;
  if (isNum(slope)) parts.push(`${slope >= 0 ? '+' : ''}${(slope * 100).toFixed(1)}%`);
  return parts.join(' ') || JSON.stringify(trend);
}

function analysis(a) {
  const series = usageSeries(a);
  const usage = a.current_usage;
  const current = isNum(usage) ? usage : usage?.weekly_active_users ?? usage?.active_users;
  const rec = typeof a.sunset_recommendation === 'string' ? a.sunset_recommendation
    : a.sunset_recommendation?.text ?? fmt.label(a.sunset_recommendation?.action);
  let chart = null;
  if (series && series.dates && series.dates.every((d) => d !== undefined)) {
    const x = series.dates.map((d) => (isNum(d) ? d : Date.parse(d) / 1000));
    chart = lineChart(x, [{ label: 'usage', values: series.values }], { name: 'usage-trend', height: 160 });
  } else if (series && series.values.length > 1) {
    // Undated weekly history: x is weeks before the current week.
    const n = series.values.length;
    chart = lineChart(series.values.map((_, i) => i - (n - 1)),
                      [{ label: 'weekly active users', values: series.values,
                         color: verdict(a) === 'keep' ? '#16a34a' : verdict(a) === 'monitor' ? '#ca8a04' : '#dc2626' }],
                      { name: 'usage-trend', height: 160, time: false, xLabel: 'Week',
                        xFormat: (v) => (v === 0 ? 'now' : `${v}w`) });
  } else if (series) {
    chart = sparkline(series.values, { width: 300, height: 60 });
  }
  const section = card(null,
    h('h2', {}, fmt.label(a.feature_name), ' ', badge(verdict(a) || 'unknown', verdict(a))),
    h('div', { class: 'sunset-grid' },
      h('dl', { class: 'facts' },
        h('dt', {}, 'Weekly active users'), h('dd', {}, isNum(current) ? fmt.number(current) : '—'),
        isNum(usage?.share_of_active_users)
          ? [h('dt', {}, 'Share of active users'), h('dd', {}, fmt.percent(usage.share_of_active_users))] : null,
        isNum(usage?.dependent_paying_users)
          ? [h('dt', {}, 'Dependent paying users'), h('dd', {}, fmt.number(usage.dependent_paying_users))] : null,
        h('dt', {}, 'Trend'), h('dd', { 'data-role': 'trend' }, trendText(a.usage_trend, a.usage_trend_details)),
        h('dt', {}, 'Revenue impact'), h('dd', {}, fmt.money(a.revenue_impact)),
        h('dt', {}, 'Maintenance cost'), h('dd', {}, fmt.money(a.maintenance_cost)),
        h('dt', {}, 'Sunset date'), h('dd', {}, a.sunset_date ? fmt.date(a.sunset_date) : 'none')),
      h('div', { class: 'chart-cell' }, chart ?? h('p', { class: 'muted' }, 'No usage history sent.'))),
    rec ? h('div', { class: 'callout' }, h('strong', {}, 'Recommendation: '), fmt.label(rec)) : null,
    Array.isArray(a.reasons) && a.reasons.length
      ? h('ul', { class: 'reasons' }, a.reasons.map((why) => h('li', {}, why))) : null,
    Array.isArray(a.migration_plan) && a.migration_plan.length
      ? [h('h3', {}, 'Migration plan'), h('ol', {}, a.migration_plan.map((s) => h('li', {}, s)))] : null);
  section.dataset.feature = a.feature_name;
  return section;
}
