// One user's personal results: ranked feature recommendations
// (GET /feature-recommendations/{user_id}) and upgrade timing (GET /upgrade-timing/{user_id}).
import { get, enc } from '../api.js';
import { h, withStates, card, fmt, badge, listFrom, isNum, table } from '../ui.js';

export function renderUsers(page, context, userId) {
  const input = h('input', { id: 'user-id', name: 'user_id', required: true, value: userId || '',
                             placeholder: 'e.g. u00042', autocomplete: 'off' });
  const form = h('form', { class: 'inline-form' }, h('label', { for: 'user-id' }, 'User id'), input,
                 h('button', { type: 'submit', class: 'primary' }, 'Show'));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const id = input.value.trim();
    if (id) context.navigate(`#/users/${enc(id)}`);
  });
  page.append(h('div', { class: 'page-head' }, h('h1', {}, userId ? `User ${userId}` : 'Users')), form);
  if (!userId) {
    renderUserList(page, context);
    return;
  }
  const recs = h('div', { 'data-panel': 'recommendations' });
  const timing = h('div', { 'data-panel': 'upgrade-timing' });
  page.append(h('div', { class: 'two-columns' },
    card('Feature recommendations', recs), card('Upgrade timing', timing)));
  withStates(recs, 'recommendations', () => get(`/feature-recommendations/${enc(userId)}`),
    (d) => h('ol', { class: 'recommendations' }, listFrom(d, 'recommendations').map(recommendation)),
    { when: (d) => listFrom(d, 'recommendations').length === 0,
      message: 'No recommendations for this user right now.',
      hint: 'They may already use every feature that would help them.' });
  withStates(timing, 'upgrade timing', () => get(`/upgrade-timing/${enc(userId)}`), upgradeTiming);
}

// Search: GET /users?query=&tier= (a substring of the user id), listed with links.
function renderUserList(page, context) {
  const query = h('input', { id: 'user-search', name: 'query', type: 'search', autocomplete: 'off',
                             placeholder: 'part of a user id, e.g. 0042' });
  const tier = h('select', { id: 'user-tier', name: 'tier' },
    h('option', { value: '' }, 'any tier'), ['free', 'plus', 'premium'].map((t) => h('option', { value: t }, t)));
  const results = h('div', { 'data-panel': 'user-list' });
  const search = h('form', { class: 'inline-form', role: 'search' },
    h('label', { for: 'user-search' }, 'Search users'), query, tier,
    h('button', { type: 'submit' }, 'Search'));
  const load = () => {
    const params = new URLSearchParams({ limit: '50' });
    if (query.value.trim()) params.set('query', query.value.trim());
    if (tier.value) params.set('tier', tier.value);
    return withStates(results, 'users', () => get(`/users?${params}`), (d) => [
      h('p', { class: 'muted', 'data-role': 'user-count' },
        `${fmt.number(d.matched)} users match; showing ${fmt.number(d.count)}.`),
      h('div', { class: 'table-scroll' }, table([
        { label: 'User', value: (u) => h('a', { href: `#/users/${enc(u.user_id)}` }, u.user_id) },
        { label: 'Tier', value: (u) => badge(u.tier, 'tier') },
        { label: 'Signed up', value: (u) => fmt.date(u.signup_at) },
        { label: 'Country', value: (u) => u.country || '—' },
        { label: 'App version', value: (u) => u.app_version || '—' },
      ], d.users, { id: 'user-list' }))],
    { when: (d) => !d.users?.length, message: 'No user matches.', hint: 'Try a shorter part of the id.' });
  };
  search.addEventListener('submit', (event) => { event.preventDefault(); load(); });
  tier.addEventListener('change', () => load());
  page.append(card('Find a user', search, results));
  load();
}

function confidenceBar(score) {
  const pct = isNum(score) ? Math.max(0, Math.min(1, score)) * 100 : 0;
  // Width through the CSSOM, not a style attribute: the Content-Security-Policy allows no
  // inline styles (style-src 'self').
  const fill = h('span', { class: 'fill' });
  fill.style.width = `${pct.toFixed(0)}%`;
  return h('span', { class: 'confidence', title: `confidence ${fmt.percent(score)}` },
    h('span', { class: 'bar' }, fill), ` ${fmt.percent(score, 0)}`);
}

function recommendation(r) {
  return h('li', { class: 'recommendation', 'data-feature': r.feature_name },
    h('div', { class: 'rec-head' },
      h('strong', {}, fmt.label(r.feature_name)), ' ', badge(r.recommendation_type, 'type'),
      h('span', { class: 'muted' }, ` priority ${r.priority ?? '—'}`)),
    h('div', { class: 'rec-figures' }, 'Confidence ', confidenceBar(r.confidence_score),
      h('span', {}, ' · expected value ', h('strong', {}, fmt.money(r.expected_value)))),
    Array.isArray(r.reasoning) && r.reasoning.length
      ? h('ul', { class: 'reasons' }, r.reasoning.map((why) => h('li', {}, why))) : null);
}

function upgradeTiming(t) {
  const list = (items, none) => (Array.isArray(items) && items.length
    ? h('ul', {}, items.map((i) => h('li', {}, typeof i === 'string' ? i : JSON.stringify(i))))
    : h('p', { class: 'muted' }, none));
  const recommendation = typeof t.recommendation === 'string' ? t.recommendation
    : t.recommendation?.text || (t.recommendation ? JSON.stringify(t.recommendation) : null);
  return [
    h('dl', { class: 'facts' },
      h('dt', {}, 'Current tier'), h('dd', {}, t.current_tier ? badge(t.current_tier, 'tier') : '—'),
      t.target_tier ? [h('dt', {}, 'Target tier'), h('dd', {}, badge(t.target_tier, 'tier'))] : null,
      h('dt', {}, 'Best upgrade date'), h('dd', { 'data-role': 'optimal-date' },
        t.optimal_upgrade_date ? fmt.date(t.optimal_upgrade_date) : 'no upgrade recommended now'),
      h('dt', {}, 'Confidence'), h('dd', {}, confidenceBar(t.confidence_score)),
      isNum(t.days_until_optimal) ? [h('dt', {}, 'Days until then'), h('dd', {}, fmt.number(t.days_until_optimal))] : null,
      isNum(t.propensity_today) ? [h('dt', {}, 'Upgrade propensity today'), h('dd', {}, fmt.percent(t.propensity_today))] : null),
    recommendation ? h('div', { class: 'callout' }, recommendation) : null,
    h('h3', {}, 'Why'), list(t.upgrade_reasons, 'No reasons given.'),
    h('h3', {}, 'Risks'), list(t.risk_factors, 'No risk factors.'),
  ];
}
