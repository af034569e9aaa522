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

// Usage series: [{date|week, users|value}] or {dates, values}; else current/previous only.
function usageSeries(a) {
  const raw = a.usage_history ?? a.usage_series ?? a.weekly_usage ?? a.usage_by_week;
  if (Array.isArray(raw) && raw.length) {
    if (typeof raw[0] === 'number') return { values: raw };
    const dates = raw.map((p) => p.date ?? p.week_start ?? p.week ?? p.day);
    const values = raw.map((p) => p.active_users ?? p.users ?? p.value ?? p.count ?? p.events);
    return { dates, values };
  }
  if (raw && Array.isArray(raw.values)) return { dates: raw.dates, values: raw.values };
  return null;
}

function trendText(trend) {
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
  const current = isNum(a.current_usage) ? a.current_usage : a.current_usage?.active_users;
  const rec = typeof a.sunset_recommendation === 'string' ? a.sunset_recommendation
    : a.sunset_recommendation?.text ?? fmt.label(a.sunset_recommendation?.action);
  let chart = null;
  if (series && series.dates && series.dates.every((d) => d !== undefined)) {
    const x = series.dates.map((d) => (isNum(d) ? d : Date.parse(d) / 1000));
    chart = lineChart(x, [{ label: 'usage', values: series.values }], { name: 'usage-trend', height: 160 });
  } else if (series) {
    chart = sparkline(series.values, { width: 300, height: 60 });
  }
  const section = card(null,
    h('h2', {}, fmt.label(a.feature_name), ' ', badge(verdict(a) || 'unknown', verdict(a))),
    h('div', { class: 'sunset-grid' },
      h('dl', { class: 'facts' },
        h('dt', {}, 'Current usage'), h('dd', {}, isNum(current) ? fmt.number(current) : JSON.stringify(a.current_usage ?? '—')),
        h('dt', {}, 'Trend'), h('dd', {}, trendText(a.usage_trend)),
        h('dt', {}, 'Revenue impact'), h('dd', {}, fmt.money(a.revenue_impact)),
        h('dt', {}, 'Maintenance cost'), h('dd', {}, fmt.money(a.maintenance_cost)),
        h('dt', {}, 'Sunset date'), h('dd', {}, a.sunset_date ? fmt.date(a.sunset_date) : 'none')),
      h('div', { class: 'chart-cell' }, chart ?? h('p', { class: 'muted' }, 'No usage history sent.'))),
    rec ? h('div', { class: 'callout' }, rec) : null,
    Array.isArray(a.migration_plan) && a.migration_plan.length
      ? [h('h3', {}, 'Migration plan'), h('ol', {}, a.migration_plan.map((s) => h('li', {}, s)))] : null);
  section.dataset.feature = a.feature_name;
  return section;
}
