// Sign-in with an API key (from `fulcrum keys create --role admin|analyst`). The key is
// checked against GET /ab-tests (the same roles as GET /dashboard, but a cheap read: the
// dashboard's first computation after a server start can take seconds) before it is kept:
// 401 means the key is wrong or revoked, 403 that its role may not read the dashboard.
import { get, setApiKey, ApiError } from '../api.js';
import { h, errorState } from '../ui.js';

export function renderSignIn(page, context, returnTo) {
  const input = h('input', { id: 'api-key', name: 'api-key', type: 'password', required: true,
                             autocomplete: 'off', spellcheck: 'false', placeholder: 'fk_…' });
  const message = h('div', { class: 'form-message' });
  const button = h('button', { type: 'submit', class: 'primary' }, 'Sign in');
  const form = h('form', { class: 'card sign-in', novalidate: true },
    h('h1', {}, 'Sign in to Fulcrum'),
    h('p', { class: 'muted' }, 'Paste an API key. It is kept only in this browser tab ',
      '(session storage) and sent as a Bearer token.'),
    h('label', { for: 'api-key' }, 'API key'), input, message, button);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const key = input.value.trim();
    message.replaceChildren();
    if (!key) {
      message.append(h('p', { class: 'field-error', role: 'alert' }, 'Enter an API key.'));
      input.focus();
      return;
    }
    button.disabled = true;
    button.textContent = 'Checking…';
    setApiKey(key);
    try {
      await get('/ab-tests');
    } catch (error) {
      if (error instanceof ApiError && (error.status === 401 || error.status === 403 ||
                                        error.status === 0)) {
        setApiKey(null);
        button.disabled = false;
        button.textContent = 'Sign in';
        const what = error.status === 403 ? 'the dashboard with this key' : 'sign-in';
        message.append(errorState(error, what));
        return;
      }
      // Other failures (e.g. the dashboard route erroring) do not make the key wrong; the
      // overview shows that error itself.
    }
    const target = returnTo && returnTo !== '/sign-in' ? returnTo : '/overview';
    context.navigate(`#${target}`);
  });
  page.append(form);
  input.focus();
}
