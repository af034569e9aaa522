// Retention campaigns the triggers produced (GET /retention-campaigns) and, for each, its
// measured lift against the held-out control (GET /retention-campaigns/{id}/results).
import { get, post, enc } from '../api.js';
import { h, withStates, card, fmt, badge, listFrom, kpi, isNum, table, errorState } from '../ui.js';
import { intervalChart } from '../charts.js';

export function renderRetention(page) {
  const body = h('div');
  const message = h('div', { class: 'action-message' });
  // POST /retention-campaigns/trigger runs the five triggers now and drafts campaigns for the
  // users they match (users already in a recent campaign are skipped by the engine).
  const trigger = h('button', { type: 'button', class: 'primary', id: 'run-triggers',
                                onclick: async () => {
    trigger.disabled = true;
    message.replaceChildren(h('p', { class: 'muted' }, 'Running the retention triggers…'));
    try {
      const created = await post('/retention-campaigns/trigger');
      const count = listFrom(created, 'retention_campaigns', 'campaigns').length;
      message.replaceChildren(h('p', { class: 'muted', 'data-role': 'trigger-result' },
        count ? `${count} new campaign${count === 1 ? '' : 's'} created.`
              : 'No trigger matched any user who is not already in a campaign.'));
      load();
    } catch (error) {
      message.replaceChildren(errorState(error, 'retention campaigns (trigger run)'));
    } finally {
      trigger.disabled = false;
    }
  } }, 'Run triggers now');
  page.append(h('div', { class: 'page-head' }, h('h1', {}, 'Retention campaigns'), trigger), message, body);
  const load = () => withStates(body, 'retention campaigns', () => get('/retention-campaigns'), (d) => {
    const campaigns = listFrom(d, 'campaigns', 'retention_campaigns');
    return [
      card('Campaigns', table([
        { label: 'Campaign', value: (c) => c.campaign_name || c.campaign_id },
        { label: 'Trigger', value: (c) => badge(c.trigger_type, 'type') },
        { label: 'Type', value: (c) => fmt.label(c.campaign_type) },
        { label: 'Users', class: 'num', value: (c) => fmt.number(targetCount(c)) },
        { label: 'Held out', class: 'num', value: (c) => (Array.isArray(c.holdout_users) ? fmt.number(c.holdout_users.length) : '—') },
        { label: 'Status', value: (c) => badge(c.campaign_status || 'unknown') },
        { label: 'Message', value: (c) => h('span', { class: 'message' }, c.campaign_message || '—') },
      ], campaigns, { id: 'campaigns-table' })),
      h('div', { class: 'grid' }, campaigns.map(campaignResults)),
    ];
  }, { when: (d) => listFrom(d, 'campaigns', 'retention_campaigns').length === 0,
       message: 'No retention campaigns yet.',
       hint: 'Campaigns appear when a trigger (usage drop, churn risk, …) matches users: use “Run triggers now”.' });
  load();
}

function targetCount(c) {
  if (isNum(c.target_user_count)) return c.target_user_count;
  return Array.isArray(c.target_users) ? c.target_users.length : null;
}

function campaignResults(c) {
  const box = h('div');
  const section = card(null, h('h2', {}, c.campaign_name || c.campaign_id), box);
  section.dataset.campaign = c.campaign_id;
  withStates(box, 'campaign results', () => get(`/retention-campaigns/${enc(c.campaign_id)}/results`),
             (r) => renderLift(r));
  return section;
}

function rateOf(group) {
  if (!group) return null;
  return group.retention_rate ?? group.retained_rate ?? group.rate ?? group.conversion_rate ?? null;
}

function renderLift(r) {
  const treated = r.treatment || r.treated || r.groups?.treatment;
  const control = r.control || r.holdout || r.groups?.control;
  const lift = r.lift ?? r.absolute_lift;
  const liftValue = isNum(lift) ? lift : lift?.estimate;
  const ci = r.ci || r.confidence_interval || lift?.ci;
  const usersNote = (g) => (isNum(g?.users) ? `${fmt.number(g.retained ?? 0)} of ${fmt.number(g.users)} users` : null);
  const out = [h('div', { class: 'kpis small' },
    kpi('Retention, targeted', fmt.percent(rateOf(treated)), usersNote(treated)),
    kpi('Retention, held out', fmt.percent(rateOf(control)), usersNote(control)),
    kpi('Lift', isNum(liftValue) ? `${(liftValue * 100).toFixed(2)} pp` : '—'),
    isNum(r.p_value ?? lift?.p_value) ? kpi('p-value', fmt.p(r.p_value ?? lift?.p_value)) : null)];
  if (Array.isArray(ci) && isNum(liftValue)) {
    out.push(intervalChart([{ label: 'lift', estimate: liftValue, lower: ci[0], upper: ci[1],
                               significant: ci[0] > 0 || ci[1] < 0 }], { percent: true, compact: true,
                                   caption: 'Lift (targeted minus held out) with its confidence interval.' }));
  }
  if (r.recommendation || r.summary) {
    out.push(h('p', { class: 'muted' }, typeof (r.recommendation ?? r.summary) === 'string'
      ? (r.recommendation ?? r.summary) : JSON.stringify(r.recommendation ?? r.summary)));
  }
  if (r.observation_complete === false) {
    out.push(h('p', { class: 'muted small' }, `Still observing: the ${r.retention_window_days ?? ''}-day retention window has not ended for every user.`));
  }
  if (!treated && !control && !isNum(liftValue)) {
    out.push(h('p', { class: 'muted' }, 'No outcome measured yet for this campaign.'));
  }
  return out;
}
