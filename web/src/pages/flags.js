// Feature flags: the list (with the A/B tests that serve each feature), the create form, one
// flag's page (kill switch, archive, rollout percentage, rules as JSON) and the "SDK
// connection" panel with the apiHost/clientKey snippets for JS, Kotlin and Swift.
import { get, post, request, enc } from '../api.js';
import { h, withStates, card, fmt, table, badge, errorState, listFrom } from '../ui.js';

const patch = (path, body) => request('PATCH', path, body);

function stateOf(flag) {
  return flag.archived ? 'archived' : flag.killed ? 'killed' : 'active';
}

function testsCell(tests) {
  if (!tests || !tests.length) return '—';
  return tests.map((t, i) => [i ? ', ' : null,
    h('a', { href: `#/ab-tests/${enc(t.test_id)}` }, t.test_id), ` (${t.status})`]);
}

// Parses what a person typed as a value of the flag's type.
function parseValue(type, text) {
  const trimmed = text.trim();
  if (type === 'string') return { value: text };
  try {
    return { value: JSON.parse(trimmed) };
  } catch {
    return { error: `“${trimmed}” is not a valid ${type} value.` };
  }
}

// ---------------------------------------------------------------------------------- list

export function renderFlags(page, context) {
  const list = h('div');
  const implicit = h('div');
  const sdk = h('div');
  page.append(h('div', { class: 'page-head' }, h('h1', {}, 'Feature flags')),
              list, createForm(context), implicit, sdk);
  withStates(list, 'flags', () => get('/flags?archived=true'), (document) => {
    const flags = listFrom(document, 'flags');
    renderImplicit(implicit, document.implicit_features || []);
    return card('Flags', table([
      { label: 'Flag', value: (f) => h('a', { href: `#/flags/${enc(f.key)}` }, f.key) },
      { label: 'Type', value: (f) => f.value_type },
      { label: 'Default', value: (f) => h('code', {}, JSON.stringify(f.default_value)) },
      { label: 'Rules', value: (f) => String((f.rules || []).length) },
      { label: 'State', value: (f) => badge(stateOf(f)) },
      { label: 'Served by tests', value: (f) => testsCell(f.tests) },
      { label: 'Updated', value: (f) => fmt.datetime(f.updated_at) },
    ], flags, { id: 'flags-table' }));
  }, {
    when: (d) => listFrom(d, 'flags').length === 0 && !(d.implicit_features || []).length,
    message: 'No feature flags yet.',
    hint: 'Create one below; running A/B tests also appear as features.',
  });
  renderSdkPanel(sdk);
}

function renderImplicit(container, features) {
  container.replaceChildren();
  if (!features.length) return;
  container.append(card('Features served only by A/B tests', table([
    { label: 'Feature', value: (f) => h('code', {}, f.feature_name) },
    { label: 'Tests', value: (f) => testsCell(f.tests) },
  ], features, { id: 'implicit-features-table' })));
}

function createForm(context) {
  const message = h('div', { class: 'form-message' });
  const field = (name, label, input, hint) => h('div', { class: 'field', 'data-field': name },
    h('label', { for: `flag-${name}` }, label), input, hint ? h('small', { class: 'muted' }, hint) : null);
  const type = h('select', { id: 'flag-value_type', name: 'value_type' },
    ['boolean', 'string', 'number', 'json'].map((t) => h('option', { value: t }, t)));
  const submit = h('button', { type: 'submit', class: 'primary' }, 'Create flag');
  const form = h('form', { class: 'card create-flag', novalidate: true },
    h('h2', {}, 'New flag'),
    field('key', 'Key', h('input', { id: 'flag-key', name: 'key', placeholder: 'instant_transfers' })),
    field('value_type', 'Value type', type),
    field('default_value', 'Default value', h('input', { id: 'flag-default_value', name: 'default_value',
                                                          class: 'mono', value: 'false' }),
          'false / true, a number, "text" or JSON for json flags.'),
    field('description', 'Description', h('input', { id: 'flag-description', name: 'description' })),
    message, h('div', { class: 'actions' }, submit));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    message.replaceChildren();
    const valueType = form.elements.value_type.value;
    const parsed = parseValue(valueType, form.elements.default_value.value);
    if (parsed.error) {
      message.append(h('p', { class: 'error-detail' }, parsed.error));
      return;
    }
    const body = { key: form.elements.key.value.trim(), value_type: valueType,
                   default_value: parsed.value };
    if (form.elements.description.value.trim()) body.description = form.elements.description.value.trim();
    submit.disabled = true;
    try {
      const created = await post('/flags', body);
      context.navigate(`#/flags/${enc(created.key)}`);
    } catch (error) {
      submit.disabled = false;
      message.append(errorState(error, 'the new flag'));
    }
  });
  return form;
}

// ------------------------------------------------------------------------- SDK connection

function snippets(apiHost, clientKey) {
  return {
    JavaScript: `import { GrowthBook } from "@growthbook/growthbook";

const gb = new GrowthBook({
  apiHost: "${apiHost}",
  clientKey: "${clientKey}",
  attributes: { id: user.id, country: user.country, app_version: appVersion },
  trackingCallback: (experiment, result) => queueExposure(experiment.key, result.key),
});
await gb.init({ streaming: true });`,
    Kotlin: `val gb = GBSDKBuilder(
    apiKey = "${clientKey}",
    apiHost = "${apiHost}",
    attributes = mapOf("id" to userId, "country" to country),
    trackingCallback = { experiment, result -> queueExposure(experiment.key, result.key) },
).setStreamingEnabled(true).initialize()`,
    Swift: `let gb = GrowthBookBuilder(
    apiHost: "${apiHost}",
    clientKey: "${clientKey}",
    attributes: ["id": userId, "country": country],
    trackingCallback: { experiment, result in queueExposure(experiment.key, result.key) }
).setStreamingEnabled(true).initializer()`,
  };
}

function renderSdkPanel(container) {
  withStates(container, 'SDK connections', () => get('/sdk-connections'), (document) => {
    const connections = listFrom(document, 'connections').filter((c) => !c.revoked_at);
    const apiHost = location.origin;
    const chosen = connections[0];
    const code = h('pre', { class: 'snippet mono', id: 'sdk-snippet' });
    const tabs = h('div', { class: 'tabs', role: 'tablist' });
    const show = (language) => {
      code.textContent = snippets(apiHost, chosen.client_key)[language];
      for (const tab of tabs.children) tab.setAttribute('aria-selected', String(tab.textContent === language));
    };
    for (const language of ['JavaScript', 'Kotlin', 'Swift']) {
      tabs.append(h('button', { type: 'button', role: 'tab', onclick: () => show(language) }, language));
    }
    show('JavaScript');
    return card('SDK connection',
      h('p', {}, 'GrowthBook SDKs need only ', h('code', {}, 'apiHost'), ' and ',
        h('code', {}, 'clientKey'), '; OpenFeature SDKs use the OFREP provider with ',
        h('code', {}, `baseUrl: "${apiHost}"`), ' and the sdk key\'s secret as Bearer token.'),
      table([
        { label: 'Label', value: (c) => c.label || '—' },
        { label: 'Client key', value: (c) => h('code', { class: 'client-key' }, c.client_key) },
        { label: 'Encrypted', value: (c) => (c.encrypted ? 'yes' : 'no') },
        { label: 'Created', value: (c) => fmt.date(c.created_at) },
      ], connections, { id: 'sdk-connections-table' }),
      h('p', {}, 'apiHost: ', h('code', { id: 'sdk-api-host' }, apiHost)),
      tabs, code);
  }, {
    when: (d) => listFrom(d, 'connections').filter((c) => !c.revoked_at).length === 0,
    message: 'No SDK keys yet.',
    hint: 'Create one with `fulcrum keys create --role sdk --label "web app"`; its client key appears here.',
  });
}

// ------------------------------------------------------------------------------- one flag

export function renderFlagDetail(page, context, key) {
  const body = h('div');
  page.append(h('div', { class: 'page-head' }, h('h1', {}, key),
                h('a', { href: '#/flags' }, 'All flags')), body);
  const reload = () => withStates(body, 'the flag', () => get(`/flags/${enc(key)}`),
                                  (flag) => flagView(flag, reload));
  reload();
}

function flagView(flag, reload) {
  const message = h('div', { class: 'form-message', id: 'flag-message' });
  const act = async (call) => {
    message.replaceChildren();
    try {
      await call();
      reload();
    } catch (error) {
      message.append(errorState(error, 'the change'));
    }
  };
  const killButton = h('button', {
    type: 'button', id: 'kill-switch', class: flag.killed ? 'primary' : 'danger',
    onclick: () => act(() => post(`/flags/${enc(flag.key)}/kill`, { killed: !flag.killed })),
  }, flag.killed ? 'Turn kill switch off' : 'Kill switch: serve the off value to everyone');
  const archiveButton = h('button', {
    type: 'button', id: 'archive-flag',
    onclick: () => act(() => post(`/flags/${enc(flag.key)}/archive`, { archived: !flag.archived })),
  }, flag.archived ? 'Unarchive' : 'Archive');

  // Rollout: a force rule with coverage, edited as a percentage.
  const rolloutIndex = (flag.rules || []).findIndex((r) => r.type === 'force' && typeof r.coverage === 'number'
                                                         && Object.keys(r.condition || {}).length === 0);
  const rollout = rolloutIndex >= 0 ? flag.rules[rolloutIndex] : null;
  const percent = h('input', { id: 'rollout-percent', type: 'number', min: '0', max: '100', step: '1',
                               value: rollout ? String(Math.round(rollout.coverage * 100)) : '0' });
  const rolloutValue = h('input', { id: 'rollout-value', class: 'mono',
                                    value: JSON.stringify(rollout ? rollout.value
                                      : flag.value_type === 'boolean' ? true : flag.default_value) });
  const saveRollout = h('button', { type: 'button', id: 'save-rollout', onclick: () => {
    const parsed = parseValue(flag.value_type, rolloutValue.value);
    if (parsed.error) {
      message.replaceChildren(h('p', { class: 'error-detail' }, parsed.error));
      return;
    }
    const rule = { ...(rollout || { id: 'rollout', type: 'force' }),
                   coverage: Math.min(100, Math.max(0, Number(percent.value))) / 100,
                   value: parsed.value };
    const rules = [...(flag.rules || [])];
    if (rolloutIndex >= 0) rules[rolloutIndex] = rule; else rules.push(rule);
    act(() => patch(`/flags/${enc(flag.key)}`, { rules, version: flag.version }));
  } }, 'Save rollout');

  const rulesText = h('textarea', { id: 'rules-json', class: 'mono', rows: 12 },
                      JSON.stringify(flag.rules || [], null, 2));
  const saveRules = h('button', { type: 'button', id: 'save-rules', class: 'primary', onclick: () => {
    let rules;
    try {
      rules = JSON.parse(rulesText.value);
    } catch (error) {
      message.replaceChildren(h('p', { class: 'error-detail' }, `Rules are not valid JSON: ${error.message}`));
      return;
    }
    act(() => patch(`/flags/${enc(flag.key)}`, { rules, version: flag.version }));
  } }, 'Save rules');

  return [
    card(null,
      h('p', {}, badge(stateOf(flag)), ' ', h('span', { class: 'muted' }, `${flag.value_type} · version ${flag.version}`),
        ' · default ', h('code', { id: 'flag-default' }, JSON.stringify(flag.default_value))),
      flag.description ? h('p', {}, flag.description) : null,
      h('p', {}, 'Served by tests: ', testsCell(flag.tests)),
      h('div', { class: 'actions' }, killButton, archiveButton), message),
    card('Percentage rollout',
      h('p', { class: 'muted' }, 'Users whose hash of id falls under the percentage get the value; the rest fall through to later rules and the default.'),
      h('div', { class: 'field' }, h('label', { for: 'rollout-percent' }, 'Percentage of users'), percent),
      h('div', { class: 'field' }, h('label', { for: 'rollout-value' }, 'Value they get'), rolloutValue),
      saveRollout),
    card('Rules (in order, first match wins)',
      h('p', { class: 'muted' }, 'Force rules: {"type": "force", "condition": {...}, "value": ...}; experiments: {"type": "experiment", "variations": [{"name", "value"}], "weights": [...]}.'),
      rulesText, h('div', { class: 'actions' }, saveRules)),
  ];
}


