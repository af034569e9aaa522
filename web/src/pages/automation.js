// Jobs & Webhooks: the scheduler's jobs (schedule, time zone, next run, last runs, failures;
// "Run now"), the registered webhook endpoints (add one: its signing secret is shown once)
// and the recent deliveries with the dead letters an admin can send again
// (docs/automation.md).
import { get, post, request, enc } from '../api.js';
import { h, withStates, card, fmt, badge, listFrom, table, errorState } from '../ui.js';

export function renderAutomation(page) {
  const jobs = h('div', { id: 'jobs' });
  const endpoints = h('div', { id: 'endpoints' });
  const deliveries = h('div', { id: 'deliveries' });
  page.append(h('div', { class: 'page-head' }, h('h1', {}, 'Jobs & webhooks')), jobs,
              endpoints, deliveries);
  // Outlives the table's reloads: a run's result stays shown after the list refreshes.
  const message = h('div', { class: 'action-message' });
  const loadJobs = () => withStates(jobs, 'jobs', () => get('/automation/jobs'), (d) => {
    const runButton = (job) => h('button', {
      type: 'button', 'data-job': job.name,
      onclick: async (event) => {
        event.target.disabled = true;
        message.replaceChildren(h('p', { class: 'muted' }, `Running ${job.name}…`));
        try {
          const run = await post(`/automation/jobs/${enc(job.name)}/run`);
          message.replaceChildren(h('p', { class: 'muted', 'data-role': 'run-result' },
            `${job.name}: ${run.outcome} in ${fmt.number(run.duration_seconds)} s`));
          loadJobs();
        } catch (error) {
          message.replaceChildren(errorState(error, `job ${job.name}`));
        } finally {
          event.target.disabled = false;
        }
      } }, 'Run now');
    return card('Scheduled jobs', message, table([
      { label: 'Job', value: (j) => h('span', { title: j.description }, j.name) },
      { label: 'Schedule', value: (j) => h('code', {}, j.schedule) },
      { label: 'Time zone', value: (j) => j.timezone },
      { label: 'Enabled', value: (j) => badge(j.enabled ? 'enabled' : 'disabled') },
      { label: 'Next run', value: (j) => j.next_run_at || '—' },
      { label: 'Last run', value: (j) => (j.last_run ? `${j.last_run.period}` : 'never') },
      { label: 'Outcome', value: (j) => (j.last_run ? badge(j.last_run.outcome, 'outcome') : '—') },
      { label: 'Duration', class: 'num', value: (j) => (j.last_run ? `${fmt.number(j.last_run.duration_seconds)} s` : '—') },
      { label: '', value: runButton },
    ], listFrom(d, 'jobs'), { id: 'jobs-table' }));
  });
  // Outlives the list's reloads too: a new endpoint's secret is shown once, after the refresh.
  const endpointResult = h('div', { class: 'action-message', 'data-role': 'endpoint-result' });
  const loadEndpoints = () => withStates(endpoints, 'webhook endpoints', () => get('/webhooks'), (d) => {
    const form = addEndpointForm(d.event_types || [], endpointResult, () => { loadEndpoints(); });
    const list = listFrom(d, 'endpoints');
    return card('Webhook endpoints', list.length ? table([
      { label: 'Endpoint', value: (e) => h('code', {}, e.endpoint_id) },
      { label: 'URL', value: (e) => e.url },
      { label: 'Events', value: (e) => (e.event_types || []).join(', ') },
      { label: 'Format', value: (e) => e.format },
      { label: 'Key id', value: (e) => h('code', {}, e.key_id) },
      { label: '', value: (e) => h('button', { type: 'button', 'data-rotate': e.endpoint_id, onclick: async () => {
        // The old secret keeps signing beside the new one for a day (the server's default
        // grace), so the receiving system can switch without losing a delivery.
        const rotated = await post(`/webhooks/${enc(e.endpoint_id)}/rotate-secret`, {});
        endpointResult.replaceChildren(h('p', {}, 'Endpoint ', h('code', {}, rotated.endpoint_id),
          ' has a new signing secret (shown once): ', h('code', { 'data-role': 'rotated-secret' }, rotated.secret),
          `. The previous one also signs until ${rotated.previous_valid_until}.`));
        loadEndpoints();
      } }, 'Rotate secret') },
      { label: '', value: (e) => h('button', { type: 'button', onclick: async () => {
        await request('DELETE', `/webhooks/${enc(e.endpoint_id)}`);
        loadEndpoints();
      } }, 'Remove') },
    ], list, { id: 'endpoints-table' }) : h('p', { class: 'muted' }, 'No endpoints registered.'), form);
  });
  const loadDeliveries = () => withStates(deliveries, 'webhook deliveries',
    () => get('/webhooks/deliveries?limit=50'), (d) => {
      const list = listFrom(d, 'deliveries');
      return card('Recent deliveries', list.length ? table([
        { label: 'Delivery', value: (x) => h('code', {}, x.delivery_id) },
        { label: 'Event', value: (x) => x.event_type },
        { label: 'Endpoint', value: (x) => x.endpoint_id },
        { label: 'Status', value: (x) => badge(x.status) },
        { label: 'Attempts', class: 'num', value: (x) => fmt.number(x.attempts) },
        { label: 'Last error', value: (x) => x.last_error || '—' },
        { label: '', value: (x) => (x.status === 'pending' ? '' : h('button', {
          type: 'button', 'data-redeliver': x.delivery_id,
          onclick: async () => { await post(`/webhooks/deliveries/${enc(x.delivery_id)}/redeliver`); loadDeliveries(); },
        }, x.status === 'dead' ? 'Redeliver' : 'Send again')) },
      ], list, { id: 'deliveries-table' }) : h('p', { class: 'muted' }, 'No deliveries yet.'));
    });
  loadJobs();
  loadEndpoints();
  loadDeliveries();
}

function addEndpointForm(eventTypes, result, done) {
  const url = h('input', { type: 'url', name: 'url', placeholder: 'https URL of the receiving system', required: true });
  const format = h('select', { name: 'format' }, h('option', { value: 'json' }, 'JSON (signed)'),
                   h('option', { value: 'slack' }, 'Slack message'));
  const boxes = eventTypes.map((type) => h('label', { class: 'check' },
    h('input', { type: 'checkbox', name: 'event_types', value: type }), ` ${type}`));
  const form = h('form', { id: 'add-endpoint', onsubmit: async (event) => {
    event.preventDefault();
    const types = boxes.map((b) => b.querySelector('input')).filter((i) => i.checked).map((i) => i.value);
    try {
      const created = await post('/webhooks', { url: url.value, event_types: types, format: format.value });
      result.replaceChildren(h('p', {}, 'Endpoint ', h('code', {}, created.endpoint_id),
        ' added. Its signing secret (shown once): ', h('code', { 'data-role': 'secret' }, created.secret)));
      done();
    } catch (error) {
      result.replaceChildren(h('p', { class: 'error', 'data-role': 'endpoint-error' },
        `${error.detail || error.message}${error.field ? ` (field: ${error.field})` : ''}`));
    }
  } }, h('h3', {}, 'Add an endpoint'), h('label', {}, 'URL ', url), h('label', {}, 'Format ', format),
  h('fieldset', {}, h('legend', {}, 'Events'), ...boxes), h('button', { type: 'submit', class: 'primary' }, 'Add endpoint'));
  return h('div', {}, form, result);
}
