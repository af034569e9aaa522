// SDK compatibility, end to end: a real `fulcrum serve` on a demo store, driven by the
// official client libraries pinned in package.json (no mocks):
//  - @growthbook/growthbook with apiHost + clientKey evaluates locally from
//    GET /api/features/{clientKey};
//  - @openfeature/server-sdk with @openfeature/ofrep-provider evaluates remotely over OFREP;
// and for thousands of users with varied attributes both must put every user in the same
// group as POST /ab-tests/{id}/assign, across uneven weights, partial coverage, a namespace
// and a targeting condition. Then a GrowthBook SDK streaming over SSE (the pinned
// `eventsource` package) must see a flag flip made through the admin API within 2 s, and
// exposures an app's trackingCallback sends to the events route in batches (each batch sent
// twice, as a retrying client would, with event ids) must be stored once and count each
// user once. A bandit test, whose weights change while it runs, must keep every user in the
// same arm on both sides: /assign by the stored first exposure, the SDK by its sticky bucket
// service (bucketVersion = phase); new users get the current weights on both sides.
//
// Run: FULCRUM_BIN=build/src/cli/fulcrum node --test tests/sdk/sdk_compat.test.mjs
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { spawn, execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import {
  GrowthBook, setPolyfills, configureCache, clearCache, LocalStorageStickyBucketService,
} from '@growthbook/growthbook';
import { EventSource } from 'eventsource';
import { OpenFeature } from '@openfeature/server-sdk';
import { OFREPProvider } from '@openfeature/ofrep-provider';

const run = promisify(execFile);
const REPO_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const USERS = Number(process.env.FULCRUM_SDK_USERS || 2000);

function fulcrumBinary() {
  const candidates = [process.env.FULCRUM_BIN, join(REPO_DIR, 'build/src/cli/fulcrum')]
    .filter(Boolean);
  const found = candidates.find((path) => existsSync(path));
  if (!found) throw new Error(`fulcrum binary not found (tried ${candidates.join(', ')})`);
  return found;
}

const env = {};

async function fulcrum(args) {
  try {
    return (await run(env.bin, ['--store', env.store, ...args], { timeout: 120_000 })).stdout;
  } catch (error) {
    throw new Error(`fulcrum ${args.join(' ')} failed: ${error.stderr || error.message}`);
  }
}

function field(text, name) {
  const match = text.match(new RegExp(`^${name}:\\s*(\\S+)`, 'm'));
  if (!match) throw new Error(`no ${name} in: ${text}`);
  return match[1];
}

async function api(key, method, path, body) {
  const response = await fetch(`${env.baseUrl}/api/automated-optimization${path}`, {
    method,
    headers: { Authorization: `Bearer ${key}`, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : null };
}

// Runs `task(i)` for i in [0, count) with at most `width` in flight.
async function pool(count, width, task) {
  let next = 0;
  const workers = Array.from({ length: width }, async () => {
    while (next < count) {
      const i = next++;
      await task(i);
    }
  });
  await Promise.all(workers);
}

const COUNTRIES = ['GB', 'IE', 'US', 'DE', 'FR', 'ES'];
const VERSIONS = ['5.1.9', '5.2.0', '5.2.1', '5.10.0', '6.0.0', '4.9.9'];
const TIERS = ['free', 'plus', 'premium'];
function attributesOf(i) {
  return {
    id: `sdk-user-${i}`,
    country: COUNTRIES[(i * 7) % COUNTRIES.length],
    app_version: VERSIONS[(i * 11 + 3) % VERSIONS.length],
    tier: TIERS[(i * 5) % TIERS.length],
  };
}

const TESTS = {
  uneven: {
    test_name: 'Checkout colour (uneven weights, partial coverage)',
    feature_name: 'checkout_colour',
    success_metrics: ['conversion_rate'],
    test_groups: { control: { color: 'grey' }, blue: { color: 'blue' }, green: { color: 'green' } },
    traffic_allocation: { control: 0.2, blue: 0.5, green: 0.3 },
    coverage: 0.6,
  },
  namespaceLow: {
    test_name: 'Onboarding A (namespace first half)',
    feature_name: 'onboarding_flow',
    success_metrics: ['conversion_rate'],
    test_groups: { control: { steps: 5 }, short: { steps: 3 } },
    traffic_allocation: { control: 0.7, short: 0.3 },
    namespace: { id: 'onboarding', start: 0, end: 0.5 },
  },
  namespaceHigh: {
    test_name: 'Onboarding B (namespace second half)',
    feature_name: 'onboarding_copy',
    success_metrics: ['conversion_rate'],
    test_groups: { control: { copy: 'old' }, friendly: { copy: 'friendly' } },
    traffic_allocation: { control: 0.5, friendly: 0.5 },
    namespace: { id: 'onboarding', start: 0.5, end: 1 },
    coverage: 0.9,
  },
  targeted: {
    test_name: 'Savings nudge (targeted)',
    feature_name: 'savings_nudge',
    success_metrics: ['conversion_rate'],
    test_groups: { control: { nudge: false }, nudge: { nudge: true } },
    traffic_allocation: { control: 0.45, nudge: 0.55 },
    targeting: { country: { $in: ['GB', 'IE'] }, app_version: { $vgte: '5.2.0' } },
  },
};

before(async () => {
  env.bin = fulcrumBinary();
  env.dir = mkdtempSync(join(tmpdir(), 'fulcrum-sdk-'));
  env.store = join(env.dir, 'fulcrum.db');
  await fulcrum(['demo', '--users', '300', '--days', '28']);
  env.admin = field(await fulcrum(['keys', 'create', '--role', 'admin']), 'secret');
  env.service = field(await fulcrum(['keys', 'create', '--role', 'service']), 'secret');
  const sdk = await fulcrum(['keys', 'create', '--role', 'sdk', '--label', 'web app']);
  env.sdkSecret = field(sdk, 'secret');
  env.clientKey = field(sdk, 'client_key');
  env.server = spawn(env.bin, ['--store', env.store, 'serve', '--address', '127.0.0.1',
    '--port', '0', '--web-dir', '', '--no-scheduler'],
  { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  env.log = () => log;
  env.baseUrl = await new Promise((resolveUrl, reject) => {
    const timer = setTimeout(() => reject(new Error(`serve did not start:\n${log}`)), 20_000);
    env.server.stdout.on('data', (d) => {
      log += d;
      const match = log.match(/serving on (http:\/\/[0-9.]+:\d+)/);
      if (match) { clearTimeout(timer); resolveUrl(match[1]); }
    });
    env.server.stderr.on('data', (d) => { log += d; });
    env.server.once('exit', (code) => reject(new Error(`serve exited ${code}:\n${log}`)));
  });
  env.tests = {};
  for (const [name, definition] of Object.entries(TESTS)) {
    const created = await api(env.admin, 'POST', '/ab-tests', definition);
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const started = await api(env.admin, 'POST', `/ab-tests/${created.body.test_id}/start`);
    assert.equal(started.status, 200, JSON.stringify(started.body));
    env.tests[name] = created.body.test_id;
  }
  setPolyfills({ EventSource });
  configureCache({ disableCache: true });
});

after(async () => {
  await clearCache();  // closes any SSE channel an instance left open
  await OpenFeature.close();
  if (env.server && env.server.exitCode === null) {
    const exited = new Promise((r) => env.server.once('exit', r));
    env.server.kill('SIGTERM');
    await exited;
  }
  if (env.dir) rmSync(env.dir, { recursive: true, force: true });
});

// What POST .../assign says for every (user, test): the variant or null.
async function assignAll() {
  const decisions = new Map();
  const names = Object.keys(TESTS);
  await pool(USERS * names.length, 16, async (k) => {
    const i = Math.floor(k / names.length);
    const name = names[k % names.length];
    const attributes = attributesOf(i);
    const reply = await api(env.service, 'POST', `/ab-tests/${env.tests[name]}/assign`,
      { user_id: attributes.id, attributes });
    assert.equal(reply.status, 200, JSON.stringify(reply.body));
    decisions.set(`${i}/${name}`, reply.body.in_experiment ? reply.body : null);
  });
  return decisions;
}

test('GrowthBook SDK and OFREP give every user the group POST /assign gives', async () => {
  const decisions = await assignAll();

  const gb = new GrowthBook({ apiHost: env.baseUrl, clientKey: env.clientKey });
  const init = await gb.init({ timeout: 5000 });
  assert.equal(init.success, true, JSON.stringify(init));

  OpenFeature.setProvider(new OFREPProvider({
    baseUrl: env.baseUrl, headers: [['Authorization', `Bearer ${env.sdkSecret}`]],
  }));
  const client = OpenFeature.getClient();

  const inTest = Object.fromEntries(Object.keys(TESTS).map((n) => [n, 0]));
  for (let i = 0; i < USERS; ++i) {
    const attributes = attributesOf(i);
    await gb.setAttributes(attributes);
    for (const [name, definition] of Object.entries(TESTS)) {
      const decision = decisions.get(`${i}/${name}`);
      const result = gb.evalFeature(definition.feature_name);
      const what = `${attributes.id} ${JSON.stringify(attributes)} in ${name}`;
      if (decision) {
        inTest[name]++;
        assert.equal(result.source, 'experiment', what);
        assert.equal(result.experimentResult.inExperiment, true, what);
        assert.equal(result.experimentResult.key, decision.variant, what);
        assert.deepEqual(result.value, decision.config, what);
      } else {
        assert.notEqual(result.experimentResult?.inExperiment, true, what);
        assert.equal(result.value, null, what);
      }
    }
  }
  // Each kind of test leaves a fair share of users in and out.
  for (const [name, count] of Object.entries(inTest)) {
    assert.ok(count > USERS * 0.1 && count < USERS * 0.95, `${name}: ${count} of ${USERS}`);
  }

  // OFREP, evaluated on the server for each user.
  const names = Object.keys(TESTS);
  let split = 0;
  await pool(USERS * names.length, 16, async (k) => {
    const i = Math.floor(k / names.length);
    const name = names[k % names.length];
    const { id, ...rest } = attributesOf(i);
    const decision = decisions.get(`${i}/${name}`);
    const details = await client.getObjectDetails(TESTS[name].feature_name, { fallback: true },
      { targetingKey: id, ...rest });
    const what = `${id} in ${name}: ${JSON.stringify(details)}`;
    if (decision) {
      split++;
      assert.equal(details.reason, 'SPLIT', what);
      assert.equal(details.variant, decision.variant, what);
      assert.deepEqual(details.value, decision.config, what);
    } else {
      // Not in the test: no value (the code default) and never a split.
      assert.notEqual(details.reason, 'SPLIT', what);
      assert.deepEqual(details.value, { fallback: true }, what);
    }
  });
  assert.equal(split, [...decisions.values()].filter(Boolean).length);
  gb.destroy();
});

test('a streaming GrowthBook SDK sees a flag flip within 2 s', async () => {
  const created = await api(env.admin, 'POST', '/flags',
    { key: 'instant_transfers', value_type: 'boolean', default_value: false });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const gb = new GrowthBook({ apiHost: env.baseUrl, clientKey: env.clientKey });
  const init = await gb.init({ timeout: 5000, streaming: true });
  assert.equal(init.success, true);
  assert.equal(gb.isOn('instant_transfers'), false);
  // Let the EventSource connect (it opens right after the first fetch).
  await new Promise((r) => setTimeout(r, 500));
  for (const value of [true, false, true]) {
    const flippedAt = Date.now();
    const patched = await api(env.admin, 'PATCH', '/flags/instant_transfers',
      { default_value: value });
    assert.equal(patched.status, 200, JSON.stringify(patched.body));
    while (gb.isOn('instant_transfers') !== value) {
      assert.ok(Date.now() - flippedAt < 2000, `flip to ${value} not seen within 2 s`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }
  // The kill switch travels the same way.
  const killedAt = Date.now();
  assert.equal((await api(env.admin, 'POST', '/flags/instant_transfers/kill')).status, 200);
  while (gb.isOn('instant_transfers')) {
    assert.ok(Date.now() - killedAt < 2000, 'kill not seen within 2 s');
    await new Promise((r) => setTimeout(r, 10));
  }
  gb.destroy();
});

test('trackingCallback exposures sent to the events route in batches count each user once',
  async () => {
    const created = await api(env.admin, 'POST', '/ab-tests', {
      test_name: 'Tracked locally', feature_name: 'tracked_banner',
      success_metrics: ['conversion_rate'],
      test_groups: { control: { banner: 'a' }, variant: { banner: 'b' } },
      traffic_allocation: { control: 0.5, variant: 0.5 },
    });
    assert.equal(created.status, 201);
    const testId = created.body.test_id;
    assert.equal((await api(env.admin, 'POST', `/ab-tests/${testId}/start`)).status, 200);

    // The app's side: a trackingCallback that queues exposures and flushes them in batches.
    const queue = [];
    const flush = async () => {
      const events = queue.splice(0, queue.length);
      if (!events.length) return;
      for (let attempt = 0; attempt < 2; attempt++) {  // a retry re-sends the same batch
        const reply = await api(env.service, 'POST', '/events', { events });
        assert.equal(reply.status < 300, true, JSON.stringify(reply.body));
        // The exposures' event ids make the retry store nothing, and say so.
        assert.equal(reply.body.stored, attempt === 0 ? events.length : 0);
        assert.equal(reply.body.duplicates, attempt === 0 ? 0 : events.length);
      }
    };
    const gb = new GrowthBook({
      apiHost: env.baseUrl,
      clientKey: env.clientKey,
      trackingCallback: (experiment, result) => {
        queue.push({ type: 'exposure', experiment_id: experiment.key,
          user_id: String(result.hashValue), variant: result.key,
          at: Math.floor(Date.now() / 1000),
          event_id: `${experiment.key}:${result.hashValue}:${result.key}` });
      },
    });
    assert.equal((await gb.init({ timeout: 5000 })).success, true);
    const expected = { control: new Set(), variant: new Set() };
    for (let i = 0; i < 500; ++i) {
      await gb.setAttributes({ id: `tracked-${i}` });
      for (let repeat = 0; repeat < 2; ++repeat) {  // the app renders the banner twice
        const result = gb.evalFeature('tracked_banner');
        if (result.experimentResult?.inExperiment) {
          expected[result.experimentResult.key].add(`tracked-${i}`);
        }
      }
      if (queue.length >= 100) await flush();
    }
    await flush();
    gb.destroy();
    assert.equal(expected.control.size + expected.variant.size, 500);

    const results = await api(env.admin, 'GET', `/ab-tests/${testId}/results`);
    assert.equal(results.status, 200, JSON.stringify(results.body));
    const groups = results.body.group_analysis;
    assert.equal(groups.control.sample_size, expected.control.size,
      JSON.stringify(results.body).slice(0, 400));
    assert.equal(groups.variant.sample_size, expected.variant.size);
  });

test('a bandit: weights change, /assign and a sticky-bucketing SDK keep users in their arm', async () => {
  const created = await api(env.admin, 'POST', '/ab-tests', {
    test_name: 'Bandit nudge', feature_name: 'bandit_nudge', success_metrics: ['conversion_rate'],
    test_groups: { control: { arm: 0 }, b: { arm: 1 }, c: { arm: 2 } },
    traffic_allocation: { control: 0.34, b: 0.33, c: 0.33 },
    bandit: { enabled: true, recompute_interval_minutes: 60 },
  });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const id = created.body.test_id;
  assert.equal((await api(env.admin, 'POST', `/ab-tests/${id}/start`)).status, 200);
  const device = new Map();  // the app's storage for sticky buckets
  const sticky = new LocalStorageStickyBucketService({
    localStorage: { getItem: async (k) => device.get(k) ?? null, setItem: async (k, v) => { device.set(k, v); } },
  });
  const sdk = async (withSticky) => {
    const gb = new GrowthBook({ apiHost: env.baseUrl, clientKey: env.clientKey,
      ...(withSticky ? { stickyBucketService: sticky } : {}) });
    const init = await gb.init({ timeout: 5000 });
    assert.equal(init.success, true, JSON.stringify(init));
    return gb;
  };
  const keyFor = async (gb, user) => {
    await gb.setAttributes({ id: user });
    return gb.evalFeature('bandit_nudge').experimentResult?.key;
  };
  const assignOf = async (user) => {
    const reply = await api(env.service, 'POST', `/ab-tests/${id}/assign`, { user_id: user });
    assert.equal(reply.status, 200, JSON.stringify(reply.body));
    return reply.body;
  };

  // Before any recomputation: starting weights, SDK and /assign agree and the SDK saves buckets.
  const first = new Map();
  const before = await sdk(true);
  const seen = {};
  const events = [];
  const now = Math.floor(Date.now() / 1000);
  for (let i = 0; i < 450; i++) {
    const user = `bandit-user-${i}`;
    const decision = await assignOf(user);
    assert.equal(await keyFor(before, user), decision.variant, user);
    first.set(user, decision.variant);
    seen[decision.variant] = (seen[decision.variant] ?? 0) + 1;
    // c converts at 40%, the others at 5%.
    if (seen[decision.variant] % 20 < (decision.variant === 'c' ? 8 : 1)) {
      events.push({ type: 'metric', user_id: user, metric: 'conversion_rate', value: 1,
        at: new Date((now + 5) * 1000).toISOString() });
    }
  }
  before.destroy();
  assert.equal((await api(env.admin, 'POST', '/events', { events })).status, 200);
  const recomputed = await api(env.admin, 'POST', `/ab-tests/${id}/bandit/recompute`);
  assert.equal(recomputed.status, 200, JSON.stringify(recomputed.body));
  assert.equal(recomputed.body.recomputed, true);
  const weights = recomputed.body.current_weights;
  assert.ok(weights.c > 0.4, JSON.stringify(weights));

  // After: the payload serves the new weights; early users stay put on both sides.
  const after = await sdk(true);
  const plain = await sdk(false);
  // OFREP evaluates on the server, sticky from the stored exposures as /assign is.
  await OpenFeature.setProviderAndWait(new OFREPProvider({
    baseUrl: env.baseUrl, headers: [['Authorization', `Bearer ${env.sdkSecret}`]],
  }));
  const ofrep = OpenFeature.getClient();
  let moved = 0;
  for (const [user, variant] of first) {
    const decision = await assignOf(user);
    assert.equal(decision.variant, variant, user);
    assert.equal(decision.sticky, true, user);
    assert.equal(await keyFor(after, user), variant, user);
    const details = await ofrep.getObjectDetails('bandit_nudge', { fallback: true }, { targetingKey: user });
    assert.equal(details.variant, variant, `${user}: ${JSON.stringify(details)}`);
    if (await keyFor(plain, user) !== variant) moved++;
  }
  assert.ok(moved > 30, `hashing alone would move ${moved} users: the sticky check must not be vacuous`);
  // New users: the current weights on both sides.
  const counts = {};
  for (let i = 0; i < 600; i++) {
    const user = `bandit-late-${i}`;
    const decision = await assignOf(user);
    assert.equal(decision.sticky, false);
    assert.equal(await keyFor(plain, user), decision.variant, user);
    counts[decision.variant] = (counts[decision.variant] ?? 0) + 1;
  }
  assert.ok(Math.abs(counts.c / 600 - weights.c) < 0.07, `${JSON.stringify(counts)} vs ${JSON.stringify(weights)}`);
  after.destroy();
  plain.destroy();
});

test('a global holdout: the SDK gives held-out users the off value, the others their variant',
  async () => {
    const holdout = await api(env.admin, 'POST', '/holdouts',
      { holdout_id: 'sdk-holdout', name: 'SDK holdout', percent: 20 });
    assert.equal(holdout.status, 201, JSON.stringify(holdout.body));
    const off = { banner: 'none' };
    const flag = await api(env.admin, 'POST', '/flags',
      { key: 'holdout_banner', value_type: 'json', default_value: off });
    assert.equal(flag.status, 201, JSON.stringify(flag.body));
    const created = await api(env.admin, 'POST', '/ab-tests', {
      test_name: 'Banner behind a holdout', feature_name: 'holdout_banner',
      success_metrics: ['conversion_rate'],
      test_groups: { control: { banner: 'a' }, variant: { banner: 'b' } },
      traffic_allocation: { control: 0.5, variant: 0.5 }, holdout_id: 'sdk-holdout',
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const testId = created.body.test_id;
    assert.equal((await api(env.admin, 'POST', `/ab-tests/${testId}/start`)).status, 200);

    const gb = new GrowthBook({ apiHost: env.baseUrl, clientKey: env.clientKey });
    assert.equal((await gb.init({ timeout: 5000 })).success, true);
    OpenFeature.setProvider(new OFREPProvider({
      baseUrl: env.baseUrl, headers: [['Authorization', `Bearer ${env.sdkSecret}`]],
    }));
    const client = OpenFeature.getClient();
    const users = 600;
    let held = 0;
    for (let i = 0; i < users; ++i) {
      const id = `holdout-user-${i}`;
      const decision = (await api(env.service, 'POST', `/ab-tests/${testId}/assign`,
        { user_id: id })).body;
      await gb.setAttributes({ id });
      const result = gb.evalFeature('holdout_banner');
      const details = await client.getObjectDetails('holdout_banner', { fallback: true },
        { targetingKey: id });
      const what = `${id}: ${JSON.stringify(decision)} / ${JSON.stringify(result)}`;
      if (decision.reason === 'holdout') {
        held++;
        assert.equal(decision.variant, null, what);
        assert.deepEqual(result.value, off, what);
        assert.equal(result.experimentResult.key, 'holdoutcontrol', what);
        assert.equal(result.experiment.key, 'sdk-holdout', what);
        assert.deepEqual(details.value, off, what);
      } else {
        assert.equal(decision.in_experiment, true, what);
        assert.equal(result.experiment.key, testId, what);  // passed through the holdout
        assert.equal(result.experimentResult.key, decision.variant, what);
        assert.deepEqual(result.value, decision.config, what);
        assert.equal(details.reason, 'SPLIT', what);
        assert.equal(details.variant, decision.variant, what);
        assert.deepEqual(details.value, decision.config, what);
      }
    }
    // 20% of 600 = 120, +- 4.5 standard errors (about 44).
    assert.ok(Math.abs(held - 120) < 44, `held out ${held} of ${users}`);
    gb.destroy();
  });
