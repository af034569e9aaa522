// Hash router: every page lives at index.html#/<section>[/<id>], so the server only serves
// static files and a reload keeps the page. Without an API key every route shows sign-in.
import { apiKey, setApiKey } from './api.js';
import { h, clear } from './ui.js';
import { renderSignIn } from './pages/signin.js';
import { renderOverview } from './pages/overview.js';
import { renderTestList, renderTestCreate, renderTestDetail } from './pages/abtests.js';
import { renderUsers } from './pages/users.js';
import { renderRetention } from './pages/retention.js';
import { renderSunset } from './pages/sunset.js';
import { renderFlags, renderFlagDetail } from './pages/flags.js';
import { renderRecommendations, renderUpgradeTiming } from './pages/engines.js';
import { renderAutomation } from './pages/automation.js';
import { renderHoldouts, renderHoldoutDetail } from './pages/holdouts.js';

const routes = [
  [/^\/overview$/, 'overview', renderOverview],
  [/^\/ab-tests$/, 'ab-tests', renderTestList],
  [/^\/ab-tests\/new$/, 'ab-tests', renderTestCreate],
  [/^\/ab-tests\/([^/]+)$/, 'ab-tests', renderTestDetail],
  [/^\/recommendations$/, 'recommendations', renderRecommendations],
  [/^\/upgrade-timing$/, 'upgrade-timing', renderUpgradeTiming],
  [/^\/users$/, 'users', renderUsers],
  [/^\/users\/([^/]+)$/, 'users', renderUsers],
  [/^\/retention$/, 'retention', renderRetention],
  [/^\/sunset$/, 'sunset', renderSunset],
  [/^\/flags$/, 'flags', renderFlags],
  [/^\/flags\/([^/]+)$/, 'flags', renderFlagDetail],
  [/^\/holdouts$/, 'holdouts', renderHoldouts],
  [/^\/holdouts\/([^/]+)$/, 'holdouts', renderHoldoutDetail],
  [/^\/automation$/, 'automation', renderAutomation],
];

const view = document.getElementById('view');
const nav = document.getElementById('nav');
const signOut = document.getElementById('sign-out');

signOut.addEventListener('click', () => {
  setApiKey(null);
  location.hash = '#/sign-in';
});

let generation = 0;

function route() {
  const path = location.hash.replace(/^#/, '') || '/overview';
  const signedIn = Boolean(apiKey());
  nav.hidden = !signedIn;
  signOut.hidden = !signedIn;
  const page = h('div', { class: 'page' });
  clear(view).append(page);
  const current = ++generation;
  // Pages check isCurrent() before touching the DOM after an await, so a slow response
  // for a page the user already left does not overwrite the new one.
  const context = { isCurrent: () => current === generation, navigate };
  if (!signedIn || path === '/sign-in') {
    markSection(null);
    renderSignIn(page, context, signedIn ? null : path);
    return;
  }
  for (const [pattern, section, render] of routes) {
    const match = path.match(pattern);
    if (match) {
      markSection(section);
      render(page, context, ...match.slice(1).map(decodeURIComponent));
      return;
    }
  }
  markSection(null);
  page.append(h('h1', {}, 'Page not found'),
              h('p', {}, 'No page at ', h('code', {}, path), '. ',
                h('a', { href: '#/overview' }, 'Go to the overview')));
}

function markSection(section) {
  for (const link of nav.querySelectorAll('a')) {
    if (link.dataset.section === section) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
}

export function navigate(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

window.addEventListener('hashchange', route);
route();
