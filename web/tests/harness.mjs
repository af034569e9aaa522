// Test harness for the dashboard's end-to-end test: runs a real `fulcrum` server on loopback
// over a fresh demo store, creates an admin key, and launches Debian's Chromium through
// playwright-core. Everything started here is stopped by stop().
import { spawn, execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
export const WEB_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const REPO_DIR = resolve(WEB_DIR, '..');
export const CHROMIUM = process.env.FULCRUM_CHROMIUM || '/usr/bin/chromium';

export function fulcrumBinary() {
  const candidates = [process.env.FULCRUM_BIN, join(REPO_DIR, 'build/src/cli/fulcrum'),
                      join(REPO_DIR, 'build/fulcrum')].filter(Boolean);
  const found = candidates.find((path) => existsSync(path));
  if (!found) {
    throw new Error(`fulcrum binary not found (tried ${candidates.join(', ')}); build it and ` +
                    'set FULCRUM_BIN to its path');
  }
  return found;
}

export function outputDir() {
  const base = process.env.FULCRUM_TEST_OUTPUT || join(REPO_DIR, 'build/test-output');
  const dir = join(base, 'screenshots');
  mkdirSync(dir, { recursive: true });
  return dir;
}

async function fulcrum(bin, store, args, timeout = 120_000) {
  try {
    return await run(bin, ['--store', store, ...args], { timeout, maxBuffer: 16 << 20 });
  } catch (error) {
    throw new Error(`fulcrum ${args.join(' ')} failed (exit ${error.code}): ${error.stderr || error.message}`);
  }
}

// Starts the whole environment. Returns {baseUrl, adminKey, analystKey, browser, store, stop}.
export async function startEnvironment({ users = 2000, days = 30 } = {}) {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`Chromium not found at ${CHROMIUM}: install it with ` +
                    '`FULCRUM_WITH_BROWSER=1 bash scripts/install-deps.sh` (Debian package chromium)');
  }
  let chromium;
  try {
    ({ chromium } = await import('playwright-core'));
  } catch {
    throw new Error('playwright-core is missing: run `npm ci` in web/');
  }
  const bin = fulcrumBinary();
  const workDir = mkdtempSync(join(tmpdir(), 'fulcrum-web-e2e-'));
  const store = join(workDir, 'fulcrum.db');
  const cleanups = [() => rmSync(workDir, { recursive: true, force: true })];
  const stop = async () => {
    for (const cleanup of cleanups.reverse()) {
      try { await cleanup(); } catch { /* keep stopping the rest */ }
    }
  };
  try {
    await fulcrum(bin, store, ['demo', '--users', String(users), '--days', String(days)]);
    const adminKey = parseKey((await fulcrum(bin, store, ['keys', 'create', '--role', 'admin'])).stdout);
    const analystKey = parseKey((await fulcrum(bin, store, ['keys', 'create', '--role', 'analyst'])).stdout);
    // The key file (token and audit keys) is created next to the store by `keys create`.
    // --port 0: the server picks a free port and prints it ("serving on http://...:PORT").
    const server = spawn(bin, ['--store', store, 'serve', '--address', '127.0.0.1', '--port', '0',
                               '--web-dir', WEB_DIR,
                               // No scheduled jobs firing mid-test (jobs still run when asked).
                               '--no-scheduler'],
                         { stdio: ['ignore', 'pipe', 'pipe'] });
    let serverLog = '';
    let announce;
    const announced = new Promise((r) => { announce = r; });
    server.stdout.on('data', (d) => {
      serverLog += d;
      const match = serverLog.match(/serving on (http:\/\/[0-9.]+:\d+)/);
      if (match) announce(match[1]);
    });
    server.stderr.on('data', (d) => { serverLog += d; });
    const exited = new Promise((r) => server.once('exit', (code, signal) => r({ code, signal })));
    cleanups.push(async () => {
      if (server.exitCode === null && server.signalCode === null) {
        server.kill('SIGTERM');
        const timer = setTimeout(() => server.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(timer);
      }
    });
    const baseUrl = await Promise.race([
      announced,
      exited.then(({ code, signal }) => {
        throw new Error(`fulcrum serve exited (code ${code}, signal ${signal}):\n${serverLog}`);
      }),
      new Promise((_, reject) => setTimeout(() => reject(new Error(
        `fulcrum serve did not announce its address within 20 s:\n${serverLog}`)), 20_000)),
    ]);
    await waitForHealth(baseUrl, server, () => serverLog);
    const browser = await chromium.launch({ executablePath: CHROMIUM,
                                            args: ['--no-sandbox', '--headless=new'] });
    cleanups.push(() => browser.close());
    return { baseUrl, adminKey, analystKey, browser, store, bin, stop, serverLog: () => serverLog };
  } catch (error) {
    await stop();
    throw error;
  }
}

function parseKey(text) {
  const match = text.match(/^secret:\s*(\S+)/m);
  if (!match) throw new Error(`no API key in the output of 'fulcrum keys create': ${text}`);
  return match[1];
}

async function waitForHealth(baseUrl, server, log) {
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    if (server.exitCode !== null) throw new Error(`fulcrum serve exited early (${server.exitCode}):\n${log()}`);
    try {
      const response = await fetch(`${baseUrl}/healthz`);
      if (response.ok) return;
    } catch { /* not listening yet */ }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`fulcrum serve did not answer /healthz within 20 s:\n${log()}`);
}

// Calls the API directly (for setup the test does not drive through the UI).
export async function api(baseUrl, key, method, path, body) {
  const response = await fetch(`${baseUrl}/api/automated-optimization${path}`, {
    method, headers: { Authorization: `Bearer ${key}`, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch { json = text; }
  return { status: response.status, body: json };
}
